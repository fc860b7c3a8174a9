//! The HTTP server loop with limits `axum::serve` does not offer: a deadline for a request's
//! headers, a deadline for its whole body, and a cap on connections served at once. Without
//! them a client sending one byte every few seconds holds a connection (and a task) forever.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::HttpConfig;
use crate::error::Error;

/// How long in-flight requests may take to finish after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(35);

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_timeout_secs));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Past the cap, connections wait in the kernel's backlog until one ends.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

/// Middleware: reads the whole request body within the deadline and size cap before the
/// handler runs (408 or 413 otherwise), so no handler waits on a trickling client.
pub async fn body_deadline(limits: axum::extract::State<Arc<HttpConfig>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let deadline = Duration::from_secs(limits.body_timeout_secs);
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limits.max_body_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let message = format!("request body larger than {} bytes, or cut off", limits.max_body_bytes);
            return Error::BadBody(StatusCode::PAYLOAD_TOO_LARGE.as_u16(), message).into_response();
        }
        Err(_) => {
            let message = format!("request body not received within {} s", limits.body_timeout_secs);
            return Error::BadBody(StatusCode::REQUEST_TIMEOUT.as_u16(), message).into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
