//! Rotating and revoking a tenant's credentials from the Streaming tab.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;

use super::streaming::back_to_streaming;
use super::{CsrfForm, PageResult};
use crate::error::Error;
use crate::http::TenantForm;
use crate::state::AppState;
use crate::tenants::credentials;

pub async fn rotate(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    credentials::rotate(&state.store, &state.issuer, id).await?;
    Ok(back_to_streaming(id, "rotated"))
}

pub async fn revoke(
    State(state): State<AppState>,
    tenant: TenantForm,
    Path((_id, k)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    let k = k.parse::<i64>().map_err(|_| Error::invalid("k", "credential number must be a positive integer"))?;
    credentials::revoke(&state.store, id, k).await?;
    Ok(back_to_streaming(id, "revoked"))
}
