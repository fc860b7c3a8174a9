//! The operators' tenant list: create, open, delete.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{CsrfForm, Nav, NoticeQuery, PageResult, see_other};
use crate::auth::Session;
use crate::error::Error;
use crate::http::{TenantForm, WebSession};
use crate::state::AppState;
use crate::tenants::{self, TenantId, TenantName, TenantView};

#[derive(Template, WebTemplate)]
#[template(path = "pages/tenants.html")]
pub struct TenantsPage {
    csrf: String,
    nav: Nav,
    /// Each tenant with its reconcile status (`pending`, `ready`, `error`, or empty).
    tenants: Vec<(TenantView, String)>,
    error: Option<String>,
    form_id: String,
    form_name: String,
    notice: Option<&'static str>,
}

async fn tenants_page(
    state: &AppState,
    session: &Session,
    error: Option<String>,
    form: Option<&CreateTenantForm>,
    notice: Option<&'static str>,
) -> PageResult<TenantsPage> {
    let statuses = crate::kafka::reconcile::statuses(&state.store).await?;
    let tenants = tenants::list(&state.store)
        .await?
        .into_iter()
        .map(|t| {
            let status =
                if t.streaming_active { statuses.get(&t.id).cloned().unwrap_or_default() } else { String::new() };
            (TenantView::from(t), status)
        })
        .collect();
    Ok(TenantsPage {
        csrf: session.csrf.clone(),
        nav: Nav::of(session),
        tenants,
        error,
        form_id: form.map(|f| f.id.clone()).unwrap_or_default(),
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        notice,
    })
}

pub async fn tenants(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Query(q): Query<NoticeQuery>,
) -> PageResult<Response> {
    // A tenant account has one tenant: its page is the home.
    if let Some(own) = session.principal.tenant() {
        return Ok(Redirect::to(&format!("/tenants/{own}/streaming")).into_response());
    }
    session.principal.require_operator()?;
    Ok(tenants_page(&state, &session, None, None, q.text()).await?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct CreateTenantForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: String,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Form(form): Form<CreateTenantForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let created = async {
        let id = TenantId::parse_str(form.id.trim())?;
        let name = TenantName::parse(&form.name)?;
        tenants::create(&state.store, id, &name).await
    }
    .await;
    match created {
        Ok(tenant) => Ok(see_other(&format!("/tenants/{}/streaming?notice=created", tenant.id))),
        // Bad input re-renders the form with what was typed and the problem named.
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let status = crate::http::status(&e);
            let page = tenants_page(&state, &session, Some(e.public_message()), Some(&form), None).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn tenant_home(Path(id): Path<String>) -> PageResult<Redirect> {
    let id = TenantId::parse_str(&id)?;
    Ok(Redirect::to(&format!("/tenants/{id}/streaming")))
}

pub async fn delete_tenant(
    State(state): State<AppState>,
    tenant: TenantForm,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant.authorize(&form.csrf)?;
    tenant.session.principal.require_operator()?;
    tenants::delete(&state.store, id).await?;
    Ok(see_other("/tenants?notice=deleted"))
}
