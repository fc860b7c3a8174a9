//! Firewall propagation and apply time on real nftables, in network namespaces made for the run
//! (the same lab as the `firewall_e2e` test; a plain TCP listener stands in for the broker).
//!
//! Run as root: `cargo bench -p outflow --bench firewall`. Reports
//! - propagation: from the API's 2xx for an added address to the first successful connect from
//!   that address in the client namespace, p50/p99 over 100 changes (goal p99 <= 2 s);
//! - apply time of 100,000 entries across 1,000 tenants: `nft -f` of the rendered ruleset, and the
//!   agent's whole round (poll, render, apply, report) after the last change (goal <= 1 s);
//!
//! each also as a ratio to one `nft -f` of the empty ruleset measured in the same run.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use outflow::firewall::{Cidr, nft};
use outflow_testkit::bench::{ms, percentile};
use outflow_testkit::lab::{self, A_V4, Lab};
use outflow_testkit::{Api, Server, agent_token, operator_token};
use serde_json::{Value, json};

const CHANGES: usize = 100;
const TENANTS: u32 = 1_000;
const PER_TENANT: u32 = 100;

/// Median of `runs` timings of `nft -f file` in the broker namespace.
fn nft_apply(lab: &Lab, file: &std::path::Path, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let out = lab.in_broker("nft").arg("-f").arg(file).output().unwrap();
            assert!(out.status.success(), "nft -f failed: {}", String::from_utf8_lossy(&out.stderr));
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// The `i`-th benchmark address: distinct, never adjacent (so nothing merges), outside the lab.
fn address(i: u32) -> Ipv4Addr {
    Ipv4Addr::from_bits((10 << 24) + i * 2 + 1)
}

#[tokio::main]
async fn main() {
    let lab = Lab::create();
    lab.listen_plain();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start_on(&data, &format!("{}:0", lab.host_addr), &[]);
    let base = server.base.clone();
    let api = Api::new(&base, operator_token(&data, "bench"));
    let agent_token = agent_token(&data, "kafka-1");
    let _agent = lab::agent(
        &lab,
        &base,
        &agent_token,
        Some("kafka-1"),
        &dir.path().join("agent"),
        &dir.path().join("agent.log"),
    );
    while lab.table().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Baseline: one `nft -f` of the empty allowlist, in the same namespace.
    let empty = dir.path().join("empty.nft");
    std::fs::write(&empty, nft::render(0, &[], lab::PORT).text).unwrap();
    let baseline = nft_apply(&lab, &empty, 21);
    println!("baseline: nft -f of the empty ruleset {:.1} ms (median of 21)", ms(baseline));

    // Propagation: add A, time until A connects; remove A, wait until blocked.
    api.call_ok(reqwest::Method::POST, "/api/v1/tenants", Some(json!({"id": 1, "name": "bench"}))).await;
    let mut latencies = Vec::with_capacity(CHANGES);
    for _ in 0..CHANGES {
        let entry = api
            .call_ok(reqwest::Method::POST, "/api/v1/tenants/1/allowlist", Some(json!({"cidr": A_V4.to_string()})))
            .await;
        let started = Instant::now();
        while !lab.connects(IpAddr::V4(A_V4), Duration::from_millis(20)) {}
        latencies.push(started.elapsed());
        api.call_ok(reqwest::Method::DELETE, &format!("/api/v1/tenants/1/allowlist/{}", entry["id"]), None).await;
        while lab.connects(IpAddr::V4(A_V4), Duration::from_millis(20)) {}
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "propagation (API 2xx -> connect), {CHANGES} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (p50 = {:.2}x, p99 = {:.2}x baseline; goal p99 <= 2000 ms)",
        ms(p50),
        ms(p99),
        ms(*latencies.last().unwrap()),
        p50.as_secs_f64() / baseline.as_secs_f64(),
        p99.as_secs_f64() / baseline.as_secs_f64(),
    );

    // 100,000 entries across 1,000 tenants, through the API.
    for t in 2..TENANTS + 2 {
        api.call_ok(reqwest::Method::POST, "/api/v1/tenants", Some(json!({"id": t, "name": format!("t{t}")}))).await;
        let entries: Vec<Value> =
            (0..PER_TENANT).map(|k| json!({"cidr": address((t - 2) * PER_TENANT + k).to_string()})).collect();
        api.call_ok(reqwest::Method::PUT, &format!("/api/v1/tenants/{t}/allowlist"), Some(json!({"entries": entries})))
            .await;
    }
    // Wait until the agent enforces all of it, then time one more change from its 2xx to the
    // agent's report (the new entry turns "applied on 1 of 1").
    let last = format!("/api/v1/tenants/{}/allowlist", TENANTS + 1);
    let applied = async |cidr: &str| {
        let body = api.call_ok(reqwest::Method::GET, &last, None).await;
        body["entries"].as_array().unwrap().iter().any(|e| e["cidr"] == cidr && e["applied_on"] == 1)
    };
    let last_cidr = format!("{}/32", address(TENANTS * PER_TENANT - 1));
    while !applied(&last_cidr).await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let swapped = address(TENANTS * PER_TENANT + 7);
    let mut tail: Vec<Value> =
        (0..PER_TENANT - 1).map(|k| json!({"cidr": address((TENANTS - 1) * PER_TENANT + k).to_string()})).collect();
    tail.push(json!({"cidr": swapped.to_string()}));
    api.call_ok(reqwest::Method::PUT, &last, Some(json!({"entries": tail}))).await;
    let started = Instant::now();
    while !applied(&format!("{swapped}/32")).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let agent_round = started.elapsed();
    let agent_log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    let agent_line = agent_log.lines().rev().find(|l| l.contains("allowlist applied")).unwrap_or("").to_owned();

    let mut cidrs: Vec<Cidr> = (0..TENANTS * PER_TENANT - 1).map(|i| address(i).to_string().parse().unwrap()).collect();
    cidrs.push(swapped.to_string().parse().unwrap());
    let version = api.call_ok(reqwest::Method::GET, &last, None).await["version"].as_i64().unwrap();
    let big = dir.path().join("big.nft");
    let ruleset = nft::render(version, &cidrs, lab::PORT);
    std::fs::write(&big, &ruleset.text).unwrap();
    let apply = nft_apply(&lab, &big, 5);
    println!(
        "apply of {} entries ({} set elements): nft -f {:.1} ms (median of 5, {:.1}x baseline); \
         agent round after a change (poll, render, nft -f, report) {:.1} ms ({:.1}x baseline); goal <= 1000 ms",
        cidrs.len(),
        ruleset.elements,
        ms(apply),
        apply.as_secs_f64() / baseline.as_secs_f64(),
        ms(agent_round),
        agent_round.as_secs_f64() / baseline.as_secs_f64(),
    );
    println!("agent's log of that round: {agent_line}");
}
