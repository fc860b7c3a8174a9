//! A real Apache Kafka broker from the kit in `ops/kafka` (`broker.sh`), for tests and
//! benchmarks alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary::{Server, outflow_bin};
use crate::repo_root;

/// A broker started by `broker.sh up`, stopped on drop.
pub struct Broker {
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    /// What `broker.sh up` exported: addresses, certificates and keys.
    pub env: BTreeMap<String, String>,
    /// The program (and its first arguments) that runs `broker.sh up`.
    launcher: Vec<String>,
    extra_env: Vec<(String, String)>,
}

impl Broker {
    /// Starts a broker with its state under `dir`, certificates from the outflow CA in
    /// `data_dir`.
    pub fn up(dir: &Path, data_dir: &Path) -> Broker {
        Broker::up_via(&["bash"], dir, data_dir, &[])
    }

    /// As [`Broker::up`], with `broker.sh up` run by `launcher` (say `ip netns exec NS bash`)
    /// and with `extra_env` (say `PUBLIC_HOST`).
    pub fn up_via(launcher: &[&str], dir: &Path, data_dir: &Path, extra_env: &[(&str, &str)]) -> Broker {
        let mut broker = Broker {
            dir: dir.to_owned(),
            data_dir: data_dir.to_owned(),
            env: BTreeMap::new(),
            launcher: launcher.iter().map(|s| s.to_string()).collect(),
            extra_env: extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        broker.start();
        broker
    }

    /// (Re)starts it; the same ports, certificates and data.
    pub fn start(&mut self) {
        let out = Command::new(&self.launcher[0])
            .args(&self.launcher[1..])
            .arg(repo_root().join("ops/kafka/broker.sh"))
            .arg("up")
            .arg(&self.dir)
            .env("OUTFLOW_BIN", outflow_bin())
            .env("OUTFLOW_DATA_DIR", &self.data_dir)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
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
        assert!(self.down().unwrap().success(), "broker.sh down failed");
    }

    fn down(&self) -> std::io::Result<std::process::ExitStatus> {
        Command::new("bash").arg(repo_root().join("ops/kafka/broker.sh")).arg("down").arg(&self.dir).status()
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
        let _ = self.down();
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
