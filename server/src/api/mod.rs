//! REST API under `/api/v1`. Routes are registered through utoipa-axum so the OpenAPI document
//! at `/api/v1/openapi.json` is generated from the same handlers that serve them.

mod bundle;
mod credentials;
mod streaming;
mod tenants;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{Error, ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "outflow",
        description = "Control plane for streaming CDN logs to customers over Kafka. \
                       Every route except this document requires `Authorization: Bearer <token>`."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The API routes together with their OpenAPI description.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .routes(routes!(tenants::list_tenants, tenants::create_tenant))
                .routes(routes!(tenants::get_tenant, tenants::delete_tenant))
                .routes(routes!(streaming::activate, streaming::status, streaming::deactivate))
                .routes(routes!(credentials::list_credentials, credentials::rotate_credential))
                .routes(routes!(credentials::revoke_credential))
                .routes(routes!(bundle::download_bundle)),
        )
        .split_for_parts()
}

pub fn router() -> Router<AppState> {
    let (router, openapi) = api();
    // The document describes the API and holds no data, so it is served without a token.
    router.route("/api/v1/openapi.json", get(move || async move { Json(openapi) }))
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

fn json_error(rejection: JsonRejection) -> Error {
    Error::BadBody(rejection.body_text())
}
