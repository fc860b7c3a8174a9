use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::error::Result;
use crate::firewall::brokers::BrokerId;
use crate::http::{Agent, AppJson, AppPath, ErrorBody, Operator};
use crate::state::AppState;
use crate::usage::requests::{self, RequestLogOutcome, RequestLogReport, RequestLogStart, RequestLogView};

#[utoipa::path(get, path = "/brokers/{broker}/request-log", tag = "usage",
    description = "The broker's newest request-log window (operators) and what its agent counted in it: requests by \
                   principal and client address, per API, most requests first. `window` is null when the request log \
                   was never on for this broker.",
    params(("broker" = String, Path, description = "the broker's id, as its agent token names it", example = "kafka-1")),
    responses((status = 200, body = RequestLogView),
        (status = 422, description = "not a broker id", body = ErrorBody)))]
pub async fn get_request_log(
    _: Operator,
    State(state): State<AppState>,
    AppPath(broker): AppPath<String>,
) -> Result<Json<RequestLogView>> {
    let broker = BrokerId::parse(&broker)?;
    Ok(Json(requests::view(&state.store, &broker).await?))
}

#[utoipa::path(post, path = "/brokers/{broker}/request-log", tag = "usage",
    description = "Turns on Kafka's request log (`kafka.request.logger` at DEBUG, through IncrementalAlterConfigs on \
                   the broker's loggers) on one broker for `for_secs` (operators). The broker's agent, run with \
                   `--request-log`, counts the lines; the server turns the logger back when the time is up, or on \
                   DELETE. A new window starts with no counts.",
    params(("broker" = String, Path, description = "the broker's id, as its agent token names it", example = "kafka-1")),
    request_body = RequestLogStart,
    responses((status = 201, body = RequestLogView),
        (status = 409, description = "the request log is on already on this broker", body = ErrorBody),
        (status = 422, description = "not a broker id, or node_id or for_secs out of range", body = ErrorBody),
        (status = 503, description = "no Kafka configured, or the broker refused or could not be reached", body = ErrorBody)))]
pub async fn start_request_log(
    _: Operator,
    State(state): State<AppState>,
    AppPath(broker): AppPath<String>,
    AppJson(input): AppJson<RequestLogStart>,
) -> Result<(StatusCode, Json<RequestLogView>)> {
    let broker = BrokerId::parse(&broker)?;
    Ok((StatusCode::CREATED, Json(requests::start(&state.store, &state.config.kafka, &broker, &input).await?)))
}

#[utoipa::path(delete, path = "/brokers/{broker}/request-log", tag = "usage",
    description = "Turns the broker's request log back before its time is up (operators): the logger follows the \
                   root logger again.",
    params(("broker" = String, Path, description = "the broker's id, as its agent token names it", example = "kafka-1")),
    responses((status = 200, body = RequestLogView),
        (status = 404, description = "the request log is not on for this broker", body = ErrorBody),
        (status = 422, description = "not a broker id", body = ErrorBody),
        (status = 503, description = "the broker refused or could not be reached", body = ErrorBody)))]
pub async fn stop_request_log(
    _: Operator,
    State(state): State<AppState>,
    AppPath(broker): AppPath<String>,
) -> Result<Json<RequestLogView>> {
    let broker = BrokerId::parse(&broker)?;
    Ok(Json(requests::stop(&state.store, &state.config.kafka, &broker).await?))
}

#[utoipa::path(post, path = "/agent/request-log", tag = "agent",
    description = "An agent reports the request-log lines of its broker counted since its last report. Counts outside \
                   any window (none open, or ended more than 5 minutes ago) are not kept.",
    request_body = RequestLogReport,
    responses((status = 200, body = RequestLogOutcome),
        (status = 403, description = "another broker than the token's, or a token bound to none", body = ErrorBody),
        (status = 422, description = "a count that is empty, not printable or below one request", body = ErrorBody)))]
pub async fn report_request_log(
    Agent(agent): Agent,
    State(state): State<AppState>,
    AppJson(input): AppJson<RequestLogReport>,
) -> Result<Json<RequestLogOutcome>> {
    let named = input.broker_id.as_deref().map(BrokerId::parse).transpose()?;
    let bound = crate::firewall::brokers::reporting_broker(named.as_ref(), agent.broker().as_ref())?;
    Ok(Json(requests::record(&state.store, &bound, &input).await?))
}
