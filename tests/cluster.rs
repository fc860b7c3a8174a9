//! The production shape for real: two `outflow serve` replicas on one PostgreSQL database over a
//! three-broker Kafka cluster (`ops/kafka/cluster.sh`), each broker in its own network namespace
//! with its own nftables table and `outflow agent` (polling replica A). Changes go through
//! replica B. One broker (with its agent) is killed and restarted while the zip's consumer.py
//! reads and an acks=all producer writes. Run by the PostgreSQL pass of `ops/test.sh`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outflow_testkit::{
    Api, Cluster, Process, Server, TEST_KEK, Tenants, eventually, fresh_database_url, on_postgres, outflow, repo_root,
    unzip,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(90);
const CONNECT: Duration = Duration::from_millis(700);

fn last_line(out: &str) -> String {
    out.lines().last().unwrap().trim().to_owned()
}

async fn streaming_status(api: &Api, id: i64) -> Value {
    api.call_ok(Method::GET, &format!("/api/v1/tenants/{id}/streaming"), None).await["reconcile"].clone()
}

async fn wait_ready(api: &Api, id: i64, what: &str) {
    eventually(DEADLINE, what, async || (streaming_status(api, id).await["status"] == "ready").then_some(())).await;
}

/// The status line of `cidr` on `tenant`'s allowlist, as replica `api` shows it.
async fn entry_status(api: &Api, tenant: i64, cidr: &str) -> String {
    let view = api.call_ok(Method::GET, &format!("/api/v1/tenants/{tenant}/allowlist"), None).await;
    let entries = view["entries"].as_array().unwrap();
    let entry = entries.iter().find(|e| e["cidr"] == cidr).unwrap_or_else(|| panic!("{cidr} not listed: {view}"));
    entry["status"].as_str().unwrap().to_owned()
}

async fn wait_status(api: &Api, tenant: i64, cidr: &str, want: &str) {
    eventually(DEADLINE, &format!("{cidr} {want}"), async || {
        (entry_status(api, tenant, cidr).await == want).then_some(())
    })
    .await;
}

fn seq(line: &str) -> Option<u64> {
    line.strip_prefix("seq-")?.parse().ok()
}

/// Reads consumer lines until `done` holds for the set of sequence numbers received so far.
fn consume_until(consumer: &Process, got: &mut BTreeSet<u64>, what: &str, done: impl Fn(&BTreeSet<u64>) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(got) {
        assert!(
            Instant::now() < deadline,
            "consumer.py: timed out waiting until {what} ({} records so far)",
            got.len()
        );
        if let Some(n) = consumer.next_line(Duration::from_millis(500)).as_deref().and_then(seq) {
            got.insert(n);
        }
    }
}

/// Producer lines read so far: sequence numbers acknowledged with acks=all.
fn drain_acked(producer: &Process, acked: &mut BTreeSet<u64>) -> Option<String> {
    while let Some(line) = producer.next_line(Duration::from_millis(1)) {
        if let Some(n) = line.strip_prefix("acked ").and_then(seq) {
            acked.insert(n);
        } else if line.starts_with("done") {
            return Some(line);
        }
    }
    None
}

fn unpack(zip: &[u8], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, data) in unzip(zip) {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_and_three_brokers_survive_a_broker_dying() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL database: run with OUTFLOW_TEST_DATABASE=postgres (ops/test.sh does)");
        return;
    }
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let url = fresh_database_url(work.path());
    let db = [("OUTFLOW_DATABASE_URL", url.as_str()), ("OUTFLOW_KEK", TEST_KEK)];
    let (dir_a, dir_b) = (work.path().join("a"), work.path().join("b"));
    let cluster = Cluster::up(&work.path().join("kafka"), &dir_a, &db);
    eprintln!("cluster up after {:?}", started.elapsed());
    let mut env = cluster.server_env();
    env.extend(db);
    env.push(("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"));
    // On the cluster network, where the agents in the broker namespaces reach them.
    let listen = format!("{}:0", cluster.host());
    let a = Server::start_on(&dir_a, &listen, &env);
    let b = Server::start_on(&dir_b, &listen, &env);
    let token = last_line(&outflow(&dir_a, &db, &["token", "create", "--role", "operator", "--name", "ops"]));
    let (api_a, api_b) = (Api::new(&a.base, token.clone()), Api::new(&b.base, token));
    for n in 1..=3 {
        let broker = format!("kafka-{n}");
        let agent =
            outflow(&dir_a, &db, &["token", "create", "--role", "agent", "--broker-id", &broker, "--name", &broker]);
        cluster.agent(n, &a.base, &last_line(&agent));
    }
    let (allowed, other) = (cluster.clients()[0], cluster.clients()[1]);
    eventually(DEADLINE, "each agent guards its broker's public port", async || {
        (1..=3).all(|n| !cluster.connects(allowed, n, CONNECT)).then_some(())
    })
    .await;

    // Tenants made through replica B become ready; their topics have three replicas each.
    for id in 1..=3 {
        api_b.create_and_activate(id, "Acme").await;
    }
    for id in 1..=3 {
        wait_ready(&api_a, id, &format!("tenant {id} ready")).await;
    }
    for topic in ["c1", "c1_waf", "c2", "c3"] {
        let replicas = cluster.replicas(topic);
        assert!(!replicas.is_empty(), "{topic} has no partitions");
        for r in &replicas {
            assert_eq!(r.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([1, 2, 3]), "{topic}: {replicas:?}");
        }
    }
    // The bundle's bootstrap list names all three brokers.
    let bundle = work.path().join("bundle");
    unpack(&api_b.bundle(1).await, &bundle);
    let brokers = cluster.var("OUTFLOW_BROKERS");
    assert_eq!(brokers.split(',').count(), 3);
    let consumer_py = std::fs::read_to_string(bundle.join("consumer.py")).unwrap();
    assert!(consumer_py.contains(&format!("BOOTSTRAP_SERVERS = \"{brokers}\"")), "{consumer_py}");

    // Firewall across the three namespaces: an allowlisted address (posted to B; the agents poll
    // A) connects to all three public ports, another address to none.
    let posted = Instant::now();
    api_b.call_ok(Method::POST, "/api/v1/tenants/2/allowlist", Some(json!({"cidr": allowed.to_string()}))).await;
    eventually(DEADLINE, "the allowlisted address connects to all three brokers", async || {
        (1..=3).all(|n| cluster.connects(allowed, n, CONNECT)).then_some(())
    })
    .await;
    eprintln!("allowlist change on B -> open on all three brokers in {:?}", posted.elapsed());
    for n in 1..=3 {
        assert!(!cluster.connects(other, n, CONNECT), "an address on no allowlist reached broker {n}");
    }
    wait_status(&api_a, 2, &format!("{allowed}/32"), "applied on 3 of 3 brokers").await;

    // The host's own address, for consumer.py and the self-test.
    let host = format!("{}/32", cluster.host());
    api_b.call_ok(Method::POST, "/api/v1/tenants/1/allowlist", Some(json!({"cidr": host}))).await;
    wait_status(&api_b, 1, &host, "applied on 3 of 3 brokers").await;

    let mut producer = Process::spawn(
        Command::new("python3")
            .arg(repo_root().join("tests/clients/acked_producer.py"))
            .args([
                cluster.var("OUTFLOW_KAFKA_BOOTSTRAP"),
                cluster.var("OUTFLOW_KAFKA_CA"),
                cluster.var("OUTFLOW_PRODUCER_CERT"),
                cluster.var("OUTFLOW_PRODUCER_KEY"),
                "c1",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let consumer =
        Process::spawn(Command::new("python3").arg("consumer.py").current_dir(&bundle).stderr(Stdio::inherit()));
    let mut got = BTreeSet::new();
    let mut acked = BTreeSet::new();
    consume_until(&consumer, &mut got, "50 records arrive", |g| g.len() >= 50);

    // Broker 2 and its agent die.
    cluster.kill(2);
    let killed = Instant::now();
    drain_acked(&producer, &mut acked);
    let acked_at_kill = acked.last().copied().unwrap_or(0);
    consume_until(&consumer, &mut got, "records produced after the kill arrive", |g| {
        g.last().is_some_and(|&n| n > acked_at_kill + 100)
    });
    eprintln!("consumer.py received records produced after the kill, {:?} after it", killed.elapsed());

    // The reconciler keeps working on two brokers: a new credential gets its ACLs, and the
    // self-test (which uses the newest credential) passes.
    let (status, body) = api_b.call(Method::POST, "/api/v1/tenants/1/credentials", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (check, _) = eventually(DEADLINE, "the self-test passes with credential 2", async || {
        let check = api_b.call_ok(Method::POST, "/api/v1/tenants/1/streaming/check", None).await;
        (check["outcome"] == "ok").then_some(check)
    })
    .await;
    assert_eq!(check["credential"], "c1.2", "{check}");
    wait_ready(&api_a, 1, "tenant 1 ready with its new credential on two brokers").await;
    // A change now reaches the two live brokers only.
    api_b.call_ok(Method::POST, "/api/v1/tenants/3/allowlist", Some(json!({"cidr": "203.0.113.9"}))).await;
    wait_status(&api_a, 3, "203.0.113.9/32", "applied on 2 of 3 brokers").await;
    // An activation while a broker is down becomes ready too: Kafka places the third replica
    // on the fenced broker, which catches up when it returns.
    api_b.create_and_activate(4, "Late").await;
    wait_ready(&api_a, 4, "tenant 4 ready with broker 2 down").await;
    eprintln!("tenant 4 activated and ready with broker 2 down, {:?} after the kill", killed.elapsed());
    consume_until(&consumer, &mut got, "records keep arriving", |g| g.len() >= 400);

    // Broker 2 and its agent come back: the agent catches up.
    cluster.restart(2);
    wait_status(&api_a, 3, "203.0.113.9/32", "applied on 3 of 3 brokers").await;
    assert!(cluster.connects(allowed, 2, CONNECT), "broker 2's restarted agent lost the allowlist");
    assert!(!cluster.connects(other, 2, CONNECT), "broker 2 opened to an address on no allowlist");
    eprintln!("broker 2 back and caught up {:?} after the kill", killed.elapsed());
    for r in cluster.replicas("c4") {
        assert_eq!(r.into_iter().collect::<BTreeSet<_>>(), BTreeSet::from([1, 2, 3]), "c4");
    }

    // Stop producing; every acknowledged record reaches the consumer.
    producer.stdin = None;
    let deadline = Instant::now() + DEADLINE;
    let done = loop {
        if let Some(done) = drain_acked(&producer, &mut acked) {
            break done;
        }
        assert!(Instant::now() < deadline, "the producer did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(done.ends_with(" 0 not delivered"), "{done}");
    assert!(acked.len() > 400, "only {} records acknowledged", acked.len());
    consume_until(&consumer, &mut got, "every acknowledged record arrives", |g| acked.is_subset(g));
    eprintln!("{} acknowledged records, all consumed; {done}; test took {:?}", acked.len(), started.elapsed());
    consumer.interrupt();
    producer.kill();
    for n in 1..=3 {
        assert!(!cluster.agent_log(n).contains("panicked"), "agent {n}: {}", cluster.agent_log(n));
    }
}
