//! Dashboard page render time (server side) with 1,000 tenants, in process through the router
//! (no network). Goal: every page under 100 ms.
//!
//! Run: `cargo bench -p outflow --bench pages`. Each figure is also a ratio to serving
//! `/healthz` through the same router in the same run.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use outflow::auth::{self, Role, session};
use outflow::{AppState, Config};
use outflow_testkit::Tenants;
use outflow_testkit::bench::{ms, percentile};
use tower::ServiceExt;

async fn time_get(router: &axum::Router, path: &str, cookie: &str, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let request = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        samples.push(started.elapsed());
        assert!(status.is_success(), "{path}: {status}");
        assert!(!body.is_empty());
    }
    samples.sort();
    samples
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(Config { data_dir: dir.path().to_owned(), ..Config::default() }).await.unwrap();
    let started = Instant::now();
    for id in 1..=1000 {
        let name = format!("Customer {id}");
        if id % 2 == 0 {
            state.create_and_activate(id, &name).await;
        } else {
            state.create_tenant(id, &name).await;
        }
    }
    println!("setup: 1,000 tenants (500 active) in {:.1} s", started.elapsed().as_secs_f64());

    let token = auth::create_token(&state.store, Role::Operator, "bench").await.unwrap();
    let principal = auth::authenticate(&state.store, &token).await.unwrap().unwrap();
    let id = session::start(&state.store, &principal, state.config.session_minutes).await.unwrap();
    let cookie = format!("{}={id}", session::SESSION_COOKIE);
    let router = outflow::app::router(state.clone());

    let base = time_get(&router, "/healthz", &cookie, 200).await;
    let unit = percentile(&base, 0.5);
    println!("baseline: GET /healthz p50 {:.3} ms (= 1 unit)", ms(unit));
    for path in [
        "/tenants",
        "/tenants/500/streaming",
        "/tenants/501/streaming",
        "/audit",
        "/tokens",
        "/users",
        "/brokers",
        "/ca",
    ] {
        let samples = time_get(&router, path, &cookie, 50).await;
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        println!(
            "GET {path:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.0} units; goal < 100 ms)",
            ms(p50),
            ms(p99),
            p50.as_secs_f64() / unit.as_secs_f64()
        );
    }
}
