//! Usage on the dashboard: the tenant page's chart (bytes out per hour, last 7 days) and the
//! operators' ranking of tenants by bytes out.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::{Nav, PageResult};
use crate::http::WebSession;
use crate::state::AppState;
use crate::tenants::TenantId;
use crate::usage::chart::{Chart, human_bytes};
use crate::usage::{self, Range, RangeQuery, UsageRanking};

/// The last 7 days up to the end of the current hour.
fn last_week(state: &AppState) -> crate::error::Result<Range> {
    Range::parse(&RangeQuery::default(), crate::clock::now(), state.config.usage.max_range_days)
}

/// The chart of a tenant's bytes out over the last 7 days.
pub(super) async fn chart(state: &AppState, tenant: TenantId) -> crate::error::Result<Chart> {
    let range = last_week(state)?;
    let report = usage::tenant_usage(&state.store, tenant, &range).await?;
    Ok(Chart::of(&report, &range))
}

/// One tenant's line in the ranking, its figures readable.
pub struct RankRow {
    pub tenant_id: i64,
    pub name: String,
    pub bytes_out: String,
    pub records_out: i64,
    pub bytes_in: String,
    pub records_in: i64,
    pub outflow_bytes: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/usage.html")]
pub struct UsagePage {
    nav: Nav,
    from: String,
    to: String,
    rows: Vec<RankRow>,
}

pub async fn usage_page(State(state): State<AppState>, WebSession(session): WebSession) -> PageResult<UsagePage> {
    session.principal.require_operator()?;
    let range = last_week(&state)?;
    let UsageRanking { from, to, tenants } = usage::ranking(&state.store, &range).await?;
    let rows = tenants
        .into_iter()
        .map(|t| RankRow {
            tenant_id: t.tenant_id,
            name: t.name,
            bytes_out: human_bytes(t.total.bytes_out),
            records_out: t.total.records_out,
            bytes_in: human_bytes(t.total.bytes_in),
            records_in: t.total.records_in,
            outflow_bytes: human_bytes(t.total.outflow_bytes),
        })
        .collect();
    Ok(UsagePage { nav: Nav::of(&session), from, to, rows })
}
