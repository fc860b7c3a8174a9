//! IP allowlists end to end on real nftables: the real `outflow serve`, the real `outflow agent`
//! in a broker network namespace in front of a real Kafka broker, and connections from a client
//! namespace with two addresses per family. Needs root (namespaces, nft); fails if it cannot run.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use outflow_testkit::lab::{self, A_V4, A_V6, B_V4, B_V6, Lab, PORT};
use outflow_testkit::{Api, Server, agent_token, operator_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a change may take to reach the firewall before the test fails (the goal is 2 s).
const DEADLINE: Duration = Duration::from_secs(10);
/// A connection attempt that is dropped by the firewall fails after this long.
const CONNECT: Duration = Duration::from_millis(700);

/// Tenant 83's allowlist.
trait Allowlist {
    async fn add(&self, cidr: IpAddr) -> i64;
    async fn remove(&self, id: i64);
    async fn entries(&self) -> Vec<Value>;
}

impl Allowlist for Api {
    async fn add(&self, cidr: IpAddr) -> i64 {
        let (status, body) = self
            .call(reqwest::Method::POST, "/api/v1/tenants/83/allowlist", Some(json!({"cidr": cidr.to_string()})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    async fn remove(&self, id: i64) {
        let (status, body) =
            self.call(reqwest::Method::DELETE, &format!("/api/v1/tenants/83/allowlist/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    async fn entries(&self) -> Vec<Value> {
        let (status, body) = self.call(reqwest::Method::GET, "/api/v1/tenants/83/allowlist", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"].as_array().unwrap().clone()
    }
}

/// Waits until `check` holds, failing after `DEADLINE` with the agent's log.
fn until(what: &str, log: &Path, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > DEADLINE {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("timed out after {DEADLINE:?} waiting until {what}; agent log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_blocked(lab: &Lab, from: IpAddr) {
    assert!(!lab.connects(from, CONNECT), "{from} must not reach port {PORT}");
}

#[tokio::test(flavor = "multi_thread")]
async fn allowlist_reaches_the_broker_firewall_and_survives_outages() {
    let lab = Lab::create();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let state = dir.path().join("agent-state");
    let log = dir.path().join("agent.log");
    std::fs::create_dir_all(&data).unwrap();

    let mut server = Server::start_on(&data, &format!("{}:0", lab.host_addr), &[]);
    let base = server.base.clone();
    let _kafka = lab.kafka(&dir.path().join("kafka"), &data);
    // Without a table, anything reaches the broker: the listener is really there.
    assert!(lab.connects(A_V4.into(), DEADLINE), "Kafka does not accept on {PORT} in the broker namespace");
    assert!(lab.connects(B_V6.into(), DEADLINE), "Kafka does not accept on [{}]:{PORT}", lab::BROKER_V6);

    let api = Api::new(&base, operator_token(&data, "e2e"));
    let agent_token = agent_token(&data, "kafka-1");
    let (status, body) =
        api.call(reqwest::Method::POST, "/api/v1/tenants", Some(json!({"id": 83, "name": "Acme"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Without --broker-id: the agent reports for the broker its token is bound to.
    let mut agent = lab::agent(&lab, &base, &agent_token, None, &state, &log);
    // The first poll answers at once with the empty list: the port closes to everyone.
    until("the agent installs its table", &log, || lab.table().is_some());
    for from in [A_V4.into(), B_V4.into(), A_V6.into(), B_V6.into()] {
        assert_blocked(&lab, from);
    }

    // IPv4: A in, B still out; then A out again.
    let a4 = api.add(A_V4.into()).await;
    until("A (IPv4) connects", &log, || lab.connects(A_V4.into(), CONNECT));
    assert_blocked(&lab, B_V4.into());
    assert_blocked(&lab, A_V6.into());
    let entries = api.entries().await;
    assert_eq!(entries[0]["cidr"], format!("{A_V4}/32"));
    assert_eq!(entries[0]["status"], "applied on 1 of 1 brokers", "{entries:?}");
    api.remove(a4).await;
    until("A (IPv4) is blocked", &log, || !lab.connects(A_V4.into(), CONNECT));
    // After the first full table, changes are applied as element deltas.
    assert!(std::fs::read_to_string(&log).unwrap().contains("allowlist applied as a delta"), "no delta applied");

    // IPv6 likewise.
    let a6 = api.add(A_V6.into()).await;
    until("A (IPv6) connects", &log, || lab.connects(A_V6.into(), CONNECT));
    assert_blocked(&lab, B_V6.into());
    assert_blocked(&lab, A_V4.into());
    api.remove(a6).await;
    until("A (IPv6) is blocked", &log, || !lab.connects(A_V6.into(), CONNECT));

    // A network: a new prefix length (a set and its masking rule) replaces the table.
    let (status, net) =
        api.call(reqwest::Method::POST, "/api/v1/tenants/83/allowlist", Some(json!({"cidr": "198.51.100.8/30"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{net}");
    until("A and B (in 198.51.100.8/30) connect", &log, || {
        lab.connects(A_V4.into(), CONNECT) && lab.connects(B_V4.into(), CONNECT)
    });
    assert_blocked(&lab, A_V6.into());
    assert!(lab.table().unwrap().contains("ip saddr & 255.255.255.252 == @v4_30 accept"), "{:?}", lab.table());
    api.remove(net["id"].as_i64().unwrap()).await;
    until("A and B are blocked again", &log, || {
        !lab.connects(A_V4.into(), CONNECT) && !lab.connects(B_V4.into(), CONNECT)
    });

    // Drift: the table vanishes behind the agent's back; the next change cannot apply as a
    // delta, so the agent replaces the whole table.
    lab.flush_table();
    assert!(lab.connects(B_V4.into(), CONNECT), "without the table the port is open");
    // Server gone: the agent fails its polls and keeps the rules.
    api.add(A_V4.into()).await;
    // (With the table gone every address connects: wait for B to be refused again.)
    until("the table is replaced", &log, || !lab.connects(B_V4.into(), CONNECT));
    until("A (IPv4) connects again", &log, || lab.connects(A_V4.into(), CONNECT));
    assert!(std::fs::read_to_string(&log).unwrap().contains("delta did not apply; replacing the table"));
    server.kill();
    until("the agent notices the outage", &log, || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("allowlist round failed")
    });
    assert!(lab.connects(A_V4.into(), CONNECT), "A lost access when the server stopped");
    assert_blocked(&lab, B_V4.into());

    // Agent restarted while the server is down, after the kernel lost the table (a reboot):
    // the persisted ruleset comes back before any contact with the server.
    agent.kill();
    lab.flush_table();
    assert!(lab.connects(B_V4.into(), CONNECT), "without the table the port is open");
    let persisted = std::fs::read_to_string(state.join("ruleset.nft")).unwrap();
    assert!(persisted.contains(&A_V4.to_string()), "{persisted}");
    let _agent = lab::agent(&lab, &base, &agent_token, Some("kafka-1"), &state, &log);
    until("the persisted rules are restored", &log, || !lab.connects(B_V4.into(), CONNECT));
    assert!(lab.connects(A_V4.into(), CONNECT), "A lost access after the agent restarted");
    assert_blocked(&lab, A_V6.into());
}
