//! The Streaming tab's live view at a thousand tenants, against a real broker: 1,000 active
//! tenants, 100 of them being viewed, transactional WAF traffic (the real `outflow waf-split`)
//! and access-log lines flowing into 20 of those while it runs. In process through the router.
//!
//! Run: `cargo bench -p outflow --bench live`. Reports p50/p99 of `GET /api/v1/tenants/{id}/
//! streaming/live` and of the HTML fragment, each as a ratio to `GET /api/v1/tenants/{id}/
//! streaming` (a database-only read) measured in the same rounds (goal: p99 within 3×), and the
//! Kafka connections this process holds with 1 and with 50 concurrent viewers.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use outflow::auth::{self, Role, session};
use outflow::kafka::reconcile;
use outflow::{AppState, Config};
use outflow_testkit::bench::{ms, percentile};
use outflow_testkit::waf_corpus::modsec_record;
use outflow_testkit::{Broker, Tenants, poll};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const TENANTS: i64 = 1000;
const VIEWED: i64 = 100;
const WITH_TRAFFIC: i64 = 20;
const ROUNDS: usize = 10;

/// One GET through the router: its duration and body.
async fn get(router: &axum::Router, path: &str, auth: &(header::HeaderName, String)) -> (Duration, Vec<u8>) {
    let request = Request::get(path).header(auth.0.clone(), &auth.1).body(Body::empty()).unwrap();
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let took = started.elapsed();
    assert!(status.is_success(), "{path}: {status}");
    (took, body.to_vec())
}

/// Established TCP connections of this process to `ports` (its socket inodes in /proc/net/tcp*).
fn kafka_connections(ports: &BTreeSet<u16>) -> usize {
    let inodes: BTreeSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let port = cols[2].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            cols[3] == "01" && port.is_some_and(|p| ports.contains(&p)) && inodes.contains(cols[9])
        })
        .count()
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let broker = Broker::up(&work.path().join("kafka"), &data);
    let config = Config { data_dir: data.clone(), kafka: broker.kafka_config(), ..Config::default() };
    let state = AppState::open(config).await.unwrap();
    let cluster = state.cluster.clone().unwrap();
    let cancel = CancellationToken::new();
    let reconciler = tokio::spawn({
        let (store, cluster, config, metrics, cancel) =
            (state.store.clone(), cluster.clone(), state.config.clone(), state.metrics.clone(), cancel.clone());
        async move { reconcile::run(store, cluster, &config.kafka, metrics, "bench".into(), cancel).await }
    });
    let started = Instant::now();
    for id in 1..=TENANTS {
        state.create_and_activate(id, &format!("Customer {id}")).await;
    }
    poll(Duration::from_secs(600), Duration::from_millis(200), "every tenant ready", async || {
        let (pending,): (i64,) = sqlx::query_as("select count(*) from reconcile_status where status != 'ready'")
            .fetch_one(state.store.pool())
            .await
            .unwrap();
        (pending == 0).then_some(())
    })
    .await;
    println!("setup: {TENANTS} tenants provisioned (2,000 topics) in {:.1} s", started.elapsed().as_secs_f64());

    // Traffic while measuring: raw WAF records through the splitter (transactional c<N>_waf)
    // and access-log lines, round robin over the first 20 viewed tenants, ~100 records/s.
    let _splitter = broker.waf_splitter(&data, "bench");
    poll(Duration::from_secs(120), Duration::from_millis(200), "the raw WAF topic", async || {
        broker.partitions("waf.audit.raw").map(|_| ())
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let feeders: Vec<_> = [("waf.audit.raw", true), ("", false)]
        .into_iter()
        .map(|(raw_topic, waf)| {
            let mut args = broker.producer_args();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0usize;
                let mut children = Vec::new();
                if waf {
                    args.extend(["-K", "|", "-P", "-t", raw_topic].map(String::from));
                    children.push(Command::new("kcat").args(&args).stdin(Stdio::piped()).spawn().unwrap());
                } else {
                    args.extend(["-P", "-t"].map(String::from));
                    for id in 1..=WITH_TRAFFIC {
                        let mut a = args.clone();
                        a.push(format!("c{id}"));
                        children.push(Command::new("kcat").args(&a).stdin(Stdio::piped()).spawn().unwrap());
                    }
                }
                while !stop.load(Ordering::SeqCst) {
                    let id = (sent as i64 % WITH_TRAFFIC) + 1;
                    let line = if waf {
                        let client = format!("203.0.113.{}", sent % 200 + 1);
                        let record = modsec_record(&client, "www.example.com", &format!("/q?id={sent}"), &[
                            ("942100", "SQL Injection Attack Detected via libinjection", 2),
                            ("920350", "Host header is a numeric IP address", 4),
                        ]);
                        (0, format!("{id}|{record}"))
                    } else {
                        let line = format!("198.51.100.{} - - [03/Dec/2026:07:00:00 +0000] \"GET /p/{sent} HTTP/1.1\" 200 512 \"-\" \"bench\" www.example.com HIT 0.004 mad1", sent % 250 + 1);
                        ((id - 1) as usize, line)
                    };
                    let stdin = children[line.0].stdin.as_mut().unwrap();
                    writeln!(stdin, "{}", line.1).unwrap();
                    stdin.flush().unwrap();
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                for mut c in children {
                    drop(c.stdin.take());
                    let _ = c.wait();
                }
                sent
            })
        })
        .collect();

    let token = auth::create_token(&state.store, Role::Operator, "bench").await.unwrap();
    let principal = auth::authenticate(&state.store, &token).await.unwrap().unwrap();
    let sid = session::start(&state.store, &principal, state.config.session_minutes).await.unwrap();
    let bearer = (header::AUTHORIZATION, format!("Bearer {token}"));
    let cookie = (header::COOKIE, format!("{}={sid}", session::SESSION_COOKIE));
    let router = outflow::app::router(state.clone());

    // Every viewed tenant has a first view (its first request may wait for it).
    let warm = Instant::now();
    for id in 1..=VIEWED {
        poll(Duration::from_secs(60), Duration::from_millis(50), "a first view", async || {
            let (_, body) = get(&router, &format!("/api/v1/tenants/{id}/streaming/live"), &bearer).await;
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            v["sampled_at"].is_string().then_some(())
        })
        .await;
    }
    println!("first views of the {VIEWED} viewed tenants after {:.1} s", warm.elapsed().as_secs_f64());
    // Let the WAF traffic reach the views.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, body) = get(&router, "/api/v1/tenants/1/streaming/live", &bearer).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    println!(
        "tenant 1's view: {} WAF events in the summary, {} rows, caught up {}, {} ms old",
        v["waf"]["ok"]["records"],
        v["waf_events"].as_array().map_or(0, Vec::len),
        v["caught_up"],
        v["age_ms"]
    );

    // Sequential rounds over the viewed tenants, the three reads interleaved.
    let (mut db, mut live, mut html) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for id in 1..=VIEWED {
            let id = (id + round as i64 * 7) % VIEWED + 1;
            db.push(get(&router, &format!("/api/v1/tenants/{id}/streaming"), &bearer).await.0);
            live.push(get(&router, &format!("/api/v1/tenants/{id}/streaming/live"), &bearer).await.0);
            html.push(get(&router, &format!("/tenants/{id}/streaming/live.html"), &cookie).await.0);
        }
    }
    let (db50, db99) = summary(db);
    println!(
        "baseline: GET /api/v1/tenants/{{id}}/streaming (database only): p50 {:.2} ms, p99 {:.2} ms",
        ms(db50),
        ms(db99)
    );
    for (name, samples) in
        [("GET /api/v1/tenants/{id}/streaming/live", live), ("GET /tenants/{id}/streaming/live.html", html)]
    {
        let (p50, p99) = summary(samples);
        println!(
            "{name}: p50 {:.2} ms ({:.2}×), p99 {:.2} ms ({:.2}× the baseline's p99; goal ≤ 3×)",
            ms(p50),
            p50.as_secs_f64() / db50.as_secs_f64(),
            ms(p99),
            p99.as_secs_f64() / db99.as_secs_f64()
        );
    }

    let ports: BTreeSet<u16> =
        broker.var("OUTFLOW_KAFKA_BOOTSTRAP").split(',').filter_map(|a| a.rsplit(':').next()?.parse().ok()).collect();
    let one = kafka_connections(&ports);
    // 50 viewers refreshing at once for 10 s.
    let ended = Instant::now() + Duration::from_secs(10);
    let viewers: Vec<_> = (0..50)
        .map(|v| {
            let (router, bearer) = (router.clone(), bearer.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = v;
                while Instant::now() < ended {
                    let id = i % VIEWED + 1;
                    samples.push(get(&router, &format!("/api/v1/tenants/{id}/streaming/live"), &bearer).await.0);
                    i += 50;
                }
                samples
            })
        })
        .collect();
    let mut most = 0;
    while Instant::now() < ended {
        most = most.max(kafka_connections(&ports));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut concurrent = Vec::new();
    for v in viewers {
        concurrent.extend(v.await.unwrap());
    }
    let count = concurrent.len();
    let (c50, c99) = summary(concurrent);
    println!(
        "Kafka connections held by the process (reconciler + sampler): {one} with 1 viewer, at most {most} with 50 \
         concurrent viewers ({count} live reads in 10 s: p50 {:.2} ms, p99 {:.2} ms)",
        ms(c50),
        ms(c99)
    );

    stop.store(true, Ordering::SeqCst);
    let sent: usize = feeders.into_iter().map(|f| f.join().unwrap()).sum();
    println!("traffic during the run: {sent} records");
    if let Some(sampler) = &state.sampler {
        sampler.stop();
    }
    cancel.cancel();
    reconciler.await.unwrap();
}
