//! Every value sealed with the KEK, for re-sealing under a new one (`outflow kek rotate`).

use super::Store;
use crate::error::Result;

/// Which sealed value `reseal_all` hands over.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    CaKey,
    CredentialKey(&'a str),
    CredentialPassword(&'a str),
    /// An alert channel's URL, by channel id.
    ChannelUrl(i64),
    /// An alert channel's signing secret.
    ChannelSecret(i64),
    /// The signing secret a rotation replaced, still signing until its end.
    ChannelPreviousSecret(i64),
}

/// Replaces every sealed value `v` of field `f` with `reseal(f, v)`, in one transaction: all of
/// them or none. Returns how many values it rewrote.
pub async fn reseal_all(store: &Store, mut reseal: impl FnMut(Field<'_>, &[u8]) -> Result<Vec<u8>>) -> Result<usize> {
    let mut tx = store.pool.begin().await?;
    // A write first takes SQLite's write lock, so no credential is issued between the read and
    // the rewrite.
    sqlx::query("update certificate_authority set key_sealed = key_sealed where id = 1").execute(&mut *tx).await?;
    let mut rewritten = 0;
    let ca: Option<(Vec<u8>,)> =
        sqlx::query_as("select key_sealed from certificate_authority where id = 1").fetch_optional(&mut *tx).await?;
    if let Some((sealed,)) = ca {
        let resealed = reseal(Field::CaKey, &sealed)?;
        sqlx::query("update certificate_authority set key_sealed = $1 where id = 1")
            .bind(resealed)
            .execute(&mut *tx)
            .await?;
        rewritten += 1;
    }
    let credentials: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("select cn, key_sealed, password_sealed from credentials order by cn")
            .fetch_all(&mut *tx)
            .await?;
    for (cn, key, password) in credentials {
        let key = reseal(Field::CredentialKey(&cn), &key)?;
        let password = reseal(Field::CredentialPassword(&cn), &password)?;
        sqlx::query("update credentials set key_sealed = $1, password_sealed = $2 where cn = $3")
            .bind(key)
            .bind(password)
            .bind(&cn)
            .execute(&mut *tx)
            .await?;
        rewritten += 2;
    }
    for (id, url, secret, previous) in super::alert_channels::sealed_all(&mut tx).await? {
        let url = reseal(Field::ChannelUrl(id), &url)?;
        rewritten += 1;
        let mut again = |field, value: Option<Vec<u8>>| -> Result<Option<Vec<u8>>> {
            let Some(value) = value else { return Ok(None) };
            rewritten += 1;
            reseal(field, &value).map(Some)
        };
        let secret = again(Field::ChannelSecret(id), secret)?;
        let previous = again(Field::ChannelPreviousSecret(id), previous)?;
        super::alert_channels::write_sealed(&mut tx, id, url, secret, previous).await?;
    }
    tx.commit().await?;
    Ok(rewritten)
}
