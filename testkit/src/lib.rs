//! Helpers shared by outflow's end-to-end tests (`tests/`) and benchmarks (`server/benches/`).
//! A dev-dependency of the `outflow` package only; never published.
//!
//! - [`TestApp`] ([`spawn_app`], [`spawn_app_with`]): the app in process on a free port, with
//!   operator and agent tokens; [`csrf_of`] and [`browser`] for the dashboard.
//! - [`Server`]: the real binary (`outflow serve`); [`outflow`], [`operator_token`] and
//!   [`agent_token`] run its other commands.
//! - [`Process`]: the one way to start a child process and wait for the lines it prints;
//!   [`run`] and [`run_ok`] for tools run to completion.
//! - [`Broker`]: a real Kafka broker from `ops/kafka/broker.sh`, for tests and benchmarks.
//! - [`Api`]: a REST client with a bearer token; [`Tenants::create_and_activate`] is the one
//!   "new streaming tenant" step, over HTTP or (for benchmarks) through the library.
//! - [`fresh_database_url`], [`on_postgres`], [`storage_files`]: the database of a test app,
//!   SQLite or PostgreSQL (see `database.rs`).
//! - [`eventually`] and [`poll`]: wait for a condition.
//! - [`lab`]: network namespaces and nftables for the firewall test and benchmark;
//!   [`waf_corpus`]: the generated ModSecurity corpus; [`bench`]: report figures.
//! - [`receiver`]: an HTTP receiver on loopback for alert deliveries, with scripted answers.

mod api;
mod app;
pub mod bench;
mod binary;
mod database;
mod kafka;
pub mod lab;
mod process;
pub mod receiver;
mod tenants;
pub mod waf_corpus;
mod wait;

use std::path::{Path, PathBuf};

pub use api::{Api, unzip};
pub use app::{TestApp, browser, csrf_of, spawn_app, spawn_app_with};
pub use binary::{Server, agent_token, operator_token, outflow, outflow_bin};
pub use database::{TEST_KEK, fresh_database_url, on_postgres, storage_files};
pub use kafka::{Broker, Cluster, broker_and_server};
pub use process::{Process, consume_with_bundle, free_port, run, run_ok};
pub use tenants::Tenants;
pub use wait::{eventually, poll};

/// The repository's root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}
