//! WAF splitter: the pure split kernel, routing to tenants, the file mode and the exactly-once
//! Kafka worker (`outflow waf-split`).

pub mod events;
pub mod file;
pub mod metrics;
pub mod route;
pub mod split;
pub mod summary;
pub mod worker;

pub use split::{Limits, Part, Plan, Shape, SplitError, Splitter};
