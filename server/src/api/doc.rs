//! What the OpenAPI document says beyond each handler's own annotation: the tenant path
//! parameter that most routes share, and the error answers that follow from how a route is built
//! (it needs a token, takes a JSON body, parses path or query parameters) rather than from what it
//! does. Annotations list only their route's own answers: success, 409, 503, a 404 about the body.

use axum::http::StatusCode;
use utoipa::IntoParams;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};

use crate::tenants::TenantId;

/// The `{id}` of every `/tenants/{id}` route, with its range.
pub struct TenantPath;

impl IntoParams for TenantPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)));
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("tenant id; its topic is `c<id>`"))
                .schema(Some(schema.minimum(Some(1)).maximum(Some(TenantId::MAX))))
                .build(),
        ]
    }
}

const UNAUTHORIZED: &str = "no valid bearer token";
const FORBIDDEN: &str = "the token may not use this route: its role, or another tenant's resource";
const NOT_FOUND: &str = "the path names no existing tenant, credential, allowlist entry, token or user";
const INVALID: &str = "invalid input: the body does not match its schema, or a value in the body, path or query \
                       is refused; `error.field` names it";
const BAD_JSON: &str = "the body is not JSON";
const BODY_TIMEOUT: &str = "the body did not arrive within `http.body_timeout_secs`";
const BODY_TOO_LARGE: &str = "the body is larger than `http.max_body_bytes`";
const NOT_JSON: &str = "the body is not sent as `Content-Type: application/json`";
const INTERNAL: &str = "internal error; the details are in the server log";

/// Adds to every operation the error answers its shape implies, keeping those an annotation
/// already describes, and gives every response a description (OpenAPI requires one).
pub fn add_error_responses(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for operation in operations(item) {
            let takes_body = operation.request_body.is_some();
            let params_in: Vec<ParameterIn> = operation
                .parameters
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    RefOr::T(p) => Some(p.parameter_in.clone()),
                    RefOr::Ref(_) => None,
                })
                .collect();
            let mut errors = vec![(StatusCode::UNAUTHORIZED, UNAUTHORIZED), (StatusCode::FORBIDDEN, FORBIDDEN)];
            if params_in.iter().any(|p| matches!(p, ParameterIn::Path)) {
                errors.push((StatusCode::NOT_FOUND, NOT_FOUND));
            }
            if takes_body {
                errors.extend([
                    (StatusCode::BAD_REQUEST, BAD_JSON),
                    (StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT),
                    (StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE),
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, NOT_JSON),
                ]);
            }
            if takes_body || !params_in.is_empty() {
                errors.push((StatusCode::UNPROCESSABLE_ENTITY, INVALID));
            }
            errors.push((StatusCode::INTERNAL_SERVER_ERROR, INTERNAL));
            let responses = &mut operation.responses.responses;
            for (status, description) in errors {
                responses.entry(status.as_str().to_owned()).or_insert_with(|| error_response(description));
            }
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = reason(status);
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

fn reason(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("response")
        .to_owned()
}
