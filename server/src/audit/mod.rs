//! The audit log: every mutating request, every bundle download and every sign-in, with time,
//! actor, role, source address, action, target and outcome. Append-only: the table refuses
//! updates and deletes (triggers in the migration), and nothing in outflow issues them.
//!
//! A change writes its entry in its own transaction ([`stage`], into `audit_outbox`), so a change
//! cannot commit without its entry; after the response the route layer moves the entry to
//! `audit_log` with the status the caller got, and [`recover`] moves what a crash left behind.
//! The request's audit scope reaches the domain through a task-local set by the route layer, so
//! domain functions stay free of HTTP types; outside a request (CLI, workers) staging is a no-op.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::{AuditActor, Principal, Role};
use crate::error::{Error, Result};
use crate::tenants::{TenantId, now, rfc3339};

/// Set on a response by handlers whose actor is not an authenticated principal (sign-in, where
/// the actor is the account that tried) or that add a detail.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<(String, String)>,
    pub action: Option<&'static str>,
    pub detail: String,
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: String,
    pub role: String,
    pub tenant_id: Option<i64>,
    pub source: String,
    pub action: String,
    pub target: String,
    pub status: u16,
    pub detail: String,
}

/// `success` for 2xx/3xx, `denied` for 401/403/429, `failure` for anything else.
pub fn outcome(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        401 | 403 | 429 => "denied",
        _ => "failure",
    }
}

async fn insert(conn: &mut SqliteConnection, e: &Entry, at: i64) -> Result<()> {
    sqlx::query(
        "insert into audit_log (at, actor, role, tenant_id, source, action, target, outcome, status, detail) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(at)
    .bind(&e.actor)
    .bind(&e.role)
    .bind(e.tenant_id)
    .bind(&e.source)
    .bind(&e.action)
    .bind(&e.target)
    .bind(outcome(e.status))
    .bind(i64::from(e.status))
    .bind(&e.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the route layer knows of a request before the handler runs, and what the handler's
/// changes staged.
#[derive(Debug)]
struct Scope {
    actor: AuditActor,
    source: String,
    action: String,
    target: String,
    /// Set by handlers whose actor is not the authenticated principal (sign-in).
    named: Mutex<Option<(String, String, Option<i64>)>>,
    /// Outbox rows staged by the request's changes: (id, tenant id).
    staged: Mutex<Vec<(i64, Option<i64>)>>,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

fn scope() -> Option<Arc<Scope>> {
    SCOPE.try_with(Arc::clone).ok()
}

/// Names the actor of the current request's entry when it is not the authenticated principal
/// (a sign-in names the account that signed in).
pub fn name_actor(name: &str, role: &str, tenant: Option<TenantId>) {
    if let Some(scope) = scope() {
        *scope.named.lock().expect("audit scope") = Some((name.to_owned(), role.to_owned(), tenant.map(TenantId::get)));
    }
}

/// Writes the current request's audit entry inside the transaction of the change it records.
/// `tenant` is the tenant the change is about (it also shows the entry in that tenant's audit
/// view). Outside a request this does nothing.
pub async fn stage(conn: &mut SqliteConnection, tenant: Option<TenantId>, detail: &str) -> Result<()> {
    let Some(scope) = scope() else { return Ok(()) };
    let (actor, role, own_tenant) = actor_of(&scope);
    let tenant = tenant.map(TenantId::get).or(own_tenant);
    let (id,): (i64,) = sqlx::query_as(
        "insert into audit_outbox (at, actor, role, tenant_id, source, action, target, detail) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(now())
    .bind(&actor)
    .bind(&role)
    .bind(tenant)
    .bind(&scope.source)
    .bind(&scope.action)
    .bind(&scope.target)
    .bind(detail)
    .fetch_one(&mut *conn)
    .await?;
    scope.staged.lock().expect("audit scope").push((id, tenant));
    Ok(())
}

/// [`stage`] for requests that change nothing in the database (downloads, checks).
pub async fn stage_read(db: &SqlitePool, tenant: Option<TenantId>, detail: &str) -> Result<()> {
    let mut conn = db.acquire().await?;
    stage(&mut conn, tenant, detail).await
}

fn actor_of(scope: &Scope) -> (String, String, Option<i64>) {
    if let Some(named) = scope.named.lock().expect("audit scope").clone() {
        return named;
    }
    match scope.actor.get() {
        Some(p) => (p.name.clone(), p.role().to_string(), p.tenant_id),
        None => ("anonymous".into(), "anonymous".into(), None),
    }
}

/// Moves outbox entries a crash left behind into the audit log, with status 0 ("the change
/// committed; the server stopped before answering"). Run at start, before serving.
pub async fn recover(db: &SqlitePool) -> Result<u64> {
    let mut tx = db.begin().await?;
    let moved = sqlx::query(
        "insert into audit_log (at, actor, role, tenant_id, source, action, target, outcome, status, detail) \
         select at, actor, role, tenant_id, source, action, target, 'success', 0, \
                case when detail = '' then 'server stopped before answering' \
                     else detail || '; server stopped before answering' end \
         from audit_outbox order by id",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("delete from audit_outbox").execute(&mut *tx).await?;
    tx.commit().await?;
    if moved > 0 {
        tracing::warn!(entries = moved, "recovered audit entries of changes interrupted by a stop");
    }
    Ok(moved)
}

/// The client address of a request (the TCP peer; outflow does not trust forwarding headers).
pub fn source_of(extensions: &axum::http::Extensions) -> String {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Extractor for the client address of a request, as the audit log records it.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(source_of(&parts.extensions)))
    }
}

fn audited(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path.ends_with("/bundle.zip")
}

/// Route layer recording audited requests. Changes stage their entry in their own transaction
/// (see [`stage`]); after the response this moves it to the log with the final status, or writes
/// the entry itself for requests that changed nothing (refusals, errors). The caller extractors
/// fill the `AuditActor` slot, so the entry names the principal the request was authorised as,
/// or `anonymous` when authentication failed.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !audited(req.method(), &path) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let template = parts.extensions.get::<MatchedPath>().map_or_else(|| path.clone(), |m| m.as_str().to_owned());
    let path_tenant = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|p| p.iter().find(|(k, _)| *k == "id").and_then(|(_, v)| TenantId::parse_str(v).ok()))
        .filter(|_| template.contains("/tenants/{id}"))
        .map(TenantId::get);
    let actor = AuditActor::default();
    parts.extensions.insert(actor.clone());
    let scope = Arc::new(Scope {
        actor,
        source: source_of(&parts.extensions),
        action: format!("{} {template}", parts.method),
        // Invitation links carry a secret: record the route, not the link.
        target: if template.contains("{secret}") { template.clone() } else { path },
        named: Mutex::new(None),
        staged: Mutex::new(Vec::new()),
    });

    let response = SCOPE.scope(scope.clone(), next.run(Request::from_parts(parts, body))).await;

    let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    if let Some((name, role)) = note.actor {
        let mut named = scope.named.lock().expect("audit scope");
        let tenant = named.as_ref().and_then(|n| n.2);
        *named = Some((name, role, tenant));
    }
    let (name, role, own_tenant) = actor_of(&scope);
    let staged = std::mem::take(&mut *scope.staged.lock().expect("audit scope"));
    let status = response.status().as_u16();
    let entry = Entry {
        actor: name,
        role,
        tenant_id: staged.iter().find_map(|(_, t)| *t).or(path_tenant).or(own_tenant),
        source: scope.source.clone(),
        action: note.action.map_or_else(|| scope.action.clone(), str::to_owned),
        target: scope.target.clone(),
        status,
        detail: note.detail,
    };
    let authenticated = scope.actor.get().is_some() || scope.named.lock().expect("audit scope").is_some();
    if staged.is_empty() && authenticated && (200..400).contains(&status) {
        // A success that staged nothing is a change recorded after its commit: a bug to fix.
        // (Anonymous requests change nothing: they are refused or sent to the sign-in page.)
        state.metrics.audit_unstaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(action = entry.action, "successful audited request staged no audit entry");
    }
    // An audit write that fails is logged loudly; a staged entry stays in the outbox for recovery.
    if let Err(e) = finish(&state.db, &entry, &staged).await {
        tracing::error!(error = ?e, action = entry.action, "audit log write failed");
    }
    response
}

/// The entry with the final status, replacing what the request staged, in one transaction.
async fn finish(db: &SqlitePool, entry: &Entry, staged: &[(i64, Option<i64>)]) -> Result<()> {
    let mut tx = db.begin().await?;
    let mut entry = entry.clone();
    let mut at = now();
    for (id, _) in staged {
        let row: Option<(i64, String)> = sqlx::query_as("delete from audit_outbox where id = $1 returning at, detail")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((staged_at, detail)) = row {
            at = staged_at;
            if entry.detail.is_empty() {
                entry.detail = detail;
            }
        }
    }
    insert(&mut tx, &entry, at).await?;
    tx.commit().await?;
    Ok(())
}

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

#[derive(Debug, Clone, FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub tenant_id: Option<i64>,
    pub source: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub status: i64,
    pub detail: String,
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
pub async fn list(db: &SqlitePool, caller: &Principal, filter: &Filter) -> Result<Page> {
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
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "select id, at, actor, role, tenant_id, source, action, target, outcome, status, detail from audit_log where 1 = 1",
    );
    if let Some(t) = tenant {
        q.push(" and tenant_id = ").push_bind(t);
    }
    if let Some(actor) = &filter.actor {
        q.push(" and actor = ").push_bind(actor.clone());
    }
    if let Some(action) = &filter.action {
        q.push(" and instr(action, ").push_bind(action.clone()).push(") > 0");
    }
    if let Some(since) = &filter.since {
        q.push(" and at >= ").push_bind(parse_time("since", since)?);
    }
    if let Some(until) = &filter.until {
        q.push(" and at < ").push_bind(parse_time("until", until)?);
    }
    if let Some(before) = filter.before {
        q.push(" and id < ").push_bind(before);
    }
    q.push(" order by id desc limit ").push_bind(limit + 1);
    let mut rows: Vec<EntryRow> = q.build_query_as().fetch_all(db).await?;
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
    fn outcomes_follow_the_status() {
        assert_eq!(outcome(201), "success");
        assert_eq!(outcome(303), "success");
        assert_eq!(outcome(403), "denied");
        assert_eq!(outcome(429), "denied");
        assert_eq!(outcome(422), "failure");
        assert_eq!(outcome(500), "failure");
    }

    #[test]
    fn reads_are_not_audited_except_downloads() {
        assert!(!audited(&Method::GET, "/api/v1/tenants"));
        assert!(audited(&Method::GET, "/api/v1/tenants/83/bundle.zip"));
        assert!(audited(&Method::POST, "/login"));
        assert!(audited(&Method::DELETE, "/api/v1/tenants/83"));
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("since", "1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("since", "2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(matches!(parse_time("until", "yesterday"), Err(Error::Invalid { field, .. }) if field == "until"));
    }
}
