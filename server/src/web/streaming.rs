//! A tenant's Streaming tab: status, activation, the connectivity check and the download.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::{CsrfForm, Nav, NoticeQuery, PageResult, see_other};
use crate::auth::Session;
use crate::firewall::allowlist::{self, AllowlistView};
use crate::http::{TenantForm, WebSession};
use crate::kafka::check::CheckResult;
use crate::state::AppState;
use crate::tenants::partition_requests::{self, PartitionRequest};
use crate::tenants::quota::{self, QuotaView};
use crate::tenants::streaming::{self, StreamingStatus};
use crate::tenants::{TenantId, TenantView};

#[derive(Template, WebTemplate)]
#[template(path = "pages/streaming.html")]
pub struct StreamingPage {
    csrf: String,
    nav: Nav,
    tenant: TenantView,
    status: StreamingStatus,
    topic: String,
    waf_topic: String,
    group_prefix: String,
    ca_file: String,
    notice: Option<&'static str>,
    check: Option<CheckResult>,
    requests: Vec<PartitionRequest>,
    live_tail: bool,
    port: String,
    allowlist: AllowlistView,
    /// The broadest prefixes a tenant may add.
    min_v4: u8,
    min_v6: u8,
    /// Why the last allowlist form was refused, and what was typed.
    pub(super) allowlist_error: Option<String>,
    pub(super) allowlist_form: String,
    /// Firing alerts, for the Alerts tab's badge.
    firing_alerts: i64,
    quota: QuotaView,
    /// Bytes out per hour over the last 7 days.
    usage: crate::usage::chart::Chart,
}

pub async fn streaming(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PageResult<StreamingPage> {
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    streaming_page(&state, &session, id, q.text(), None).await
}

pub(super) async fn streaming_page(
    state: &AppState,
    session: &Session,
    id: TenantId,
    notice: Option<&'static str>,
    check: Option<CheckResult>,
) -> PageResult<StreamingPage> {
    // One read of the tenant's streaming service, one of its allowlist.
    let status = streaming::status(&state.store, &state.published(), id).await?;
    let allowlist = allowlist::list(&state.store, id, &state.config.firewall).await?;
    let live_tail = status.live_tail;
    let firing_alerts = crate::store::alerts::firing_count(&state.store, id.get()).await?;
    let usage = super::usage::chart(state, id).await?;
    let tenant = TenantView {
        id: status.tenant_id,
        name: status.tenant_name.clone(),
        created_at: crate::clock::rfc3339(status.created_at),
        streaming_active: status.active,
        topic: id.topic(),
    };
    Ok(StreamingPage {
        csrf: session.csrf.clone(),
        nav: Nav::of(session),
        tenant,
        status,
        topic: id.topic(),
        waf_topic: id.waf_topic(),
        group_prefix: id.group_prefix(),
        ca_file: format!("{}.pem", state.ca.name),
        notice,
        check,
        requests: partition_requests::list(&state.store, id).await?,
        live_tail,
        port: state
            .config
            .brokers
            .first()
            .and_then(|b| b.rsplit_once(':'))
            .map_or_else(|| "9093".into(), |(_, port)| port.to_owned()),
        allowlist,
        min_v4: state.config.firewall.min_prefix_v4,
        min_v6: state.config.firewall.min_prefix_v6,
        allowlist_error: None,
        allowlist_form: String::new(),
        firing_alerts,
        quota: quota::view(&state.store, id, state.config.kafka.max_message_bytes).await?,
        usage,
    })
}

/// Runs the connectivity self-test and shows its result on the Streaming tab.
pub async fn check(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<CsrfForm>,
) -> PageResult<StreamingPage> {
    let id = tenant.authorize(&form.csrf)?;
    let result = state.check(id).await?;
    streaming_page(&state, &tenant.session, id, None, Some(result)).await
}

pub(super) fn back_to_streaming(id: TenantId, notice: &str) -> Response {
    see_other(&format!("/tenants/{id}/streaming?notice={notice}"))
}

pub async fn activate(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    streaming::activate(&state.store, &state.issuer, &state.published(), id).await?;
    Ok(back_to_streaming(id, "activated"))
}

pub async fn deactivate(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    streaming::deactivate(&state.store, &state.published(), id).await?;
    Ok(back_to_streaming(id, "deactivated"))
}

pub async fn bundle(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
) -> PageResult<impl IntoResponse> {
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    Ok(crate::http::zip_response(id, state.bundle(id).await?))
}
