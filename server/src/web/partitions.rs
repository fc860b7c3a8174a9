//! Capacity on the Streaming tab: operators raise the partition count and set the quota,
//! tenants file partition requests.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::PageResult;
use super::streaming::back_to_streaming;
use crate::error::Error;
use crate::http::{TenantForm, WebSession};
use crate::state::AppState;
use crate::tenants::partition_requests::{self};
use crate::tenants::streaming::{self};
use crate::tenants::{Partitions, TenantId};

#[derive(Debug, Deserialize)]
pub struct PartitionsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partitions: String,
}

pub async fn partitions(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<PartitionsForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let id = TenantId::parse_str(&id)?;
    let n = form
        .partitions
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid("partitions", "partitions must be a number"))?;
    streaming::set_partitions(&state.store, &state.published(), id, Partitions::parse(n)?).await?;
    Ok(back_to_streaming(id, "partitions"))
}

#[derive(Debug, Deserialize)]
pub struct PartitionRequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partitions: String,
    #[serde(default)]
    note: String,
}

/// A tenant asks for more partitions; operators see the request on the Streaming tab.
pub async fn request_partitions(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<PartitionRequestForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    let n = form
        .partitions
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid("partitions", "partitions must be a number"))?;
    partition_requests::file(&state.store, id, Partitions::parse(n)?, &form.note, &tenant.session.principal.name)
        .await?;
    Ok(back_to_streaming(id, "requested"))
}

#[derive(Debug, Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    csrf: String,
    /// Bytes per second; empty takes the default.
    #[serde(default)]
    consumer_byte_rate: String,
    #[serde(default)]
    request_percentage: String,
}

/// Operators set a tenant's quota; an empty field takes the cluster-wide default.
pub async fn quota(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<QuotaForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let id = TenantId::parse_str(&id)?;
    let consumer_byte_rate = match form.consumer_byte_rate.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            Error::invalid("consumer_byte_rate", "consumer_byte_rate must be a whole number of bytes per second")
        })?),
    };
    let request_percentage = match form.request_percentage.trim() {
        "" => None,
        text => Some(
            text.parse::<f64>()
                .map_err(|_| Error::invalid("request_percentage", "request_percentage must be a number"))?,
        ),
    };
    let wanted = crate::tenants::quota::Quota { consumer_byte_rate, request_percentage };
    crate::tenants::quota::set(&state.store, id, wanted, state.config.kafka.max_message_bytes).await?;
    Ok(back_to_streaming(id, "quota"))
}
