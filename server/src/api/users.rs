use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;
use crate::auth::users::{self, Email, UserView};
use crate::error::{Error, Result};
use crate::http::ErrorBody;
use crate::http::Operator;
use crate::http::{AppJson, AppPath};
use crate::state::AppState;
use crate::tenants::{self, TenantId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUser {
    #[schema(example = "ops@acme.example")]
    pub email: String,
    /// `operator` or `tenant`.
    #[schema(example = "tenant")]
    pub role: String,
    /// Required for tenant users.
    #[schema(example = 83)]
    pub tenant_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// One-time link where the user sets a password; valid for 7 days, shown only here.
    pub invite_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUser {
    /// Disable (ends the user's sessions and stops its tokens) or enable again.
    pub disabled: bool,
}

#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = [UserView])))]
pub async fn list_users(_: Operator, State(state): State<AppState>) -> Result<Json<Vec<UserView>>> {
    Ok(Json(users::list(&state.store).await?.iter().map(UserView::from).collect()))
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = InviteUser,
    description = "Invite a user: returns a one-time link where the user chooses a password.",
    responses((status = 201, body = InvitedUser), (status = 404, description = "no such tenant", body = ErrorBody),
        (status = 409, description = "email taken", body = ErrorBody)))]
pub async fn invite_user(
    _: Operator,
    State(state): State<AppState>,
    AppJson(body): AppJson<InviteUser>,
) -> Result<(StatusCode, Json<InvitedUser>)> {
    let (user, invite_url) = invite(&state, &body.email, &body.role, body.tenant_id).await?;
    Ok((StatusCode::CREATED, Json(InvitedUser { user: UserView::from(&user), invite_url })))
}

/// Parses an invitation and creates the user; shared by the API and the dashboard.
pub async fn invite(
    state: &AppState,
    email: &str,
    role: &str,
    tenant: Option<i64>,
) -> Result<(users::UserRow, String)> {
    let email = Email::parse(email)?;
    let role = role.parse::<Role>().map_err(|e| Error::invalid("role", e))?;
    let tenant = tenant.map(TenantId::parse).transpose().map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("tenant_id", message),
        other => other,
    })?;
    if let Some(t) = tenant {
        tenants::get(&state.store, t).await?;
    }
    let (user, secret) = users::create(&state.store, &state.hashing, &email, role, tenant, None).await?;
    Ok((user, format!("{}/invite/{secret}", state.config.public_url())))
}

#[utoipa::path(patch, path = "/users/{user}", tag = "users", request_body = ChangeUser,
    params(("user" = i64, Path, minimum = 1, description = "user id")),
    responses((status = 200, body = UserView)))]
pub async fn change_user(
    _: Operator,
    State(state): State<AppState>,
    AppPath(user): AppPath<String>,
    AppJson(body): AppJson<ChangeUser>,
) -> Result<Json<UserView>> {
    let id =
        user.parse::<i64>().map_err(|_| Error::invalid("user", format!("user id must be a number, got {user:?}")))?;
    Ok(Json(UserView::from(&users::set_disabled(&state.store, id, body.disabled).await?)))
}
