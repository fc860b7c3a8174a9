//! outflow: control plane for streaming CDN logs to customers over Kafka.
//!
//! Layers, top to bottom (see README "Architecture"): the HTTP edge (`http`, `api`, `web`) →
//! the domain, one folder per feature (`tenants`, `pki`, `firewall`, `kafka`, `waf`, `audit`,
//! `bundle`, `auth`) → `store`, which owns every SQL statement → values (`clock`, `secret`,
//! `signals`, `error`, `config`). `state` holds what handlers share, `app` assembles the
//! router and server, `cli` is the command line.

pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authority;
pub mod bundle;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod firewall;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pki;
pub mod rekey;
pub mod replicas;
pub mod secret;
pub mod signals;
pub mod state;
pub mod store;
pub mod tenants;
pub mod usage;
pub mod waf;
pub mod web;

pub use app::App;
pub use config::Config;
pub use state::AppState;
