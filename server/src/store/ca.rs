//! The certificate authority's row: its certificate and sealed key.

use sqlx::FromRow;

use super::{Flag, Store};
use crate::clock::now;
use crate::error::Result;

#[derive(Debug, Clone, FromRow)]
pub struct CaRow {
    pub name: String,
    pub algorithm: String,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    #[sqlx(try_from = "Flag")]
    pub imported: bool,
}

pub async fn load(store: &Store) -> Result<Option<CaRow>> {
    Ok(sqlx::query_as("select name, algorithm, cert_pem, key_sealed, imported from certificate_authority where id = 1")
        .fetch_optional(&store.pool)
        .await?)
}

/// Stores the CA. Without `replace`, a CA already stored (another process won the race to create
/// one) is kept.
pub async fn save(store: &Store, ca: &CaRow, replace: bool) -> Result<()> {
    let sql = if replace {
        "insert into certificate_authority (id, name, algorithm, cert_pem, key_sealed, created_at, imported) \
         values (1, $1, $2, $3, $4, $5, $6) on conflict (id) do update set name = excluded.name, \
         algorithm = excluded.algorithm, cert_pem = excluded.cert_pem, key_sealed = excluded.key_sealed, \
         created_at = excluded.created_at, imported = excluded.imported"
    } else {
        "insert into certificate_authority (id, name, algorithm, cert_pem, key_sealed, created_at, imported) \
         values (1, $1, $2, $3, $4, $5, $6) on conflict (id) do nothing"
    };
    sqlx::query(sql)
        .bind(&ca.name)
        .bind(&ca.algorithm)
        .bind(&ca.cert_pem)
        .bind(&ca.key_sealed)
        .bind(now())
        .bind(ca.imported)
        .execute(&store.pool)
        .await?;
    Ok(())
}
