//! `outflow waf-split` against a real broker (ops/kafka/broker.sh) and outflow's own database:
//! 100,000 raw records of mixed shapes and tenants end up exactly once in each `c<N>_waf`
//! (read with read_committed) or in the dead-letter topic with the right reason, with two
//! workers sharing the group; then a second run survives five `kill -9`s of its worker and still
//! commits exactly the expected set. Records are identified by the source partition, offset
//! and message index headers, and by an id and message number inside each record; each carries
//! its raw record's message count.

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outflow::waf::events::modsecurity2_tag;
use outflow_testkit::{Broker, Process, Tenants, broker_and_server, eventually, outflow_bin};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};

const RAW: &str = "waf.audit.raw";
const DLQ: &str = "waf.audit.dlq";
const RAW_PARTITIONS: i32 = 4;
/// The workers run with this message limit, so a too-many-messages record stays small.
const MAX_MESSAGES: usize = 20;
const ACTIVE: [i64; 3] = [83, 84, 85];
const INACTIVE: i64 = 86;
const UNKNOWN: i64 = 99;

/// What one raw record must become.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// `n` split records in `c<tenant>_waf` (the record itself once when `n` is 1 and it had no
    /// array to split), each with the header `message-count: messages`.
    Split {
        tenant: i64,
        n: usize,
        messages: usize,
    },
    Dead(&'static str),
}

struct Raw {
    key: Option<String>,
    value: Vec<u8>,
    expect: Expect,
}

fn message(rid: usize, index: usize, modsec: bool) -> Value {
    if modsec {
        json!({"message": format!("SQL Injection Attack é 😀 {index}"), "details": {"ruleId": "942100", "match": "' or 1=1 --\n", "rid": rid, "n": index}})
    } else {
        json!({"message": format!("XSS \"quoted\" {index}"), "data": {"id": 941100, "rid": rid, "n": index}})
    }
}

/// A ModSecurity 2.9 message string; its last tag numbers it.
fn message_2_9(index: usize) -> String {
    format!(
        r#"Warning. Pattern match "(?i)\b(or|and)\b" at ARGS:q. [file "/etc/crs/REQUEST-942.conf"] [id "942100"] [msg "SQL Injection é {index}"] [severity "CRITICAL"] [tag "n/{index}"]"#
    )
}

/// Raw record number `rid`: its key, bytes and what it must become. The mix covers the three
/// shapes (ModSecurity v3 and 2.9, Coraza) with 0–6 messages, records with nothing to split,
/// every dead-letter reason, and spellings that must survive byte for byte (spacing, escapes,
/// big numbers).
fn raw(rid: usize) -> Raw {
    let tenant = ACTIVE[rid % ACTIVE.len()];
    let key = Some(tenant.to_string());
    let ok = |value: String, n, messages| Raw {
        key: key.clone(),
        value: value.into_bytes(),
        expect: Expect::Split { tenant, n, messages },
    };
    let messages = |n: usize, modsec: bool| Value::Array((0..n).map(|i| message(rid, i, modsec)).collect()).to_string();
    match rid % 20 {
        k @ 0..=9 => {
            let n = k % 7;
            let value = format!(
                r#"{{ "transaction": {{"rid":{rid}, "client_ip":"203.0.113.7","big":1E400,"digits":123456789012345678901234567890, "messages" : {}, "uri":"/a?q=caf\u00e9"}} }}"#,
                messages(n, true)
            );
            ok(value, n.max(1), n)
        }
        k @ 10..=13 => {
            let n = 1 + (k - 10) + rid % 3;
            let value = format!(r#"{{"transaction":{{"rid":{rid},"id":"x"}},"messages":{}}}"#, messages(n, false));
            ok(value, n, n)
        }
        14 => ok(format!(r#"{{"transaction":{{"rid":{rid},"messages":{}}}}}"#, message(rid, 0, true)), 1, 1),
        15 if (rid / 20).is_multiple_of(2) => ok(format!(r#"{{"transaction":{{"rid":{rid}}}}}"#), 1, 0),
        15 => {
            let n = 1 + rid % 4;
            let strings = Value::Array((0..n).map(|i| Value::String(message_2_9(i))).collect());
            let value = format!(
                r#"{{"transaction":{{"rid":{rid},"remote_address":"203.0.113.7"}},"request":{{"request_line":"GET /?q=1 HTTP/1.1"}},"audit_data":{{"messages":{strings},"engine_mode":"ENABLED"}}}}"#
            );
            ok(value, n, n)
        }
        16 => Raw {
            key,
            value: format!(r#"{{"transaction":{{"rid":{rid},"messages":[{{}},]}}}}"#).into_bytes(),
            expect: Expect::Dead("invalid-json"),
        },
        17 => Raw {
            key: Some(UNKNOWN.to_string()),
            value: format!(r#"{{"rid":{rid}}}"#).into_bytes(),
            expect: Expect::Dead("unknown-tenant"),
        },
        18 => Raw {
            key: Some(format!("c{INACTIVE}")),
            value: format!(r#"{{"rid":{rid}}}"#).into_bytes(),
            expect: Expect::Dead("inactive-tenant"),
        },
        _ => match (rid / 20) % 4 {
            0 => Raw {
                key,
                value: format!(r#"{{"rid":{rid},"messages":{}}}"#, messages(MAX_MESSAGES + 1, false)).into_bytes(),
                expect: Expect::Dead("too-many-messages"),
            },
            1 => {
                let mut value = format!(r#"{{"rid":{rid},"x":"?"}}"#).into_bytes();
                *value.iter_mut().find(|b| **b == b'?').unwrap() = 0xff;
                Raw { key, value, expect: Expect::Dead("invalid-utf8") }
            }
            2 => Raw { key, value: format!("[{rid}]").into_bytes(), expect: Expect::Dead("not-an-object") },
            _ => {
                Raw { key: None, value: format!(r#"{{"rid":{rid}}}"#).into_bytes(), expect: Expect::Dead("no-tenant") }
            }
        },
    }
}

fn client(broker: &Broker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.var("OUTFLOW_KAFKA_BOOTSTRAP"))
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", broker.var("OUTFLOW_KAFKA_CA"))
        .set("ssl.certificate.location", broker.var("OUTFLOW_PRODUCER_CERT"))
        .set("ssl.key.location", broker.var("OUTFLOW_PRODUCER_KEY"));
    config
}

async fn create_topics(broker: &Broker) {
    let admin: AdminClient<DefaultClientContext> = client(broker).create().unwrap();
    let topics = [
        NewTopic::new(RAW, RAW_PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(DLQ, 2, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
}

/// Produces raw records `range` round-robin over the raw partitions, as the edges would.
async fn produce(broker: &Broker, range: std::ops::Range<usize>) {
    let producer: FutureProducer =
        client(broker).set("linger.ms", "20").set("queue.buffering.max.messages", "1000000").create().unwrap();
    let records: Vec<Raw> = range.clone().map(raw).collect();
    let mut pending = Vec::with_capacity(records.len());
    for (rid, r) in range.zip(&records) {
        let mut record = FutureRecord::to(RAW).payload(&r.value).partition((rid % RAW_PARTITIONS as usize) as i32);
        if let Some(key) = &r.key {
            record = record.key(key);
        }
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// What `outflow waf-split` prints once it serves metrics, before their URL.
const SERVING_METRICS: &str = "waf-split metrics on ";

/// A running `outflow waf-split`, killed on drop.
struct Worker {
    process: Process,
    metrics: String,
}

impl Worker {
    fn start(broker: &Broker, data: &std::path::Path, instance: &str, extra: &[&str]) -> Worker {
        let mut process = Process::spawn(
            Command::new(outflow_bin())
                .arg("--data-dir")
                .arg(data)
                .args([
                    "waf-split",
                    "--instance-id",
                    instance,
                    "--metrics-listen",
                    "127.0.0.1:0",
                    "--refresh-secs",
                    "1",
                ])
                .args(["--max-messages", &MAX_MESSAGES.to_string()])
                .args(extra)
                .envs(broker.server_env())
                .env("OUTFLOW_LOG", "warn"),
        );
        let line = process.wait_for(SERVING_METRICS, Duration::from_secs(120));
        let metrics = line[SERVING_METRICS.len()..].to_owned();
        Worker { process, metrics }
    }

    async fn metric(&self, name: &str) -> Option<u64> {
        let text = reqwest::get(&self.metrics).await.ok()?.text().await.ok()?;
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    fn kill9(&mut self) {
        self.process.kill();
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(self) {
        let exit = self.process.terminate();
        assert!(exit.success(), "waf-split exited with {exit} on SIGTERM");
    }
}

/// A client that reads the workers' group's committed offsets (it never joins the group).
fn group_probe(broker: &Broker) -> BaseConsumer {
    client(broker).set("group.id", "outflow-waf-split").create().unwrap()
}

/// Raw records the group has not committed yet.
fn uncommitted(consumer: &BaseConsumer) -> i64 {
    let mut tpl = TopicPartitionList::new();
    for p in 0..RAW_PARTITIONS {
        tpl.add_partition(RAW, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..RAW_PARTITIONS)
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(RAW, p, Duration::from_secs(10)).unwrap();
            match committed.find_partition(RAW, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => high - o,
                _ => high,
            }
        })
        .sum()
}

/// Waits until the group has committed every raw record produced so far.
async fn wait_committed(broker: &Broker, timeout: Duration) {
    let consumer: BaseConsumer =
        client(broker).set("group.id", "outflow-waf-split").set("isolation.level", "read_committed").create().unwrap();
    eventually(timeout, "the group to commit every raw record", async || {
        let mut tpl = TopicPartitionList::new();
        for p in 0..RAW_PARTITIONS {
            tpl.add_partition(RAW, p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
        let done = (0..RAW_PARTITIONS).all(|p| {
            let (_, high) = consumer.fetch_watermarks(RAW, p, Duration::from_secs(10)).unwrap();
            matches!(committed.find_partition(RAW, p).map(|e| e.offset()), Some(Offset::Offset(o)) if o == high)
        });
        done.then_some(())
    })
    .await;
}

/// One committed output record.
#[derive(Debug)]
struct Output {
    source: (i32, i64),
    index: Option<usize>,
    count: Option<usize>,
    reason: Option<String>,
    value: Vec<u8>,
}

/// Every committed record of `topic`, read with read_committed to the end.
fn read_all(broker: &Broker, topic: &str) -> Vec<Output> {
    let consumer: BaseConsumer = client(broker)
        .set("group.id", "waf-e2e-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let header = |m: &rdkafka::message::BorrowedMessage<'_>, name: &str| -> Option<String> {
        m.headers()?
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let mut out = Vec::new();
    let mut idle = Instant::now();
    // Stops once nothing arrives for a while: every transaction is complete by now, so what
    // read_committed shows is final.
    while idle.elapsed() < Duration::from_secs(3) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                idle = Instant::now();
                out.push(Output {
                    source: (
                        header(&m, "source-partition").unwrap().parse().unwrap(),
                        header(&m, "source-offset").unwrap().parse().unwrap(),
                    ),
                    index: header(&m, "message-index").map(|i| i.parse().unwrap()),
                    count: header(&m, "message-count").map(|c| c.parse().unwrap()),
                    reason: header(&m, "reason"),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// Checks that the committed outputs are exactly what raw records `0..n` must become.
fn verify(broker: &Broker, n: usize) {
    let expected: Vec<Expect> = (0..n).map(|rid| raw(rid).expect).collect();
    for tenant in ACTIVE {
        let outputs = read_all(broker, &format!("c{tenant}_waf"));
        let mut seen = HashSet::new();
        let mut by_rid: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for o in &outputs {
            assert!(seen.insert((o.source, o.index)), "duplicate output {:?} in c{tenant}_waf", (o.source, o.index));
            let value: Value = serde_json::from_slice(&o.value).expect("outputs are JSON");
            let rid = value.pointer("/transaction/rid").and_then(Value::as_u64).expect("rid") as usize;
            // The source headers name the record the output came from.
            assert_eq!(o.source.0 as usize, rid % RAW_PARTITIONS as usize);
            let index = o.index.expect("message-index header");
            if let Expect::Split { messages, .. } = expected[rid] {
                assert_eq!(o.count, Some(messages), "message-count of record {rid}");
            }
            let split = value
                .pointer("/transaction/messages")
                .filter(|m| m.is_object())
                .or(value.pointer("/messages").filter(|m| m.is_object()));
            if let Some(m) = split {
                let n = m.pointer("/details/n").or(m.pointer("/data/n")).and_then(Value::as_u64).unwrap() as usize;
                assert_eq!(n, index, "message {index} of record {rid} is its {index}th message");
            }
            if let Some(text) = value.pointer("/audit_data/messages").and_then(Value::as_str) {
                let n = modsecurity2_tag(text, "tag").expect("the n/<index> tag");
                assert_eq!(n, format!("n/{index}"), "2.9 message {index} of record {rid} is its {index}th message");
            }
            by_rid.entry(rid).or_default().push(index);
        }
        let want: BTreeMap<usize, usize> = expected
            .iter()
            .enumerate()
            .filter_map(|(rid, e)| match e {
                Expect::Split { tenant: t, n, .. } if *t == tenant => Some((rid, *n)),
                _ => None,
            })
            .collect();
        let got: BTreeMap<usize, usize> = by_rid.iter().map(|(rid, idx)| (*rid, idx.len())).collect();
        let missing: Vec<_> = want.iter().filter(|(rid, n)| got.get(rid) != Some(n)).take(5).collect();
        assert!(missing.is_empty(), "c{tenant}_waf: wrong output count for (rid, expected) {missing:?}");
        assert_eq!(got.len(), want.len(), "c{tenant}_waf holds outputs of unexpected records");
        let total: usize = want.values().sum();
        assert_eq!(outputs.len(), total, "c{tenant}_waf");
        eprintln!("c{tenant}_waf: {total} records, as expected");
    }
    let dead = read_all(broker, DLQ);
    let mut seen = HashSet::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for d in &dead {
        assert!(seen.insert(d.source), "duplicate dead letter for {:?}", d.source);
        *reasons.entry(d.reason.clone().expect("reason header")).or_default() += 1;
    }
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for e in &expected {
        if let Expect::Dead(reason) = e {
            *want.entry(reason.to_string()).or_default() += 1;
        }
    }
    assert_eq!(reasons, want, "dead letters by reason");
    eprintln!("{DLQ}: {reasons:?}, as expected");
}

#[tokio::test(flavor = "multi_thread")]
async fn waf_records_are_split_exactly_once_into_tenant_topics_even_when_workers_are_killed() {
    let work = tempfile::tempdir().unwrap();
    let (broker, server) = broker_and_server(work.path());
    let data = server.dir.clone();
    let api = server.api();
    for id in ACTIVE {
        api.create_and_activate(id, &format!("Tenant {id}")).await;
    }
    api.create_tenant(INACTIVE, &format!("Tenant {INACTIVE}")).await;
    eventually(Duration::from_secs(60), "c<N>_waf topics", async || {
        ACTIVE.iter().all(|id| broker.partitions(&format!("c{id}_waf")).is_some()).then_some(())
    })
    .await;
    create_topics(&broker).await;

    // 100,000 records, two workers in one group.
    let first = 100_000;
    produce(&broker, 0..first).await;
    let a = Worker::start(&broker, &data, "a", &[]);
    let b = Worker::start(&broker, &data, "b", &[]);
    wait_committed(&broker, Duration::from_secs(240)).await;
    let total = async |name: &str| a.metric(name).await.unwrap() + b.metric(name).await.unwrap();
    let expected: Vec<Expect> = (0..first).map(|rid| raw(rid).expect).collect();
    let outputs: usize = expected.iter().map(|e| if let Expect::Split { n, .. } = e { *n } else { 0 }).sum();
    let dead = expected.iter().filter(|e| matches!(e, Expect::Dead(_))).count();
    assert_eq!(total("outflow_waf_records_in_total").await, first as u64, "records in, both workers");
    assert_eq!(total("outflow_waf_records_out_total").await, outputs as u64, "records out, both workers");
    assert_eq!(total("outflow_waf_dead_lettered_total").await, dead as u64, "dead letters, both workers");
    assert!(a.metric("outflow_waf_consumer_lag").await.is_some(), "the lag is exported");
    verify(&broker, first);

    // Graceful shutdown of one worker, then 40,000 more records for the other alone (in small
    // transactions), which is killed with SIGKILL five times while it is visibly committing
    // work, and restarted under the same name each time.
    b.terminate();
    drop(a);
    let second = first + 40_000;
    produce(&broker, first..second).await;
    let probe = group_probe(&broker);
    let mut a = Worker::start(&broker, &data, "a", &["--batch-records", "300"]);
    for round in 1..=5 {
        let before = uncommitted(&probe);
        let (pending, _) = eventually(Duration::from_secs(120), "worker a to commit work", async || {
            let now = uncommitted(&probe);
            (now < before).then_some(now)
        })
        .await;
        assert!(pending > 0, "the run ended before kill {round}; it would not test anything");
        tokio::time::sleep(Duration::from_millis(37 * round)).await;
        a.kill9();
        eprintln!("killed worker a (round {round}) with {pending} raw records left");
        a = Worker::start(&broker, &data, "a", &["--batch-records", "300"]);
    }
    wait_committed(&broker, Duration::from_secs(240)).await;
    verify(&broker, second);
    drop(a);
    drop(server);
}

#[test]
fn file_mode_splits_lines_and_reports_invalid_ones_with_their_line_numbers() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let lines = [
        raw(2).value,
        b"{\"messages\":[1,".to_vec(),
        raw(10).value,
        Vec::new(),
        raw(19).value,
        raw(39).value,
        raw(15).value,
    ];
    std::fs::write(&input, lines.join(&b'\n')).unwrap();
    let out = dir.path().join("out.ndjson");
    let run = Command::new(outflow_bin())
        .args(["waf-split", "--max-messages", &MAX_MESSAGES.to_string(), "--file"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("line 2: invalid-json: "), "{stderr}");
    assert!(stderr.contains("line 5: too-many-messages: "), "{stderr}");
    assert!(stderr.contains("line 6: invalid-utf8: "), "{stderr}");
    // raw(2): 2 messages, raw(10): 1 + 0 + 10 % 3 = 2 messages, raw(15): nothing to split.
    assert!(stderr.contains("6 records in, 5 records out, 3 invalid"), "{stderr}");
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written.iter().filter(|b| **b == b'\n').count(), 5);

    // The same through stdin and stdout.
    let mut child = Command::new(outflow_bin())
        .args(["waf-split", "--max-messages", &MAX_MESSAGES.to_string(), "--file", "-", "--out", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&lines.join(&b'\n')).unwrap();
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success());
    assert_eq!(piped.stdout, written);
}
