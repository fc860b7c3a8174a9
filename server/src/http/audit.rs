//! The audit route layer: opens the request's audit scope before the handler runs and, after the
//! response, moves what the handler's changes staged to the log with the final status (or writes
//! the entry itself for requests that changed nothing: refusals, errors). The caller extractors
//! name the principal the request was authorised as, else the entry names `anonymous`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Principal;
use crate::firewall::Cidr;
use crate::state::AppState;
use crate::store::audit::{self, Actor, Entry, Scope};
use crate::tenants::TenantId;

/// Set on a response by handlers whose actor is not an authenticated principal (sign-in, where
/// the actor is the account that tried) or that add a detail.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<(String, String)>,
    pub action: Option<&'static str>,
    pub detail: String,
}

/// Records `principal` as the actor of the request's entry (called by the caller extractors).
pub fn authenticated(parts: &Parts, principal: &Principal) {
    if let Some(scope) = parts.extensions.get::<Arc<Scope>>() {
        scope.authenticate(Actor {
            name: principal.name.clone(),
            role: principal.role().to_string(),
            tenant: principal.tenant_id,
        });
    }
}

/// The client address of a request: what [`client_address`] found, else the TCP peer.
pub fn source_of(extensions: &axum::http::Extensions) -> String {
    if let Some(ClientIp(ip)) = extensions.get::<ClientIp>() {
        return ip.to_string();
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// The client's address as [`client_address`] determined it.
#[derive(Debug, Clone, Copy)]
struct ClientIp(IpAddr);

/// The client of a request from a trusted proxy: the nearest `X-Forwarded-For` entry that is not
/// itself a trusted proxy (entries further left are the client's own claims). From any other
/// peer the header is ignored.
fn client_of(peer: IpAddr, forwarded: &[&str], proxies: &[Cidr]) -> IpAddr {
    let trusted = |ip: IpAddr| proxies.iter().any(|p| p.contains(ip));
    if !trusted(peer) {
        return peer.to_canonical();
    }
    let hops = forwarded.iter().flat_map(|h| h.split(',')).map(str::trim).rev();
    let mut client = peer;
    for hop in hops {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted(ip) => client = ip,
            Ok(ip) => return ip.to_canonical(),
            // An unreadable entry: nothing to its left can be believed.
            Err(_) => break,
        }
    }
    client.to_canonical()
}

/// Layer recording the client address of each request (see [`client_of`]).
pub async fn client_address(State(proxies): State<Arc<Vec<Cidr>>>, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip()) {
        let forwarded: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let ip = client_of(peer, &forwarded, &proxies);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

fn audited(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path.ends_with("/bundle.zip")
}

/// Route layer recording audited requests (see the module comment).
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !audited(req.method(), &path) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let template = parts.extensions.get::<MatchedPath>().map_or_else(|| path.clone(), |m| m.as_str().to_owned());
    let path_tenant = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|p| p.iter().find(|(k, _)| *k == "id").and_then(|(_, v)| TenantId::parse_str(v).ok()))
        .filter(|_| template.contains("/tenants/{id}"))
        .map(TenantId::get);
    let scope = Scope::new(
        state.replica.clone(),
        source_of(&parts.extensions),
        format!("{} {template}", parts.method),
        // Invitation links carry a secret: record the route, not the link.
        if template.contains("{secret}") { template.clone() } else { path },
    );
    parts.extensions.insert(scope.clone());

    let response = scope.run(next.run(Request::from_parts(parts, body))).await;

    let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    if let Some((name, role)) = note.actor {
        scope.name(Actor { name, role, tenant: None });
    }
    let actor = scope.actor();
    let staged = scope.take_staged();
    let status = response.status().as_u16();
    let entry = Entry {
        actor: actor.name,
        role: actor.role,
        tenant_id: staged.iter().find_map(|(_, t)| *t).or(path_tenant).or(actor.tenant),
        source: scope.source.clone(),
        action: note.action.map_or_else(|| scope.action.clone(), str::to_owned),
        target: scope.target.clone(),
        status,
        detail: note.detail,
    };
    if staged.is_empty() && scope.is_authenticated() && (200..400).contains(&status) {
        // A success that staged nothing is a change recorded after its commit: a bug to fix.
        // (Anonymous requests change nothing: they are refused or sent to the sign-in page.)
        state.metrics.audit_unstaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(action = entry.action, "successful audited request staged no audit entry");
    }
    // An audit write that fails is logged loudly; a staged entry stays in the outbox for recovery.
    if let Err(e) = audit::finish(&state.store, &entry, &staged).await {
        tracing::error!(error = ?e, action = entry.action, "audit log write failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_audited_except_downloads() {
        assert!(!audited(&Method::GET, "/api/v1/tenants"));
        assert!(audited(&Method::GET, "/api/v1/tenants/83/bundle.zip"));
        assert!(audited(&Method::POST, "/login"));
        assert!(audited(&Method::DELETE, "/api/v1/tenants/83"));
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<Cidr> = vec!["10.0.0.0/24".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not a proxy: the header is the client's own claim.
        assert_eq!(client_of(ip("203.0.113.9"), &["198.51.100.1"], &proxies), ip("203.0.113.9"));
        assert_eq!(client_of(ip("10.0.0.5"), &["198.51.100.1"], &proxies), ip("198.51.100.1"));
        // A spoofed entry left of the real client is ignored; proxies in the chain are skipped.
        assert_eq!(client_of(ip("10.0.0.5"), &["6.6.6.6, 198.51.100.1, 10.0.0.7"], &proxies), ip("198.51.100.1"));
        assert_eq!(client_of(ip("10.0.0.5"), &["6.6.6.6", "198.51.100.1"], &proxies), ip("198.51.100.1"));
        assert_eq!(client_of(ip("10.0.0.5"), &[], &proxies), ip("10.0.0.5"));
        assert_eq!(client_of(ip("10.0.0.5"), &["garbage"], &proxies), ip("10.0.0.5"));
        assert_eq!(client_of(ip("::ffff:203.0.113.9"), &[], &[]), ip("203.0.113.9"));
    }
}
