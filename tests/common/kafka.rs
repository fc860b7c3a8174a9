//! A real Apache Kafka broker for tests, run with `ops/kafka/broker.sh`, and the real clients
//! the bundle is made for.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::binary::{Server, outflow_bin};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A broker started by `broker.sh up`, stopped on drop.
pub struct Broker {
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl Broker {
    /// Starts a broker whose certificates come from the outflow CA in `data_dir`.
    pub fn up(dir: &Path, data_dir: &Path) -> Broker {
        let mut broker = Broker { dir: dir.to_owned(), data_dir: data_dir.to_owned(), env: BTreeMap::new() };
        broker.start();
        broker
    }

    /// (Re)starts it; the same ports, certificates and data.
    pub fn start(&mut self) {
        let out = Command::new("bash")
            .arg(repo_root().join("ops/kafka/broker.sh"))
            .arg("up")
            .arg(&self.dir)
            .env("OUTFLOW_BIN", outflow_bin())
            .env("OUTFLOW_DATA_DIR", &self.data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "broker.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches(|c| c == '"' || c == '\'').to_owned()))
            .collect();
        assert!(self.env.contains_key("OUTFLOW_KAFKA_BOOTSTRAP"), "exports: {:?}", self.env);
    }

    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(repo_root().join("ops/kafka/broker.sh"))
            .arg("down")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "broker.sh down failed");
    }

    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("broker.sh did not export {name}"))
    }

    /// Environment for `outflow serve` to use this broker.
    pub fn server_env(&self) -> Vec<(&str, &str)> {
        ["OUTFLOW_KAFKA_BOOTSTRAP", "OUTFLOW_KAFKA_CA", "OUTFLOW_KAFKA_CERT", "OUTFLOW_KAFKA_KEY", "OUTFLOW_BROKERS"]
            .into_iter()
            .map(|k| (k, self.var(k)))
            .collect()
    }

    /// kcat arguments for the CDN's producer identity on the internal listener.
    pub fn producer_args(&self) -> Vec<String> {
        vec![
            "-b".into(),
            self.var("OUTFLOW_KAFKA_BOOTSTRAP").into(),
            "-X".into(),
            "security.protocol=ssl".into(),
            "-X".into(),
            format!("ssl.ca.location={}", self.var("OUTFLOW_KAFKA_CA")),
            "-X".into(),
            format!("ssl.certificate.location={}", self.var("OUTFLOW_PRODUCER_CERT")),
            "-X".into(),
            format!("ssl.key.location={}", self.var("OUTFLOW_PRODUCER_KEY")),
        ]
    }

    /// Produces `lines` to `topic` as the CDN's edges would (internal listener).
    pub fn produce(&self, topic: &str, lines: &[String]) {
        use std::io::Write;
        let mut child = Command::new("kcat")
            .args(self.producer_args())
            .args(["-P", "-t", topic])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success(), "kcat producer failed");
    }

    /// Partition count of `topic` as the cluster reports it (None when absent).
    pub fn partitions(&self, topic: &str) -> Option<usize> {
        let out = Command::new("kcat").args(self.producer_args()).args(["-L", "-t", topic]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.trim_start().starts_with(&format!("topic \"{topic}\"")))?;
        if line.contains("error") {
            return None;
        }
        line.split("with ").nth(1)?.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo_root().join("ops/kafka/broker.sh")).arg("down").arg(&self.dir).status();
    }
}

/// A broker under `work/kafka` and `outflow serve` using it, reconciling every second, with
/// outflow's data (and CA) in `work/outflow-data`.
pub fn broker_and_server(work: &Path) -> (Broker, Server) {
    let data = work.join("outflow-data");
    let broker = Broker::up(&work.join("kafka"), &data);
    let mut env = broker.server_env();
    env.push(("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", "1"));
    let server = Server::start(&data, &env);
    (broker, server)
}

/// Polls `f` until it returns Some or `timeout` passes.
pub async fn eventually<T>(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
