//! The HTTP edge: extractors, the audit layer, how errors become responses, `/metrics`, zip
//! downloads and the server loop. Handlers in `api/` (REST) and `web/` (dashboard) use these and
//! call the domain; nothing below this layer knows about HTTP.

pub mod audit;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod serve;
pub mod zip;

pub use audit::AuditNote;
pub use error::{ErrorBody, status};
pub use extract::{
    Agent, AppJson, AppPath, AppQuery, Caller, ClientAddr, Operator, TenantForm, TenantScope, WebSession,
};
pub use zip::zip_response;
