//! The live view of one tenant's streaming service, as the Streaming tab and the API show it:
//! consumer groups and lag, throughput, the newest access-log records and WAF events (unless an
//! operator turned the tail off) and the WAF summary — all read from the shared sampler's latest
//! view of the tenant, which says how old it is.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::sampler::{GroupLag, Sampler, Snapshot, TailRecord, TopicRate, WafRow};
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
    /// When the sampler took this view (RFC 3339, UTC); null before its first view.
    #[schema(example = "2026-12-03T07:15:02.120Z")]
    pub sampled_at: Option<String>,
    /// How old the view was when this answer was made, in milliseconds.
    pub age_ms: Option<i64>,
    /// Whether the sampler had read every partition of the tenant's topics to its end.
    pub caught_up: bool,
    /// Why the sampler's last refresh failed (the view is then older), if it did.
    pub problem: Option<String>,
    #[schema(value_type = Object)]
    pub groups: Part<Vec<GroupLag>>,
    pub throughput: Vec<TopicRate>,
    /// Whether the live tail is on for this tenant (operators can turn it off).
    pub tail_enabled: bool,
    /// Newest records of `c<N>` and `c<N>_waf`; empty when the tail is off.
    pub tail: Vec<TopicTail>,
    /// Newest WAF events of `c<N>_waf`, newest first, readable; empty when the tail is off.
    pub waf_events: Vec<WafRow>,
    #[schema(value_type = Object)]
    pub waf: Part<WafSummary>,
}

impl LiveView {
    /// The view of a tenant the sampler has not sampled yet.
    fn pending(tenant: TenantId, tail_on: bool, problem: Option<String>) -> Self {
        let why = || "the first sample of this tenant is still being taken; it shows on the next refresh".to_owned();
        LiveView {
            tenant_id: tenant.get(),
            sampled_at: None,
            age_ms: None,
            caught_up: false,
            problem,
            groups: Part::Unavailable(why()),
            throughput: Vec::new(),
            tail_enabled: tail_on,
            tail: Vec::new(),
            waf_events: Vec::new(),
            waf: Part::Unavailable(why()),
        }
    }

    fn of(tenant: TenantId, snapshot: &Snapshot, tail_on: bool, now_ms: i64) -> Self {
        let tail = if tail_on {
            snapshot
                .tail
                .iter()
                .map(|(topic, records)| TopicTail { topic: topic.clone(), records: Part::Ok(records.clone()) })
                .collect()
        } else {
            Vec::new()
        };
        LiveView {
            tenant_id: tenant.get(),
            sampled_at: Some(crate::clock::rfc3339_ms(snapshot.sampled_at)),
            age_ms: Some((now_ms - snapshot.sampled_at).max(0)),
            caught_up: snapshot.caught_up,
            problem: snapshot.problem.clone(),
            groups: match &snapshot.groups {
                Ok(g) => Part::Ok(g.clone()),
                Err(e) => Part::Unavailable(e.clone()),
            },
            throughput: snapshot.throughput.clone(),
            tail_enabled: tail_on,
            tail,
            waf_events: if tail_on { snapshot.waf_rows.clone() } else { Vec::new() },
            waf: Part::Ok(snapshot.waf.clone()),
        }
    }
}

/// The sampler's latest view of `tenant` (marking it watched).
/// `tail_on`: whether operators let the dashboard show this tenant's records.
pub async fn view(sampler: Option<&Arc<Sampler>>, tenant: TenantId, tail_on: bool) -> Result<LiveView> {
    let sampler = sampler.ok_or_else(|| Error::Unavailable("no Kafka cluster is configured".into()))?;
    Ok(match sampler.view(tenant).await {
        Some(snapshot) => LiveView::of(tenant, &snapshot, tail_on, crate::clock::now_ms()),
        None => LiveView::pending(tenant, tail_on, sampler.problem()),
    })
}
