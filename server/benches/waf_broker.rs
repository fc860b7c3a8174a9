//! WAF splitter end to end through a real broker (ops/kafka/broker.sh, stopped at the end):
//! the `outflow waf-split` binary against a plain transactional consume→produce passthrough
//! with the same batching (2,000 records or 100 ms per transaction, read_committed, linger 5 ms,
//! lz4),
//! both reading the same raw records of the generated ModSecurity corpus.
//!
//!     cargo bench -p outflow --bench waf_broker                 # 50,000 raw records (208 MB)
//!     WAF_BROKER_RECORDS=50000 cargo bench -p outflow --bench waf_broker
//!
//! Each figure is the time from start (client creation, group join included) until the group has
//! committed every raw record; two alternating rounds, best of each.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use outflow::{AppState, Config};
use outflow_testkit::waf_corpus as corpus;
use outflow_testkit::{Broker, Process, Tenants, outflow_bin};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, ToBytes};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const RAW: &str = "waf.audit.raw";
const PARTITIONS: i32 = 4;

/// Sends `record`, waiting while the producer's queue is full.
fn send<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, K, P>,
) {
    while let Err((_, back)) = producer.send(record) {
        record = back;
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn client(env: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &env["OUTFLOW_KAFKA_BOOTSTRAP"])
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", &env["OUTFLOW_KAFKA_CA"])
        .set("ssl.certificate.location", &env["OUTFLOW_KAFKA_CERT"])
        .set("ssl.key.location", &env["OUTFLOW_KAFKA_KEY"]);
    config
}

/// True once `group` has committed offsets at the end of every raw partition.
fn committed_to_end(group_probe: &BaseConsumer, ends: &[i64]) -> bool {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(RAW, p);
    }
    let Ok(committed) = group_probe.committed_offsets(tpl, Duration::from_secs(10)) else { return false };
    (0..PARTITIONS).all(|p| {
        matches!(committed.find_partition(RAW, p).map(|e| e.offset()), Some(Offset::Offset(o)) if o == ends[p as usize])
    })
}

/// The baseline: the same transactional loop shape as the worker, copying records unchanged.
fn passthrough(env: &BTreeMap<String, String>, round: usize, total: u64) {
    let consumer: BaseConsumer = client(env)
        .set("group.id", format!("bench-passthrough-{round}"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = client(env)
        .set("transactional.id", format!("bench-passthrough-{round}"))
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    consumer.subscribe(&[RAW]).unwrap();
    let mut done = 0u64;
    while done < total {
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut n = 0;
        while n < 2000 && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(50)) else { continue };
            let message = message.unwrap();
            if offsets.is_empty() {
                producer.begin_transaction().unwrap();
            }
            let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
            let headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header { key: "source-partition", value: Some(partition.as_str()) })
                .insert(Header { key: "source-offset", value: Some(offset.as_str()) })
                .insert(Header { key: "message-index", value: Some("0") })
                .insert(Header { key: "message-count", value: Some("1") });
            let record = BaseRecord::<[u8], [u8]>::to("bench.passthrough")
                .payload(message.payload().unwrap_or_default())
                .headers(headers);
            send(&producer, record);
            offsets.insert(message.partition(), message.offset() + 1);
            n += 1;
        }
        if offsets.is_empty() {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            tpl.add_partition_offset(RAW, *p, Offset::Offset(*o)).unwrap();
        }
        producer
            .send_offsets_to_transaction(&tpl, &consumer.group_metadata().unwrap(), Duration::from_secs(30))
            .unwrap();
        producer.commit_transaction(Duration::from_secs(30)).unwrap();
        done += n;
    }
}

fn main() {
    let records: usize = std::env::var("WAF_BROKER_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("outflow-data");
    let broker = Broker::up(&work.path().join("kafka"), &data);
    let env = &broker.env;
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Tenant 83, active, with its topic; plus the raw, dead-letter and passthrough topics.
    runtime.block_on(async {
        let state = AppState::open(Config { data_dir: data.clone(), ..Config::default() }).await.unwrap();
        state.create_and_activate(83, "Bench").await;
        let admin: AdminClient<DefaultClientContext> = client(env).create().unwrap();
        let topics = [
            NewTopic::new(RAW, PARTITIONS, TopicReplication::Fixed(1)),
            NewTopic::new("c83_waf", 2, TopicReplication::Fixed(1)),
            NewTopic::new("waf.audit.dlq", 2, TopicReplication::Fixed(1)),
            NewTopic::new("bench.passthrough", 2, TopicReplication::Fixed(1)),
        ];
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
            result.unwrap();
        }
    });

    let corpus = corpus::generate(records, 0xbe7c);
    let mb = corpus.len() as f64 / 1e6;
    {
        let producer: ThreadedProducer<DefaultProducerContext> =
            client(env).set("linger.ms", "20").set("queue.buffering.max.messages", "1000000").create().unwrap();
        for (i, line) in corpus.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let record = BaseRecord::<str, [u8]>::to(RAW).key("83").payload(line).partition(i as i32 % PARTITIONS);
            send(&producer, record);
        }
        producer.flush(Duration::from_secs(120)).unwrap();
    }
    let probe: BaseConsumer = client(env).create().unwrap();
    let ends: Vec<i64> =
        (0..PARTITIONS).map(|p| probe.fetch_watermarks(RAW, p, Duration::from_secs(10)).unwrap().1).collect();
    println!("raw: {records} ModSecurity records, {mb:.1} MB, {PARTITIONS} partitions");

    // Alternating rounds, each with fresh groups reading the same records from the start; the
    // best of each is reported, so broker warm-up does not favour whichever runs second.
    let (mut base, mut split) = (Duration::MAX, Duration::MAX);
    for round in 0..2 {
        let started = Instant::now();
        passthrough(env, round, records as u64);
        base = base.min(started.elapsed());

        let group = format!("bench-split-{round}");
        let group_probe: BaseConsumer = client(env).set("group.id", &group).create().unwrap();
        let started = Instant::now();
        let mut worker = Process::spawn(
            Command::new(outflow_bin())
                .arg("--data-dir")
                .arg(&data)
                .args(["waf-split", "--instance-id", &group, "--group", &group])
                .envs(env.iter().filter(|(k, _)| k.starts_with("OUTFLOW_KAFKA_")))
                .env("OUTFLOW_LOG", "error"),
        );
        while !committed_to_end(&group_probe, &ends) {
            std::thread::sleep(Duration::from_millis(50));
        }
        split = split.min(started.elapsed());
        worker.kill();
        println!("round {round}: passthrough {base:.2?}, waf-split {split:.2?} (best so far)");
    }

    println!("passthrough (consume -> produce, transactional): {:7.1} MB/s ({base:.2?})", mb / base.as_secs_f64());
    println!("outflow waf-split (split -> c83_waf):             {:7.1} MB/s ({split:.2?})", mb / split.as_secs_f64());
    println!("ratio waf-split / passthrough: {:.2}x (goal >= 0.7x)", base.as_secs_f64() / split.as_secs_f64());
}
