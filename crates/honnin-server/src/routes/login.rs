//! Face login: enrolment profiles, login attempts, the operator's unlock, and the keys
//! that verify login assertions (see `docs/login.md`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use honnin_core::login::{
    EnrolProfile, Jwks, LoginAttempt, LoginRequest, LoginResult, ProfileInfo, UnlockRequest,
    UnlockResult,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Input, Path, Query};
use crate::AppState;

/// Enrol a login profile from a liveness session that passed, or reset the profile to
/// that one template. The session must be the caller's, finished at most 120 s ago and
/// unused; its face must be frontal (±15°), of high quality and alone.
#[utoipa::path(put, path = "/v1/collections/{collectionId}/users/{userId}/profile", tag = "login",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    request_body = EnrolProfile,
    responses(
        (status = 200, description = "The profile, now this one template", body = ProfileInfo),
        (status = 400, description = "InvalidParameter, EnrolmentRejected", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound (collection), SessionNotFound", body = ErrorBody),
        (status = 409, description = "SessionAlreadyUsed, SessionNotFinished", body = ErrorBody),
        (status = 410, description = "SessionExpired", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn enrol(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
    Input(r): Input<EnrolProfile>,
) -> ApiResult<Json<ProfileInfo>> {
    Ok(Json(
        s.service
            .logins()
            .enrol_profile(&p, &id, &user, &r, true)
            .await?,
    ))
}

/// Add a template to a login profile (another look: glasses, light) from a liveness
/// session that passed; a user without a profile gets one.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/users/{userId}/profile/templates", tag = "login",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    request_body = EnrolProfile,
    responses(
        (status = 201, description = "The profile with the new template", body = ProfileInfo),
        (status = 400, description = "InvalidParameter, EnrolmentRejected", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound (collection), SessionNotFound", body = ErrorBody),
        (status = 409, description = "ProfileFull, SessionAlreadyUsed, SessionNotFinished", body = ErrorBody),
        (status = 410, description = "SessionExpired", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn add_template(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
    Input(r): Input<EnrolProfile>,
) -> ApiResult<(StatusCode, Json<ProfileInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.service
                .logins()
                .enrol_profile(&p, &id, &user, &r, false)
                .await?,
        ),
    ))
}

/// Describe a login profile: its templates' ids, sources, pose and quality (never a
/// template).
#[utoipa::path(get, path = "/v1/collections/{collectionId}/users/{userId}/profile", tag = "login",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 200, description = "The profile", body = ProfileInfo),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: no collection, or no profile", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn describe(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Json<ProfileInfo>> {
    Ok(Json(
        s.service.logins().describe_profile(&p, &id, &user).await?,
    ))
}

/// Delete a login profile (the user, its faces and its records stay).
#[utoipa::path(delete, path = "/v1/collections/{collectionId}/users/{userId}/profile", tag = "login",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: no collection, or no profile", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.service.logins().delete_profile(&p, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Log a person in by face: a fresh liveness session of the caller's that passed, and a
/// match at the security level's threshold, with the claimed user (1:1) or among every
/// profile of the collection (1:N). A failed or locked attempt is a 200 with its
/// `outcome`; a success carries a signed assertion (JWT, ES256).
#[utoipa::path(post, path = "/v1/collections/{collectionId}/logins", tag = "login",
    params(("collectionId" = String, Path)),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The attempt: SUCCEEDED with an assertion, FAILED or LOCKED", body = LoginResult),
        (status = 400, description = "InvalidParameter, LevelBeyondCalibration", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound (collection), SessionNotFound", body = ErrorBody),
        (status = 409, description = "SessionAlreadyUsed, SessionNotFinished", body = ErrorBody),
        (status = 410, description = "SessionExpired", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn login(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<LoginRequest>,
) -> ApiResult<Json<LoginResult>> {
    Ok(Json(s.service.logins().login(&p, &id, &r).await?))
}

/// Query of `GET /v1/collections/{collectionId}/logins`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptQuery {
    /// Only this user's attempts.
    pub user_id: Option<String>,
    /// How many, newest first (1–1000; default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub max_results: Option<u32>,
}

/// The newest login attempts.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptList {
    /// Newest first.
    pub attempts: Vec<LoginAttempt>,
}

/// List the newest login attempts against a collection (of one user, if named):
/// decisions and numbers, no images.
#[utoipa::path(get, path = "/v1/collections/{collectionId}/logins", tag = "login",
    params(("collectionId" = String, Path), AttemptQuery),
    responses(
        (status = 200, description = "Attempts, newest first", body = AttemptList),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn attempts(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> ApiResult<Json<AttemptList>> {
    Ok(Json(AttemptList {
        attempts: s
            .service
            .logins()
            .list_attempts(&p, &id, q.user_id.as_deref(), q.max_results)
            .await?,
    }))
}

/// Unlock a user or a client locked out after repeated failures (an operator's call).
#[utoipa::path(post, path = "/v1/collections/{collectionId}/login-unlock", tag = "login",
    params(("collectionId" = String, Path)),
    request_body = UnlockRequest,
    responses(
        (status = 200, description = "What was cleared", body = UnlockResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn unlock(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<UnlockRequest>,
) -> ApiResult<Json<UnlockResult>> {
    Ok(Json(s.service.logins().unlock(&p, &id, &r).await?))
}

/// The public keys (JWK Set, ES256) that verify login assertions; no authentication.
/// Keys rotate with overlap: a retired key stays here while assertions it signed can
/// still be valid.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "login",
    responses((status = 200, description = "The key set", body = Jwks)))]
pub async fn jwks(State(s): State<AppState>) -> ApiResult<Json<Jwks>> {
    Ok(Json(s.service.logins().jwks().await?))
}
