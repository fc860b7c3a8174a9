//! An operator alert pushed to a real Alertmanager (Debian's `prometheus-alertmanager`, started
//! by this test on loopback): a broker's firewall agent goes silent → `agent_stale` fires and
//! Alertmanager lists the alert as active with outflow's labels; the agent reports again → the
//! resolve (with `endsAt`) takes it off Alertmanager's active alerts.

use std::process::{Command, Stdio};
use std::time::Duration;

use outflow_testkit::{Process, eventually, free_port, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn active_alerts(base: &str) -> Vec<Value> {
    let url = format!("{base}/api/v2/alerts?active=true&silenced=false&inhibited=false");
    match reqwest::get(url).await {
        Ok(r) if r.status().is_success() => r.json::<Vec<Value>>().await.unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_alert_reaches_a_real_alertmanager_and_resolves_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n").unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _alertmanager = Process::spawn(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a single, loopback-only instance.
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    eventually(Duration::from_secs(30), "Alertmanager ready", async || {
        reqwest::get(format!("{base}/-/ready")).await.ok().filter(|r| r.status().is_success()).map(|_| ())
    })
    .await;

    let app = spawn_app_with(|c| {
        c.alerts.evaluate_interval_ms = 200;
        c.alerts.group_wait_secs = 0;
        c.alerts.allow_destinations = vec!["127.0.0.1/32".into()];
        c.firewall.stale_after_secs = 2;
    })
    .await;
    let (s, channel) = app
        .op(
            Method::POST,
            "/api/v1/alert-channels",
            Some(json!({"kind": "alertmanager_api", "name": "NOC", "url": format!("{base}/api/v2/alerts")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{channel}");
    let report = json!({"broker_id": "kafka-1", "version": 0, "entries": 0});
    let agent = app.agent.clone();
    let (s, _) = app.call(Method::POST, "/api/v1/agent/status", Some(&agent), Some(report.clone())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, rule) = app
        .op(
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"kind": "agent_stale", "name": "Agent silent", "for_secs": 0, "channels": [channel["id"]]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");

    // Silent for longer than 2 s: stale, pushed, active in Alertmanager.
    let (alerts, _) = eventually(Duration::from_secs(30), "the alert active in Alertmanager", async || {
        let a = active_alerts(&base).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["broker"], "kafka-1", "{alerts:?}");
    assert!(labels["alertname"].as_str().is_some_and(|n| !n.is_empty()), "{alerts:?}");
    assert_eq!(alerts[0]["status"]["state"], "active", "{alerts:?}");

    // The agent reports again: resolved, and Alertmanager drops it from the active alerts.
    let (s, _) = app.call(Method::POST, "/api/v1/agent/status", Some(&agent), Some(report)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    eventually(Duration::from_secs(30), "the alert resolved in Alertmanager", async || {
        active_alerts(&base).await.is_empty().then_some(())
    })
    .await;
    let (_, events) = app.op(Method::GET, "/api/v1/alerts?state=resolved", None).await;
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
}
