//! A change and its audit entry commit together: killed with SIGKILL under a load of changes,
//! the restarted server has an audit entry for every change that committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use outflow_testkit::Server;
use sqlx::sqlite::SqlitePoolOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_change_has_its_audit_entry_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let token = server.operator_token();
    let base = server.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8i64 {
        let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let id = 1000 + w * 10_000 + n;
                n += 1;
                let created = client
                    .post(format!("{base}/api/v1/tenants"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"id": id, "name": "Crash"}))
                    .send()
                    .await;
                if created.is_err() {
                    break; // the server is gone
                }
                let _ = client
                    .post(format!("{base}/api/v1/tenants/{id}/allowlist"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"cidr": format!("198.51.100.{}", n % 250)}))
                    .send()
                    .await;
            }
        }));
    }
    // Let the load run, then kill the server in the middle of it (Drop sends SIGKILL).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    drop(server);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    // The restart moves what the kill left in the outbox into the log.
    let server = Server::start(dir.path(), &[]);
    let db = SqlitePoolOptions::new().connect(&format!("sqlite://{}/outflow.db", dir.path().display())).await.unwrap();
    let (tenants,): (i64,) = sqlx::query_as("select count(*) from tenants").fetch_one(&db).await.unwrap();
    assert!(tenants > 20, "the load made changes before the kill ({tenants} tenants)");
    let unaudited_tenants: Vec<(i64,)> = sqlx::query_as(
        "select id from tenants t where not exists (select 1 from audit_log a where a.action = 'POST /api/v1/tenants' \
         and a.tenant_id = t.id and a.outcome = 'success')",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(unaudited_tenants.is_empty(), "tenants without an audit entry: {unaudited_tenants:?}");
    let unaudited_entries: Vec<(i64, String)> = sqlx::query_as(
        "select e.tenant_id, e.cidr from allowlist_entries e where not exists (select 1 from audit_log a \
         where a.action = 'POST /api/v1/tenants/{id}/allowlist' and a.tenant_id = e.tenant_id \
         and a.outcome = 'success' and a.detail like e.cidr || ' added%')",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(unaudited_entries.is_empty(), "allowlist entries without an audit entry: {unaudited_entries:?}");
    let (left,): (i64,) = sqlx::query_as("select count(*) from audit_outbox").fetch_one(&db).await.unwrap();
    assert_eq!(left, 0, "the outbox was emptied at start");
    drop(server);
}
