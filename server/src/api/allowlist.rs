use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc::TenantPath;
use crate::error::Result;
use crate::firewall::allowlist::{self, AllowlistView, EntryInput, EntryRef, EntryView, NewEntry};
use crate::http::ErrorBody;
use crate::http::TenantScope;
use crate::http::{AppJson, AppPath};
use crate::state::AppState;

#[utoipa::path(get, path = "/tenants/{id}/allowlist", tag = "allowlist",
    description = "The tenant's allowlist; each entry says on how many brokers it is applied.",
    params(TenantPath),
    responses((status = 200, body = AllowlistView)))]
pub async fn list_allowlist(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<AllowlistView>> {
    Ok(Json(allowlist::list(&state.store, id, &state.config.firewall).await?))
}

#[utoipa::path(post, path = "/tenants/{id}/allowlist", tag = "allowlist",
    description = "Add an IPv4/IPv6 address or CIDR. Host bits are cleared; adding a listed address again \
                   is a no-op answered with 200.",
    params(TenantPath), request_body = EntryInput,
    responses((status = 201, body = EntryView), (status = 200, description = "already listed", body = EntryView),
        (status = 422, description = "invalid body, bad address, too broad, or the tenant's list is full", body = ErrorBody)))]
pub async fn add_entry(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppJson(input): AppJson<EntryInput>,
) -> Result<(StatusCode, Json<EntryView>)> {
    let entry = NewEntry::parse(&input, &state.config.firewall, "")?;
    let added = allowlist::add(&state.store, id, &entry, &state.config.firewall).await?;
    let status = if added.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(added.value)))
}

/// The whole list for `PUT`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceAllowlist {
    pub entries: Vec<EntryInput>,
}

#[utoipa::path(put, path = "/tenants/{id}/allowlist", tag = "allowlist",
    description = "Replace the whole list. Entries already listed keep their id and note; duplicates collapse.",
    params(TenantPath), request_body = ReplaceAllowlist,
    responses((status = 200, body = AllowlistView)))]
pub async fn replace_allowlist(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppJson(input): AppJson<ReplaceAllowlist>,
) -> Result<Json<AllowlistView>> {
    let entries = NewEntry::parse_list(&input.entries, &state.config.firewall)?;
    let replaced = allowlist::replace(&state.store, id, &entries, &state.config.firewall).await?;
    Ok(Json(replaced.value))
}

#[utoipa::path(delete, path = "/tenants/{id}/allowlist/{entry}", tag = "allowlist",
    description = "Remove an entry, named by its id or its address (URL-encode the `/` of a CIDR).",
    params(TenantPath, ("entry" = String, Path, description = "entry id or address")),
    responses((status = 204, description = "removed")))]
pub async fn remove_entry(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, entry)): AppPath<(String, String)>,
) -> Result<StatusCode> {
    let entry = EntryRef::parse(&entry)?;
    allowlist::remove(&state.store, id, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
