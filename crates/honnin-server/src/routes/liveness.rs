//! Face Liveness: `POST/GET/DELETE /v1/liveness/sessions…`, the capture stream (a
//! WebSocket per session, protocol in `docs/liveness-protocol.md`), the browser
//! component's static files and the demo's key-less backend.
//!
//! The stream handler is transport only: it feeds client messages to the sans-IO
//! [`honnin_liveness::LiveSession`] (frames on a blocking thread), sends back what it
//! answers, fires its timers, enforces the session's expiry and an idle timeout, and
//! hands the outcome to [`honnin_core::Service::complete_liveness_stream`].

use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use honnin_core::liveness::{
    stream_idle_timeout, CreatedLivenessSession, LivenessResults, LivenessStatus, LivenessTicket,
    NewLivenessSession,
};
use honnin_core::{CoreError, Principal, Role, Service};
use honnin_liveness::{ChallengeKind, LiveSession, OutcomeStatus};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, ImageInput, Input, Path, Query};
use crate::AppState;

/// The challenge a session runs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Challenge {
    /// Move into the oval, then a random sequence of full-screen colours (default).
    #[default]
    FaceMovementAndLightChallenge,
    /// Move into the oval only (no colours: for people who must avoid flashing light).
    FaceMovementChallenge,
}

impl From<Challenge> for ChallengeKind {
    fn from(c: Challenge) -> Self {
        match c {
            Challenge::FaceMovementAndLightChallenge => {
                ChallengeKind::FaceMovementAndLightChallenge
            }
            Challenge::FaceMovementChallenge => ChallengeKind::FaceMovementChallenge,
        }
    }
}

/// How a liveness session runs.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LivenessSettings {
    /// How many audit images (frames besides the reference image) to return, 0–4 (default 0).
    #[schema(minimum = 0, maximum = 4)]
    pub audit_images_limit: Option<u8>,
    /// The challenge to run (default `FaceMovementAndLightChallenge`).
    pub challenge: Option<Challenge>,
}

/// The body of `POST /v1/liveness/sessions` (`{}` is a valid body: default settings,
/// no reference image).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLivenessSessionRequest {
    /// How the session runs (default: no audit images, the movement-and-light challenge).
    #[serde(default)]
    pub settings: LivenessSettings,
    /// Liveness-with-verify: compare the live face with the largest face of this image.
    pub reference_image: Option<ImageInput>,
    /// Links the sessions of one device, for abuse detection and its own rate limit.
    pub device_correlation_id: Option<String>,
}

/// The path of a session's WebSocket stream (the client adds `?token=<clientToken>`).
pub fn stream_path(session_id: &str) -> String {
    format!("/v1/liveness/sessions/{session_id}/stream")
}

/// A created liveness session as the API returns it: the core's answer and where the
/// capture client streams.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LivenessSessionCreated {
    /// The core's answer (`sessionId`, `clientToken`, `expiresAt`), flattened into this
    /// object.
    #[serde(flatten)]
    pub session: CreatedLivenessSession,
    /// Where the client opens its WebSocket (add `?token=<clientToken>`).
    pub stream_path: String,
}

impl From<CreatedLivenessSession> for LivenessSessionCreated {
    fn from(session: CreatedLivenessSession) -> Self {
        LivenessSessionCreated {
            stream_path: stream_path(&session.session_id),
            session,
        }
    }
}

/// Create a liveness session; give `sessionId` and `clientToken` to the capture client.
#[utoipa::path(post, path = "/v1/liveness/sessions", tag = "liveness",
    request_body(content = CreateLivenessSessionRequest, description = "JSON, or multipart/form-data with a `referenceImage` file part"),
    responses(
        (status = 200, description = "Created; it expires 3 minutes from now", body = LivenessSessionCreated),
        (status = 400, description = "InvalidParameter, InvalidImageFormat, NoFaceDetected (referenceImage)", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<CreateLivenessSessionRequest>,
) -> ApiResult<Json<LivenessSessionCreated>> {
    create_as(&s, &p, r).await.map(|c| Json(c.into()))
}

async fn create_as(
    s: &AppState,
    p: &Principal,
    r: CreateLivenessSessionRequest,
) -> ApiResult<CreatedLivenessSession> {
    let reference_image = match r.reference_image {
        Some(i) => Some(i.decode("referenceImage")?),
        None => None,
    };
    let req = NewLivenessSession {
        challenge: r.settings.challenge.unwrap_or_default().into(),
        audit_images_limit: r.settings.audit_images_limit.unwrap_or(0),
        reference_image,
        device_correlation_id: r.device_correlation_id,
    };
    s.service
        .liveness()
        .create_liveness_session(p, req)
        .await
        .map_err(|e| {
            let throttled = matches!(e, CoreError::Throttling(_));
            let mut e = ApiError::from(e);
            if throttled {
                e.retry_after = Some(60);
            }
            e
        })
}

/// A session's status and, once finished, its confidence, decision and images (the
/// images only on the first read after it finished: they are deleted by that read).
#[utoipa::path(get, path = "/v1/liveness/sessions/{sessionId}", tag = "liveness",
    params(("sessionId" = String, Path)),
    responses(
        (status = 200, description = "The session", body = LivenessResults),
        (status = 404, description = "SessionNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn results(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<LivenessResults>> {
    Ok(Json(s.service.liveness().liveness_results(&p, &id).await?))
}

/// Delete a session, its results and images at once.
#[utoipa::path(delete, path = "/v1/liveness/sessions/{sessionId}", tag = "liveness",
    params(("sessionId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "SessionNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service
        .liveness()
        .delete_liveness_session(&p, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of the stream route: `?token=<clientToken>` (a browser's WebSocket cannot
/// send an `Authorization` header).
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    token: Option<String>,
}

/// Largest WebSocket message: a frame (512 KiB of JPEG) plus its header.
const MAX_WS_MESSAGE: usize = 512 * 1024 + 64;

/// The capture stream (WebSocket upgrade; see `docs/liveness-protocol.md`). Before the
/// upgrade, errors are JSON: InvalidClientToken (401), SessionNotFound (404),
/// SessionAlreadyStarted (409), SessionExpired and SessionCancelled (410).
pub async fn stream(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let ws = ws.map_err(|e| {
        ApiError::invalid(format!(
            "this route takes a WebSocket upgrade (see docs/liveness-protocol.md): {e}"
        ))
    })?;
    let token = q.token.unwrap_or_default();
    if token.is_empty() {
        return Err(CoreError::InvalidClientToken(
            "the stream needs `?token=<clientToken>`".into(),
        )
        .into());
    }
    let ticket = s.service.open_liveness_stream(&id, &token).await?;
    Ok(ws
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| run_stream(s, ticket, socket)))
}

fn json_msg(v: serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

/// How a stream ended before the analysis.
enum Ended {
    Finished(Box<LiveSession>),
    Failed { code: String, message: String },
}

async fn run_stream(s: AppState, ticket: LivenessTicket, mut socket: WebSocket) {
    let svc = s.service.clone();
    let started = Instant::now();
    let expiry = started
        + Duration::from_millis((ticket.expires_ms - honnin_core::clock::now_ms()).max(0) as u64);
    let idle = stream_idle_timeout(&svc.config().liveness);
    let mut frames = 0u32;
    // How the socket is closed: 1000 after `complete`; 1008 (policy) with the error code
    // after a protocol error or a cancelled/expired session; 1011 after an internal error.
    let mut close: (u16, String) = (1000, "complete".into());
    let ended = drive(&svc, &ticket, &mut socket, expiry, idle, &mut frames).await;
    match ended {
        Ended::Finished(sess) => {
            let t0 = Instant::now();
            let outcome = tokio::task::spawn_blocking(move || sess.finish()).await;
            metrics::histogram!("honnin_liveness_verdict_seconds")
                .record(t0.elapsed().as_secs_f64());
            match outcome {
                Ok(outcome) => {
                    let status = match outcome.status {
                        OutcomeStatus::Succeeded => LivenessStatus::Succeeded,
                        _ => LivenessStatus::Failed,
                    };
                    let reason = outcome.reasons.first().map(|r| r.code.to_string());
                    match svc.complete_liveness_stream(&ticket, outcome).await {
                        Ok(_) => {
                            let _ = socket
                                .send(json_msg(serde_json::json!({
                                    "type": "complete", "status": status,
                                    "reason": if status == LivenessStatus::Failed { reason } else { None },
                                })))
                                .await;
                        }
                        Err(e) => {
                            tracing::warn!(session = %ticket.session_id, error = %e, "liveness result not stored");
                            let e = ApiError::from(e);
                            close = (1008, e.code.to_string());
                            let _ = socket
                                .send(json_msg(serde_json::json!({
                                    "type": "error", "code": e.code, "message": e.message,
                                })))
                                .await;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(session = %ticket.session_id, "liveness analysis panicked: {e}");
                    close = (1011, "InternalError".into());
                    let _ = svc
                        .fail_liveness_stream(
                            &ticket,
                            "InternalError",
                            "the analysis failed",
                            frames,
                        )
                        .await;
                    let _ = socket
                        .send(json_msg(serde_json::json!({
                            "type": "error", "code": "InternalError",
                            "message": "the analysis failed; the server log has details",
                        })))
                        .await;
                }
            }
        }
        Ended::Failed { code, message } => {
            close = if code == "InternalError" {
                (1011, code.clone())
            } else {
                (1008, code.clone())
            };
            let _ = socket
                .send(json_msg(serde_json::json!({
                    "type": "error", "code": code, "message": message,
                })))
                .await;
            if code == "SessionExpired" || code == "SessionCancelled" {
                // The sweeper marks it EXPIRED / the revocation marked it FAILED.
            } else if let Err(e) = svc
                .fail_liveness_stream(&ticket, &code, &message, frames)
                .await
            {
                tracing::debug!(session = %ticket.session_id, error = %e, "failed session not recorded");
            }
        }
    }
    let _ = socket
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: close.0,
            reason: close.1.into(),
        })))
        .await;
}

/// Runs the message loop until the session finished or failed.
async fn drive(
    svc: &Service,
    ticket: &LivenessTicket,
    socket: &mut WebSocket,
    expiry: Instant,
    idle: Duration,
    frames: &mut u32,
) -> Ended {
    let mut sess = Box::new(svc.liveness().new_live_session(ticket));
    let mut last_heard = Instant::now();
    // A revoked key's sessions are cancelled in storage (by any server): look every
    // second, and stop the stream when it happens.
    let mut alive_check = tokio::time::interval(Duration::from_secs(1));
    alive_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    alive_check.tick().await;
    loop {
        let now = Instant::now();
        if now >= expiry {
            return Ended::Failed {
                code: "SessionExpired".into(),
                message: "the session's time ran out during the stream".into(),
            };
        }
        let mut wake = expiry.min(last_heard + idle);
        if let Some(d) = sess.next_deadline() {
            wake = wake.min(d);
        }
        let out = tokio::select! {
            msg = socket.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => sess.on_text(Instant::now(), t.as_str()),
                    Some(Ok(Message::Binary(b))) => {
                        *frames += 1;
                        let moved = sess;
                        match tokio::task::spawn_blocking(move || {
                            let mut moved = moved;
                            let r = moved.on_frame(Instant::now(), &b);
                            (moved, r)
                        })
                        .await
                        {
                            Ok((back, r)) => {
                                sess = back;
                                r
                            }
                            Err(e) => {
                                tracing::error!(session = %ticket.session_id, "frame analysis panicked: {e}");
                                return Ended::Failed {
                                    code: "InternalError".into(),
                                    message: "frame analysis failed".into(),
                                };
                            }
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Vec::new()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        return Ended::Failed {
                            code: "ClientDisconnected".into(),
                            message: "the client closed the stream before it ended".into(),
                        };
                    }
                }
            }
            _ = alive_check.tick() => {
                match svc.liveness().liveness_stream_alive(ticket).await {
                    Ok(false) => {
                        return Ended::Failed {
                            code: "SessionCancelled".into(),
                            message: "the session was cancelled (the API key that created it was revoked)".into(),
                        };
                    }
                    Ok(true) => Ok(Vec::new()),
                    Err(e) => {
                        tracing::debug!(session = %ticket.session_id, error = %e, "liveness status check failed; the stream goes on");
                        Ok(Vec::new())
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if now >= expiry {
                    continue;
                }
                if now >= last_heard + idle {
                    return Ended::Failed {
                        code: "Timeout".into(),
                        message: format!("the client sent nothing for {} s", idle.as_secs()),
                    };
                }
                sess.on_tick(now)
            }
        };
        match out {
            Ok(msgs) => {
                for m in msgs {
                    let text = match serde_json::to_string(&m) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::error!("cannot encode a server message: {e}");
                            continue;
                        }
                    };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return Ended::Failed {
                            code: "ClientDisconnected".into(),
                            message: "the client closed the stream before it ended".into(),
                        };
                    }
                }
            }
            Err(e) => {
                return Ended::Failed {
                    code: e.code.to_string(),
                    message: e.message.clone(),
                }
            }
        }
        if sess.is_finished() {
            return Ended::Finished(sess);
        }
    }
}

// ---------------------------------------------------------------------- web assets

/// The browser component and other static files (`/static/…`).
pub async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    serve_asset(&format!("/static/{file}"))
}

pub(crate) fn serve_asset(path: &str) -> Response {
    match honnin_web::asset(path) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.body,
        )
            .into_response(),
        None => ApiError::new("ResourceNotFound", format!("no such file: {path}")).into_response(),
    }
}

// ---------------------------------------------------------------------- demo
//
// Mounted behind the demo gate (`crate::app`): none of these runs unless
// `demo.enabled`. Errors are JSON like everywhere else.

fn demo_principal() -> Principal {
    Principal {
        key_id: "demo".into(),
        role: Role::Recognizer,
        collection: None,
        scope_uid: None,
    }
}

/// The demo's own rate limit (one bucket for every anonymous caller).
pub(crate) fn demo_rate_limit(s: &AppState) -> ApiResult<()> {
    s.limiter.check("demo").map_err(|wait| {
        let mut e = ApiError::from(CoreError::Throttling(
            "the demo is over its rate limit".into(),
        ));
        e.retry_after = Some(wait.max(1));
        e
    })
}

/// A JSON body that may be empty (then `T::default()`), with JSON errors.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid request: {e}")))
}

/// `GET /demo/liveness`: the demo page.
pub async fn demo_page() -> Response {
    serve_asset("/demo/liveness")
}

/// The body of `POST /demo/api/liveness-sessions`, all optional (an empty body is `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemoCreate {
    challenge: Option<Challenge>,
    audit_images_limit: Option<u8>,
}

/// `POST /demo/api/liveness-sessions`: what a customer's backend would do, key-less,
/// for the demo page only.
pub async fn demo_create(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<LivenessSessionCreated>> {
    demo_rate_limit(&s)?;
    let b: DemoCreate = optional_json(&body)?;
    let r = CreateLivenessSessionRequest {
        settings: LivenessSettings {
            audit_images_limit: b.audit_images_limit,
            challenge: b.challenge,
        },
        reference_image: None,
        device_correlation_id: None,
    };
    create_as(&s, &demo_principal(), r)
        .await
        .map(|c| Json(c.into()))
}

/// `GET /demo/api/liveness-sessions/{id}`: the demo's own sessions' results.
pub async fn demo_results(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<LivenessResults>> {
    Ok(Json(
        s.service
            .liveness()
            .liveness_results(&demo_principal(), &id)
            .await?,
    ))
}
