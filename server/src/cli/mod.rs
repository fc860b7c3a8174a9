//! Command line: `outflow serve`, `outflow token create`, `outflow user create`, `outflow ca ...`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::auth::{self, Role};
use crate::config::Config;
use crate::firewall::brokers::BrokerId;
use crate::pki::{Kek, KeyAlgorithm, PrivateKey};
use crate::state::AppState;
use crate::tenants::TenantId;

mod waf;

#[derive(Debug, Parser)]
#[command(name = "outflow", version, about = "Control plane for streaming CDN logs to customers over Kafka")]
pub struct Cli {
    /// Optional TOML config file; OUTFLOW_* environment variables override it.
    #[arg(long, global = true, env = "OUTFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the database and generated keys.
    #[arg(long, global = true, env = "OUTFLOW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (REST API and dashboard).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long, env = "OUTFLOW_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the certificate authority.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Manage the key-encryption key.
    Kek {
        #[command(subcommand)]
        command: KekCommand,
    },
    /// Run the firewall agent on a broker host: keeps nftables table `inet outflow` in step with
    /// the allowlists (needs root or CAP_NET_ADMIN).
    Agent(AgentArgs),
    /// Split WAF audit records into one record per message: the exactly-once Kafka worker, or
    /// with `--file` a newline-delimited file.
    WafSplit(waf::WafSplitArgs),
}

#[derive(Debug, Subcommand)]
enum KekCommand {
    /// Re-seal every secret at rest (CA key, credential keys and passwords) with OUTFLOW_KEK, in
    /// one transaction; values sealed with OUTFLOW_KEK_PREVIOUS open for it. See docs/deploy.md.
    Rotate,
}

#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// Base URL of the outflow server, e.g. https://outflow.example.net.
    #[arg(long, env = "OUTFLOW_AGENT_SERVER")]
    server: String,
    /// Agent token (`outflow token create --role agent --broker-id ID`); the environment keeps it
    /// out of `ps`.
    #[arg(long, env = "OUTFLOW_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// This broker's id, e.g. kafka-1. Optional: the server reports for the broker the token is
    /// bound to; when given, it must be that one (the server refuses reports for another).
    #[arg(long, env = "OUTFLOW_AGENT_BROKER_ID")]
    broker_id: Option<String>,
    /// Where the last applied ruleset is persisted.
    #[arg(long, env = "OUTFLOW_AGENT_STATE_DIR", default_value = "/var/lib/outflow-agent")]
    state_dir: PathBuf,
    /// The broker's public TLS port, guarded by the allowlist.
    #[arg(long, env = "OUTFLOW_AGENT_PORT", default_value_t = 9093)]
    port: u16,
    /// The nft program.
    #[arg(long, env = "OUTFLOW_AGENT_NFT", default_value = "nft")]
    nft: PathBuf,
    /// The broker's per-topic counters (the Prometheus JMX exporter on loopback, e.g.
    /// http://127.0.0.1:9404/metrics), scraped and reported for usage metering. Without it the
    /// agent meters nothing.
    #[arg(long, env = "OUTFLOW_AGENT_METRICS_URL")]
    metrics_url: Option<String>,
    /// Seconds between two scrapes of the counters (a broker crash loses at most one interval).
    #[arg(long, env = "OUTFLOW_AGENT_USAGE_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    usage_interval_secs: u64,
    /// The broker's log file holding Kafka's request log (`kafka.request.logger`; the kit's
    /// broker.log, Kafka's own kafka-request.log): while an operator has the request log on,
    /// its lines are counted by principal, client address and API and reported.
    #[arg(long, env = "OUTFLOW_AGENT_REQUEST_LOG")]
    request_log: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once, as the last line of output.
    Create {
        /// operator (everything), tenant (one tenant, set with --tenant) or agent (the firewall
        /// agent of one broker, set with --broker-id).
        #[arg(long)]
        role: Role,
        /// The tenant a tenant token is bound to.
        #[arg(long, required_if_eq("role", "tenant"))]
        tenant: Option<i64>,
        /// The broker an agent token reports for, e.g. kafka-1 (one token per broker).
        #[arg(long, required_if_eq("role", "agent"))]
        broker_id: Option<String>,
        /// Who or what the token is for.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. Prints a one-time invitation link (valid 7 days) as the last line, or,
    /// with --password-stdin, sets the password read from standard input.
    Create {
        /// operator or tenant.
        #[arg(long)]
        role: Role,
        /// The tenant a tenant user belongs to.
        #[arg(long, required_if_eq("role", "tenant"))]
        tenant: Option<i64>,
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of printing an invitation link.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Print the CA certificate (PEM).
    Show,
    /// Import an existing CA instead of the generated one.
    Import {
        /// CA certificate, PEM.
        #[arg(long)]
        cert: PathBuf,
        /// CA private key, unencrypted PKCS#8 PEM (`openssl pkcs8 -topk8 -nocrypt` converts others).
        #[arg(long)]
        key: PathBuf,
        /// Name used for the bundle's `<name>.pem`; defaults to the configured CA name.
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing CA.
        #[arg(long)]
        replace: bool,
    },
    /// Issue a server certificate (brokers, test servers): writes <out>/server.crt.pem,
    /// <out>/server.key.pem (unencrypted PKCS#8, mode 0600) and <out>/ca.pem.
    IssueServer {
        /// DNS names or IP addresses; the first is also the CN.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long, default_value = "ecdsa-p256")]
        key_algorithm: KeyAlgorithm,
    },
    /// Issue a client certificate for a service principal (outflow's own Kafka admin identity,
    /// the CDN's log producers): writes <out>/<cn>.crt.pem, <out>/<cn>.key.pem (unencrypted
    /// PKCS#8, mode 0600) and <out>/ca.pem.
    IssueClient {
        /// Common name, which the broker maps to the principal `User:<cn>`.
        #[arg(long)]
        cn: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long, default_value = "ecdsa-p256")]
        key_algorithm: KeyAlgorithm,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OUTFLOW_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(config).await
        }
        Command::Token { command: TokenCommand::Create { role, tenant, broker_id, name } } => {
            let db = open_db_only(&config).await?;
            let tenant = tenant.map(TenantId::parse).transpose()?;
            let broker = broker_id.as_deref().map(BrokerId::parse).transpose()?;
            let owner = auth::tokens::Owner { role, tenant, broker, user_id: None };
            let (_, token) = auth::tokens::create(&db, &owner, &name).await?;
            println!("Created {role} token {name:?}. It is shown only this once:");
            println!("{token}");
            Ok(())
        }
        Command::User { command: UserCommand::Create { role, tenant, email, password_stdin } } => {
            let db = open_db_only(&config).await?;
            let tenant = tenant.map(TenantId::parse).transpose()?;
            let email = auth::users::Email::parse(&email)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let with_password = password.is_some();
            let (user, secret) =
                auth::users::create(&db, &auth::password::Hashing::new(1), &email, role, tenant, password).await?;
            if with_password {
                println!("Created {role} user {} (id {}); it can sign in now.", user.email, user.id);
            } else {
                println!(
                    "Created {role} user {} (id {}). Send this one-time link (valid 7 days):",
                    user.email, user.id
                );
                println!("{}/invite/{secret}", config.public_url());
            }
            Ok(())
        }
        Command::Ca { command } => ca(config, command).await,
        Command::Kek { command: KekCommand::Rotate } => {
            if config.kek.is_none() {
                anyhow::bail!("set OUTFLOW_KEK to the new key (and OUTFLOW_KEK_PREVIOUS to the old one)");
            }
            let kek = Kek::from_config(&config)?;
            let db = open_db_only(&config).await?;
            let done = crate::rekey::rotate(&db, &kek).await?;
            println!(
                "Re-sealed {} values with the current KEK ({} were sealed with the previous one).",
                done.values, done.from_previous
            );
            if kek.rotating() {
                println!("Nothing is sealed with OUTFLOW_KEK_PREVIOUS any more: drop it from every replica.");
            }
            Ok(())
        }
        Command::Agent(args) => {
            if let Some(id) = &args.broker_id {
                BrokerId::parse(id).map_err(|e| anyhow::anyhow!("--broker-id: {e}"))?;
            }
            let options = crate::firewall::agent::Options {
                server: args.server,
                token: args.token,
                broker_id: args.broker_id,
                state_dir: args.state_dir,
                port: args.port,
                nft: args.nft,
                usage: args.metrics_url.map(|metrics_url| crate::usage::scrape::ScrapeOptions {
                    metrics_url,
                    interval: std::time::Duration::from_secs(args.usage_interval_secs),
                }),
                request_log: args
                    .request_log
                    .map(|path| (path, std::time::Duration::from_secs(args.usage_interval_secs))),
            };
            // Stopping leaves the rules in force (fail-static).
            tokio::select! {
                run = crate::firewall::agent::run(options) => run,
                () = shutdown_signal() => Ok(()),
            }
        }
        Command::WafSplit(args) => waf::run(config, args, shutdown_signal()).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    // Printed on stdout so scripts and tests can find a port chosen with :0.
    println!("outflow listening on http://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// The store alone, for commands that need neither the CA nor Kafka.
async fn open_db_only(config: &Config) -> anyhow::Result<crate::store::Store> {
    crate::store::private_dir(&config.data_dir)?;
    crate::store::Store::open(&config.database_url(), Default::default()).await
}

async fn ca(config: Config, command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Show => {
            let state = AppState::open(config).await?;
            print!("{}", state.ca.cert_pem);
        }
        CaCommand::Import { cert, key, name, replace } => {
            let db = open_db_only(&config).await?;
            let kek = Kek::from_config(&config)?;
            let cert = std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let key = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
            let name = name.unwrap_or_else(|| config.ca.name.clone());
            let ca = crate::authority::import(&db, &kek, &name, &cert, &key, replace).await?;
            println!("Imported CA {:?} ({}), valid until {}", ca.name, ca.algorithm, ca.not_after);
        }
        CaCommand::IssueServer { hosts, out, days, key_algorithm } => {
            let state = AppState::open(config).await?;
            let key = tokio::task::spawn_blocking(move || key_algorithm.generate()).await??;
            let signed = state.ca.issue_server(&hosts, &key, days)?;
            write_issued(&out, "server", &signed.cert_pem, &key, &state.ca.cert_pem)?;
        }
        CaCommand::IssueClient { cn, out, days, key_algorithm } => {
            let state = AppState::open(config).await?;
            let key = tokio::task::spawn_blocking(move || key_algorithm.generate()).await??;
            let signed = state.ca.issue_client(&cn, &key, days)?;
            write_issued(&out, &cn, &signed.cert_pem, &key, &state.ca.cert_pem)?;
        }
    }
    Ok(())
}

/// Writes `<stem>.crt.pem`, `<stem>.key.pem` and `ca.pem` into `out`, readable by the owner only.
fn write_issued(out: &Path, stem: &str, cert_pem: &str, key: &PrivateKey, ca_pem: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let key_pem = key.pair.serialize_pem();
    let files = [
        (format!("{stem}.crt.pem"), cert_pem),
        (format!("{stem}.key.pem"), key_pem.as_str()),
        ("ca.pem".into(), ca_pem),
    ];
    for (name, body) in &files {
        let path = out.join(name);
        // Replaced, not appended to: reissuing overwrites the previous files.
        let _ = std::fs::remove_file(&path);
        crate::pki::kek::write_private(&path, body.as_bytes())?;
    }
    println!("Wrote {stem}.crt.pem, {stem}.key.pem and ca.pem to {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("outflow").chain(args.iter().copied()))
    }

    #[test]
    fn agent_tokens_need_a_broker_id() {
        let err = parse(&["token", "create", "--role", "agent", "--name", "kafka-1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("--broker-id"), "{err}");
        let cli = parse(&["token", "create", "--role", "agent", "--broker-id", "kafka-1", "--name", "k1"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Token { command: TokenCommand::Create { role: Role::Agent, broker_id: Some(id), .. } } if id == "kafka-1"
        ));
        assert!(parse(&["token", "create", "--role", "operator", "--name", "ops"]).is_ok());
    }

    #[test]
    fn the_agent_takes_its_broker_id_from_the_token_unless_given() {
        let cli = parse(&["agent", "--server", "http://outflow", "--token", "of_x"]).unwrap();
        assert!(matches!(cli.command, Command::Agent(AgentArgs { broker_id: None, .. })));
    }
}
