//! # honnin-server
//!
//! The HTTP front end of honnin: the versioned `/v1` JSON API over
//! [`honnin_core::Service`], plus `/healthz`, `/readyz`, `/metrics` (Prometheus) and
//! `/openapi.json`.
//!
//! The path of a request: [`metrics_layer`] (counts and times it by route and status)
//! → timeout → body limit → handler, whose extractors authenticate the bearer key and
//! apply its rate limit ([`extract::Caller`]) and parse a JSON or multipart body
//! ([`extract::Input`]) → one [`honnin_core::Service`] call → JSON, or an
//! [`error::ApiError`] rendered as `{ "code", "message" }` with its HTTP status.
//!
//! Background tasks ([`spawn_background`]) keep the in-memory index in step with
//! storage written by other processes (every 250 ms by default), sweep expired data,
//! decide pending verifications, and deliver webhooks ([`delivery`]) — each on its own
//! task, so none waits for another.
//!
//! Start a server with [`serve`]: it passes the client's address to the failed-
//! authentication limit and opens the separate metrics listener when configured.

#![warn(missing_docs)]

pub mod config;
pub mod delivery;
pub mod error;
pub mod extract;
pub mod listen;
mod multipart;
pub mod routes;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use honnin_core::Service;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use config::ServerConfig;
use error::ApiError;
use extract::{AuthGuard, KeyLimiter};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The service: every operation of the API is one call on it.
    pub service: Arc<Service>,
    /// The per-API-key rate limit (`limits.rate_limit_per_second`, `rate_limit_burst`).
    pub limiter: Arc<KeyLimiter>,
    /// The failed-authentication limit per client address (`limits.failed_auth_*`,
    /// `limits.client_ip_header`).
    pub auth_guard: Arc<AuthGuard>,
    /// The handle of the process-wide Prometheus recorder ([`prometheus_handle`]), rendered
    /// by `/metrics`.
    pub metrics: PrometheusHandle,
    /// The server's configuration.
    pub config: Arc<ServerConfig>,
}

impl AppState {
    /// State for `service` under `config`: the key and address limiters from
    /// `config.limits`, and the process-wide Prometheus handle.
    pub fn new(service: Arc<Service>, config: ServerConfig) -> AppState {
        AppState {
            service,
            limiter: Arc::new(KeyLimiter::new(
                config.limits.rate_limit_per_second,
                config.limits.rate_limit_burst,
            )),
            auth_guard: Arc::new(
                AuthGuard::new(
                    config.limits.failed_auth_per_second,
                    config.limits.failed_auth_burst,
                    &config.limits.client_ip_header,
                )
                .with_login_starts(config.limits.login_starts_per_minute),
            ),
            metrics: prometheus_handle(),
            config: Arc::new(config),
        }
    }
}

/// Serves the application on `listener` until `shutdown` resolves (see [`listen`]: each
/// request's peer address for the failed-authentication limit, header read timeout,
/// connection limits), and (with `metrics.listen`) the metrics listener beside it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(addr) = state.config.metrics.listen {
        let m = tokio::net::TcpListener::bind(addr).await?;
        let router = axum::Router::new()
            .route("/metrics", axum::routing::get(routes::metrics_open))
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(m, router).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let l = &state.config.limits;
    let limits = listen::ConnectionLimits {
        header_read_timeout: Duration::from_secs(l.header_read_timeout_secs.max(1)),
        max_connections: l.max_connections.max(1),
        max_connections_per_client: l.max_connections_per_client.max(1),
    };
    listen::serve(listener, app(state), limits, shutdown).await
}

/// The process-wide Prometheus recorder (installed once, shared by every router).
pub fn prometheus_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// The complete application: routes, limits, metrics, fallbacks.
pub fn app(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    routes::router()
        .merge(routes::demo_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Before routing: a disabled demo answers 404 on every `/demo/` path and method.
        .layer(middleware::from_fn_with_state(state.clone(), demo_gate))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(limits.request_timeout_secs.max(1)),
            timeout_layer,
        ))
        .layer(middleware::from_fn(metrics_layer))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new("ResourceNotFound", "no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        "MethodNotAllowed",
        "this route does not take that method; see /openapi.json",
    )
}

/// The demo routes exist only with `demo.enabled`: checked before routing and before
/// any extractor, so a disabled demo answers 404 JSON on every `/demo/` path, whatever
/// the method or the body.
async fn demo_gate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let demo = path == "/demo" || path.starts_with("/demo/");
    if s.config.demo.enabled || !demo {
        next.run(req).await
    } else {
        ApiError::new(
            "ResourceNotFound",
            "the demo is disabled (set demo.enabled = true, or HONNIN_DEMO__ENABLED=true)",
        )
        .into_response()
    }
}

async fn timeout_layer(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            "RequestTimeout",
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Counts and times every request by route template, method and status.
pub async fn metrics_layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("honnin_http_requests_total", &labels).increment(1);
    metrics::histogram!("honnin_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Starts index sync, the sweeper, and the work loop (pending verifications, webhook
/// delivery) on the current runtime.
pub fn spawn_background(state: &AppState) {
    let svc = state.service.clone();
    let every = Duration::from_millis(state.config.background.sync_interval_ms.max(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match svc.sync_once().await {
                Ok(r) => {
                    metrics::counter!("honnin_sync_runs_total").increment(1);
                    if r.faces_applied
                        + r.faces_removed
                        + r.collections_added
                        + r.collections_dropped
                        > 0
                    {
                        tracing::debug!(?r, "index sync");
                    }
                }
                Err(e) => {
                    metrics::counter!("honnin_sync_errors_total").increment(1);
                    tracing::warn!(error = %e, "index sync failed; retrying");
                }
            }
        }
    });
    let svc = state.service.clone();
    let limiter = state.limiter.clone();
    let guard = state.auth_guard.clone();
    let every = Duration::from_millis(state.config.background.sweep_interval_ms.max(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match svc.sweep_once().await {
                Ok(r) => {
                    metrics::counter!("honnin_sweeper_runs_total").increment(1);
                    for (what, n) in [
                        ("transient_face", r.transient_deleted),
                        ("tombstone", r.tombstones_purged),
                        ("liveness_session", r.liveness_deleted),
                        ("liveness_images", r.liveness_images_cleared),
                        ("verification", r.verifications_deleted),
                        ("verification_images", r.verification_images_cleared),
                        ("webhook_delivery", r.deliveries_purged),
                        ("orphan_data_key", r.orphan_keys_deleted),
                    ] {
                        metrics::counter!("honnin_sweeper_deleted_total", "what" => what)
                            .increment(n);
                    }
                    metrics::counter!("honnin_sweeper_expired_total", "what" => "liveness_session")
                        .increment(r.liveness_expired);
                }
                Err(e) => {
                    metrics::counter!("honnin_sweeper_errors_total").increment(1);
                    tracing::warn!(error = %e, "sweep failed; retrying");
                }
            }
            limiter.shrink();
            guard.shrink();
        }
    });
    // Verification decisions and webhook deliveries run on separate tasks: a slow
    // receiver never delays a decision.
    let svc = state.service.clone();
    let every = Duration::from_millis(state.config.background.work_interval_ms.max(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = svc.verifications().advance_verifications().await {
                tracing::warn!(error = %e, "deciding pending verifications failed; retrying");
            }
        }
    });
    delivery::spawn(state.service.clone(), every);
}
