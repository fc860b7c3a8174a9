//! Extractors: who is calling (`Caller`, `Operator`, `TenantScope`, `Agent`, `WebSession`), from
//! where (`ClientAddr`), and request parts whose rejections use the API's error body
//! (`AppJson`, `AppPath`, `AppQuery`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::de::DeserializeOwned;

use super::audit::{authenticated, source_of};
use crate::auth::session::{self, SESSION_COOKIE, Session};
use crate::auth::{self, Principal, Role};
use crate::error::Error;
use crate::state::AppState;
use crate::tenants::TenantId;

/// Extractor for any authenticated API caller: 401 without a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(Error::Unauthorized)?;
        let principal = auth::authenticate(&state.store, token).await?.ok_or(Error::Unauthorized)?;
        authenticated(parts, &principal);
        Ok(Caller(principal))
    }
}

/// Extractor for API routes reserved to operators: 401 without a valid bearer token, 403 for
/// a token of another role.
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal.require_operator()?;
        Ok(Operator(principal))
    }
}

/// Extractor for routes under `/tenants/{id}`: the caller (401 without a token), the parsed id
/// (422), and the right to act on that tenant (403 for other tenants and agents).
#[derive(Debug, Clone)]
pub struct TenantScope {
    pub caller: Principal,
    pub id: TenantId,
}

impl FromRequestParts<AppState> for TenantScope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        let id = tenant_path_param(parts, state).await?;
        caller.may_access(id)?;
        Ok(TenantScope { caller, id })
    }
}

/// The `{id}` path parameter of a tenant route, parsed.
async fn tenant_path_param<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<TenantId, Error> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| Error::invalid("id", "the route has no tenant id"))?;
    let raw = params.iter().find(|(k, _)| *k == "id").map(|(_, v)| v.to_owned());
    TenantId::parse_str(raw.as_deref().unwrap_or_default())
}

/// Extractor for the firewall agents' routes: 401 without a valid bearer token, 403 for a token
/// of another role (operators included: an agent token can do nothing else, and these routes
/// are for agents only).
#[derive(Debug, Clone)]
pub struct Agent(pub Principal);

impl FromRequestParts<AppState> for Agent {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if principal.role() != Role::Agent {
            return Err(Error::Forbidden("this route requires an agent token"));
        }
        Ok(Agent(principal))
    }
}

/// Extractor for dashboard pages: a live operator or tenant session, or a redirect to sign-in.
#[derive(Debug, Clone)]
pub struct WebSession(pub Session);

impl FromRequestParts<AppState> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match session::lookup(&state.store, cookie.value()).await {
            Ok(Some(session)) if session.principal.role() != Role::Agent => {
                authenticated(parts, &session.principal);
                Ok(WebSession(session))
            }
            Ok(_) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Extractor for a dashboard form posted on a tenant's page: a live session and the raw tenant
/// id of the path. [`TenantForm::authorize`] then checks, in this order, the form's CSRF token
/// (403), the id (422) and the right to act on that tenant (403).
#[derive(Debug, Clone)]
pub struct TenantForm {
    pub session: Session,
    raw_id: String,
}

impl TenantForm {
    pub fn authorize(&self, csrf: &str) -> Result<TenantId, Error> {
        self.session.check_csrf(csrf)?;
        let id = TenantId::parse_str(&self.raw_id)?;
        self.session.principal.may_access(id)?;
        Ok(id)
    }
}

impl FromRequestParts<AppState> for TenantForm {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let WebSession(session) = WebSession::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let raw_id = params.iter().find(|(k, _)| *k == "id").map(|(_, v)| v.to_owned()).unwrap_or_default();
        Ok(TenantForm { session, raw_id })
    }
}

/// Extractor for the client address of a request, as the audit log records it.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(source_of(&parts.extensions)))
    }
}

/// `Json` whose rejections use the API's error body (422 naming the problem).
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

/// `Path` whose rejections (a segment that is not UTF-8 once decoded) use the API's error body.
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(AppPath(value)),
            Err(rejection) => Err(Error::invalid("path", rejection.body_text())),
        }
    }
}

/// `Query` whose rejections (a repeated or mistyped parameter) use the API's error body.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(AppQuery(value)),
            Err(rejection) => Err(Error::invalid("query", rejection.body_text())),
        }
    }
}

/// Turns a JSON rejection into an API error. Deserialization errors become `invalid` with the
/// field named when serde names it ("missing field `name`", "id: invalid type ...").
fn json_error(rejection: JsonRejection) -> Error {
    let text = rejection.body_text();
    if let JsonRejection::JsonDataError(_) = rejection
        && let Some(field) = field_of(&text)
    {
        return Error::invalid(field, text);
    }
    Error::BadBody(rejection.status().as_u16(), text)
}

fn field_of(message: &str) -> Option<String> {
    let detail = message.split_once("target type: ").map_or(message, |(_, d)| d);
    for marker in ["missing field `", "unknown field `"] {
        if let Some((_, rest)) = detail.split_once(marker) {
            return rest.split_once('`').map(|(field, _)| field.to_owned());
        }
    }
    // serde_path_to_error prefixes the path: "id: invalid type: string ...".
    detail
        .split_once(": ")
        .map(|(path, _)| path)
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn names_the_field_of_serde_errors() {
        let missing =
            "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 8";
        assert_eq!(field_of(missing).as_deref(), Some("name"));
        let wrong = "Failed to deserialize the JSON body into the target type: id: invalid type: string \"x\", expected i64 at line 1 column 10";
        assert_eq!(field_of(wrong).as_deref(), Some("id"));
        let unknown =
            "Failed to deserialize the JSON body into the target type: unknown field `nmae`, expected `id` or `name`";
        assert_eq!(field_of(unknown).as_deref(), Some("nmae"));
    }
}
