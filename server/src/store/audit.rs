//! Audit log persistence: the outbox a change stages its entry in (inside its own transaction),
//! the append-only log, and the request scope that tells [`stage`] whose entry it writes.
//!
//! The scope reaches the store through a task-local set by the HTTP layer, so domain functions
//! need no HTTP types; outside a request (CLI, workers) staging does nothing.

use std::future::Future;
use std::sync::{Arc, Mutex};

use sqlx::{AnyConnection, FromRow};

use super::Store;
use crate::clock::now;
use crate::error::Result;

/// Who an entry names: an account or token, its role and the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
    pub tenant: Option<i64>,
}

impl Actor {
    fn anonymous() -> Self {
        Self { name: "anonymous".into(), role: "anonymous".into(), tenant: None }
    }
}

/// What the HTTP layer knows of an audited request, and what the request's changes staged.
#[derive(Debug)]
pub struct Scope {
    /// The replica serving the request (its outbox rows are its own to finish).
    pub replica: String,
    pub source: String,
    pub action: String,
    pub target: String,
    /// The principal the request was authorised as (set by the caller extractors).
    authenticated: Mutex<Option<Actor>>,
    /// Set where the actor is not the authenticated principal (a sign-in names the account).
    named: Mutex<Option<Actor>>,
    /// Outbox rows staged by the request's changes: (id, tenant id).
    staged: Mutex<Vec<(i64, Option<i64>)>>,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

impl Scope {
    pub fn new(replica: String, source: String, action: String, target: String) -> Arc<Self> {
        Arc::new(Self {
            replica,
            source,
            action,
            target,
            authenticated: Mutex::new(None),
            named: Mutex::new(None),
            staged: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` (the request) with this scope current.
    pub async fn run<F: Future>(self: &Arc<Self>, f: F) -> F::Output {
        SCOPE.scope(self.clone(), f).await
    }

    pub fn authenticate(&self, actor: Actor) {
        *self.authenticated.lock().expect("audit scope") = Some(actor);
    }

    /// Names the actor when it is not the authenticated principal. A name without a tenant
    /// keeps the tenant an earlier name gave.
    pub fn name(&self, mut actor: Actor) {
        let mut named = self.named.lock().expect("audit scope");
        if actor.tenant.is_none() {
            actor.tenant = named.as_ref().and_then(|n| n.tenant);
        }
        *named = Some(actor);
    }

    /// Whether anyone is named: an authenticated principal or an account that signed in.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.lock().expect("audit scope").is_some() || self.named.lock().expect("audit scope").is_some()
    }

    /// The actor the entry names.
    pub fn actor(&self) -> Actor {
        let named = self.named.lock().expect("audit scope").clone();
        named.or_else(|| self.authenticated.lock().expect("audit scope").clone()).unwrap_or_else(Actor::anonymous)
    }

    /// The outbox rows staged so far, emptied.
    pub fn take_staged(&self) -> Vec<(i64, Option<i64>)> {
        std::mem::take(&mut *self.staged.lock().expect("audit scope"))
    }
}

/// The scope of the request this task serves, if any.
pub fn current() -> Option<Arc<Scope>> {
    SCOPE.try_with(Arc::clone).ok()
}

/// Names the actor of the current request's entry (see [`Scope::name`]).
pub fn name_actor(name: &str, role: &str, tenant: Option<i64>) {
    if let Some(scope) = current() {
        scope.name(Actor { name: name.to_owned(), role: role.to_owned(), tenant });
    }
}

/// `success` for 2xx/3xx, `denied` for 401/403/429, `failure` for anything else.
pub fn outcome(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        401 | 403 | 429 => "denied",
        _ => "failure",
    }
}

/// Writes the current request's audit entry inside the transaction of the change it records.
/// `tenant` is the tenant the change is about (it also shows the entry in that tenant's audit
/// view). Outside a request this does nothing.
pub(super) async fn stage(conn: &mut AnyConnection, tenant: Option<i64>, detail: &str) -> Result<()> {
    let Some(scope) = current() else { return Ok(()) };
    let actor = scope.actor();
    let tenant = tenant.or(actor.tenant);
    let (id,): (i64,) = sqlx::query_as(
        "insert into audit_outbox (at, actor, role, tenant_id, source, action, target, detail, replica) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(now())
    .bind(&actor.name)
    .bind(&actor.role)
    .bind(tenant)
    .bind(&scope.source)
    .bind(&scope.action)
    .bind(&scope.target)
    .bind(detail)
    .bind(&scope.replica)
    .fetch_one(&mut *conn)
    .await?;
    scope.staged.lock().expect("audit scope").push((id, tenant));
    Ok(())
}

/// [`stage`] for requests that change nothing in the database (downloads, checks).
pub async fn stage_read(store: &Store, tenant: Option<i64>, detail: &str) -> Result<()> {
    let mut conn = store.pool.acquire().await?;
    stage(&mut conn, tenant, detail).await
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

async fn insert(conn: &mut AnyConnection, e: &Entry, at: i64) -> Result<()> {
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

/// Appends `entry` with its final status, replacing the outbox rows the request staged (their
/// time and detail win), in one transaction.
pub async fn finish(store: &Store, entry: &Entry, staged: &[(i64, Option<i64>)]) -> Result<()> {
    let mut tx = store.pool.begin().await?;
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

/// Moves outbox entries a crash left behind into the audit log, with status 0 ("the change
/// committed; the server stopped before answering"): those of other processes — on PostgreSQL,
/// of replicas that stopped heartbeating. Run at start and with every heartbeat.
pub async fn recover(store: &Store) -> Result<u64> {
    let now = super::lease::now_ms(store.backend);
    // SQLite serves one process: whatever another (earlier) process staged is orphaned. On
    // PostgreSQL a replica still heartbeating may yet finish its entries.
    let orphaned = match store.backend {
        super::Backend::Sqlite => "replica <> $1".to_owned(),
        super::Backend::Postgres => {
            format!("replica <> $1 and replica not in (select id from replicas where heartbeat_at > {now} - $2)")
        }
    };
    let mut tx = store.pool.begin().await?;
    let insert = format!(
        "insert into audit_log (at, actor, role, tenant_id, source, action, target, outcome, status, detail) \
         select at, actor, role, tenant_id, source, action, target, 'success', 0, \
                case when detail = '' then 'server stopped before answering' \
                     else detail || '; server stopped before answering' end \
         from audit_outbox where {orphaned} order by id"
    );
    let bound = |sql: String| {
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(store.replica().to_owned());
        if store.backend == super::Backend::Postgres { q.bind(super::replicas::LIVE_MS) } else { q }
    };
    let moved = bound(insert).execute(&mut *tx).await?.rows_affected();
    bound(format!("delete from audit_outbox where {orphaned}")).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(moved)
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

/// Which entries to read; every set field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub tenant: Option<i64>,
    pub actor: Option<String>,
    /// Entries whose action contains this text (case-sensitive).
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Entries with an id below this.
    pub before: Option<i64>,
    pub limit: i64,
}

/// Entries matching `query`, newest first.
pub async fn list(store: &Store, query: &Query) -> Result<Vec<EntryRow>> {
    // Built by hand: `QueryBuilder<Any>` writes `?` placeholders, which PostgreSQL refuses.
    let mut sql = String::from(
        "select id, at, actor, role, tenant_id, source, action, target, outcome, status, detail from audit_log where 1 = 1",
    );
    let mut n = 0;
    let mut next = |clause: &str| {
        n += 1;
        clause.replace("$?", &format!("${n}"))
    };
    if query.tenant.is_some() {
        sql.push_str(&next(" and tenant_id = $?"));
    }
    if query.actor.is_some() {
        sql.push_str(&next(" and actor = $?"));
    }
    // `replace` is case-sensitive in both SQLite and PostgreSQL (unlike `like` on SQLite), and an
    // empty text matches everything as a substring test should.
    let action = query.action.as_ref().filter(|a| !a.is_empty());
    if action.is_some() {
        sql.push_str(&next(" and replace(action, $?, '') <> action"));
    }
    if query.since.is_some() {
        sql.push_str(&next(" and at >= $?"));
    }
    if query.until.is_some() {
        sql.push_str(&next(" and at < $?"));
    }
    if query.before.is_some() {
        sql.push_str(&next(" and id < $?"));
    }
    sql.push_str(&next(" order by id desc limit $?"));
    let mut q = sqlx::query_as::<_, EntryRow>(sqlx::AssertSqlSafe(sql));
    if let Some(t) = query.tenant {
        q = q.bind(t);
    }
    if let Some(actor) = &query.actor {
        q = q.bind(actor.clone());
    }
    if let Some(action) = action {
        q = q.bind(action.clone());
    }
    for value in [query.since, query.until, query.before].into_iter().flatten() {
        q = q.bind(value);
    }
    Ok(q.bind(query.limit).fetch_all(&store.pool).await?)
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
}
