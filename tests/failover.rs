//! Two `outflow serve` replicas on one PostgreSQL database and a real broker: the lease holder is
//! killed with SIGKILL while tenants are being activated; the other replica takes the reconciler
//! lease over and every tenant becomes ready, provisioned exactly (run by the PostgreSQL pass of
//! `ops/test.sh`).

use std::time::{Duration, Instant};

use outflow::Config;
use outflow::kafka::Cluster;
use outflow::kafka::reconcile;
use outflow_testkit::{Api, Broker, Server, TEST_KEK, fresh_database_url, on_postgres, outflow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn replicas(api: &Api) -> Value {
    api.call_ok(Method::GET, "/api/v1/replicas", None).await
}

/// The replica id that holds the live reconciler lease, if any.
fn lease_holder(view: &Value) -> Option<String> {
    view["leases"].as_array()?.iter().find(|l| l["name"] == "reconciler" && l["live"] == true)?["holder"]
        .as_str()
        .map(str::to_owned)
}

/// The id of the replica serving on `base` (`http://host:port`).
fn replica_at(view: &Value, base: &str) -> Option<String> {
    let address = base.trim_start_matches("http://");
    view["replicas"].as_array()?.iter().find(|r| r["address"] == address)?["id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_replica_takes_over_reconciling_when_the_lease_holder_dies() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL database: run with OUTFLOW_TEST_DATABASE=postgres (ops/test.sh does)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let url = fresh_database_url(work.path());
    let db = [("OUTFLOW_DATABASE_URL", url.as_str()), ("OUTFLOW_KEK", TEST_KEK)];
    // The broker's certificates come from the CA in the shared database.
    let broker = Broker::up_via(&["bash"], &work.path().join("kafka"), &work.path().join("a"), &db);
    let mut env = broker.server_env();
    env.extend(db);
    env.push(("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"));
    let mut a = Server::start(&work.path().join("a"), &env);
    let token = outflow(&work.path().join("a"), &db, &["token", "create", "--role", "operator", "--name", "ops"]);
    let token = token.lines().last().unwrap().trim().to_owned();
    let api_a = Api::new(&a.base, token.clone());
    // a started first: it holds the lease before b exists.
    let started = Instant::now();
    let holder_a = loop {
        let view = replicas(&api_a).await;
        if let (Some(holder), Some(me)) = (lease_holder(&view), replica_at(&view, &a.base))
            && holder == me
        {
            break me;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "a never took the lease: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let b = Server::start(&work.path().join("b"), &env);
    let api = Api::new(&b.base, token);

    let tenants: Vec<i64> = (1..=8).collect();
    let mut killed_at = None;
    for id in &tenants {
        api.call_ok(Method::POST, "/api/v1/tenants", Some(serde_json::json!({"id": id, "name": "Acme"}))).await;
        let (status, body) = api.call(Method::PUT, &format!("/api/v1/tenants/{id}/streaming"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if *id == 3 {
            a.kill();
            killed_at = Some(Instant::now());
        }
    }
    let killed_at = killed_at.unwrap();

    // b takes the lease over once a's expires, and provisions every tenant.
    let holder_b = loop {
        let view = replicas(&api).await;
        if let Some(holder) = lease_holder(&view)
            && holder != holder_a
        {
            break holder;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(60), "no takeover: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let takeover = killed_at.elapsed();
    assert_eq!(Some(holder_b), replica_at(&replicas(&api).await, &b.base));
    for id in &tenants {
        loop {
            let status = api.call_ok(Method::GET, &format!("/api/v1/tenants/{id}/streaming"), None).await;
            if status["reconcile"]["status"] == "ready" {
                break;
            }
            assert!(killed_at.elapsed() < Duration::from_secs(120), "tenant {id} never ready: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("lease taken over {takeover:?} after the kill; all tenants ready {:?} after it", killed_at.elapsed());

    // Exactly provisioned: a pass over the cluster finds nothing to create, change or remove
    // (no topic or ACL twice, none left behind).
    let mut config = Config::default();
    config.apply_env(|k| env.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())).unwrap();
    let store =
        outflow::store::Store::open(&url, std::sync::Arc::new(outflow::signals::Signals::default())).await.unwrap();
    let cluster = Cluster::connect(&config.kafka).unwrap();
    let report = reconcile::pass(&store, &cluster, false, None).await.unwrap();
    assert_eq!(report.actions, 0, "the cluster matches the desired state exactly");
    drop(b);
}
