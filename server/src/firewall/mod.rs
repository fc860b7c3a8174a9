//! IP allowlists on every broker's firewall: tenants' entries (`allowlist`), the nftables
//! ruleset they become (`nft`), the agent on each broker host that applies it (`agent`), and
//! what the agents report back (`brokers`).

pub mod agent;
pub mod allowlist;
pub mod brokers;
pub mod cidr;
pub mod nft;

pub use cidr::Cidr;
