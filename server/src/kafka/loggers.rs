//! A broker's log levels at runtime: IncrementalAlterConfigs (key 44) on its BROKER_LOGGER
//! resource, for the request log (docs/usage.md). Logger levels live in the broker process
//! alone, so the request goes to that broker: its address comes from a Metadata request on the
//! quota client's connection (the internal listener), then one connection of its own.

use anyhow::{Context, bail};
use kafka_protocol::messages::{
    BrokerId, DescribeConfigsRequest, IncrementalAlterConfigsRequest, MetadataRequest, describe_configs_request,
    incremental_alter_configs_request,
};
use kafka_protocol::protocol::StrBytes;

use super::quota::{Connection, QuotaClient, exchange};

/// The logger whose DEBUG lines are Kafka's per-request log ("Completed request:{…}").
pub const REQUEST_LOGGER: &str = "kafka.request.logger";

/// Resource type of a broker's loggers in the admin protocol.
const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;

impl QuotaClient {
    /// A connection of its own to broker `node`, found by a Metadata request.
    fn node_connection(&self, node: i32) -> anyhow::Result<Connection> {
        let metadata = self.call(9, &MetadataRequest::default().with_topics(Some(Vec::new())))?;
        let broker = metadata
            .brokers
            .iter()
            .find(|b| b.node_id == BrokerId(node))
            .with_context(|| format!("the cluster has no broker with node id {node}"))?;
        let address = format!("{}:{}", broker.host, broker.port);
        let stream = self.connect_to(&address).with_context(|| format!("connecting to {address}"))?;
        Ok(Connection { stream, correlation: 0 })
    }

    /// The level `logger` has on broker `node` (None when the broker does not list it).
    pub fn logger_level(&self, node: i32, logger: &str) -> anyhow::Result<Option<String>> {
        let mut connection = self.node_connection(node)?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(BROKER_LOGGER)
                .with_resource_name(StrBytes::from_string(node.to_string()))
                .with_configuration_keys(Some(vec![StrBytes::from_string(logger.to_owned())])),
        ]);
        let response = exchange(&mut connection, &self.client_id, 4, &request)?;
        let mut level = None;
        for r in &response.results {
            if r.error_code != 0 {
                bail!(
                    "DescribeConfigs on broker {node}'s loggers: error {}: {}",
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("")
                );
            }
            level = r
                .configs
                .iter()
                .find(|c| c.name.as_str() == logger)
                .and_then(|c| c.value.as_ref())
                .map(|v| v.to_string());
        }
        Ok(level)
    }

    /// Sets `logger` on broker `node` to `level`, or with None removes the setting (the logger
    /// follows the root logger again).
    pub fn set_logger(&self, node: i32, logger: &str, level: Option<&str>) -> anyhow::Result<()> {
        let mut connection = self.node_connection(node)?;
        let config = incremental_alter_configs_request::AlterableConfig::default()
            .with_name(StrBytes::from_string(logger.to_owned()))
            .with_config_operation(if level.is_some() { SET } else { DELETE })
            .with_value(level.map(|l| StrBytes::from_string(l.to_owned())));
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(BROKER_LOGGER)
                .with_resource_name(StrBytes::from_string(node.to_string()))
                .with_configs(vec![config]),
        ]);
        let response = exchange(&mut connection, &self.client_id, 1, &request)?;
        for r in &response.responses {
            if r.error_code != 0 {
                bail!(
                    "IncrementalAlterConfigs on broker {node}'s {logger}: error {}: {}",
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("")
                );
            }
        }
        Ok(())
    }
}
