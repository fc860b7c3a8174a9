//! Helpers shared by the end-to-end tests: an app on a free port with a throwaway data dir,
//! tokens for each role, and a JSON client.
#![allow(dead_code)]

use std::net::SocketAddr;

use outflow::auth::{self, Role};
use outflow::firewall::brokers::BrokerId;
use outflow::{App, AppState, Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    pub addr: SocketAddr,
    pub operator: String,
    /// An agent token bound to broker `kafka-1`.
    pub agent: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().to_owned(), ..Config::default() };
    adjust(&mut config);
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let state = app.state.clone();
    let operator = auth::create_token(&state.store, Role::Operator, "test-operator").await.unwrap();
    let agent =
        auth::create_agent_token(&state.store, &BrokerId::parse("kafka-1").unwrap(), "test-agent").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { addr, operator, agent, client, state, dir, _stop: stop }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with `token` (if any) and returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, json)
    }

    /// A new agent token bound to `broker`.
    pub async fn agent_token(&self, broker: &str) -> String {
        let broker = BrokerId::parse(broker).unwrap();
        auth::create_agent_token(&self.state.store, &broker, &format!("agent-{}", broker.as_str())).await.unwrap()
    }

    /// As operator.
    pub async fn op(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.operator.clone()), body).await
    }

    pub async fn create_tenant(&self, id: i64, name: &str) {
        let (status, body) =
            self.op(Method::POST, "/api/v1/tenants", Some(serde_json::json!({"id": id, "name": name}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn activate(&self, id: i64) -> Value {
        let (status, body) = self.op(Method::PUT, &format!("/api/v1/tenants/{id}/streaming"), None).await;
        assert!(status.is_success(), "{status} {body}");
        body
    }

    pub async fn bundle(&self, id: i64) -> Vec<u8> {
        let resp = self
            .client
            .get(self.url(&format!("/api/v1/tenants/{id}/bundle.zip")))
            .bearer_auth(&self.operator)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        resp.bytes().await.unwrap().to_vec()
    }
}

/// The value of the first hidden `csrf` field on a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// A client that keeps cookies and shows redirects, as a browser without scripts.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The files of a zip, by name.
pub fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data).unwrap();
        let name = file.name().unwrap().to_string();
        out.insert(name, data);
    }
    out
}
pub mod binary;
pub mod kafka;
