//! REST API under `/api/v1`. Routes are registered through utoipa-axum so the OpenAPI document
//! at `/api/v1/openapi.json` is generated from the same handlers that serve them.

mod agent;
mod alert_channels;
mod alert_rules;
mod allowlist;
mod audit;
mod bundle;
mod credentials;
mod doc;
mod live;
mod quotas;
mod replicas;
mod request_log;
mod streaming;
mod tenants;
mod tokens;
mod usage;
pub mod users;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::http::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "outflow",
        description = "Control plane for streaming CDN logs to customers over Kafka. \
                       Every route except this document requires `Authorization: Bearer <token>`. \
                       Operators may use every route; tenant tokens only routes of their own tenant \
                       (not partition changes, users or brokers); agent tokens only the agent routes."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every API route with its OpenAPI description, one entry per path.
fn routes() -> Vec<UtoipaMethodRouter<AppState>> {
    vec![
        routes!(tenants::list_tenants, tenants::create_tenant),
        routes!(tenants::get_tenant, tenants::delete_tenant),
        routes!(streaming::activate, streaming::status, streaming::deactivate, streaming::change),
        routes!(streaming::check),
        routes!(credentials::list_credentials, credentials::rotate_credential),
        routes!(credentials::revoke_credential),
        routes!(bundle::download_bundle),
        routes!(streaming::list_partition_requests, streaming::request_partitions),
        routes!(tokens::list_tokens, tokens::create_token),
        routes!(tokens::revoke_token),
        routes!(users::list_users, users::invite_user),
        routes!(users::change_user),
        routes!(audit::list_audit),
        routes!(live::live_view),
        routes!(live::set_live_tail),
        routes!(allowlist::list_allowlist, allowlist::add_entry, allowlist::replace_allowlist),
        routes!(allowlist::remove_entry),
        routes!(agent::poll_allowlist),
        routes!(agent::report_status),
        routes!(usage::report_usage),
        routes!(usage::tenant_usage),
        routes!(usage::usage_ranking),
        routes!(request_log::report_request_log),
        routes!(request_log::get_request_log, request_log::start_request_log, request_log::stop_request_log),
        routes!(replicas::list_replicas),
        routes!(quotas::get_quota, quotas::set_quota),
        routes!(quotas::get_default_quota, quotas::set_default_quota),
        routes!(alert_rules::list_rules, alert_rules::create_rule),
        routes!(alert_rules::get_rule, alert_rules::replace_rule, alert_rules::delete_rule),
        routes!(alert_rules::mute_rule, alert_rules::unmute_rule),
        routes!(alert_rules::list_alerts),
        routes!(alert_rules::list_events),
        routes!(alert_rules::list_operator_rules, alert_rules::create_operator_rule),
        routes!(alert_rules::get_operator_rule, alert_rules::replace_operator_rule, alert_rules::delete_operator_rule),
        routes!(alert_rules::list_operator_alerts),
        routes!(alert_channels::list_channels, alert_channels::create_channel),
        routes!(alert_channels::get_channel, alert_channels::change_channel, alert_channels::delete_channel),
        routes!(alert_channels::test_channel),
        routes!(alert_channels::list_deliveries),
        routes!(alert_channels::list_operator_channels, alert_channels::create_operator_channel),
        routes!(
            alert_channels::get_operator_channel,
            alert_channels::change_operator_channel,
            alert_channels::delete_operator_channel
        ),
        routes!(alert_channels::test_operator_channel),
        routes!(alert_channels::list_operator_deliveries),
    ]
}

/// The API routes together with their OpenAPI description.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = routes().into_iter().fold(OpenApiRouter::new(), OpenApiRouter::routes);
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1).split_for_parts();
    doc::add_error_responses(&mut openapi);
    (router, openapi)
}

pub fn router() -> Router<AppState> {
    let (router, openapi) = api();
    // The document describes the API and holds no data, so it is served without a token.
    router.route("/api/v1/openapi.json", get(move || async move { Json(openapi) }))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;
    use utoipa::OpenApi;

    use super::{ApiDoc, api, routes};

    /// Two Rust types publishing one schema name overwrite each other in the document, and the
    /// answers of one route are then checked against the other type's schema.
    #[test]
    fn schema_names_are_unique() {
        let mut published: BTreeMap<String, Value> = BTreeMap::new();
        let mut clashes = BTreeSet::new();
        let components = ApiDoc::openapi().components.unwrap_or_default().schemas;
        for (name, schema) in routes().into_iter().flat_map(|(schemas, _, _)| schemas).chain(components) {
            let schema = serde_json::to_value(schema).unwrap();
            match published.get(&name) {
                Some(earlier) if *earlier != schema => {
                    clashes.insert(name);
                }
                Some(_) => {}
                None => {
                    published.insert(name, schema);
                }
            }
        }
        assert!(published.len() > 20, "expected the API's schemas, got {:?}", published.keys());
        assert!(clashes.is_empty(), "schema names published by more than one type: {clashes:?}");
    }

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    found.push(r.clone());
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(api().1).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        let dangling: Vec<&String> = found
            .iter()
            .filter(|r| r.strip_prefix("#/components/schemas/").is_none_or(|name| !schemas.contains_key(name)))
            .collect();
        assert!(!found.is_empty());
        assert!(dangling.is_empty(), "references to no schema: {dangling:?}");
    }

    /// The answers that follow from a route's shape are documented on every operation, every
    /// response has the description OpenAPI requires, and tenant ids carry their range.
    #[test]
    fn every_operation_documents_its_errors() {
        let doc = serde_json::to_value(api().1).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let params = operation["parameters"].as_array().cloned().unwrap_or_default();
                let names: BTreeSet<String> = params.iter().map(|p| format!("{} {}", p["in"], p["name"])).collect();
                if names.len() != params.len() {
                    missing.push(format!("{method} {path}: a parameter listed twice"));
                }
                let segments: BTreeSet<String> = path
                    .split('/')
                    .filter_map(|s| Some(format!("\"path\" \"{}\"", s.strip_prefix('{')?.strip_suffix('}')?)))
                    .collect();
                let in_path: BTreeSet<String> = names.iter().filter(|n| n.starts_with("\"path\"")).cloned().collect();
                if segments != in_path {
                    missing.push(format!("{method} {path}: path parameters {in_path:?}"));
                }
                for id in params.iter().filter(|p| p["name"] == "id" && p["in"] == "path") {
                    if id["schema"]["minimum"] != 1 || id["schema"]["maximum"] != 999_999 {
                        missing.push(format!("{method} {path}: the range of the tenant id"));
                    }
                }
                let mut expected = vec!["401", "403", "500"];
                if params.iter().any(|p| p["in"] == "path") {
                    expected.push("404");
                }
                if !params.is_empty() {
                    expected.push("422");
                }
                if operation.get("requestBody").is_some() {
                    expected.extend(["400", "408", "413", "415", "422"]);
                }
                let responses = operation["responses"].as_object().unwrap();
                for status in expected {
                    if !responses.contains_key(status) {
                        missing.push(format!("{method} {path}: {status}"));
                    }
                }
                for (status, response) in responses {
                    if response["description"].as_str().is_none_or(str::is_empty) {
                        missing.push(format!("{method} {path}: description of {status}"));
                    }
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        if schema != "#/components/schemas/ErrorBody" {
                            missing.push(format!("{method} {path}: error body of {status}"));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undocumented: {missing:#?}");
    }
}
