//! A throwaway network for the firewall tests and benchmark: a broker namespace and a client
//! namespace joined by a veth pair, plus a veth link from the host namespace to the broker
//! namespace so the agent there reaches the outflow server. Everything is removed on drop.
//!
//! ```text
//!  host ns                      broker ns                          client ns
//!  outflow serve 169.254.93.1 ─ .2        agent, nft table        A 198.51.100.10  2001:db8::10
//!                              198.51.100.1 ─────────────────────  B 198.51.100.11  2001:db8::11
//!                              2001:db8::1  Kafka (or a listener)
//! ```
//! Broker and client addresses come from documentation ranges (RFC 5737, RFC 3849); they exist
//! only inside the two namespaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::binary::outflow_bin;
use crate::kafka::Broker;
use crate::process::Process;

pub const BROKER_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const BROKER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const A_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const B_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
pub const B_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
/// The public port the agent guards.
pub const PORT: u16 = 9093;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The namespaces and links; deleted on drop.
pub struct Lab {
    pub broker_ns: String,
    pub client_ns: String,
    host_if: String,
    /// The host end of the host ↔ broker link; the server listens here.
    pub host_addr: Ipv4Addr,
}

/// Runs `ip` (or another tool) and panics with its stderr on failure.
fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (ops/install-deps.sh installs iproute2 and nftables)"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails loudly when the test cannot run here, rather than skipping.
fn preflight() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the firewall tests create network namespaces and nftables tables: run them as root");
    sh("nft", &["--version"]);
    sh("ip", &["-V"]);
}

/// Namespaces left by a run that was killed before its guard could clean up.
fn remove_leftovers() {
    for name in sh("ip", &["netns", "list"]).lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name.strip_prefix("ofb-").or_else(|| name.strip_prefix("ofc-")) else { continue };
        let pid = pid.split('-').next().unwrap_or("");
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

impl Lab {
    pub fn create() -> Lab {
        preflight();
        remove_leftovers();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{pid}-{n}");
        // Interface names are at most 15 bytes.
        let short = format!("{}{n}", pid % 100_000);
        let lab = Lab {
            broker_ns: format!("ofb-{tag}"),
            client_ns: format!("ofc-{tag}"),
            host_if: format!("ofh{short}"),
            // Link-local: never routed, so it cannot collide with the host's own networks (a CI
            // machine may well use the documentation ranges itself).
            host_addr: Ipv4Addr::new(169, 254, 93, (4 * (n % 60) + 1) as u8),
        };
        let broker_host_addr = Ipv4Addr::from_bits(lab.host_addr.to_bits() + 1);
        let (b, c) = (lab.broker_ns.as_str(), lab.client_ns.as_str());
        let (hb, bc, cb) = (format!("ofhb{short}"), format!("ofbc{short}"), format!("ofcb{short}"));
        sh("ip", &["netns", "add", b]);
        sh("ip", &["netns", "add", c]);
        sh("ip", &["link", "add", &lab.host_if, "type", "veth", "peer", "name", &hb, "netns", b]);
        sh("ip", &["link", "add", &bc, "netns", b, "type", "veth", "peer", "name", &cb, "netns", c]);
        sh("ip", &["addr", "add", &format!("{}/30", lab.host_addr), "dev", &lab.host_if]);
        sh("ip", &["link", "set", &lab.host_if, "up"]);
        for (ns, dev, addrs) in [
            (b, hb.as_str(), vec![format!("{broker_host_addr}/30")]),
            (b, bc.as_str(), vec![format!("{BROKER_V4}/24"), format!("{BROKER_V6}/64")]),
            (
                c,
                cb.as_str(),
                vec![format!("{A_V4}/24"), format!("{B_V4}/24"), format!("{A_V6}/64"), format!("{B_V6}/64")],
            ),
        ] {
            sh("ip", &["-n", ns, "link", "set", "lo", "up"]);
            for addr in addrs {
                // nodad: IPv6 addresses are usable at once instead of after duplicate detection.
                let mut args = vec!["-n", ns, "addr", "add", addr.as_str(), "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                sh("ip", &args);
            }
            sh("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    /// The real Kafka broker inside the broker namespace, its public listener on `PORT` at
    /// every address there; certificates from the outflow CA in `data`.
    pub fn kafka(&self, dir: &Path, data: &Path) -> Broker {
        let port = PORT.to_string();
        let env = [("PUBLIC_PORT", port.as_str()), ("PUBLIC_HOST", "0.0.0.0")];
        Broker::up_via(&["ip", "netns", "exec", &self.broker_ns, "bash"], dir, data, &env)
    }

    /// A command run inside the broker namespace.
    pub fn in_broker(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.broker_ns, program]);
        cmd
    }

    /// The agent's table in the broker namespace, as `nft list` prints it (None when absent).
    pub fn table(&self) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.broker_ns, "nft", "list", "table", "inet", "outflow"])
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Deletes the agent's table, as a reboot would.
    pub fn flush_table(&self) {
        sh("ip", &["netns", "exec", &self.broker_ns, "nft", "delete", "table", "inet", "outflow"]);
    }

    /// Whether a TCP connection from `from` (a client address) to the broker's public port
    /// is accepted within `timeout`.
    pub fn connects(&self, from: IpAddr, timeout: Duration) -> bool {
        let to = match from {
            IpAddr::V4(_) => SocketAddr::new(BROKER_V4.into(), PORT),
            IpAddr::V6(_) => SocketAddr::new(BROKER_V6.into(), PORT),
        };
        in_netns(&self.client_ns, move || {
            let socket = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None).unwrap();
            socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
            socket.connect_timeout(&to.into(), timeout).is_ok()
        })
    }

    /// A plain TCP listener on the broker's public port, accepting and closing connections
    /// until the process ends (for the benchmark, which needs no Kafka).
    pub fn listen_plain(&self) {
        let listeners = in_netns(&self.broker_ns, || {
            [SocketAddr::new(BROKER_V4.into(), PORT), SocketAddr::new(BROKER_V6.into(), PORT)]
                .map(|a| std::net::TcpListener::bind(a).unwrap())
        });
        for listener in listeners {
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    drop(stream);
                }
            });
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veths in it, and with them their peers.
        for ns in [&self.broker_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).stderr(Stdio::null()).status();
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`; sockets it creates live there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: a valid namespace fd; setns only changes this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}

/// `outflow agent` inside the broker namespace, logging to `log`; without `broker_id` it
/// reports for the broker its token is bound to.
pub fn agent(lab: &Lab, server: &str, token: &str, broker_id: Option<&str>, state_dir: &Path, log: &Path) -> Process {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut command = lab.in_broker(outflow_bin());
    command.args(["agent", "--server", server, "--port", &PORT.to_string()]);
    if let Some(id) = broker_id {
        command.args(["--broker-id", id]);
    }
    Process::spawn(
        command
            .arg("--state-dir")
            .arg(state_dir)
            .env("OUTFLOW_AGENT_TOKEN", token)
            .env("OUTFLOW_LOG", "info")
            .stderr(log),
    )
}
