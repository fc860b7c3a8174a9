//! Client quotas on a real broker: set through the API, seen by Kafka's own ConfigCommand on
//! every active principal, gone with a revoked one, enforced on a real consumer (the zip's
//! consumer.py settings), and left alone by passes with nothing to change.

use std::path::Path;
use std::time::Duration;

use outflow_testkit::{Api, Broker, Server, Tenants, eventually, run_ok};
use reqwest::Method;
use serde_json::{Value, json};

const RECORDS: usize = 4_000;
const RECORD_BYTES: usize = 1_000;

async fn wait_ready(api: &Api, id: i64) {
    eventually(Duration::from_secs(30), &format!("tenant {id} ready"), async || {
        let body = api.call_ok(Method::GET, &format!("/api/v1/tenants/{id}/quota"), None).await;
        (body["status"] == "ready").then_some(())
    })
    .await;
}

/// `user -> "consumer_byte_rate=200000.0, …"` as Kafka's ConfigCommand describes user quotas.
fn described_quotas(broker: &Broker) -> std::collections::BTreeMap<String, String> {
    let out = broker.kafka_tool("kafka.admin.ConfigCommand", &["--describe", "--entity-type", "users"]);
    // "Quota configs for user-principal 'c83.2' are consumer_byte_rate=200000.0"
    out.lines()
        .filter_map(|l| l.strip_prefix("Quota configs for user-principal '"))
        .filter_map(|l| l.split_once("' are "))
        .map(|(user, values)| (user.to_owned(), values.trim().to_owned()))
        .collect()
}

async fn metric(api: &Api, name: &str) -> u64 {
    let text = api.client.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap().trim().parse().unwrap()
}

/// Reads the whole of `c<id>` with the zip's settings in a fresh group; returns the seconds it
/// took, the bytes read and the largest broker throttle librdkafka reported (ms).
fn read_all(bundle: &Path, id: i64, group: &str) -> Value {
    let script = format!(
        r#"
import importlib.util, json, time
from confluent_kafka import Consumer
spec = importlib.util.spec_from_file_location("consumer", "consumer.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
throttle = [0]
def stats(text):
    for b in json.loads(text).get("brokers", {{}}).values():
        throttle[0] = max(throttle[0], b.get("throttle", {{}}).get("max", 0))
settings = dict(m.settings(), **{{"group.id": "{group}", "auto.offset.reset": "earliest",
    "enable.auto.commit": False, "statistics.interval.ms": 500, "stats_cb": stats}})
c = Consumer(settings)
c.subscribe(["c{id}"])
n = size = 0
started = None
deadline = time.time() + 150
while n < {RECORDS} and time.time() < deadline:
    msg = c.poll(0.2)
    if msg is None or msg.error():
        continue
    if started is None:
        started = time.time()
    n += 1
    size += len(msg.value())
elapsed = time.time() - started
# One more statistics interval, so the last throttle reaches the callback.
end = time.time() + 1.2
while time.time() < end:
    c.poll(0.2)
c.close()
print(json.dumps({{"records": n, "bytes": size, "seconds": elapsed, "throttle_ms": throttle[0]}}))
"#
    );
    serde_json::from_str(run_ok("python3", &["-c", &script], bundle).trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_reach_every_principal_and_throttle_a_real_consumer() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("outflow-data");
    let broker = Broker::up(&work.path().join("kafka"), &data);
    let mut env = broker.server_env();
    env.push(("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"));
    let server = Server::start(&data, &env);
    let api = server.api();
    api.create_and_activate(83, "Throttled").await;
    api.create_and_activate(84, "Unthrottled").await;
    // Rotation: tenant 83 holds two active credentials, so two principals.
    api.call_ok(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    wait_ready(&api, 83).await;
    wait_ready(&api, 84).await;

    // Too low a rate is refused, and the 422 says why.
    let (status, body) =
        api.call(Method::PUT, "/api/v1/tenants/83/quota", Some(json!({"consumer_byte_rate": 100_000}))).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(text.contains("consumer_byte_rate") && text.contains("110102") && text.contains("starve"), "{text}");

    let view = api.call_ok(Method::PUT, "/api/v1/tenants/83/quota", Some(json!({"consumer_byte_rate": 200_000}))).await;
    assert_eq!(view["effective"]["consumer_byte_rate"], 200_000);
    assert_eq!(view["principals"], json!(["User:c83.1", "User:c83.2"]));
    wait_ready(&api, 83).await;
    let quotas = described_quotas(&broker);
    assert_eq!(quotas.get("c83.1").map(String::as_str), Some("consumer_byte_rate=200000.0"), "{quotas:?}");
    assert_eq!(quotas.get("c83.2").map(String::as_str), Some("consumer_byte_rate=200000.0"), "{quotas:?}");
    assert!(!quotas.keys().any(|u| u.starts_with("c84.")), "{quotas:?}");

    // Passes with nothing to change make no mutating call.
    let before = metric(&api, "outflow_kafka_admin_mutations_total").await;
    let passes = metric(&api, "outflow_reconcile_passes_total").await;
    eventually(Duration::from_secs(20), "three more passes", async || {
        (metric(&api, "outflow_reconcile_passes_total").await >= passes + 3).then_some(())
    })
    .await;
    assert_eq!(metric(&api, "outflow_kafka_admin_mutations_total").await, before, "a no-change pass mutated");

    // Revoking credential 1 removes its quota with its ACLs; credential 2 keeps the rate.
    api.call_ok(Method::DELETE, "/api/v1/tenants/83/credentials/1", None).await;
    wait_ready(&api, 83).await;
    let quotas = described_quotas(&broker);
    assert!(!quotas.contains_key("c83.1"), "revoked principal kept its quota: {quotas:?}");
    assert_eq!(quotas.get("c83.2").map(String::as_str), Some("consumer_byte_rate=200000.0"), "{quotas:?}");

    // ~4 MB in each tenant's topic; tenant 83 reads under 200 KB/s, tenant 84 without a quota.
    let payload = |id: i64| -> Vec<String> {
        (0..RECORDS).map(|i| format!("{id:03}-{i:06}-{}", "x".repeat(RECORD_BYTES - 11))).collect()
    };
    broker.produce("c83", &payload(83));
    broker.produce("c84", &payload(84));
    let (b83, b84) = (work.path().join("bundle-83"), work.path().join("bundle-84"));
    api.unpack_bundle(83, &b83).await;
    api.unpack_bundle(84, &b84).await;
    let free = read_all(&b84, 84, "c84_quota_check");
    let throttled = read_all(&b83, 83, "c83_quota_check");
    eprintln!("unthrottled: {free}\nthrottled at 200 KB/s: {throttled}");
    for read in [&free, &throttled] {
        assert_eq!(read["records"], RECORDS as u64, "{read}");
        assert_eq!(read["bytes"], (RECORDS * RECORD_BYTES) as u64, "{read}");
    }
    // 4 MB at 200 KB/s per broker: the broker hands out the first fetch whole, then holds the
    // consumer back; the rest cannot arrive faster than the rate allows.
    let seconds = throttled["seconds"].as_f64().unwrap();
    assert!(seconds >= 8.0, "throttled read took only {seconds:.1} s");
    assert!(throttled["throttle_ms"].as_u64().unwrap() > 0, "librdkafka saw no throttle: {throttled}");
    assert_eq!(free["throttle_ms"], 0, "the unthrottled tenant was throttled: {free}");
    assert!(free["seconds"].as_f64().unwrap() < seconds / 2.0, "unthrottled {free} vs throttled {throttled}");

    // The cluster-wide default fills what a tenant leaves unset, on every tenant.
    let default = api.call_ok(Method::PUT, "/api/v1/quotas/default", Some(json!({"request_percentage": 200}))).await;
    assert_eq!(default["default"]["request_percentage"], 200.0);
    wait_ready(&api, 83).await;
    wait_ready(&api, 84).await;
    let quotas = described_quotas(&broker);
    let c83 = quotas.get("c83.2").unwrap();
    assert!(c83.contains("consumer_byte_rate=200000.0") && c83.contains("request_percentage=200.0"), "{quotas:?}");
    assert_eq!(quotas.get("c84.1").map(String::as_str), Some("request_percentage=200.0"), "{quotas:?}");
    let view = api.call_ok(Method::GET, "/api/v1/tenants/84/quota", None).await;
    assert_eq!(view["own"], json!({"consumer_byte_rate": null, "request_percentage": null}));
    assert_eq!(view["effective"]["request_percentage"], 200.0);

    // Clearing both brings the brokers back to no quota at all for tenant principals.
    api.call_ok(Method::PUT, "/api/v1/quotas/default", Some(json!({}))).await;
    api.call_ok(Method::PUT, "/api/v1/tenants/83/quota", Some(json!({}))).await;
    wait_ready(&api, 83).await;
    wait_ready(&api, 84).await;
    let quotas = described_quotas(&broker);
    assert!(!quotas.keys().any(|u| u.starts_with("c83.") || u.starts_with("c84.")), "{quotas:?}");
}
