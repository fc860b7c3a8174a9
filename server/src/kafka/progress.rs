//! The committed offsets of every tenant's consumer groups (`c<N>_*`) on its two topics, for
//! metering records delivered. Blocking (librdkafka calls): run it on a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::plan::topic_tenant;
use crate::config::KafkaConfig;
use crate::store::usage::GroupOffset;

/// Long-lived clients: one for metadata and group lists, one per group for its offsets
/// (librdkafka reads committed offsets through a consumer of that group id).
pub struct GroupProgress {
    base: ClientConfig,
    timeout: Duration,
    meta: BaseConsumer,
    groups: HashMap<String, BaseConsumer>,
}

/// The tenant whose prefix a group name carries: `c83_filebeat` → 83.
pub fn group_tenant(group: &str) -> Option<i64> {
    let (prefix, rest) = group.split_once('_')?;
    if rest.is_empty() {
        return None;
    }
    topic_tenant(prefix)
}

impl GroupProgress {
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let mut base = super::admin::client_config(config, "outflow-usage")?;
        base.set("enable.auto.commit", "false");
        let meta = base.clone().set("group.id", "outflow-usage").create().context("creating the usage client")?;
        Ok(Self { base, timeout: Duration::from_millis(config.request_timeout_ms), meta, groups: HashMap::new() })
    }

    /// Every tenant group's committed offsets on its tenant's partitions, with where each
    /// partition's log starts.
    pub fn read(&mut self) -> anyhow::Result<Vec<GroupOffset>> {
        let listed = self.meta.fetch_group_list(None, self.timeout).context("listing consumer groups")?;
        let groups: Vec<(i64, String)> =
            listed.groups().iter().filter_map(|g| Some((group_tenant(g.name())?, g.name().to_owned()))).collect();
        self.groups.retain(|name, _| groups.iter().any(|(_, g)| g == name));
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let metadata = self.meta.fetch_metadata(None, self.timeout).context("reading the cluster's metadata")?;
        let mut partitions: BTreeMap<i64, Vec<(String, i32)>> = BTreeMap::new();
        for t in metadata.topics() {
            if let (None, Some(tenant)) = (t.error(), topic_tenant(t.name())) {
                let list = partitions.entry(tenant).or_default();
                list.extend(t.partitions().iter().map(|p| (t.name().to_owned(), p.id())));
            }
        }
        let mut starts = TopicPartitionList::new();
        for (topic, partition) in partitions.values().flatten() {
            starts.add_partition_offset(topic, *partition, Offset::Beginning)?;
        }
        let starts: HashMap<(String, i32), i64> = self
            .meta
            .offsets_for_times(starts, self.timeout)
            .context("listing log start offsets")?
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (tenant, group) in groups {
            let Some(parts) = partitions.get(&tenant) else { continue };
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in parts {
                tpl.add_partition(topic, *partition);
            }
            if !self.groups.contains_key(&group) {
                let client: BaseConsumer =
                    self.base.clone().set("group.id", &group).create().context("creating a group client")?;
                self.groups.insert(group.clone(), client);
            }
            let committed = self.groups[&group]
                .committed_offsets(tpl, self.timeout)
                .with_context(|| format!("reading the committed offsets of {group}"))?;
            for e in committed.elements() {
                if let Offset::Offset(committed) = e.offset() {
                    let key = (e.topic().to_owned(), e.partition());
                    out.push(GroupOffset {
                        tenant,
                        group: group.clone(),
                        topic: key.0.clone(),
                        partition: key.1,
                        committed,
                        log_start: starts.get(&key).copied().unwrap_or(0),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::group_tenant;

    #[test]
    fn groups_belong_to_the_tenant_of_their_prefix() {
        assert_eq!(group_tenant("c83_filebeat"), Some(83));
        assert_eq!(group_tenant("c83_waf_reader"), Some(83));
        assert_eq!(group_tenant("c83_"), None);
        assert_eq!(group_tenant("c083_x"), None);
        assert_eq!(group_tenant("outflow-sampler"), None);
    }
}
