//! The live view of one tenant's streaming service, as the Streaming tab and the API show it:
//! consumer groups and lag, throughput, the live tail (unless an operator turned it off) and
//! the WAF summary. Each part fails on its own, so one slow read does not blank the others.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::monitor::{GroupLag, Monitor, TailRecord, TopicRate};
use crate::error::{Error, Result};
use crate::tenants::TenantId;
use crate::waf::summary::WafSummary;

/// A part of the view, or why it could not be read.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part<T> {
    Ok(T),
    Unavailable(String),
}

impl<T> Part<T> {
    fn of(result: anyhow::Result<T>) -> Self {
        match result {
            Ok(v) => Part::Ok(v),
            Err(e) => Part::Unavailable(format!("{e:#}")),
        }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Part::Ok(v) => Some(v),
            Part::Unavailable(_) => None,
        }
    }

    pub fn problem(&self) -> Option<&str> {
        match self {
            Part::Ok(_) => None,
            Part::Unavailable(e) => Some(e),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicTail {
    pub topic: String,
    #[schema(value_type = Object)]
    pub records: Part<Vec<TailRecord>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveView {
    pub tenant_id: i64,
    #[schema(value_type = Object)]
    pub groups: Part<Vec<GroupLag>>,
    pub throughput: Vec<TopicRate>,
    /// Whether the live tail is on for this tenant (operators can turn it off).
    pub tail_enabled: bool,
    /// Newest records of `c<N>` and `c<N>_waf`; empty when the tail is off.
    pub tail: Vec<TopicTail>,
    #[schema(value_type = Object)]
    pub waf: Part<WafSummary>,
}

/// Reads every part of the live view; the blocking reads run on the blocking pool.
/// `tail_on`: whether operators let the dashboard sample this tenant's records.
pub async fn view(monitor: Option<&Arc<Monitor>>, tenant: TenantId, tail_on: bool) -> Result<LiveView> {
    let monitor = monitor.cloned().ok_or_else(|| Error::Unavailable("no Kafka cluster is configured".into()))?;
    monitor.watch(tenant);
    let read = tokio::task::spawn_blocking(move || {
        let groups = Part::of(monitor.groups(tenant));
        let tail = if tail_on {
            [tenant.topic(), tenant.waf_topic()]
                .into_iter()
                .map(|topic| TopicTail { records: Part::of(monitor.tail(&topic)), topic })
                .collect()
        } else {
            Vec::new()
        };
        let waf = Part::of(monitor.waf_summary(tenant));
        (groups, tail, waf, monitor.throughput(tenant))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let (groups, tail, waf, throughput) = read;
    Ok(LiveView { tenant_id: tenant.get(), groups, throughput, tail_enabled: tail_on, tail, waf })
}
