//! Several server replicas on one PostgreSQL database (run by the PostgreSQL pass of
//! `ops/test.sh`; on SQLite there is one process and nothing to show).

use std::time::{Duration, Instant};

use outflow_testkit::{Tenants, TestApp, on_postgres, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Two replicas: `a` with its own new database, `b` on the same one.
async fn replicas() -> (TestApp, TestApp) {
    let a = spawn_app_with(|c| c.firewall.long_poll_secs = 120).await;
    let url = a.state.config.database_url();
    let b = spawn_app_with(move |c| {
        c.database_url = Some(url);
        c.firewall.long_poll_secs = 120;
    })
    .await;
    assert_ne!(a.state.replica, b.state.replica);
    (a, b)
}

/// Long-polls replica `app` for a version after `after`, giving up after `patience`.
fn spawn_poll(app: &TestApp, after: i64, patience: Duration) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let url = app.url(&format!("/api/v1/agent/allowlist?after={after}"));
    let agent = app.agent.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(patience).build().unwrap();
        let resp = client.get(url).bearer_auth(agent).send().await.expect("the poll was answered in time");
        (resp.status(), resp.json::<Value>().await.unwrap())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_one_replica_wakes_the_agents_polling_another() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL database: run with OUTFLOW_TEST_DATABASE=postgres (ops/test.sh does)");
        return;
    }
    let (a, b) = replicas().await;
    b.create_tenant(83, "Acme").await;
    let (status, _) = a.op(Method::GET, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::OK, "both replicas read one database");

    // Far less patience than the 120 s hold and the listener's 15 s safety re-read: an answer
    // means the notification from b's commit woke a's poll.
    let patience = Duration::from_secs(5);
    let waiting = spawn_poll(&a, 0, patience);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, body) =
        b.op(Method::POST, "/api/v1/tenants/83/allowlist", Some(json!({"cidr": "198.51.100.7"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, woken) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(woken["version"], 1);
    assert_eq!(woken["entries"], json!(["198.51.100.7/32"]));
    eprintln!("a's poll woke {:?} after b's answer", started.elapsed());

    // Deleting the tenant through a wakes a poll held by b.
    let waiting = spawn_poll(&b, 1, patience);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.op(Method::DELETE, "/api/v1/tenants/83/allowlist/198.51.100.7", None).await;
    let (status, woken) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!((woken["version"].as_i64(), woken["entries"].clone()), (Some(2), json!([])));
}

/// The replicas as `GET /api/v1/replicas` lists them, once `n` are live.
async fn live_replicas(app: &TestApp, n: usize) -> Value {
    for _ in 0..100 {
        let (status, body) = app.op(Method::GET, "/api/v1/replicas", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["replicas"].as_array().unwrap().iter().filter(|r| r["live"] == true).count() == n {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} live replicas were never listed");
}

#[tokio::test]
async fn operators_see_the_replicas() {
    if !on_postgres() {
        // One process on SQLite: it lists itself.
        let app = spawn_app_with(|_| {}).await;
        let body = live_replicas(&app, 1).await;
        assert_eq!(body["replicas"][0]["id"], app.state.replica.as_str());
        assert_eq!(body["replicas"][0]["address"], app.addr.to_string());
        return;
    }
    let (a, b) = replicas().await;
    let body = live_replicas(&b, 2).await;
    let ids: Vec<&str> = body["replicas"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&a.state.replica.as_str()) && ids.contains(&b.state.replica.as_str()), "{body}");
    // A stopped replica leaves the list (its row goes on a graceful stop).
    let a_id = a.state.replica.clone();
    drop(a);
    for _ in 0..100 {
        let (_, body) = b.op(Method::GET, "/api/v1/replicas", None).await;
        if !body["replicas"].as_array().unwrap().iter().any(|r| r["id"] == a_id.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stopped replica stayed listed");
}
