//! Alert rules, the state of their instances and their history. A rule belongs to a tenant, or
//! with `tenant_id` null to the operators. Instance changes and the messages they queue commit
//! together (see [`Transition`]): a restarted evaluator never announces a firing twice.

use sqlx::{AnyConnection, FromRow};

use super::{Flag, Store, audit};
use crate::clock::now;
use crate::error::{Error, Result};

/// A rule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub kind: String,
    pub name: String,
    /// The kind's parameters, JSON.
    pub params: String,
    pub repeat_secs: i64,
    pub muted_until: Option<i64>,
    pub is_default: bool,
    /// Bumped by every change: evaluator state of an older version is dropped.
    pub version: i64,
    pub created_at: i64,
    pub channels: Vec<i64>,
}

#[derive(FromRow)]
struct RuleDb {
    id: i64,
    tenant_id: Option<i64>,
    kind: String,
    name: String,
    params: String,
    repeat_secs: i64,
    muted_until: Option<i64>,
    is_default: Flag,
    version: i64,
    created_at: i64,
}

macro_rules! select_rules {
    () => {
        "select id, tenant_id, kind, name, params, repeat_secs, muted_until, is_default, version, created_at \
         from alert_rules"
    };
}

/// The owner's rows: a tenant's, or with a null `$1` the operators' (both backends read
/// `is not distinct from`; SQLite since 3.39).
macro_rules! owner {
    () => {
        "tenant_id is not distinct from $1"
    };
}

/// What a create or update writes.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub params: &'a str,
    pub repeat_secs: i64,
    pub channels: &'a [i64],
}

async fn with_channels(conn: &mut AnyConnection, rules: Vec<RuleDb>) -> Result<Vec<RuleRow>> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let channels: Vec<(i64,)> =
            sqlx::query_as("select channel_id from alert_rule_channels where rule_id = $1 order by channel_id")
                .bind(r.id)
                .fetch_all(&mut *conn)
                .await?;
        out.push(RuleRow {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            name: r.name,
            params: r.params,
            repeat_secs: r.repeat_secs,
            muted_until: r.muted_until,
            is_default: r.is_default.0,
            version: r.version,
            created_at: r.created_at,
            channels: channels.into_iter().map(|(c,)| c).collect(),
        });
    }
    Ok(out)
}

/// The rules of a tenant (or the operators'), oldest first.
pub async fn list_rules(store: &Store, tenant: Option<i64>) -> Result<Vec<RuleRow>> {
    let mut conn = store.pool.acquire().await?;
    let sql = concat!(select_rules!(), " where ", owner!(), " order by id");
    let rows: Vec<RuleDb> = sqlx::query_as(sql).bind(tenant).fetch_all(&mut *conn).await?;
    with_channels(&mut conn, rows).await
}

/// Every rule, for the evaluator.
pub async fn all_rules(store: &Store) -> Result<Vec<RuleRow>> {
    let mut conn = store.pool.acquire().await?;
    let rows: Vec<RuleDb> = sqlx::query_as(concat!(select_rules!(), " order by id")).fetch_all(&mut *conn).await?;
    with_channels(&mut conn, rows).await
}

pub async fn find_rule(store: &Store, tenant: Option<i64>, id: i64) -> Result<RuleRow> {
    let mut conn = store.pool.acquire().await?;
    find_in(&mut conn, tenant, id).await
}

async fn find_in(conn: &mut AnyConnection, tenant: Option<i64>, id: i64) -> Result<RuleRow> {
    let sql = concat!(select_rules!(), " where ", owner!(), " and id = $2");
    let row: Option<RuleDb> = sqlx::query_as(sql).bind(tenant).bind(id).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("no alert rule {id}")))?;
    Ok(with_channels(conn, vec![row]).await?.remove(0))
}

/// Links `channels` to `rule`, refusing channels that are not the owner's.
async fn link_channels(conn: &mut AnyConnection, tenant: Option<i64>, rule: i64, channels: &[i64]) -> Result<()> {
    sqlx::query("delete from alert_rule_channels where rule_id = $1").bind(rule).execute(&mut *conn).await?;
    for &ch in channels {
        let sql = concat!("select id from alert_channels where ", owner!(), " and id = $2");
        let found: Option<(i64,)> = sqlx::query_as(sql).bind(tenant).bind(ch).fetch_optional(&mut *conn).await?;
        if found.is_none() {
            return Err(Error::invalid("channels", format!("no alert channel {ch} of this owner")));
        }
        sqlx::query("insert into alert_rule_channels (rule_id, channel_id) values ($1, $2) on conflict do nothing")
            .bind(rule)
            .bind(ch)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Creates a rule; refused (422 `kind`) past `max` rules of the owner.
pub async fn create_rule(store: &Store, tenant: Option<i64>, input: &RuleInput<'_>, max: usize) -> Result<RuleRow> {
    let mut tx = store.pool.begin().await?;
    // The insert first: on SQLite it takes the write lock before the count it depends on.
    let inserted: std::result::Result<(i64,), sqlx::Error> = sqlx::query_as(
        "insert into alert_rules (tenant_id, kind, name, params, repeat_secs, created_at) \
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(tenant)
    .bind(input.kind)
    .bind(input.name)
    .bind(input.params)
    .bind(input.repeat_secs)
    .bind(now())
    .fetch_one(&mut *tx)
    .await;
    let (id,) = match inserted {
        Err(e) if super::foreign_key_violation(&e) => {
            return Err(Error::NotFound(format!("no tenant {}", tenant.unwrap_or(0))));
        }
        other => other?,
    };
    let sql = concat!("select count(*) from alert_rules where ", owner!());
    let (n,): (i64,) = sqlx::query_as(sql).bind(tenant).fetch_one(&mut *tx).await?;
    if usize::try_from(n).unwrap_or(usize::MAX) > max {
        return Err(Error::invalid("kind", format!("at most {max} alert rules; delete one first")));
    }
    link_channels(&mut tx, tenant, id, input.channels).await?;
    let rule = find_in(&mut tx, tenant, id).await?;
    audit::stage(&mut tx, tenant, &format!("alert rule {id} ({}) created", input.kind)).await?;
    tx.commit().await?;
    Ok(rule)
}

/// The rules every new tenant starts with (no channels until the tenant adds one).
pub async fn create_defaults(conn: &mut AnyConnection, tenant: i64, rules: &[(&str, &str, String)]) -> Result<()> {
    for (kind, name, params) in rules {
        sqlx::query(
            "insert into alert_rules (tenant_id, kind, name, params, repeat_secs, is_default, created_at) \
             values ($1, $2, $3, $4, $5, true, $6)",
        )
        .bind(tenant)
        .bind(*kind)
        .bind(*name)
        .bind(params.as_str())
        .bind(crate::alerts::rules::DEFAULT_REPEAT_SECS)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Replaces a rule's name, parameters, repeat interval and channels (its kind stays).
pub async fn update_rule(store: &Store, tenant: Option<i64>, id: i64, input: &RuleInput<'_>) -> Result<RuleRow> {
    let mut tx = store.pool.begin().await?;
    let sql = concat!(
        "update alert_rules set name = $3, params = $4, repeat_secs = $5, version = version + 1 where ",
        owner!(),
        " and id = $2 and kind = $6"
    );
    let done = sqlx::query(sql)
        .bind(tenant)
        .bind(id)
        .bind(input.name)
        .bind(input.params)
        .bind(input.repeat_secs)
        .bind(input.kind)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        let existing = find_in(&mut tx, tenant, id).await?;
        return Err(Error::invalid("kind", format!("rule {id} is a {}; its kind cannot change", existing.kind)));
    }
    link_channels(&mut tx, tenant, id, input.channels).await?;
    let rule = find_in(&mut tx, tenant, id).await?;
    audit::stage(&mut tx, tenant, &format!("alert rule {id} updated")).await?;
    tx.commit().await?;
    Ok(rule)
}

pub async fn delete_rule(store: &Store, tenant: Option<i64>, id: i64) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    let sql = concat!("delete from alert_rules where ", owner!(), " and id = $2");
    let done = sqlx::query(sql).bind(tenant).bind(id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no alert rule {id}")));
    }
    audit::stage(&mut tx, tenant, &format!("alert rule {id} deleted")).await?;
    tx.commit().await?;
    Ok(())
}

/// Mutes a rule until `until` (unix seconds), or unmutes it with `None`.
pub async fn mute_rule(store: &Store, tenant: Option<i64>, id: i64, until: Option<i64>) -> Result<RuleRow> {
    let mut tx = store.pool.begin().await?;
    let sql = concat!("update alert_rules set muted_until = $3 where ", owner!(), " and id = $2");
    let done = sqlx::query(sql).bind(tenant).bind(id).bind(until).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no alert rule {id}")));
    }
    let rule = find_in(&mut tx, tenant, id).await?;
    let what = match until {
        Some(t) => format!("alert rule {id} muted until {}", crate::clock::rfc3339(t)),
        None => format!("alert rule {id} unmuted"),
    };
    audit::stage(&mut tx, tenant, &what).await?;
    tx.commit().await?;
    Ok(rule)
}

/// One instance's state.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct InstanceRow {
    pub rule_id: i64,
    pub fingerprint: String,
    /// JSON object of the labels.
    pub labels: String,
    pub state: String,
    pub value: f64,
    pub pending_since: Option<i64>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub notified_at: Option<i64>,
    pub clearing_since: Option<i64>,
    pub updated_at: i64,
}

macro_rules! select_instances {
    () => {
        "select i.rule_id, i.fingerprint, i.labels, i.state, i.value, i.pending_since, i.starts_at, i.ends_at, \
         i.notified_at, i.clearing_since, i.updated_at from alert_instances i"
    };
}

/// Every instance not resolved, for the evaluator's start.
pub async fn open_instances(store: &Store) -> Result<Vec<InstanceRow>> {
    Ok(sqlx::query_as(concat!(select_instances!(), " where i.state <> 'resolved'")).fetch_all(&store.pool).await?)
}

/// A tenant's (or the operators') instances, newest first; `state` filters.
pub async fn list_instances(store: &Store, tenant: Option<i64>, state: Option<&str>) -> Result<Vec<InstanceRow>> {
    let sql = concat!(
        select_instances!(),
        " join alert_rules r on r.id = i.rule_id where r.tenant_id is not distinct from $1 \
         and ($2 is null or i.state = $2) order by i.updated_at desc, i.fingerprint limit 500"
    );
    Ok(sqlx::query_as(sql).bind(tenant).bind(state).fetch_all(&store.pool).await?)
}

/// Firing instances per tenant, for the dashboard's badge.
pub async fn firing_count(store: &Store, tenant: i64) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from alert_instances i join alert_rules r on r.id = i.rule_id \
         where r.tenant_id = $1 and i.state = 'firing'",
    )
    .bind(tenant)
    .fetch_one(&store.pool)
    .await?;
    Ok(n)
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub rule_id: i64,
    pub tenant_id: Option<i64>,
    pub fingerprint: String,
    pub at: i64,
    pub kind: String,
    pub value: f64,
    pub labels: String,
}

/// History, newest first, `limit` rows with ids below `before` (paging).
pub async fn list_events(store: &Store, tenant: Option<i64>, before: Option<i64>, limit: i64) -> Result<Vec<EventRow>> {
    let sql = concat!(
        "select id, rule_id, tenant_id, fingerprint, at, kind, value, labels from alert_events where ",
        owner!(),
        " and ($2 is null or id < $2) order by id desc limit $3"
    );
    Ok(sqlx::query_as(sql).bind(tenant).bind(before).bind(limit).fetch_all(&store.pool).await?)
}

/// Writes instance states and their history in one transaction (the caller may queue the
/// messages in the same one: see [`begin`]).
pub async fn write_instance(conn: &mut AnyConnection, i: &InstanceRow) -> Result<()> {
    sqlx::query(
        "insert into alert_instances (rule_id, fingerprint, labels, state, value, pending_since, starts_at, \
         ends_at, notified_at, clearing_since, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         on conflict (rule_id, fingerprint) do update set labels = excluded.labels, state = excluded.state, \
         value = excluded.value, pending_since = excluded.pending_since, starts_at = excluded.starts_at, \
         ends_at = excluded.ends_at, notified_at = excluded.notified_at, clearing_since = excluded.clearing_since, \
         updated_at = excluded.updated_at",
    )
    .bind(i.rule_id)
    .bind(&i.fingerprint)
    .bind(&i.labels)
    .bind(&i.state)
    .bind(i.value)
    .bind(i.pending_since)
    .bind(i.starts_at)
    .bind(i.ends_at)
    .bind(i.notified_at)
    .bind(i.clearing_since)
    .bind(i.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn write_event(conn: &mut AnyConnection, tenant: Option<i64>, i: &InstanceRow, kind: &str) -> Result<()> {
    sqlx::query(
        "insert into alert_events (rule_id, tenant_id, fingerprint, at, kind, value, labels) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(i.rule_id)
    .bind(tenant)
    .bind(&i.fingerprint)
    .bind(i.updated_at)
    .bind(kind)
    .bind(i.value)
    .bind(&i.labels)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops resolved instances older than `before` (their history stays in the events).
pub async fn prune_resolved(store: &Store, before: i64) -> Result<u64> {
    let done = sqlx::query("delete from alert_instances where state = 'resolved' and updated_at < $1")
        .bind(before)
        .execute(&store.pool)
        .await?;
    Ok(done.rows_affected())
}

/// A transaction for the evaluator's writes.
pub async fn begin(store: &Store) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    Ok(store.pool.begin().await?)
}
