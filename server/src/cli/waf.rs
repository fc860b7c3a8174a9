//! `outflow waf-split`: the Kafka worker (default) or the file mode (`--file`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::waf::file::split_lines;
use crate::waf::metrics::Metrics;
use crate::waf::route::{Directory, TenantSource};
use crate::waf::split::Limits;
use crate::waf::worker::{self, WorkerConfig};

#[derive(Debug, clap::Args)]
pub struct WafSplitArgs {
    /// File mode: split newline-delimited records from this file (`-` for stdin) instead of
    /// consuming Kafka.
    #[arg(long)]
    file: Option<PathBuf>,
    /// File mode: where the split records go (`-` for stdout).
    #[arg(long, default_value = "-", requires = "file")]
    out: PathBuf,
    /// Raw audit-log topic to consume.
    #[arg(long, env = "OUTFLOW_WAF_RAW_TOPIC", default_value = "waf.audit.raw")]
    topic: String,
    /// Dead-letter topic for invalid records and records of unknown or inactive tenants.
    #[arg(long, env = "OUTFLOW_WAF_DLQ_TOPIC", default_value = "waf.audit.dlq")]
    dlq_topic: String,
    /// Consumer group; run more workers in the same group to scale out.
    #[arg(long, env = "OUTFLOW_WAF_GROUP", default_value = "outflow-waf-split")]
    group: String,
    /// Stable name of this worker (transactional id and static group membership). A restarted
    /// worker must keep its name so it takes over its own unfinished work at once.
    #[arg(long, env = "OUTFLOW_WAF_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Take the tenant from this JSON pointer in the record (e.g. `/transaction/tenant_id`)
    /// instead of the Kafka key.
    #[arg(long, env = "OUTFLOW_WAF_TENANT_POINTER")]
    tenant_pointer: Option<String>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9102.
    #[arg(long, env = "OUTFLOW_WAF_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Largest accepted record in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_record_bytes: usize,
    /// Most messages accepted in one record.
    #[arg(long, default_value_t = 1000)]
    max_messages: usize,
    /// Raw records per transaction, at most.
    #[arg(long, default_value_t = 2000)]
    batch_records: usize,
    /// Milliseconds a transaction collects records before it commits, at most.
    #[arg(long, default_value_t = 100)]
    batch_ms: u64,
    /// Seconds between rereads of the tenant directory.
    #[arg(long, default_value_t = 5)]
    refresh_secs: u64,
    /// Create the raw and dead-letter topics with this many partitions if they are missing
    /// (demo and first setup; in production the CDN sizes them).
    #[arg(long, value_name = "PARTITIONS")]
    create_topics: Option<i32>,
}

/// Runs the file mode, or the worker until `shutdown` resolves.
pub async fn run(config: Config, args: WafSplitArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let limits = Limits { max_record_bytes: args.max_record_bytes, max_messages: args.max_messages };
    if let Some(file) = args.file {
        return tokio::task::spawn_blocking(move || file_mode(limits, file, args.out)).await?;
    }
    let metrics = Arc::new(Metrics::default());
    let stop = CancellationToken::new();
    if let Some(addr) = args.metrics_listen {
        let metrics = metrics.clone();
        crate::http::metrics::serve_text(addr, move || metrics.render(), stop.clone()).await?;
    }
    if let Some(partitions) = args.create_topics {
        create_missing(&config.kafka, &[&args.topic, &args.dlq_topic], partitions).await?;
    }
    let store = crate::store::Store::open(&config.database_url(), Default::default()).await?;
    let instance_id = match args.instance_id {
        Some(id) => id,
        None => hostname().context("no --instance-id given and no hostname to default to")?,
    };
    let worker_config = WorkerConfig {
        kafka: config.kafka.clone(),
        raw_topic: args.topic,
        dlq_topic: args.dlq_topic,
        group: args.group,
        instance_id,
        tenant_source: args.tenant_pointer.map_or(TenantSource::Key, TenantSource::Pointer),
        limits,
        batch_records: args.batch_records,
        batch_ms: args.batch_ms,
        refresh: Duration::from_secs(args.refresh_secs),
    };
    let handle = tokio::runtime::Handle::current();
    let worker_stop = stop.clone();
    let worker = tokio::task::spawn_blocking(move || {
        // The directory is read on the worker thread between batches, so a batch always sees one
        // consistent snapshot.
        let mut refresh = |consumer: &rdkafka::consumer::BaseConsumer<worker::WorkerContext>| {
            let tenants: Vec<(i64, bool)> =
                handle.block_on(crate::store::tenants::activity(&store)).context("reading tenants")?;
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).context("reading topics")?;
            Ok(Directory {
                tenants: tenants.into_iter().collect(),
                topics: metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_owned()).collect(),
            })
        };
        worker::run(&worker_config, metrics, &mut refresh, &worker_stop)
    });
    tokio::pin!(worker);
    tokio::select! {
        result = &mut worker => return result?,
        () = shutdown => stop.cancel(),
    }
    let result = worker.await?;
    stop.cancel();
    result
}

fn file_mode(limits: Limits, file: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    let input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?)
    };
    let output: Box<dyn std::io::Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?)
    };
    let report = split_lines(
        limits,
        std::io::BufReader::with_capacity(1 << 20, input),
        std::io::BufWriter::with_capacity(1 << 20, output),
        std::io::stderr().lock(),
    )
    .context("splitting")?;
    eprintln!("{} records in, {} records out, {} invalid", report.records_in, report.records_out, report.invalid);
    Ok(())
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Creates `topics` that do not exist yet (an existing topic is left as it is).
async fn create_missing(kafka: &crate::config::KafkaConfig, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    anyhow::ensure!(partitions >= 1, "--create-topics needs at least 1 partition");
    let admin: AdminClient<DefaultClientContext> =
        crate::kafka::admin::client_config(kafka, "outflow-waf-setup")?.create().context("creating an admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(kafka.replication_factor)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await.context("creating the WAF topics")? {
        match result {
            Ok(topic) => tracing::info!(topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    // The worker checks the topics in the cluster metadata, which lags a creation slightly.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}
