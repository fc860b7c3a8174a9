//! Alert channels: where a tenant's (or, with no tenant, the operators') alerts go. The URL and
//! the signing secrets are stored sealed; callers seal and open them. A channel's owner is a
//! tenant id, or 0 for the operators' channels (tenant ids start at 1).

use sqlx::{AnyConnection, FromRow};

use super::{Store, audit, foreign_key_violation};
use crate::clock::now;
use crate::error::Result;

/// A channel as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ChannelRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub kind: String,
    pub name: String,
    pub url_sealed: Vec<u8>,
    pub secret_sealed: Option<Vec<u8>>,
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_until: Option<i64>,
    #[sqlx(try_from = "super::Flag")]
    pub enabled: bool,
    pub disabled_reason: String,
    pub created_at: i64,
}

macro_rules! columns {
    () => {
        "id, tenant_id, kind, name, url_sealed, secret_sealed, previous_secret_sealed, previous_until, \
         enabled, disabled_reason, created_at"
    };
}

/// The owner as the `coalesce(tenant_id, 0)` the statements compare with.
fn owner(tenant: Option<i64>) -> i64 {
    tenant.unwrap_or(0)
}

/// The sealed values of a channel, sealed for its id.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub url: Vec<u8>,
    pub secret: Option<Vec<u8>>,
}

/// What creating a channel found.
#[derive(Debug)]
pub enum Created {
    Done(ChannelRow),
    NoTenant,
    /// The owner has `max` channels already.
    Full,
}

/// Creates a channel; `seal(id)` seals its values for the id the row got.
pub async fn create(
    store: &Store,
    tenant: Option<i64>,
    kind: &str,
    name: &str,
    max: usize,
    seal: impl FnOnce(i64) -> Sealed,
) -> Result<Created> {
    let mut tx = store.pool.begin().await?;
    let inserted: std::result::Result<(i64,), sqlx::Error> = sqlx::query_as(
        "insert into alert_channels (tenant_id, kind, name, url_sealed, created_at) values ($1, $2, $3, $4, $5) \
         returning id",
    )
    .bind(tenant)
    .bind(kind)
    .bind(name)
    .bind(Vec::<u8>::new())
    .bind(now())
    .fetch_one(&mut *tx)
    .await;
    let (id,) = match inserted {
        Ok(row) => row,
        Err(e) if foreign_key_violation(&e) => return Ok(Created::NoTenant),
        Err(e) => return Err(e.into()),
    };
    let (n,): (i64,) = sqlx::query_as("select count(*) from alert_channels where coalesce(tenant_id, 0) = $1")
        .bind(owner(tenant))
        .fetch_one(&mut *tx)
        .await?;
    if usize::try_from(n).unwrap_or(usize::MAX) > max {
        return Ok(Created::Full);
    }
    let sealed = seal(id);
    let row: ChannelRow = sqlx::query_as(concat!(
        "update alert_channels set url_sealed = $1, secret_sealed = $2 where id = $3 returning ",
        columns!()
    ))
    .bind(sealed.url)
    .bind(sealed.secret)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    audit::stage(&mut tx, tenant, &format!("{kind} channel {id} {name:?} created")).await?;
    tx.commit().await?;
    Ok(Created::Done(row))
}

/// The owner's channels, oldest first.
pub async fn list(store: &Store, tenant: Option<i64>) -> Result<Vec<ChannelRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from alert_channels where coalesce(tenant_id, 0) = $1 order by id"
    ))
    .bind(owner(tenant))
    .fetch_all(&store.pool)
    .await?)
}

/// One of the owner's channels.
pub async fn get(store: &Store, tenant: Option<i64>, id: i64) -> Result<Option<ChannelRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from alert_channels where coalesce(tenant_id, 0) = $1 and id = $2"
    ))
    .bind(owner(tenant))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?)
}

/// A channel by id, whoever owns it (the delivery worker).
pub async fn by_id(store: &Store, id: i64) -> Result<Option<ChannelRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from alert_channels where id = $1"))
        .bind(id)
        .fetch_optional(&store.pool)
        .await?)
}

/// The channels of rule `rule_id`, inside the caller's transaction (the evaluator queues a
/// message for each, in the transaction of its state change).
pub async fn of_rule(conn: &mut AnyConnection, rule_id: i64) -> Result<Vec<ChannelRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from alert_channels where id in (select channel_id from alert_rule_channels where rule_id = $1) order by id"
    ))
    .bind(rule_id)
    .fetch_all(conn)
    .await?)
}

/// A change to a channel; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct Update {
    pub name: Option<String>,
    pub url_sealed: Option<Vec<u8>>,
    pub enabled: Option<bool>,
    /// A new secret, the current one becoming the previous until `until`.
    pub rotate: Option<Rotation>,
}

/// A secret rotation: the new secret, and the current one sealed again as the previous one.
#[derive(Debug)]
pub struct Rotation {
    pub secret: Vec<u8>,
    pub previous: Option<Vec<u8>>,
    pub until: i64,
}

/// Changes one of the owner's channels; `None` when there is no such channel. Enabling clears
/// the reason a 410 disabled it.
pub async fn update(store: &Store, tenant: Option<i64>, id: i64, change: Update) -> Result<Option<ChannelRow>> {
    let mut tx = store.pool.begin().await?;
    let exists: Option<(i64,)> = sqlx::query_as(
        "update alert_channels set name = coalesce($1, name) where coalesce(tenant_id, 0) = $2 and id = $3 returning id",
    )
    .bind(change.name.as_deref())
    .bind(owner(tenant))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let mut changed = Vec::new();
    if change.name.is_some() {
        changed.push("name");
    }
    if let Some(url) = change.url_sealed {
        sqlx::query("update alert_channels set url_sealed = $1 where id = $2")
            .bind(url)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        changed.push("url");
    }
    if let Some(enabled) = change.enabled {
        sqlx::query("update alert_channels set enabled = $1, disabled_reason = '' where id = $2")
            .bind(enabled)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        changed.push(if enabled { "enabled" } else { "disabled" });
    }
    if let Some(rotation) = change.rotate {
        sqlx::query(
            "update alert_channels set previous_secret_sealed = $1, previous_until = $2, secret_sealed = $3 \
             where id = $4",
        )
        .bind(rotation.previous)
        .bind(rotation.until)
        .bind(rotation.secret)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        changed.push("secret rotated");
    }
    let row: ChannelRow = sqlx::query_as(concat!("select ", columns!(), " from alert_channels where id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    audit::stage(&mut tx, tenant, &format!("channel {id}: {}", changed.join(", "))).await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// Deletes one of the owner's channels (its deliveries go with it); false when there is none.
pub async fn delete(store: &Store, tenant: Option<i64>, id: i64) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let deleted = sqlx::query("delete from alert_channels where coalesce(tenant_id, 0) = $1 and id = $2")
        .bind(owner(tenant))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    audit::stage(&mut tx, tenant, &format!("channel {id} deleted")).await?;
    tx.commit().await?;
    Ok(true)
}

/// Disables a channel its receiver declared gone (410), failing its pending deliveries.
pub async fn disable(store: &Store, id: i64, reason: &str, at_ms: i64) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    sqlx::query("update alert_channels set enabled = false, disabled_reason = $1 where id = $2")
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update alert_deliveries set state = 'failed', last_error = $1, finished_at = $2 \
         where channel_id = $3 and state = 'pending'",
    )
    .bind(format!("not sent: {reason}"))
    .bind(at_ms)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every channel's sealed values, for re-sealing: (id, url, secret, previous secret).
pub(super) async fn sealed_all(
    conn: &mut AnyConnection,
) -> Result<Vec<(i64, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>> {
    Ok(sqlx::query_as("select id, url_sealed, secret_sealed, previous_secret_sealed from alert_channels order by id")
        .fetch_all(conn)
        .await?)
}

/// Writes re-sealed values of channel `id`.
pub(super) async fn write_sealed(
    conn: &mut AnyConnection,
    id: i64,
    url: Vec<u8>,
    secret: Option<Vec<u8>>,
    previous: Option<Vec<u8>>,
) -> Result<()> {
    sqlx::query(
        "update alert_channels set url_sealed = $1, secret_sealed = $2, previous_secret_sealed = $3 where id = $4",
    )
    .bind(url)
    .bind(secret)
    .bind(previous)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Channels disabled by the delivery worker (a 410), for `/metrics`.
pub async fn disabled_count(store: &Store) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from alert_channels where enabled = false and disabled_reason <> ''")
            .fetch_one(&store.pool)
            .await?;
    Ok(n)
}
