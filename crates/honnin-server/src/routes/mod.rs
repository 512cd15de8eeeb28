//! The `/v1` routes, the operational routes, and the OpenAPI description of both.
//!
//! Handlers are thin: extract (auth, body), call [`honnin_core::Service`], wrap the
//! result in JSON. All rules live in the core.

pub mod collections;
pub mod images;
pub mod keys;
pub mod liveness;
pub mod login;
pub mod oidc;
pub mod transient;
pub mod users;
pub mod verifications;
pub mod webhooks;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Every route of the API, each registered once: a documented route's method, path
/// and OpenAPI operation all come from its handler's `#[utoipa::path]` (through
/// `utoipa_axum::routes!`); the few undocumented routes (the liveness WebSocket, static
/// files) are plain axum routes.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(images::detect))
        .routes(routes!(images::compare))
        .routes(routes!(collections::create, collections::list))
        .routes(routes!(collections::describe, collections::delete))
        .routes(routes!(
            collections::index_faces,
            collections::list_faces,
            collections::delete_faces
        ))
        .routes(routes!(collections::search))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::delete))
        .routes(routes!(users::associate, users::disassociate))
        .routes(routes!(users::search))
        .routes(routes!(transient::verify))
        .routes(routes!(transient::identify))
        .routes(routes!(transient::find_similar))
        .routes(routes!(transient::group))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(liveness::create))
        .routes(routes!(liveness::results, liveness::delete))
        .route(
            "/v1/liveness/sessions/{sessionId}/stream",
            get(liveness::stream),
        )
        .routes(routes!(verifications::create))
        .routes(routes!(verifications::status, verifications::delete))
        .routes(routes!(verifications::document))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(login::enrol, login::describe, login::delete))
        .routes(routes!(login::add_template))
        .routes(routes!(login::login, login::attempts))
        .routes(routes!(login::unlock))
        .routes(routes!(login::jwks))
        .routes(routes!(oidc::configuration))
        .routes(routes!(oidc::authorize))
        .routes(routes!(oidc::complete))
        .routes(routes!(oidc::token))
        .routes(routes!(oidc::userinfo, oidc::userinfo_post))
        .routes(routes!(oidc::create_client, oidc::list_clients))
        .routes(routes!(oidc::delete_client))
        .route("/static/{*file}", get(liveness::static_file))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// The API's routes (state still to be supplied).
pub fn router() -> Router<AppState> {
    api().split_for_parts().0
}

/// The demo pages and their key-less backend (see `docs/security.md`). The application
/// puts a gate in front of every `/demo/` path that answers 404 unless `demo.enabled`
/// (crate::app).
pub fn demo_router() -> Router<AppState> {
    Router::new()
        .route("/demo/liveness", get(liveness::demo_page))
        .route("/demo/verify", get(verifications::demo_page))
        .route("/demo/api/verifications", post(verifications::demo_create))
        .route(
            "/demo/api/verifications/{verificationId}",
            get(verifications::demo_status),
        )
        .route(
            "/demo/api/verifications/{verificationId}/document",
            axum::routing::put(verifications::demo_document),
        )
        .route("/demo/api/liveness-sessions", post(liveness::demo_create))
        .route(
            "/demo/api/liveness-sessions/{sessionId}",
            get(liveness::demo_results),
        )
}

/// Liveness of the process.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
    /// `sqlite` or `postgres` (readyz only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        backend: None,
    })
}

/// The server can reach its database and has loaded its index.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "NotReady: the database is unreachable", body = ErrorBody),
    ))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    match s.service.store().ping().await {
        Ok(()) => Json(Health {
            status: "ok".into(),
            backend: Some(format!("{:?}", s.service.store().backend()).to_lowercase()),
        })
        .into_response(),
        Err(e) => {
            // Unauthenticated route: the details (hosts, driver messages) go to the log.
            tracing::warn!(error = %e, "readiness check: the database is unreachable");
            ApiError::new(
                "NotReady",
                "the database is unreachable; the server log has details",
            )
            .into_response()
        }
    }
}

/// Prometheus metrics (text exposition format). Needs `Authorization: Bearer` with the
/// configured metrics token or an unlimited admin API key; with `metrics.listen` set,
/// metrics are served on that address instead and this route answers 404.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain"),
        (status = 401, description = "Unauthenticated: no metrics token or admin key", body = ErrorBody),
        (status = 403, description = "AccessDenied: a key that is not an unlimited admin key", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: metrics are served on their own address (metrics.listen)", body = ErrorBody),
        (status = 429, description = "Throttling: too many failed authentications from this address", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn metrics(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    if s.config.metrics.listen.is_some() {
        return ApiError::new(
            "ResourceNotFound",
            "metrics are served on their own address (metrics.listen)",
        )
        .into_response();
    }
    let (mut parts, _) = req.into_parts();
    match metrics_caller(&s, &mut parts).await {
        Ok(()) => metrics_open(State(s)).await,
        Err(e) => e.into_response(),
    }
}

/// Whether the request may read metrics: the metrics token, or an unlimited admin key.
async fn metrics_caller(
    s: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<(), ApiError> {
    let token = s.config.metrics.token.as_bytes();
    if !token.is_empty() {
        if let Ok(b) = crate::extract::bearer(parts) {
            if b.len() == token.len()
                && bool::from(subtle::ConstantTimeEq::ct_eq(b.as_bytes(), token))
            {
                return Ok(());
            }
        }
    }
    // Authenticated, but not counted against the key's request rate.
    let p = crate::extract::authenticate(parts, s).await?;
    if p.role == honnin_core::Role::Admin && !p.is_limited() {
        Ok(())
    } else {
        Err(ApiError::new(
            "AccessDenied",
            "metrics need the metrics token or an unlimited admin key",
        ))
    }
}

/// The metrics text, without authentication (the separate metrics listener).
pub async fn metrics_open(State(s): State<AppState>) -> Response {
    metrics::gauge!("honnin_templates_in_memory").set(s.service.templates_in_memory() as f64);
    metrics::gauge!("honnin_template_bytes").set(s.service.bytes_per_template() as f64);
    metrics::gauge!("honnin_engine_queue_depth").set(s.service.admission().queued() as f64);
    metrics::gauge!("honnin_engine_memory_reserved_mib")
        .set(s.service.admission().memory_reserved_mib() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "honnin",
        description = "Self-hosted face identity verification. Every `/v1` route needs `Authorization: Bearer <API key>`; errors are `{ code, message }` with a stable code."
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Whether a request body schema has an image member: the bodies of its path may also
/// be sent as `multipart/form-data`, the image as a file part (see `extract::Input`).
fn has_image_member(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> bool {
    schema
        .and_then(|s| serde_json::to_string(s).ok())
        .is_some_and(|json| json.contains("#/components/schemas/ImageInput"))
}

/// The complete OpenAPI document: the derived description plus what every `/v1`
/// route shares (the bearer scheme, 401/408/413/429/503 responses, multipart bodies).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().split_for_parts().1;
    let comps = doc.components.get_or_insert_with(Default::default);
    // The error body's `code` is one of the table's codes.
    if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(body))) =
        comps.schemas.get_mut("ErrorBody")
    {
        if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(code))) =
            body.properties.get_mut("code")
        {
            code.enum_values = Some(
                honnin_core::error::ERROR_CODES
                    .iter()
                    .map(|c| serde_json::Value::from(c.code))
                    .collect(),
            );
        }
    }
    comps.add_security_scheme(
        "apiKey",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("hn_<key id>_<secret>")
                .build(),
        ),
    );
    let error = |d: &str| -> RefOr<utoipa::openapi::Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(d)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    let bodies: std::collections::HashMap<String, bool> = comps
        .schemas
        .iter()
        .map(|(name, schema)| (name.clone(), has_image_member(Some(schema))))
        .collect();
    // The JSON body schema's component name, if any.
    let body_name = |op: &Operation| -> Option<String> {
        let json = op.request_body.as_ref()?.content.get("application/json")?;
        let v = serde_json::to_value(&json.schema).ok()?;
        v["$ref"].as_str()?.rsplit('/').next().map(String::from)
    };
    // A path where some operation takes an image accepts multipart for every body on it
    // (e.g. `DELETE …/faces` beside `POST …/faces`).
    let multipart_paths: std::collections::HashSet<String> = doc
        .paths
        .paths
        .iter()
        .filter(|(_, item)| {
            [&item.get, &item.post, &item.put, &item.delete]
                .into_iter()
                .flatten()
                .filter_map(body_name)
                .any(|n| bodies.get(&n) == Some(&true))
        })
        .map(|(path, _)| path.clone())
        .collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        let v1 = path.starts_with("/v1/");
        let multipart = multipart_paths.contains(path);
        let ops: [&mut Option<Operation>; 4] = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            if v1 {
                let r = &mut op.responses.responses;
                r.insert(
                    "401".into(),
                    error("Unauthenticated: missing, malformed, unknown or revoked API key"),
                );
                r.insert(
                    "408".into(),
                    error("RequestTimeout: the request took longer than the server's limit"),
                );
                r.insert("413".into(), error("PayloadTooLarge: body over the limit; ImageTooLarge: image over 5 MB or 40 megapixels"));
                r.insert(
                    "429".into(),
                    error("Throttling: this key is over its rate limit, or its address made too many failed authentications; see Retry-After"),
                );
                r.insert(
                    "503".into(),
                    error("ServiceUnavailable: the server is at capacity for image work; retry after Retry-After seconds"),
                );
                if let Some(body) = op.request_body.as_mut().filter(|_| multipart) {
                    if let Some(json) = body.content.get("application/json").cloned() {
                        body.content.insert("multipart/form-data".into(), json);
                    }
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the API is in the document (the router and the document come
    /// from the same registrations in `api`), and multipart goes with the paths that take
    /// an image.
    #[test]
    fn every_operation_is_documented_and_multipart_goes_with_image_paths() {
        let doc = serde_json::to_value(openapi()).expect("OpenAPI serialises");
        let paths = doc["paths"].as_object().expect("paths");
        let mut ops = Vec::new();
        let mut multipart = Vec::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                ops.push(format!("{} {path}", method.to_uppercase()));
                if op["requestBody"]["content"]["multipart/form-data"].is_object() {
                    multipart.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        ops.sort();
        multipart.sort();
        assert_eq!(ops.len(), 55, "{ops:#?}");
        assert_eq!(
            multipart,
            [
                "DELETE /v1/collections/{collectionId}/faces",
                "POST /v1/collections/{collectionId}/faces",
                "POST /v1/collections/{collectionId}/search",
                "POST /v1/collections/{collectionId}/search-users",
                "POST /v1/compare",
                "POST /v1/detect",
                "POST /v1/liveness/sessions",
                "PUT /v1/verifications/{verificationId}/document",
            ]
        );
    }

    /// The status enums are listed with their wire spellings, the ones stored and sent.
    #[test]
    fn the_status_enums_are_listed_as_they_are_spelled() {
        use honnin_core::liveness::LivenessStatus;
        use honnin_core::verification::{Outcome, StepName, StepOutcome, VerificationState};
        use honnin_core::webhooks::DeliveryStatus;
        fn spellings<T: serde::Serialize>(all: &[T]) -> Vec<serde_json::Value> {
            all.iter()
                .map(|v| serde_json::to_value(v).expect("serialises"))
                .collect()
        }
        let doc = serde_json::to_value(openapi()).expect("OpenAPI serialises");
        let schemas = &doc["components"]["schemas"];
        for (name, want) in [
            ("LivenessStatus", spellings(LivenessStatus::ALL)),
            ("VerificationState", spellings(VerificationState::ALL)),
            ("Outcome", spellings(Outcome::ALL)),
            (
                "StepName",
                spellings(&[
                    StepName::Document,
                    StepName::Liveness,
                    StepName::DocumentMatch,
                    StepName::DuplicateSearch,
                    StepName::Enrolment,
                ]),
            ),
            (
                "StepOutcome",
                spellings(&[
                    StepOutcome::Passed,
                    StepOutcome::Failed,
                    StepOutcome::Review,
                    StepOutcome::Skipped,
                ]),
            ),
            (
                "DeliveryStatus",
                spellings(&[
                    DeliveryStatus::Pending,
                    DeliveryStatus::Delivered,
                    DeliveryStatus::Failed,
                ]),
            ),
        ] {
            let listed = schemas[name]["enum"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(listed, want, "{name}: {}", schemas[name]);
        }
        assert_eq!(
            spellings(LivenessStatus::ALL),
            ["CREATED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "EXPIRED"]
                .map(serde_json::Value::from)
                .to_vec()
        );
    }

    /// The limits the OpenAPI document states are the ones the core enforces.
    #[test]
    fn the_openapi_limits_are_the_cores() {
        let doc = serde_json::to_value(openapi()).expect("OpenAPI serialises");
        let max_users =
            &doc["components"]["schemas"]["SearchUsersRequest"]["properties"]["maxUsers"];
        assert_eq!(
            max_users["maximum"].as_f64(),
            Some(honnin_core::config::MAX_USERS as f64),
            "{max_users}"
        );
        assert_eq!(
            max_users["default"].as_f64(),
            Some(honnin_core::config::DEFAULT_MAX_USERS as f64),
            "{max_users}"
        );
        assert_eq!(max_users["minimum"].as_f64(), Some(1.0), "{max_users}");
        // Page sizes of the listings: the core's bounds and default.
        for (path, max) in [
            ("/v1/collections", honnin_core::config::MAX_COLLECTIONS_PAGE),
            (
                "/v1/collections/{collectionId}/faces",
                honnin_core::config::MAX_FACES_PAGE,
            ),
            (
                "/v1/collections/{collectionId}/users",
                honnin_core::config::MAX_USERS_PAGE,
            ),
        ] {
            let params = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters");
            let p = params
                .iter()
                .find(|p| p["name"] == "maxResults")
                .expect("maxResults");
            let schema = &p["schema"];
            assert_eq!(schema["maximum"].as_f64(), Some(max as f64), "{path}: {p}");
            assert_eq!(schema["minimum"].as_f64(), Some(1.0), "{path}: {p}");
            assert_eq!(
                schema["default"].as_f64(),
                Some(honnin_core::config::DEFAULT_PAGE_SIZE as f64),
                "{path}: {p}"
            );
        }
    }

    /// The error body's `code` enum is the table of codes, and `docs/api.md` lists every
    /// code with the table's status and nothing else.
    #[test]
    fn the_error_codes_are_the_tables_everywhere() {
        let table = honnin_core::error::ERROR_CODES;
        let doc = serde_json::to_value(openapi()).expect("OpenAPI serialises");
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]
            ["enum"]
            .as_array()
            .expect("ErrorBody.code has an enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let codes: Vec<&str> = table.iter().map(|c| c.code).collect();
        assert_eq!(listed, codes);

        let md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
            .expect("docs/api.md");
        // Rows `| `Code` | status | meaning | `Exception` |` of the error table.
        let rows: Vec<(String, u16, String)> = md
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.get(2)?.parse().ok()?;
                Some((code.to_string(), status, cells.get(3)?.to_string()))
            })
            .collect();
        for c in table {
            assert!(
                rows.contains(&(c.code.to_string(), c.status, c.meaning.to_string())),
                "docs/api.md lacks the row | `{}` | {} | {} |",
                c.code,
                c.status,
                c.meaning
            );
        }
        for (code, _, _) in &rows {
            assert!(
                honnin_core::error::error_code(code).is_some(),
                "docs/api.md lists `{code}`, which is not a code"
            );
        }
    }
}
