//! WAF splitter: the pure split kernel, the file mode and the exactly-once Kafka worker.

pub mod split;

pub use split::{Limits, Plan, Shape, SplitError, Splitter};
