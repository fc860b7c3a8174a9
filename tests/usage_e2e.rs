//! Usage metering on a real broker: the broker's own per-topic counters (the JMX exporter on
//! loopback), scraped and reported by a real `outflow agent`, two full reads of a tenant topic
//! with the zip's consumer settings, and a broker restart between them that neither loses nor
//! doubles the count. Records delivered come from the groups' committed offsets.
//!
//! The agent's firewall half is not under test here: its `nft` runs in a network namespace the
//! test creates for it (the agent runs on the host, beside the broker and its loopback exporter).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use outflow_testkit::{Api, Broker, Process, Server, Tenants, agent_token, eventually, outflow_bin, run_ok};
use reqwest::Method;
use serde_json::{Value, json};

const RECORDS: usize = 2_000;
const RECORD_BYTES: usize = 2_000;
/// The counters' error: a fetch response may end in a partial batch that the consumer drops
/// and fetches again whole, so the brokers send a little more than the log holds (docs/usage.md).
const FETCH_SLACK: f64 = 0.05;

/// A network namespace for the agent's nftables table, and an `nft` that works in it.
struct FirewallSandbox {
    ns: String,
    nft: std::path::PathBuf,
}

impl FirewallSandbox {
    fn create(dir: &Path) -> Self {
        let ns = format!("ofu-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(std::process::Stdio::null()).status();
        assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success(), "ip netns add (root?)");
        let nft = dir.join("nft-in-netns");
        std::fs::write(&nft, format!("#!/bin/sh\nexec ip netns exec {ns} nft \"$@\"\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&nft, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { ns, nft }
    }
}

impl Drop for FirewallSandbox {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Reads all of `c<id>` in group `group` with the zip's settings, commits, and returns the
/// records and value bytes read.
fn read_all(bundle: &Path, id: i64, group: &str) -> Value {
    let script = format!(
        r#"
import importlib.util, json, time
from confluent_kafka import Consumer
spec = importlib.util.spec_from_file_location("consumer", "consumer.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
c = Consumer(dict(m.settings(), **{{"group.id": "{group}", "auto.offset.reset": "earliest",
    "enable.auto.commit": False}}))
c.subscribe(["c{id}"])
n = size = 0
deadline = time.time() + 120
while n < {RECORDS} and time.time() < deadline:
    msg = c.poll(0.2)
    if msg is None or msg.error():
        continue
    n += 1
    size += len(msg.value())
c.commit(asynchronous=False)
c.close()
print(json.dumps({{"records": n, "bytes": size}}))
"#
    );
    serde_json::from_str(run_ok("python3", &["-c", &script], bundle).trim()).unwrap()
}

/// The bytes the broker holds for `topic`: its partitions' segment files in the broker's log dir.
fn log_size(broker: &Broker, topic: &str) -> i64 {
    let mut total = 0;
    for entry in std::fs::read_dir(broker.dir.join("data")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((t, partition)) = name.rsplit_once('-') else { continue };
        if t != topic || partition.parse::<u32>().is_err() {
            continue;
        }
        for segment in std::fs::read_dir(&path).unwrap() {
            let segment = segment.unwrap().path();
            if segment.extension().is_some_and(|e| e == "log") {
                total += std::fs::metadata(&segment).unwrap().len() as i64;
            }
        }
    }
    assert!(total > 0, "no segments of {topic} under {}", broker.dir.join("data").display());
    total
}

async fn usage(api: &Api, id: i64) -> Value {
    api.call_ok(Method::GET, &format!("/api/v1/tenants/{id}/usage"), None).await
}

/// Waits until the tenant's totals satisfy `done` and stop changing (two reports in a row).
async fn settled(api: &Api, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    eventually(Duration::from_secs(60), what, async || {
        let total = usage(api, id).await["total"].clone();
        let stable = total == last && done(&total);
        last = total.clone();
        if !stable {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        stable.then_some(total)
    })
    .await
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn two_full_reads_count_twice_across_a_broker_restart() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("outflow-data");
    let mut broker = Broker::up(&work.path().join("kafka"), &data);
    let mut env = broker.server_env();
    env.extend([("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"), ("OUTFLOW_USAGE_INTERVAL_SECS", "1")]);
    // No alert evaluation after the start (before any tenant): a tenant's default lag rule has
    // the live sampler follow its topic, outflow's own read, subtracted only as the records'
    // bytes (docs/usage.md), which would make the count here inexact by a batch or two.
    env.push(("OUTFLOW_ALERTS_EVALUATE_INTERVAL_MS", "3600000"));
    let server = Server::start(&data, &env);
    let api = server.api();
    api.create_and_activate(83, "Metered").await;
    eventually(Duration::from_secs(30), "tenant 83 ready", async || {
        let s = api.call_ok(Method::GET, "/api/v1/tenants/83/quota", None).await;
        (s["status"] == "ready").then_some(())
    })
    .await;

    let sandbox = FirewallSandbox::create(work.path());
    let token = agent_token(&data, "kafka-1");
    let agent_log = work.path().join("agent.log");
    let log = std::fs::File::create(&agent_log).unwrap();
    let _agent = Process::spawn(
        Command::new(outflow_bin())
            .args(["agent", "--server", &server.base, "--broker-id", "kafka-1"])
            .args(["--port", broker.var("OUTFLOW_KAFKA_PUBLIC_PORT")])
            .arg("--state-dir")
            .arg(work.path().join("agent-state"))
            .arg("--nft")
            .arg(&sandbox.nft)
            .args(["--metrics-url", broker.var("OUTFLOW_KAFKA_METRICS_URL"), "--usage-interval-secs", "1"])
            .arg("--request-log")
            .arg(broker.dir.join("broker.log"))
            .env("OUTFLOW_AGENT_TOKEN", &token)
            .env("OUTFLOW_LOG", "info,outflow::usage=debug")
            .stderr(log),
    );
    // The agent's first report is where counting starts: wait for it before any traffic.
    eventually(Duration::from_secs(30), "the agent's first usage report", async || {
        std::fs::read_to_string(&agent_log).unwrap().contains("usage reported").then_some(())
    })
    .await;

    let payload: Vec<String> = (0..RECORDS).map(|i| format!("{i:06}-{}", "x".repeat(RECORD_BYTES - 7))).collect();
    // Batches of at most 64 KiB, as edges flushing often write them (see FETCH_SLACK).
    broker.produce_with(&["-X", "batch.size=65536"], "c83", &payload);
    let written = settled(&api, 83, "the records written are counted", |t| t["records_in"] == RECORDS as i64).await;
    let log_bytes = log_size(&broker, "c83");
    eprintln!("written: {written}; the log holds {log_bytes} bytes");
    assert!(written["bytes_in"].as_i64().unwrap() >= (RECORDS * RECORD_BYTES) as i64, "{written}");
    assert_eq!(written["bytes_out"], 0, "nothing read yet: {written}");

    let bundle = work.path().join("bundle");
    api.unpack_bundle(83, &bundle).await;
    let first = read_all(&bundle, 83, "c83_first");
    assert_eq!(first["records"], RECORDS as i64, "{first}");
    let once = settled(&api, 83, "the first read is counted", |t| {
        t["bytes_out"].as_i64().unwrap() >= log_bytes && t["records_out"] == RECORDS as i64
    })
    .await;
    let once_bytes = once["bytes_out"].as_i64().unwrap();
    eprintln!("after one read: {once}");
    assert!(
        once_bytes as f64 <= log_bytes as f64 * (1.0 + FETCH_SLACK),
        "one read counted {once_bytes} of {log_bytes}"
    );
    assert_eq!(once["outflow_bytes"], 0, "outflow read nothing of c83: {once}");

    // The broker restarts: its counters start again at zero, and grow back to where they were
    // during the second read. Neither lost nor counted twice.
    broker.stop();
    broker.start();
    let second = read_all(&bundle, 83, "c83_second");
    assert_eq!(second["records"], RECORDS as i64, "{second}");
    let twice = settled(&api, 83, "the second read is counted", |t| {
        t["bytes_out"].as_i64().unwrap() >= once_bytes + log_bytes && t["records_out"] == 2 * RECORDS as i64
    })
    .await;
    eprintln!("after the restart and a second read: {twice}");
    let twice_bytes = twice["bytes_out"].as_i64().unwrap();
    let ratio = twice_bytes as f64 / once_bytes as f64;
    assert!((ratio - 2.0).abs() <= 2.0 * FETCH_SLACK, "two reads counted {twice_bytes}, one {once_bytes}: {ratio:.4}×");
    assert_eq!(twice["records_in"], RECORDS as i64, "the restart re-counted the writes: {twice}");
    let hours = usage(&api, 83).await;
    assert!(hours["hours"].as_array().unwrap().iter().any(|h| h["partial"] == true), "{hours}");

    // CSV: the same totals.
    let csv = api
        .client
        .get(format!("{}/api/v1/tenants/83/usage?format=csv", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let summed: i64 = csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(summed, twice_bytes, "{csv}");
    // The operators' ranking lists the tenant with the same bytes out.
    let ranking = api.call_ok(Method::GET, "/api/v1/usage", None).await;
    assert_eq!(ranking["tenants"][0]["tenant_id"], 83);
    assert_eq!(ranking["tenants"][0]["bytes_out"], twice_bytes);

    // The request log, KIP-388 style: Kafka's own per-request log turned on for one broker for a
    // bounded time, counted by its agent by principal and client address.
    let level = || {
        let out = broker.kafka_tool(
            "kafka.admin.ConfigCommand",
            &["--describe", "--entity-type", "broker-loggers", "--entity-name", "1"],
        );
        out.lines()
            .find_map(|l| l.trim().strip_prefix("kafka.request.logger="))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_else(|| panic!("{out}"))
            .to_owned()
    };
    let off = level();
    assert_ne!(off, "DEBUG");
    let path = "/api/v1/brokers/kafka-1/request-log";
    let (status, body) = api.call(Method::POST, path, Some(json!({"node_id": 1, "for_secs": 600}))).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["window"]["ended_at"].is_null(), "{body}");
    assert_eq!(level(), "DEBUG", "the broker's request logger");
    let (status, body) = api.call(Method::POST, path, Some(json!({"node_id": 1, "for_secs": 600}))).await;
    assert_eq!(status, 409, "{body}");
    let third = read_all(&bundle, 83, "c83_audit");
    assert_eq!(third["records"], RECORDS as i64, "{third}");
    let (log, _) = eventually(Duration::from_secs(30), "the tenant's fetches in the request log", async || {
        let view = api.call_ok(Method::GET, path, None).await;
        let fetches = view["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["principal"] == "User:c83.1" && c["client_address"] == "127.0.0.1")
            .and_then(|c| c["apis"]["Fetch"].as_i64())
            .unwrap_or(0);
        (fetches > 0).then_some(view)
    })
    .await;
    eprintln!("request log: {log}");
    let stopped = api.call_ok(Method::DELETE, path, None).await;
    assert!(stopped["window"]["ended_at"].is_string(), "{stopped}");
    assert_eq!(level(), off, "turned back");
    assert_eq!(api.call(Method::DELETE, path, None).await.0, 404);
    // Left on, it is turned back when its time is up, by the server.
    api.call_ok(Method::POST, path, Some(json!({"node_id": 1, "for_secs": 10}))).await;
    assert_eq!(level(), "DEBUG");
    eventually(Duration::from_secs(40), "the request log turned off at its time", async || {
        let view = api.call_ok(Method::GET, path, None).await;
        view["window"]["ended_at"].is_string().then_some(())
    })
    .await;
    assert_eq!(level(), off, "turned back at its time");

    let agent_text = std::fs::read_to_string(&agent_log).unwrap();
    assert!(!agent_text.contains("panicked"), "{agent_text}");
}
