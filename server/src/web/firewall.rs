//! Dashboard parts of the firewall feature: the allowlist forms on a tenant's Streaming tab and
//! the operators' brokers page.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::streaming::streaming_page;
use super::{CsrfForm, NoticeQuery};
use super::{Nav, PageResult, see_other};
use crate::error::Error;
use crate::firewall::allowlist::{self, EntryInput, EntryRef, NewEntry};
use crate::firewall::brokers::{self, BrokerId, BrokerView};
use crate::http::WebSession;
use crate::state::AppState;
use crate::tenants::TenantId;

#[derive(Template, WebTemplate)]
#[template(path = "pages/brokers.html")]
pub struct BrokersPage {
    csrf: String,
    nav: Nav,
    version: i64,
    stale_after_secs: u64,
    brokers: Vec<BrokerView>,
    notice: Option<&'static str>,
    replicas: crate::replicas::ReplicasView,
}

pub async fn brokers_page(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Query(q): Query<NoticeQuery>,
) -> PageResult<BrokersPage> {
    session.principal.require_operator()?;
    let version = allowlist::version(&state.store).await?;
    let stale_after_secs = state.config.firewall.stale_after_secs;
    Ok(BrokersPage {
        csrf: session.csrf.clone(),
        nav: Nav::of(&session),
        version,
        stale_after_secs,
        brokers: brokers::list(&state.store, version, stale_after_secs).await?,
        replicas: crate::replicas::list(&state.store).await?,
        notice: q.text(),
    })
}

pub async fn forget_broker(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(broker): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    brokers::forget(&state.store, &BrokerId::parse(&broker)?).await?;
    Ok(see_other("/brokers?notice=forgotten"))
}

#[derive(Debug, Deserialize)]
pub struct AddEntryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    note: String,
}

pub async fn add_entry(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<AddEntryForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    let rules = &state.config.firewall;
    let added = async {
        let entry = NewEntry::parse(&EntryInput { cidr: form.cidr.clone(), note: Some(form.note.clone()) }, rules, "")?;
        allowlist::add(&state.store, id, &entry, rules).await
    }
    .await;
    match added {
        Ok(added) if added.changed => {
            Ok(see_other(&format!("/tenants/{id}/streaming?notice=allowlist-added#allowlist")))
        }
        Ok(_) => Ok(see_other(&format!("/tenants/{id}/streaming?notice=allowlist-unchanged#allowlist"))),
        // Bad input re-renders the tab with what was typed and the problem named.
        Err(e @ Error::Invalid { .. }) => {
            let mut page = streaming_page(&state, &session, id, None, None).await?;
            page.allowlist_error = Some(e.public_message());
            page.allowlist_form = form.cidr;
            Ok((crate::http::status(&e), page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_entry(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path((id, entry)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    allowlist::remove(&state.store, id, EntryRef::parse(&entry)?).await?;
    Ok(see_other(&format!("/tenants/{id}/streaming?notice=allowlist-removed#allowlist")))
}
