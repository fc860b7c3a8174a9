use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;
use crate::auth::tokens::{self, TokenView};
use crate::error::{Error, Result};
use crate::http::Caller;
use crate::http::ErrorBody;
use crate::http::{AppJson, AppPath};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, 1..=100 characters.
    #[schema(example = "ci-deploy")]
    pub name: String,
    /// `operator`, `tenant` or `agent` (operators only; a tenant account always gets a tenant token).
    /// Omitted: `tenant` with a `tenant_id`, `agent` with a `broker_id`, else `operator`.
    #[schema(example = "tenant")]
    pub role: Option<String>,
    /// The tenant of a tenant token (operators only; a tenant account's own tenant otherwise).
    #[schema(example = 83)]
    pub tenant_id: Option<i64>,
    /// The broker an agent token reports for (required for agent tokens): 1-64 letters, digits,
    /// `.`, `_`, `-` or `:`.
    #[schema(example = "kafka-1")]
    pub broker_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token. Shown only in this response; only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

#[utoipa::path(get, path = "/tokens", tag = "tokens",
    description = "API tokens the caller may manage (operators: all; tenants: their tenant's), by prefix only.",
    responses((status = 200, body = [TokenView])))]
pub async fn list_tokens(Caller(caller): Caller, State(state): State<AppState>) -> Result<Json<Vec<TokenView>>> {
    let rows = tokens::visible_to(&state.store, &caller).await?;
    Ok(Json(rows.into_iter().map(TokenView::from).collect()))
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 404, description = "no such tenant", body = ErrorBody)))]
pub async fn create_token(
    Caller(caller): Caller,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    let role = body.role.as_deref().map(str::parse::<Role>).transpose().map_err(|e| Error::invalid("role", e))?;
    let owner = tokens::owner_for(&caller, role, body.tenant_id, body.broker_id.as_deref())?;
    let (row, token) = tokens::create(&state.store, &owner, &body.name).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, view: row.into() })))
}

#[utoipa::path(delete, path = "/tokens/{token}", tag = "tokens",
    description = "Revoke a token; it stops working at once. Idempotent.",
    params(("token" = i64, Path, minimum = 1, description = "token id")),
    responses((status = 200, body = TokenView)))]
pub async fn revoke_token(
    Caller(caller): Caller,
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
) -> Result<Json<TokenView>> {
    let id = token
        .parse::<i64>()
        .map_err(|_| Error::invalid("token", format!("token id must be a number, got {token:?}")))?;
    Ok(Json(tokens::revoke(&state.store, &caller, id).await?.into()))
}
