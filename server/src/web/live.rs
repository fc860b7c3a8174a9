//! The live parts of the Streaming tab: a full page that works without JavaScript, and the
//! fragment the page's script swaps in every few seconds.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Nav, PageResult, see_other};
use crate::auth::Session;
use crate::error::Error;
use crate::http::WebSession;
use crate::kafka::live::LiveView;
use crate::state::AppState;
use crate::tenants::{self, TenantId};

#[derive(Template, WebTemplate)]
#[template(path = "pages/live.html")]
pub struct LivePage {
    nav: Nav,
    tenant_id: i64,
    tenant_name: String,
    view: LiveView,
    group_prefix: String,
    waf_topic: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/live_fragment.html")]
pub struct LiveFragment {
    view: LiveView,
    group_prefix: String,
    waf_topic: String,
}

async fn read(state: &AppState, session: &Session, id: &str) -> Result<(TenantId, LiveView), Error> {
    let id = TenantId::parse_str(id)?;
    session.principal.may_access(id)?;
    Ok((id, state.live_view(id).await?))
}

pub async fn page(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
) -> PageResult<LivePage> {
    let (id, view) = read(&state, &session, &id).await?;
    let tenant = tenants::get(&state.store, id).await?;
    Ok(LivePage {
        nav: Nav::of(&session),
        tenant_id: id.get(),
        tenant_name: tenant.name,
        view,
        group_prefix: id.group_prefix(),
        waf_topic: id.waf_topic(),
    })
}

pub async fn fragment(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
) -> PageResult<LiveFragment> {
    let (id, view) = read(&state, &session, &id).await?;
    Ok(LiveFragment { view, group_prefix: id.group_prefix(), waf_topic: id.waf_topic() })
}

#[derive(Debug, Deserialize)]
pub struct TailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

/// Operators turn a tenant's live tail on or off.
pub async fn set_tail(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<TailForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let id = TenantId::parse_str(&id)?;
    tenants::set_live_tail(&state.store, id, form.enabled == "true").await?;
    Ok(see_other(&format!("/tenants/{id}/streaming")))
}
