//! The one error type of outflow's domain. Client errors carry a message naming the problem;
//! server errors keep their cause for the log. Only the HTTP edge (`http::error`) turns them
//! into status codes and bodies.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many expensive requests in flight (connectivity checks); retry later.
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency (the Kafka cluster) is not configured or not reachable right now.
    #[error("{0}")]
    Unavailable(String),
    /// Input that parsed but is not acceptable; `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A request body that is not the JSON the route expects, with the HTTP status the edge
    /// found fitting (415, 413, 400 or 422).
    #[error("{1}")]
    BadBody(u16, String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    /// Whether the fault is the server's (logged in full, answered generically).
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Internal(_))
    }

    /// The message safe to show a client: never the details of a server error.
    pub fn public_message(&self) -> String {
        match self {
            Self::Database(_) | Self::Internal(_) => "internal error; the details are in the server log".into(),
            other => other.to_string(),
        }
    }
}
