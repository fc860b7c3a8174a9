//! KEK rotation: every secret at rest re-sealed with the current KEK, in one transaction.
//!
//! Replicas run with `OUTFLOW_KEK` = the new key and `OUTFLOW_KEK_PREVIOUS` = the old one while
//! the rotation is under way (they open both, seal with the new one); `outflow kek rotate`
//! re-seals what the old key sealed; then the previous key is dropped (docs/deploy.md).

use crate::alerts::deliver::channels;
use crate::error::{Error, Result};
use crate::pki::Kek;
use crate::pki::{ca, issuer};
use crate::store::Store;
use crate::store::sealed::{self, Field};

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Sealed values rewritten (CA key, a key and a password per credential, a URL and the
    /// signing secrets per alert channel).
    pub values: usize,
    /// Of those, the ones that opened only with the previous key.
    pub from_previous: usize,
}

fn context(field: Field<'_>) -> String {
    match field {
        Field::CaKey => ca::KEY_CONTEXT.to_owned(),
        Field::CredentialKey(cn) => issuer::key_context(cn),
        Field::CredentialPassword(cn) => issuer::password_context(cn),
        Field::ChannelUrl(id) => channels::url_context(id),
        Field::ChannelSecret(id) => channels::secret_context(id),
        Field::ChannelPreviousSecret(id) => channels::previous_secret_context(id),
    }
}

/// Re-seals every sealed value with `kek`'s current key. A value that opens with neither key
/// aborts the whole rotation and changes nothing.
pub async fn rotate(store: &Store, kek: &Kek) -> Result<Rotation> {
    let mut from_previous = 0;
    let values = sealed::reseal_all(store, |field, value| {
        let context = context(field);
        if !kek.is_current(&context, value) {
            from_previous += 1;
        }
        let plain = kek.open(&context, value).map_err(Error::Internal)?;
        Ok(kek.seal(&context, &plain))
    })
    .await?;
    Ok(Rotation { values, from_previous })
}
