use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::doc::TenantPath;
use crate::error::{Error, Result};
use crate::firewall::brokers::BrokerId;
use crate::http::{Agent, AppJson, AppQuery, ErrorBody, Operator, TenantScope};
use crate::state::AppState;
use crate::usage::{self, ReportOutcome, TenantUsage, UsageQuery, UsageRanking, UsageReport};

#[utoipa::path(post, path = "/agent/usage", tag = "agent",
    description = "An agent reports its broker's cumulative per-topic counters (bytes out, bytes in, records in of \
                   the tenant topics), for the broker its token is bound to. The growth since the broker's last \
                   report is added to the current hour; a report not newer than the last is a retry and changes \
                   nothing; a counter below its last value means the broker restarted.",
    request_body = UsageReport,
    responses((status = 200, body = ReportOutcome),
        (status = 403, description = "another broker than the token's, or a token bound to none", body = ErrorBody)))]
pub async fn report_usage(
    Agent(agent): Agent,
    State(state): State<AppState>,
    AppJson(input): AppJson<UsageReport>,
) -> Result<Json<ReportOutcome>> {
    let named = input.broker_id.as_deref().map(BrokerId::parse).transpose()?;
    let bound = crate::firewall::brokers::reporting_broker(named.as_ref(), agent.broker().as_ref())?;
    Ok(Json(usage::record_report(&state.store, &bound, &input).await?))
}

/// Whether the caller asked for CSV (`?format=csv` or `Accept: text/csv`); 422 for another format.
fn wants_csv(query: &UsageQuery, headers: &HeaderMap) -> Result<bool> {
    match query.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(Error::invalid("format", format!("format must be json or csv, got {other:?}"))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.split(',').any(|m| m.trim().starts_with("text/csv")))),
    }
}

fn csv(body: String, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/tenants/{id}/usage", tag = "usage",
    description = "The tenant's usage per hour in [from, to): bytes and records delivered to its consumers, bytes and \
                   records written into its topics. Only hours with usage are listed; the current hour, still open, is \
                   marked `partial`. JSON, or CSV with `?format=csv` or `Accept: text/csv` (columns in docs/usage.md).",
    params(TenantPath, UsageQuery),
    responses((status = 200, description = "usage per hour",
        content((TenantUsage = "application/json"), (String = "text/csv")))))]
pub async fn tenant_usage(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<UsageQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let range = query.range(state.config.usage.max_range_days)?;
    let csv_wanted = wants_csv(&query, &headers)?;
    crate::tenants::get(&state.store, id).await?;
    let report = usage::tenant_usage(&state.store, id, &range).await?;
    Ok(if csv_wanted { csv(report.csv(), &format!("usage-c{id}.csv")) } else { Json(report).into_response() })
}

#[utoipa::path(get, path = "/usage", tag = "usage",
    description = "Every tenant's usage totals in [from, to), most bytes out first (operators only). JSON, or CSV \
                   with `?format=csv` or `Accept: text/csv`.",
    params(UsageQuery),
    responses((status = 200, description = "tenants ranked by bytes out",
        content((UsageRanking = "application/json"), (String = "text/csv")))))]
pub async fn usage_ranking(
    _: Operator,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<UsageQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let range = query.range(state.config.usage.max_range_days)?;
    let csv_wanted = wants_csv(&query, &headers)?;
    let ranking = usage::ranking(&state.store, &range).await?;
    Ok(if csv_wanted { csv(ranking.csv(), "usage.csv") } else { Json(ranking).into_response() })
}
