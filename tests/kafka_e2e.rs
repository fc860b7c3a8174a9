//! Provisioning on a real Apache Kafka broker (ops/kafka/broker.sh), proven with the clients
//! customers use: the zip's consumer.py (confluent-kafka), a Java kafka-clients consumer with
//! the Logstash settings and PKCS#12 files, kcat with kcat.conf, and a Go consumer loading the
//! PEM pair the way Filebeat does.
//!
//! One test drives the scenarios in order against one broker, since some of them stop the
//! broker or the server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outflow_testkit::{Api, Broker, Process, Server, Tenants, eventually, repo_root, run, run_ok};
use serde_json::{Value, json};

/// What this test reads besides the shared API calls.
trait Streaming {
    async fn reconcile(&self, id: i64) -> Value;
    async fn wait_ready(&self, id: i64, timeout: Duration) -> Duration;
    async fn metric(&self, name: &str) -> u64;
}

impl Streaming for Api {
    async fn reconcile(&self, id: i64) -> Value {
        let (s, b) = self.call(reqwest::Method::GET, &format!("/api/v1/tenants/{id}/streaming"), None).await;
        assert_eq!(s, 200, "{b}");
        b["reconcile"].clone()
    }

    async fn wait_ready(&self, id: i64, timeout: Duration) -> Duration {
        eventually(timeout, &format!("tenant {id} ready"), async || {
            (self.reconcile(id).await["status"] == "ready").then_some(())
        })
        .await
        .1
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// `command` with its stdout lines read by the test and its stderr kept for a failure report.
fn lines(mut command: Command) -> Process {
    Process::spawn(command.stderr(Stdio::piped()))
}

fn records(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "203.0.113.{} - - [25/Nov/2026:06:45:12 +0000] \"GET /{tag}/{i} HTTP/1.1\" 200 {} \"e2e\" hit \"text/html\" \"L1\" 0.000193 \"83\" \"-\" https ES",
                i % 250 + 1,
                100 + i
            )
        })
        .collect()
}

fn java_jar() -> PathBuf {
    let pom = repo_root().join("tests/clients/java/pom.xml");
    run_ok("mvn", &["-q", "-f", pom.to_str().unwrap(), "package", "-DskipTests"], &repo_root());
    repo_root().join("tests/clients/java/target/logstash-consumer.jar")
}

fn go_consumer(out: &Path) -> PathBuf {
    let bin = out.join("filebeat-like-consumer");
    run_ok("go", &["build", "-o", bin.to_str().unwrap(), "."], &repo_root().join("tests/clients/go"));
    bin
}

/// Python using the zip's consumer.py settings with another topic or group: the broker must refuse.
fn python_denied(bundle: &Path, topic: &str, group: &str) -> String {
    let script = format!(
        r#"
import importlib.util, sys, time
from confluent_kafka import Consumer, KafkaException
spec = importlib.util.spec_from_file_location("consumer", "consumer.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
c = Consumer(dict(m.settings(), **{{"group.id": "{group}"}}))
c.subscribe(["{topic}"])
deadline = time.time() + 20
while time.time() < deadline:
    msg = c.poll(0.5)
    if msg is not None and msg.error():
        print("ERROR", msg.error().name(), msg.error().str())
        sys.exit(0)
    if msg is not None:
        print("RECORD", msg.value()); sys.exit(1)
print("NO ERROR"); sys.exit(1)
"#
    );
    run_ok("python3", &["-c", &script], bundle)
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_provisioned_on_a_real_broker_and_the_zip_works_with_real_clients() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("outflow-data");
    let mut broker = Broker::up(&work.path().join("kafka"), &data);
    let mut env = broker.server_env();
    env.push(("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"));
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let env_refs = || env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>();
    let mut server = Server::start(&data, &env_refs());
    let api = server.api();

    // Activation provisions topics and ACLs.
    api.create_and_activate(83, "Tenant 83").await;
    api.create_and_activate(84, "Tenant 84").await;
    let took = api.wait_ready(83, Duration::from_secs(20)).await;
    eprintln!("tenant 83 ready {took:?} after activation");
    api.wait_ready(84, Duration::from_secs(20)).await;
    assert_eq!(broker.partitions("c83"), Some(2));
    assert_eq!(broker.partitions("c83_waf"), Some(2));

    let b1 = work.path().join("bundle-c83.1");
    api.unpack_bundle(83, &b1).await;
    let first = records("first", 20);
    broker.produce("c83", &first);

    // consumer.py, run as a customer would: the zip's brokers are this broker, files sit next to it.
    let mut py = lines({
        let mut c = Command::new("python3");
        c.arg("consumer.py").current_dir(&b1);
        c
    });
    py.expect_all(&first, Duration::from_secs(60), "consumer.py");
    drop(py);

    // The same credential is refused on c84 and with a group outside c83_.
    let denied = python_denied(&b1, "c84", "c83_probe");
    assert!(denied.contains("TOPIC_AUTHORIZATION_FAILED"), "{denied}");
    let denied = python_denied(&b1, "c83", "someone_else");
    assert!(denied.contains("GROUP_AUTHORIZATION_FAILED"), "{denied}");

    // kcat with kcat.conf.
    let kcat = run_ok("kcat", &["-F", "kcat.conf", "-C", "-t", "c83", "-o", "beginning", "-e", "-q"], &b1);
    let got: Vec<String> = kcat.lines().map(str::to_owned).filter(|l| l.contains("/first/")).collect();
    assert_eq!(got.len(), first.len(), "kcat read {kcat}");

    // Java kafka-clients with the Logstash settings and the PKCS#12 files.
    let jar = java_jar();
    let mut java = lines({
        let mut c = Command::new("java");
        c.args([
            "-jar",
            jar.to_str().unwrap(),
            "--conf",
            "kafka-logstash.conf",
            "--dir",
            ".",
            "--max",
            "20",
            "--timeout-ms",
            "60000",
        ])
        .current_dir(&b1);
        c
    });
    java.expect_all(&first, Duration::from_secs(90), "java logstash-like consumer");
    drop(java);

    // Go, loading the PEM pair and the encrypted key as Filebeat does.
    let go = go_consumer(work.path());
    let tls = run(go.to_str().unwrap(), &["--config", "filebeat.yml", "--dir", ".", "--check-tls-only"], &b1);
    assert!(tls.status.success(), "Go TLS load failed: {}", String::from_utf8_lossy(&tls.stderr));
    let mut golang = lines({
        let mut c = Command::new(&go);
        c.args(["--config", "filebeat.yml", "--dir", ".", "--max", "20", "--timeout-ms", "60000"]).current_dir(&b1);
        c
    });
    golang.expect_all(&first, Duration::from_secs(90), "go filebeat-like consumer");
    drop(golang);

    // Self-test with the tenant's own credential.
    let (s, check) = api.call(reqwest::Method::POST, "/api/v1/tenants/83/streaming/check", None).await;
    assert_eq!((s.as_u16(), check["outcome"].as_str()), (200, Some("ok")), "{check}");

    // Rotation: credential 2 works while 1 still does; revoking 1 denies its consumer within 10 s.
    let (s, rotated) = api.call(reqwest::Method::POST, "/api/v1/tenants/83/credentials", None).await;
    assert_eq!(s, 201, "{rotated}");
    api.wait_ready(83, Duration::from_secs(20)).await;
    let b2 = work.path().join("bundle-c83.2");
    api.unpack_bundle(83, &b2).await;
    let second = records("second", 10);
    broker.produce("c83", &second);
    let mut old = lines({
        let mut c = Command::new("python3");
        c.arg("consumer.py").current_dir(&b1);
        c
    });
    old.expect_all(&second, Duration::from_secs(60), "consumer.py with credential 1 before revocation");
    let (s, _) = api.call(reqwest::Method::DELETE, "/api/v1/tenants/83/credentials/1", None).await;
    assert_eq!(s, 200);
    let revoked_at = Instant::now();
    let (_, denied_after) = eventually(Duration::from_secs(10), "credential 1 denied", async || {
        let out = run("kcat", &["-F", "kcat.conf", "-L", "-t", "c83"], &b1);
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        text.contains("authorization failed").then_some(())
    })
    .await;
    eprintln!("credential 1 denied {denied_after:?} after revocation");
    assert!(revoked_at.elapsed() < Duration::from_secs(12));
    drop(old);
    let kcat2 = run_ok("kcat", &["-F", "kcat.conf", "-C", "-t", "c83", "-o", "beginning", "-e", "-q"], &b2);
    assert_eq!(kcat2.lines().filter(|l| l.contains("/second/")).count(), second.len(), "credential 2 keeps working");

    // Partitions 2 -> 4 in place; a decrease is refused.
    let (s, b) = api.call(reqwest::Method::PATCH, "/api/v1/tenants/83/streaming", Some(json!({"partitions": 4}))).await;
    assert_eq!(s, 200, "{b}");
    api.wait_ready(83, Duration::from_secs(20)).await;
    assert_eq!(broker.partitions("c83"), Some(4));
    assert_eq!(broker.partitions("c83_waf"), Some(4));
    let (s, _) = api.call(reqwest::Method::PATCH, "/api/v1/tenants/83/streaming", Some(json!({"partitions": 3}))).await;
    assert_eq!(s, 422);

    // A pass with nothing to change makes no mutating admin call.
    let mutations = api.metric("outflow_kafka_admin_mutations_total").await;
    let passes = api.metric("outflow_reconcile_passes_total").await;
    eventually(Duration::from_secs(15), "three more reconcile passes", async || {
        (api.metric("outflow_reconcile_passes_total").await >= passes + 3).then_some(())
    })
    .await;
    assert_eq!(
        api.metric("outflow_kafka_admin_mutations_total").await,
        mutations,
        "no-change passes mutated the cluster"
    );

    // Broker down during activation: pending with the error; back up: ready within 10 s.
    broker.stop();
    api.create_and_activate(85, "Tenant 85").await;
    let (_, _) = eventually(Duration::from_secs(30), "tenant 85 pending with an error", async || {
        let r = api.reconcile(85).await;
        (r["status"] == "pending" && r["last_error"].is_string()).then_some(())
    })
    .await;
    let (s, check) = api.call(reqwest::Method::POST, "/api/v1/tenants/83/streaming/check", None).await;
    assert_eq!((s.as_u16(), check["outcome"].as_str()), (200, Some("unreachable")), "{check}");
    broker.start();
    let took = api.wait_ready(85, Duration::from_secs(10)).await;
    eprintln!("tenant 85 ready {took:?} after the broker came back");
    assert_eq!(broker.partitions("c85"), Some(2));

    // Server killed mid-reconcile and restarted: converges.
    for id in 86..=95 {
        api.create_and_activate(id, &format!("Tenant {id}")).await;
    }
    drop(server);
    server = Server::start(&data, &env_refs());
    let api = Api { base: server.base.clone(), ..api };
    for id in 86..=95 {
        api.wait_ready(id, Duration::from_secs(30)).await;
        assert_eq!(broker.partitions(&format!("c{id}")), Some(2), "c{id}");
    }
    let b90 = work.path().join("bundle-c90");
    api.unpack_bundle(90, &b90).await;
    let ninety = records("ninety", 5);
    broker.produce("c90", &ninety);
    let kcat90 = run_ok("kcat", &["-F", "kcat.conf", "-C", "-t", "c90", "-o", "beginning", "-e", "-q"], &b90);
    assert_eq!(kcat90.lines().filter(|l| l.contains("/ninety/")).count(), 5, "{kcat90}");

    // Deactivation removes the ACLs (topics are kept by default).
    let (s, _) = api.call(reqwest::Method::DELETE, "/api/v1/tenants/90/streaming", None).await;
    assert_eq!(s, 200);
    eventually(Duration::from_secs(10), "c90 credential denied after deactivation", async || {
        let out = run("kcat", &["-F", "kcat.conf", "-L", "-t", "c90"], &b90);
        String::from_utf8_lossy(&out.stdout).contains("authorization failed").then_some(())
    })
    .await;
    assert_eq!(broker.partitions("c90"), Some(2), "topics are kept on deactivation by default");
    drop(server);
    broker.stop();
}
