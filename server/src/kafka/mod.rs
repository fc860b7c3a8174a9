//! Kafka: the admin connection, ACLs over librdkafka, the pure reconcile plan, the reconciler
//! loop, and the tenant connectivity self-test.

pub mod acl;
pub mod admin;
pub mod check;
pub mod live;
pub mod loggers;
pub mod plan;
pub mod progress;
pub mod quota;
pub mod reconcile;
pub mod sampler;

pub use admin::Cluster;
