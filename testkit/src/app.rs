//! The app in process on a free port with a throwaway data dir, tokens for each role, and
//! helpers for the dashboard.

use std::net::SocketAddr;

use outflow::auth::{self, Role};
use outflow::firewall::brokers::BrokerId;
use outflow::{App, AppState, Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use crate::api::{Api, send};
use crate::tenants::Tenants;

pub struct TestApp {
    pub addr: SocketAddr,
    pub operator: String,
    /// An agent token bound to broker `kafka-1`.
    pub agent: String,
    /// Shows redirects instead of following them.
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
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url: Some(crate::fresh_database_url(dir.path())),
        kek: crate::on_postgres().then(|| crate::TEST_KEK.to_owned()),
        ..Config::default()
    };
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

    /// The REST API as operator, with this app's client.
    pub fn api(&self) -> Api {
        Api { base: format!("http://{}", self.addr), token: self.operator.clone(), client: self.client.clone() }
    }

    /// Sends a request with `token` (if any) and returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send(&self.client, method, &self.url(path), token, body).await
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

    /// Activates tenant `id` (or finds it active); the streaming status.
    pub async fn activate(&self, id: i64) -> Value {
        self.api().activate(id).await.1
    }

    pub async fn bundle(&self, id: i64) -> Vec<u8> {
        self.api().bundle(id).await
    }
}

impl Tenants for TestApp {
    async fn create_tenant(&self, id: i64, name: &str) {
        self.api().create_tenant(id, name).await;
    }

    async fn start_streaming(&self, id: i64) {
        self.api().start_streaming(id).await;
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
