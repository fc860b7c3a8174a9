//! outflow: control plane for streaming CDN logs to customers over Kafka.
//!
//! One folder per feature; `app` assembles them into a server, `cli` is the command line.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bundle;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod firewall;
pub mod kafka;
pub mod pki;
pub mod serve;
pub mod tenants;
pub mod waf;
pub mod web;

pub use app::{App, AppState};
pub use config::Config;
