//! The audit log: every mutating request, every bundle download and every sign-in, with time,
//! actor, role, source address, action, target and outcome. Append-only: the table refuses
//! updates and deletes (triggers in the migration), and nothing in outflow issues them.
//!
//! A change writes its entry in its own transaction (the store stages it in `audit_outbox`), so a
//! change cannot commit without its entry; after the response the HTTP layer (`http::audit`)
//! moves the entry to `audit_log` with the status the caller got, and `store::audit::recover`
//! moves what a crash left behind. This module reads the log for the API and the Audit page.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::audit::Query;
use crate::tenants::TenantId;

pub use crate::store::audit::{EntryRow, name_actor, outcome};

/// Filters of `GET /api/v1/audit` and the audit page.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Only entries about this tenant.
    #[param(minimum = 1, maximum = 999999)]
    pub tenant: Option<i64>,
    /// Only this actor (email or token name), exact.
    pub actor: Option<String>,
    /// Only actions containing this text, e.g. `credentials` or `sign-in`.
    pub action: Option<String>,
    /// From this time on, RFC 3339 or unix seconds.
    #[param(schema_with = time_schema)]
    pub since: Option<String>,
    /// Before this time, RFC 3339 or unix seconds.
    #[param(schema_with = time_schema)]
    pub until: Option<String>,
    /// Page size, 1..=500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Pagination cursor: entries with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
}

/// What `since` and `until` accept: an RFC 3339 time or unix seconds.
fn time_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    OneOfBuilder::new()
        .description(Some("an RFC 3339 time or unix seconds"))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^-?[0-9]{1,18}$")))
        .into()
}

/// An entry as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct EntryView {
    pub id: i64,
    pub at: String,
    #[schema(example = "ops@acme.example")]
    pub actor: String,
    #[schema(example = "tenant")]
    pub role: String,
    pub tenant_id: Option<i64>,
    #[schema(example = "192.0.2.10")]
    pub source: String,
    #[schema(example = "POST /api/v1/tenants/{id}/credentials")]
    pub action: String,
    #[schema(example = "/api/v1/tenants/83/credentials")]
    pub target: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    pub status: i64,
    pub detail: String,
}

impl From<EntryRow> for EntryView {
    fn from(e: EntryRow) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor,
            role: e.role,
            tenant_id: e.tenant_id,
            source: e.source,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            status: e.status,
            detail: e.detail,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditPage)]
pub struct Page {
    pub entries: Vec<EntryView>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

fn parse_time(field: &str, text: &str) -> Result<i64> {
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| Error::invalid(field, format!("{field} must be RFC 3339 or unix seconds, got {text:?}")))
}

/// Entries matching `filter` that `caller` may read, newest first. Tenant callers see only
/// entries about their own tenant, whatever the filter says; agents see none.
pub async fn list(store: &Store, caller: &Principal, filter: &Filter) -> Result<Page> {
    if let Some(t) = filter.tenant
        && TenantId::parse(t).is_err()
    {
        return Err(Error::invalid("tenant", format!("tenant must be between 1 and {}, got {t}", TenantId::MAX)));
    }
    let tenant = match caller.role() {
        Role::Operator => filter.tenant,
        Role::Tenant => {
            let own = caller.tenant_id;
            if filter.tenant.is_some() && filter.tenant != own {
                return Err(Error::Forbidden("this account may only access its own tenant"));
            }
            own
        }
        Role::Agent => return Err(Error::Forbidden("agent tokens may only read allowlists and report status")),
    };
    let limit = filter.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "limit must be between 1 and 500"));
    }
    let query = Query {
        tenant,
        actor: filter.actor.clone(),
        action: filter.action.clone(),
        since: filter.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
        until: filter.until.as_deref().map(|t| parse_time("until", t)).transpose()?,
        before: filter.before,
        limit: limit + 1,
    };
    let mut rows = crate::store::audit::list(store, &query).await?;
    let next_before = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { entries: rows.into_iter().map(EntryView::from).collect(), next_before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("since", "1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("since", "2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(matches!(parse_time("until", "yesterday"), Err(Error::Invalid { field, .. }) if field == "until"));
    }
}
