//! How domain errors reach clients: the status code, the stable `code`, and the JSON body.
//! Server errors are logged in full and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// The status code a client gets for `error`.
pub fn status(error: &Error) -> StatusCode {
    match error {
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::BadBody(status, _) => StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
        Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The stable error code of the API's error body.
pub fn code(error: &Error) -> &'static str {
    match error {
        Error::Unauthorized => "unauthorized",
        Error::Forbidden(_) => "forbidden",
        Error::NotFound(_) => "not_found",
        Error::Conflict(_) => "conflict",
        Error::TooManyRequests(_) => "too_many_requests",
        Error::Unavailable(_) => "unavailable",
        Error::Invalid { .. } => "invalid",
        Error::BadBody(..) => "invalid_body",
        Error::Database(_) | Error::Internal(_) => "internal",
    }
}

/// Logs server errors with their cause (clients only get a generic message).
pub fn log_if_server_error(error: &Error) {
    if error.is_server_error() {
        tracing::error!(error = ?error, "request failed");
    }
}

/// Error body: `{"error": {"code": "...", "message": "...", "field": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// The input field at fault, for `invalid` errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        log_if_server_error(&self);
        let field = match &self {
            Error::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: code(&self).into(), message: self.public_message(), field } };
        (status(&self), Json(body)).into_response()
    }
}
