use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{Error, Result};
use crate::firewall::agent::AgentAllowlist;
use crate::firewall::allowlist;
use crate::firewall::brokers::{self, Report, StatusReport};
use crate::http::Agent;
use crate::http::ErrorBody;
use crate::http::{AppJson, AppQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// The version the agent enforces; omit when it enforces none yet.
    after: Option<String>,
}

#[utoipa::path(get, path = "/agent/allowlist", tag = "agent",
    description = "Long poll for firewall agents. Answers at once with every tenant's entries when the current \
                   version differs from `after` (or `after` is absent); otherwise holds the request until a \
                   change or `firewall.long_poll_secs`, then answers 204.",
    params(PollQuery),
    responses((status = 200, body = AgentAllowlist), (status = 204, description = "no change during the hold")))]
pub async fn poll_allowlist(
    _: Agent,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PollQuery>,
) -> Result<Response> {
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| Error::invalid("after", format!("after must be a version number, got {text:?}")))?,
        ),
    };
    let mut changes = state.store.signals().subscribe_allowlist();
    let hold = tokio::time::sleep(Duration::from_secs(state.config.firewall.long_poll_secs));
    tokio::pin!(hold);
    let mut last_look = false;
    loop {
        // The version alone while nothing changed; the list only when it did.
        let version = allowlist::version(&state.store).await?;
        // "Differs", not "is newer": a server restored from an older backup must still win.
        if after != Some(version) {
            let (version, body) = state.agent_lists.get(&state.store, version).await?;
            if after != Some(version) {
                let body = axum::body::Bytes::from_owner(body);
                return Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response());
            }
        }
        if last_look {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::select! {
            changed = changes.wait_for(|v| *v > version) => last_look = changed.is_err(),
            () = &mut hold => last_look = true,
            () = state.store.signals().stopping() => last_look = true,
        }
    }
}

#[utoipa::path(post, path = "/agent/status", tag = "agent",
    description = "An agent reports the allowlist version its broker enforces (and its last error), for the \
                   broker its token is bound to.",
    request_body = StatusReport,
    responses((status = 204, description = "recorded"),
        (status = 403, description = "another broker than the token's, or a token bound to none", body = ErrorBody),
        (status = 422, description = "bad input, or a version the server never published", body = ErrorBody)))]
pub async fn report_status(
    Agent(agent): Agent,
    State(state): State<AppState>,
    AppJson(input): AppJson<StatusReport>,
) -> Result<StatusCode> {
    let report = Report::parse(&input)?;
    let broker = report.broker_for(agent.broker().as_ref())?;
    brokers::record(&state.store, &broker, &report, &agent.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
