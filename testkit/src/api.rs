//! A client of a running outflow's REST API, and the files of a zip it serves.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A client of a running outflow (in process or the real binary) with one bearer token.
#[derive(Clone)]
pub struct Api {
    /// `http://host:port`, without a trailing slash.
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: String) -> Api {
        Api { base: base.to_owned(), token, client: reqwest::Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the token and returns status and JSON body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send(&self.client, method, &self.url(path), Some(&self.token), body).await
    }

    /// As [`Api::call`], for a call that must succeed; returns the body.
    pub async fn call_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// `PUT /api/v1/tenants/{id}/streaming`, which must succeed (201 when it activated, 200
    /// when the tenant already streamed); status and streaming status.
    pub async fn activate(&self, id: i64) -> (StatusCode, Value) {
        let (status, body) = self.call(Method::PUT, &format!("/api/v1/tenants/{id}/streaming"), None).await;
        assert!(status.is_success(), "{status} {body}");
        (status, body)
    }

    /// Tenant `id`'s zip.
    /// Downloads and unpacks the tenant's bundle into `dir`.
    pub async fn unpack_bundle(&self, id: i64, dir: &std::path::Path) {
        let zip = self.bundle(id).await;
        std::fs::create_dir_all(dir).unwrap();
        for (name, data) in unzip(&zip) {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }

    pub async fn bundle(&self, id: i64) -> Vec<u8> {
        let resp = self.client.get(self.url(&format!("/api/v1/tenants/{id}/bundle.zip"))).bearer_auth(&self.token);
        let resp = resp.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        assert_eq!(resp.headers()["content-disposition"], format!("attachment; filename=\"c{id}.zip\""));
        resp.bytes().await.unwrap().to_vec()
    }
}

/// Sends a request with `token` (if any) and returns status and JSON body (Null when empty).
pub(crate) async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
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

/// The files of a zip, by name.
pub fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data).unwrap();
        let name = file.name().unwrap().to_string();
        out.insert(name, data);
    }
    out
}
