//! The Streaming tab's live view on a real broker with the real WAF splitter writing `c83_waf`
//! with transactions: the shared sampler reads the transactional topic to its end (a commit
//! marker no message carries ends each partition), new traffic shows in the next view after it
//! was committed, and the WAF events read as a person reads them.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use outflow_testkit::waf_corpus::modsec_record;
use outflow_testkit::{Api, Tenants, broker_and_server, eventually};
use serde_json::Value;

async fn live(api: &Api) -> Value {
    api.call_ok(reqwest::Method::GET, "/api/v1/tenants/83/streaming/live", None).await
}

/// Raw records for tenant 83: each from its own client with two messages.
fn raw(from: usize, n: usize) -> Vec<(String, String)> {
    (from..from + n)
        .map(|i| {
            let client = format!("203.0.113.{}", i + 1);
            let uri = format!("/search?q={i}%27%20OR%201=1--");
            let record = modsec_record(
                &client,
                "shop.example.com",
                &uri,
                &[
                    ("942100", "SQL Injection Attack Detected via libinjection", 2),
                    ("920350", "Host header is a numeric IP address", 4),
                ],
            );
            ("83".to_owned(), record)
        })
        .collect()
}

/// Records committed in `c83_waf`, read as customers read them (read_committed).
/// One line per committed record of `topic`, in kcat's `format`.
fn read_all(broker: &outflow_testkit::Broker, topic: &str, format: &str) -> Vec<String> {
    let mut args = broker.producer_args();
    args.extend(
        ["-X", "isolation.level=read_committed", "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", format]
            .map(String::from),
    );
    let out = Command::new("kcat").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn committed(broker: &outflow_testkit::Broker) -> usize {
    read_all(broker, "c83_waf", "%o\n").len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_view_reads_a_transactional_waf_topic_to_its_end_and_follows_new_traffic() {
    let work = tempfile::tempdir().unwrap();
    let (broker, server) = broker_and_server(work.path());
    let api = server.api();
    api.create_and_activate(83, "Tenant 83").await;
    eventually(Duration::from_secs(30), "tenant 83 ready", async || {
        let s = api.call_ok(reqwest::Method::GET, "/api/v1/tenants/83/streaming", None).await;
        (s["reconcile"]["status"] == "ready").then_some(())
    })
    .await;
    let _splitter = broker.waf_splitter(&work.path().join("outflow-data"), "live-e2e");

    // Access-log lines and raw WAF records; the splitter writes 2 events per raw record.
    let lines: Vec<String> = (0..5)
        .map(|i| format!("198.51.100.9 - - [03/Dec/2026:07:00:0{i} +0000] \"GET /a/{i} HTTP/1.1\" 200 5 \"-\" \"e2e\""))
        .collect();
    broker.produce("c83", &lines);
    eventually(Duration::from_secs(60), "the raw topic exists", async || {
        broker.partitions("waf.audit.raw").map(|_| ())
    })
    .await;
    broker.produce_keyed("waf.audit.raw", &raw(0, 5));
    eventually(Duration::from_secs(60), "10 committed WAF events", async || (committed(&broker) == 10).then_some(()))
        .await;

    // Split records carry their raw record's timestamp (alert windows count by event time).
    let raw_times: std::collections::BTreeSet<String> =
        read_all(&broker, "waf.audit.raw", "%T\n").into_iter().collect();
    let split_times = read_all(&broker, "c83_waf", "%T\n");
    assert!(split_times.iter().all(|t| raw_times.contains(t)), "{split_times:?} not among {raw_times:?}");

    // Every partition of c83_waf ends with a commit marker: the sampler is caught up anyway.
    let (view, took) = eventually(Duration::from_secs(30), "a caught-up view with 10 WAF events", async || {
        let v = live(&api).await;
        (v["caught_up"] == true && v["waf_events"].as_array().map(Vec::len) == Some(10)).then_some(v)
    })
    .await;
    eprintln!("caught-up view with the events {took:?} after they were committed");
    assert!(view["problem"].is_null(), "{view}");
    assert!(view["age_ms"].as_i64().unwrap() >= 0);
    let waf = &view["waf"]["ok"];
    assert_eq!(waf["records"], 10);
    assert_eq!(waf["by_severity"], serde_json::json!([["CRITICAL", 5], ["WARNING", 5]]), "{waf}");
    let mut rows: BTreeMap<(String, String), Value> = BTreeMap::new();
    for e in view["waf_events"].as_array().unwrap() {
        rows.insert((e["client"].as_str().unwrap().into(), e["rule_id"].as_str().unwrap().into()), e.clone());
    }
    assert_eq!(rows.len(), 10, "one row per (client, rule)");
    let row = &rows[&("203.0.113.3".to_owned(), "942100".to_owned())];
    assert_eq!(row["severity"], "CRITICAL");
    assert_eq!(row["message"], "SQL Injection Attack Detected via libinjection");
    assert_eq!((row["method"].as_str(), row["uri"].as_str()), (Some("GET"), Some("/search?q=2%27%20OR%201=1--")));
    assert_eq!(row["host"], "shop.example.com");
    let raw_json: Value = serde_json::from_str(row["record"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        raw_json.pointer("/transaction/messages/details/ruleId"),
        Some(&Value::from("942100")),
        "the split record itself"
    );
    assert_eq!(rows[&("203.0.113.3".to_owned(), "920350".to_owned())]["severity"], "WARNING");
    let tail = view["tail"].as_array().unwrap();
    let access = tail.iter().find(|t| t["topic"] == "c83").unwrap();
    assert_eq!(access["records"]["ok"].as_array().unwrap().len(), 5);

    // New traffic: once committed, the second view taken after that holds it (one refresh).
    broker.produce_keyed("waf.audit.raw", &raw(5, 3));
    eventually(Duration::from_secs(60), "16 committed WAF events", async || (committed(&broker) == 16).then_some(()))
        .await;
    let mut sampled = Vec::new();
    let (view, _) = eventually(Duration::from_secs(30), "two views sampled after the commit", async || {
        let v = live(&api).await;
        let at = v["sampled_at"].as_str().unwrap().to_owned();
        if sampled.last() != Some(&at) {
            sampled.push(at);
        }
        (sampled.len() >= 3).then_some(v)
    })
    .await;
    // sampled[0] may predate the commit; sampled[2] began after sampled[1] was published.
    let clients: Vec<&str> =
        view["waf_events"].as_array().unwrap().iter().filter_map(|e| e["client"].as_str()).collect();
    for i in 6..=8 {
        assert!(clients.contains(&format!("203.0.113.{i}").as_str()), "{clients:?} after {sampled:?}");
    }
    assert_eq!(view["waf"]["ok"]["records"], 16);
    assert_eq!(view["caught_up"], true);

    // The view is shared: many concurrent requests are answered from it.
    let (a, b) = tokio::join!(live(&api), live(&api));
    assert_eq!(a["waf"]["ok"]["records"], b["waf"]["ok"]["records"]);

    // The newest records all in one partition: the tail still lists the newest 20 of the topic
    // (each partition keeps a whole tail's worth).
    let burst: Vec<String> = (0..25)
        .map(|i| {
            format!("198.51.100.7 - - [03/Dec/2026:07:01:{i:02} +0000] \"GET /burst/{i} HTTP/1.1\" 200 5 \"-\" \"e2e\"")
        })
        .collect();
    broker.produce_to_partition("c83", 0, &burst);
    let view = eventually(Duration::from_secs(30), "the burst in the tail", async || {
        let v = live(&api).await;
        let access = v["tail"].as_array()?.iter().find(|t| t["topic"] == "c83")?["records"]["ok"].clone();
        access.as_array()?.iter().any(|r| r.to_string().contains("/burst/24 ")).then_some(access)
    })
    .await
    .0;
    let shown: Vec<String> = view.as_array().unwrap().iter().map(|r| r.to_string()).collect();
    assert_eq!(shown.len(), 20, "{shown:?}");
    for i in 5..25 {
        assert!(shown.iter().any(|r| r.contains(&format!("/burst/{i} "))), "/burst/{i} missing: {shown:?}");
    }

    // The tail off: the summary stays, the records go.
    let (s, _) = api
        .call(
            reqwest::Method::PUT,
            "/api/v1/tenants/83/streaming/live-tail",
            Some(serde_json::json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, 200);
    let off = live(&api).await;
    assert_eq!((off["tail_enabled"].as_bool(), off["waf_events"].as_array().map(Vec::len)), (Some(false), Some(0)));
    assert_eq!(off["waf"]["ok"]["records"], 16);
}
