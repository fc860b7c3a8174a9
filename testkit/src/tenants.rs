//! The one "new streaming tenant" step of tests and benchmarks.

use outflow::AppState;
use outflow::tenants::{self, TenantId, TenantName, streaming};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::Api;

/// Where tenants are made: a server over its REST API ([`Api`], [`crate::TestApp`]), or the
/// library in process ([`AppState`], for benchmarks that time the work without HTTP).
#[allow(async_fn_in_trait)]
pub trait Tenants {
    /// Creates tenant `id` named `name`; panics unless it was created.
    async fn create_tenant(&self, id: i64, name: &str);

    /// Activates streaming of tenant `id` for the first time; panics unless this call
    /// activated it.
    async fn start_streaming(&self, id: i64);

    /// Creates tenant `id` named `name` and activates its streaming.
    async fn create_and_activate(&self, id: i64, name: &str) {
        self.create_tenant(id, name).await;
        self.start_streaming(id).await;
    }
}

impl Tenants for Api {
    async fn create_tenant(&self, id: i64, name: &str) {
        let (status, body) = self.call(Method::POST, "/api/v1/tenants", Some(json!({"id": id, "name": name}))).await;
        assert_eq!(status, StatusCode::CREATED, "{name:?}: {body}");
    }

    async fn start_streaming(&self, id: i64) {
        let (status, body) = self.activate(id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

impl Tenants for AppState {
    async fn create_tenant(&self, id: i64, name: &str) {
        let name = TenantName::parse(name).unwrap();
        tenants::create(&self.store, TenantId::parse(id).unwrap(), &name).await.unwrap();
    }

    async fn start_streaming(&self, id: i64) {
        let (_, activated) =
            streaming::activate(&self.store, &self.issuer, &self.published(), TenantId::parse(id).unwrap())
                .await
                .unwrap();
        assert!(activated, "tenant {id} streamed already");
    }
}
