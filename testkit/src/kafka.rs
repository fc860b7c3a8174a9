//! Real Apache Kafka from the kit in `ops/kafka`: one broker (`broker.sh`) or a three-broker
//! cluster in network namespaces (`cluster.sh`), for tests and benchmarks alike.

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
    /// `broker.sh` or `cluster.sh`.
    script: &'static str,
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
            script: "broker.sh",
        };
        broker.start();
        broker
    }

    /// (Re)starts it; the same ports, certificates and data.
    pub fn start(&mut self) {
        let out = Command::new(&self.launcher[0])
            .args(&self.launcher[1..])
            .arg(self.script_path())
            .arg("up")
            .arg(&self.dir)
            .env("OUTFLOW_BIN", outflow_bin())
            .env("OUTFLOW_DATA_DIR", &self.data_dir)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} up failed:\n{}\n{}",
            self.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), unquote(v)))
            .collect();
        assert!(self.env.contains_key("OUTFLOW_KAFKA_BOOTSTRAP"), "exports: {:?}", self.env);
    }

    pub fn stop(&self) {
        assert!(self.down().unwrap().success(), "{} down failed", self.script);
    }

    fn script_path(&self) -> PathBuf {
        repo_root().join("ops/kafka").join(self.script)
    }

    fn down(&self) -> std::io::Result<std::process::ExitStatus> {
        Command::new("bash").arg(self.script_path()).arg("down").arg(&self.dir).status()
    }

    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("{} did not export {name}", self.script))
    }

    /// Runs one of Kafka's own tools (`kafka.admin.ConfigCommand`, …) from the kit's cached jars
    /// against the internal listener as the broker's own identity (a super user), with `args`
    /// after `--bootstrap-server` and `--command-config`; returns its stdout.
    pub fn kafka_tool(&self, class: &str, args: &[&str]) -> String {
        let certs = self.dir.join("certs");
        let password = std::fs::read_to_string(certs.join("keystore.password")).unwrap();
        let properties = self.dir.join("tool.properties");
        std::fs::write(
            &properties,
            format!(
                "security.protocol=SSL\nssl.keystore.type=PKCS12\nssl.keystore.location={}\nssl.keystore.password={}\n\
                 ssl.key.password={}\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
                certs.join("broker.keystore.p12").display(),
                password.trim(),
                password.trim(),
                self.var("OUTFLOW_KAFKA_CA"),
            ),
        )
        .unwrap();
        let out = Command::new("java")
            .arg("-cp")
            .arg(format!("{}/*", kafka_lib().display()))
            .arg(format!("-Dlog4j.configuration=file:{}", self.dir.join("log4j.properties").display()))
            .arg(class)
            .args(["--bootstrap-server", self.var("OUTFLOW_KAFKA_BOOTSTRAP"), "--command-config"])
            .arg(&properties)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{class} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Environment for `outflow serve` to use this broker.
    pub fn server_env(&self) -> Vec<(&str, &str)> {
        ["OUTFLOW_KAFKA_BOOTSTRAP", "OUTFLOW_KAFKA_CA", "OUTFLOW_KAFKA_CERT", "OUTFLOW_KAFKA_KEY", "OUTFLOW_BROKERS"]
            .into_iter()
            .map(|k| (k, self.var(k)))
            .collect()
    }

    /// outflow's Kafka settings for this broker (the in-process counterpart of [`Self::server_env`]).
    pub fn kafka_config(&self) -> outflow::config::KafkaConfig {
        outflow::config::KafkaConfig {
            bootstrap: Some(self.var("OUTFLOW_KAFKA_BOOTSTRAP").to_owned()),
            ca: Some(self.var("OUTFLOW_KAFKA_CA").into()),
            cert: Some(self.var("OUTFLOW_KAFKA_CERT").into()),
            key: Some(self.var("OUTFLOW_KAFKA_KEY").into()),
            ..Default::default()
        }
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
        self.produce_with(&[], topic, lines);
    }

    /// Produces `lines` to `topic` with extra kcat arguments (say `-X batch.size=16384`).
    pub fn produce_with(&self, args: &[&str], topic: &str, lines: &[String]) {
        use std::io::Write;
        let mut child = Command::new("kcat")
            .args(self.producer_args())
            .args(args)
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

    /// Produces `(key, value)` records to `topic` (internal listener; values without newlines).
    /// Produces `lines` into one partition of `topic`.
    pub fn produce_to_partition(&self, topic: &str, partition: i32, lines: &[String]) {
        self.produce_with(&["-p", &partition.to_string()], topic, lines);
    }

    pub fn produce_keyed(&self, topic: &str, records: &[(String, String)]) {
        let lines: Vec<String> = records.iter().map(|(k, v)| format!("{k}|{v}")).collect();
        self.produce_with(&["-K", "|"], topic, &lines);
    }

    /// `outflow waf-split` on this broker with outflow's data in `data` (creating the raw and
    /// dead-letter topics), refreshing its tenant directory every second; killed on drop.
    pub fn waf_splitter(&self, data: &Path, instance: &str) -> crate::Process {
        crate::Process::spawn(
            Command::new(crate::outflow_bin())
                .arg("--data-dir")
                .arg(data)
                .args(["waf-split", "--create-topics", "2", "--instance-id", instance, "--refresh-secs", "1"])
                .envs(self.server_env())
                .env("OUTFLOW_LOG", "warn"),
        )
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

/// A value as bash's `printf %q` wrote it (`a\,b\ c`, or quoted): the plain string.
fn unquote(v: &str) -> String {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        out.extend(if c == '\\' { chars.next() } else { Some(c) });
    }
    out
}

/// Three brokers started by `cluster.sh up`, each in its own network namespace at its own
/// address, stopped (and the network removed) on drop. Its [`Broker`] methods address the
/// whole cluster.
pub struct Cluster {
    pub kafka: Broker,
}

impl std::ops::Deref for Cluster {
    type Target = Broker;
    fn deref(&self) -> &Broker {
        &self.kafka
    }
}

impl Cluster {
    /// Starts the cluster with its state under `dir`, certificates from the outflow CA in
    /// `data_dir` (reached with `extra_env`, say a database URL). Needs root.
    pub fn up(dir: &Path, data_dir: &Path, extra_env: &[(&str, &str)]) -> Cluster {
        let mut kafka = Broker {
            dir: dir.to_owned(),
            data_dir: data_dir.to_owned(),
            env: BTreeMap::new(),
            launcher: vec!["bash".into()],
            extra_env: extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            script: "cluster.sh",
        };
        kafka.start();
        Cluster { kafka }
    }

    fn node(&self, command: &str, n: usize, env: &[(&str, &str)]) {
        let out = Command::new("bash")
            .arg(self.script_path())
            .args([command, &self.dir.to_string_lossy(), &n.to_string()])
            .env("OUTFLOW_BIN", outflow_bin())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh {command} {n} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts `outflow agent` for broker `n` (1–3) in its namespace, polling `server`.
    pub fn agent(&self, n: usize, server: &str, token: &str) {
        self.node("agent", n, &[("OUTFLOW_AGENT_SERVER", server), ("OUTFLOW_AGENT_TOKEN", token)]);
    }

    /// SIGKILLs broker `n` and its agent, as if its machine died.
    pub fn kill(&self, n: usize) {
        self.node("kill", n, &[]);
    }

    /// Starts broker `n` (and its agent) again; returns once the broker serves.
    pub fn restart(&self, n: usize) {
        self.node("start", n, &[]);
    }

    /// Broker `n`'s address (public listener on `:9093`).
    pub fn address(&self, n: usize) -> std::net::Ipv4Addr {
        let brokers = self.var("OUTFLOW_BROKERS");
        let broker = brokers.split(',').nth(n - 1).expect("brokers 1-3");
        broker.split(':').next().unwrap().parse().unwrap()
    }

    /// The host's address on the cluster network: servers listen here, agents reach them here.
    pub fn host(&self) -> &str {
        self.var("OUTFLOW_CLUSTER_HOST")
    }

    /// Two more host addresses on the cluster network, to connect from in firewall checks.
    pub fn clients(&self) -> [std::net::IpAddr; 2] {
        let mut it = self.var("OUTFLOW_CLUSTER_CLIENTS").split(' ').map(|a| a.parse().unwrap());
        [it.next().unwrap(), it.next().unwrap()]
    }

    /// Broker `n`'s network namespace.
    pub fn netns(&self, n: usize) -> &str {
        self.var("OUTFLOW_CLUSTER_NETNS").split(' ').nth(n - 1).expect("brokers 1-3")
    }

    /// The log of broker `n`'s agent.
    pub fn agent_log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("b{n}/agent.log"))).unwrap_or_default()
    }

    /// Whether a TCP connection from host address `from` to broker `n`'s public port is
    /// accepted within `timeout` (the agent's nftables table decides).
    pub fn connects(&self, from: std::net::IpAddr, n: usize, timeout: std::time::Duration) -> bool {
        let to = std::net::SocketAddr::new(self.address(n).into(), 9093);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&std::net::SocketAddr::new(from, 0).into()).unwrap();
        socket.connect_timeout(&to.into(), timeout).is_ok()
    }

    /// The replica broker ids of each partition of `topic` (from `kcat -L`).
    pub fn replicas(&self, topic: &str) -> Vec<Vec<u32>> {
        let out = Command::new("kcat").args(self.producer_args()).args(["-L", "-t", topic]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split("replicas: ").nth(1))
            // "partition 0, leader 1, replicas: 1,2,3, isrs: 1,3"
            .map(|r| r.split(", isrs").next().unwrap().split(',').map(|id| id.trim().parse().unwrap()).collect())
            .collect()
    }
}

/// The Kafka jars the kit fetched (`ops/kafka/common.sh`): `$OUTFLOW_CACHE/kafka-<version>/lib`.
pub fn kafka_lib() -> PathBuf {
    let pom = std::fs::read_to_string(repo_root().join("ops/kafka/pom.xml")).unwrap();
    let version = pom.split("<kafka.version>").nth(1).and_then(|r| r.split('<').next()).unwrap();
    let cache = std::env::var_os("OUTFLOW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/outflow"));
    cache.join(format!("kafka-{version}/lib"))
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
