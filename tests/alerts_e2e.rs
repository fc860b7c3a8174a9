//! Alerts end to end, on a real broker with the real splitter writing the transactional
//! `c83_waf`, `outflow serve` as a process and a webhook receiver on loopback: a WAF burst
//! fires exactly once (the receiver's 500 is retried under the same `webhook-id`, the
//! signature verifies with Python's `hmac`); 40 attacking addresses with `group_by=client_ip`
//! go out as one message listing 20; `kill -9` of the server while the burst fires and a
//! restart send no second firing, and the resolve is still delivered; the zip's consumer.py
//! stopped while traffic arrives fires `lag_above` and `group_stalled`, running it resolves both;
//! records the splitter dead-letters fire the operators' `dlq_growth`.

use std::process::Command;
use std::time::Duration;

use outflow_testkit::receiver::{Answer, Received, Receiver};
use outflow_testkit::waf_corpus::modsec_record;
use outflow_testkit::{Broker, Server, Tenants, consume_with_bundle, eventually, free_port};
use reqwest::Method;
use serde_json::{Value, json};

fn lines(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("198.51.100.9 - - [03/Dec/2026:07:00:00 +0000] \"GET /{tag}/{i} HTTP/1.1\" 200 5")).collect()
}

/// One raw record per client, each with a CRITICAL SQL-injection message and a WARNING.
fn attacks(clients: impl IntoIterator<Item = String>) -> Vec<(String, String)> {
    clients
        .into_iter()
        .map(|client| {
            let record = modsec_record(
                &client,
                "shop.example.com",
                "/search?q=1%27%20OR%201=1--",
                &[("942100", "SQL Injection Attack Detected via libinjection", 2), ("920350", "Numeric host", 4)],
            );
            ("83".to_owned(), record)
        })
        .collect()
}

/// Deliveries of `rule` with `type` (e.g. `alert.firing`).
fn of(received: &[Received], rule: i64, kind: &str) -> Vec<Received> {
    received.iter().filter(|r| r.json()["type"] == kind && r.json()["data"]["rule"]["id"] == rule).cloned().collect()
}

/// Checks a Standard Webhooks signature with Python's hmac, independently of outflow's code.
fn verify_with_python(secret: &str, r: &Received) {
    let script = r#"
import base64, hashlib, hmac, sys
secret, msg_id, ts, header = sys.argv[1:5]
body = sys.stdin.buffer.read()
key = base64.b64decode(secret.split("_", 1)[1])
want = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256).digest()).decode()
sigs = [s.split(",", 1)[1] for s in header.split() if s.startswith("v1,")]
sys.exit(0 if any(hmac.compare_digest(want, s) for s in sigs) else 1)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, secret])
        .args([r.header("webhook-id").unwrap(), r.header("webhook-timestamp").unwrap()])
        .arg(r.header("webhook-signature").unwrap())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(r.body.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "signature does not verify: {:?}", r.headers);
}

#[tokio::test(flavor = "multi_thread")]
async fn bursts_fire_once_group_survive_a_kill_and_resolve() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("outflow-data");
    let broker = Broker::up(&work.path().join("kafka"), &data);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut env = broker.server_env();
    env.extend([
        ("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"),
        ("OUTFLOW_ALERTS_EVALUATE_INTERVAL_MS", "500"),
        ("OUTFLOW_ALERTS_GROUP_WAIT_SECS", "2"),
        ("OUTFLOW_ALERTS_ALLOW_DESTINATIONS", "127.0.0.1/32"),
    ]);
    let mut server = Server::start_on(&data, &listen, &env);
    let api = server.api();
    api.create_and_activate(83, "Tenant 83").await;
    let _splitter = broker.waf_splitter(&data, "alerts-e2e");
    eventually(Duration::from_secs(60), "the raw topic", async || broker.partitions("waf.audit.raw").map(|_| ())).await;

    let receiver = Receiver::start().await;
    // The first delivery fails: it must be retried with the same id and body.
    receiver.script([Answer::status(500)]);
    let channel = api
        .call_ok(
            Method::POST,
            "/api/v1/tenants/83/alert-channels",
            Some(json!({"kind": "webhook", "name": "SOC", "url": format!("{}/hook", receiver.url)})),
        )
        .await;
    let secret = channel["secret"].as_str().unwrap().to_owned();
    let ch = channel["id"].as_i64().unwrap();
    let rule = |body: Value| async {
        let (s, b) = api.call(Method::POST, "/api/v1/tenants/83/alert-rules", Some(body)).await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_i64().unwrap()
    };
    let burst = rule(json!({"kind": "waf_burst", "name": "SQLi burst", "threshold": 20, "window_secs": 10,
        "channels": [ch]}))
    .await;
    let scanners = rule(json!({"kind": "waf_burst", "name": "Scanners", "threshold": 2, "window_secs": 10,
        "group_by": "client_ip", "rule_ids": ["942100"], "channels": [ch]}))
    .await;

    // 40 addresses twice: 80 CRITICAL events (the burst) and 2 per address (each a scanner).
    let clients: Vec<String> = (1..=40).map(|i| format!("203.0.113.{i}")).collect();
    broker.produce_keyed("waf.audit.raw", &attacks(clients.clone()));
    broker.produce_keyed("waf.audit.raw", &attacks(clients.clone()));

    let (firing, _) = eventually(Duration::from_secs(60), "the burst delivered after a retry", async || {
        let f = of(&receiver.received(), burst, "alert.firing");
        (f.len() >= 2).then_some(f)
    })
    .await;
    assert_eq!(firing[0].header("webhook-id"), firing[1].header("webhook-id"), "a retry keeps its id");
    assert_eq!(firing[0].body, firing[1].body, "and its body");
    verify_with_python(&secret, &firing[1]);
    let data_of = firing[1].json()["data"].clone();
    assert!(data_of["value"].as_f64().unwrap() >= 20.0, "{data_of}");

    let (grouped, _) = eventually(Duration::from_secs(30), "the scanners' message", async || {
        let g = of(&receiver.received(), scanners, "alert.firing");
        (!g.is_empty()).then_some(g)
    })
    .await;
    assert_eq!(grouped.len(), 1, "40 instances, one message");
    let g = grouped[0].json();
    assert_eq!(g["data"]["instances"].as_array().unwrap().len(), 20, "{g}");
    assert_eq!(g["data"]["more"], 20, "{g}");

    // kill -9 while firing, and a restart: no second firing; the resolve still comes.
    server.kill();
    let server = Server::start_on(&data, &listen, &env);
    let api = server.api();
    let (resolved, _) = eventually(Duration::from_secs(90), "the burst resolved", async || {
        let r = of(&receiver.received(), burst, "alert.resolved");
        (!r.is_empty()).then_some(r)
    })
    .await;
    verify_with_python(&secret, &resolved[0]);
    let ids: std::collections::BTreeSet<String> = of(&receiver.received(), burst, "alert.firing")
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one firing across the restart: {ids:?}");
    eventually(Duration::from_secs(60), "the scanners resolved", async || {
        (!of(&receiver.received(), scanners, "alert.resolved").is_empty()).then_some(())
    })
    .await;

    // Consumers: with consumer.py stopped while traffic arrives, lag and stalled fire;
    // running it again resolves both.
    let lag = rule(json!({"kind": "lag_above", "name": "Behind", "group": "c83_*", "threshold": 5,
        "for_secs": 1, "channels": [ch]}))
    .await;
    let stalled = rule(json!({"kind": "group_stalled", "name": "Stalled", "group": "c83_*", "for_secs": 2,
        "channels": [ch]}))
    .await;
    let bundle = work.path().join("bundle");
    api.unpack_bundle(83, &bundle).await;
    let first = lines("first", 5);
    broker.produce("c83", &first);
    consume_with_bundle(&bundle, &first);
    let second = lines("second", 20);
    broker.produce("c83", &second);
    for (rule, what) in [(lag, "lag_above firing"), (stalled, "group_stalled firing")] {
        eventually(Duration::from_secs(60), what, async || {
            (!of(&receiver.received(), rule, "alert.firing").is_empty()).then_some(())
        })
        .await;
    }
    let fired = of(&receiver.received(), stalled, "alert.firing");
    assert_eq!(fired[0].json()["data"]["labels"]["group"], "c83_python", "{}", fired[0].body);
    consume_with_bundle(&bundle, &second);
    for (rule, what) in [(lag, "lag_above resolved"), (stalled, "group_stalled resolved")] {
        eventually(Duration::from_secs(60), what, async || {
            (!of(&receiver.received(), rule, "alert.resolved").is_empty()).then_some(())
        })
        .await;
    }

    // Operators: records the splitter dead-letters fire `dlq_growth` on an operators' channel.
    let (s, och) = api
        .call(
            Method::POST,
            "/api/v1/alert-channels",
            Some(json!({"kind": "webhook", "name": "NOC", "url": format!("{}/noc", receiver.url)})),
        )
        .await;
    assert_eq!(s, 201, "{och}");
    let (s, dlq) = api
        .call(
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"kind": "dlq_growth", "name": "Dead letters", "threshold": 5, "window_secs": 60,
                "channels": [och["id"]]})),
        )
        .await;
    assert_eq!(s, 201, "{dlq}");
    let dlq = dlq["id"].as_i64().unwrap();
    // A first look at the topic's end, then the bad records.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bad: Vec<(String, String)> = (0..6).map(|i| ("83".to_owned(), format!("not json {i}"))).collect();
    broker.produce_keyed("waf.audit.raw", &bad);
    let (fired, _) = eventually(Duration::from_secs(60), "dlq_growth firing", async || {
        let f = of(&receiver.received(), dlq, "alert.firing");
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(fired[0].path, "/noc");
    assert_eq!(fired[0].json()["data"]["labels"]["topic"], "waf.audit.dlq", "{}", fired[0].body);
    assert!(fired[0].json()["data"]["value"].as_f64().unwrap() >= 6.0, "{}", fired[0].body);

    // The history and the current state through the API.
    let firing_now = api.call_ok(Method::GET, "/api/v1/tenants/83/alerts?state=firing", None).await;
    assert_eq!(firing_now, json!([]));
    let events = api.call_ok(Method::GET, "/api/v1/tenants/83/alert-events?limit=500", None).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule_id"] == burst)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["resolved", "firing", "pending"], "newest first");
    let deliveries = api.call_ok(Method::GET, "/api/v1/tenants/83/alert-deliveries", None).await;
    assert!(deliveries.to_string().contains("delivered"), "{deliveries}");
}
