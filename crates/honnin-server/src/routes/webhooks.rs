//! Webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`,
//! `GET /v1/webhooks/{id}/deliveries`. Delivery runs in the background
//! (`crate::spawn_background`); signing is described in `docs/api.md`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use honnin_core::webhooks::{DeliveryInfo, NewWebhook, WebhookInfo};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Input, Path, Query};
use crate::AppState;

/// Register a URL for this key's events (enroller or admin key); the signing secret is
/// returned once. `https://` only and no internal destination unless the operator
/// allows it (docs/security.md, "Webhooks").
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = NewWebhook),
    responses(
        (status = 200, description = "Registered (with its secret)", body = WebhookInfo),
        (status = 400, description = "InvalidParameter: not an https URL, or an internal destination", body = ErrorBody),
        (status = 403, description = "AccessDenied: a recognizer key", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<NewWebhook>,
) -> ApiResult<Json<WebhookInfo>> {
    Ok(Json(s.service.webhooks().create_webhook(&p, r).await?))
}

/// The query of `GET /v1/webhooks`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListWebhooks {
    /// Admins: the webhooks of every key they oversee (an unlimited admin: all keys; a
    /// collection admin: its collection's keys), not only their own.
    pub all_keys: Option<bool>,
}

/// This key's webhooks (without secrets); with `allKeys=true`, an admin's overview.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(ListWebhooks),
    responses(
        (status = 200, description = "Webhooks", body = Vec<WebhookInfo>),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied: allKeys without an admin key", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<ListWebhooks>,
) -> ApiResult<Json<Vec<WebhookInfo>>> {
    Ok(Json(
        s.service
            .webhooks()
            .list_webhooks(&p, q.all_keys.unwrap_or(false))
            .await?,
    ))
}

/// Remove a webhook and its pending deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service.webhooks().delete_webhook(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's latest deliveries: pending, delivered or failed, with attempts and errors.
#[utoipa::path(get, path = "/v1/webhooks/{webhookId}/deliveries", tag = "webhooks",
    params(("webhookId" = String, Path)),
    responses(
        (status = 200, description = "Deliveries, newest first", body = Vec<DeliveryInfo>),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn deliveries(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryInfo>>> {
    Ok(Json(
        s.service.webhooks().webhook_deliveries(&p, &id).await?,
    ))
}
