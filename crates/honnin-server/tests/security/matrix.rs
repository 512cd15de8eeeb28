//! Item 1 (and 2, 3): the role × scope × route matrix.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{b64, blank_png, fixture, key_id, Backend, Server};

// ---------------------------------------------------------------- the matrix

/// The key kinds of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum K {
    AdminAll,
    EnrAll,
    RecAll,
    AdminA,
    EnrA,
    RecA,
}

impl K {
    const ALL: [K; 6] = [
        K::AdminAll,
        K::EnrAll,
        K::RecAll,
        K::AdminA,
        K::EnrA,
        K::RecA,
    ];
    fn role(self) -> &'static str {
        match self {
            K::AdminAll | K::AdminA => "admin",
            K::EnrAll | K::EnrA => "enroller",
            K::RecAll | K::RecA => "recognizer",
        }
    }
    fn limited(self) -> bool {
        matches!(self, K::AdminA | K::EnrA | K::RecA)
    }
    fn admin(self) -> bool {
        matches!(self, K::AdminAll | K::AdminA)
    }
    fn enrols(self) -> bool {
        !matches!(self, K::RecAll | K::RecA)
    }
}

/// What a request aims at: a collection in (`In`: the key's own, `A`) or out of
/// (`Out`: `B`) a limited key's scope; something created by the caller (`Own`), by
/// another key limited to `A` (`Mate`), by a key limited to `B` (`Foreign`), by an
/// unlimited key (`Unl`; a verification of `Unl` is in `A`); for key management, a key
/// limited to `A`/`B` or an unlimited one (`Unlimited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    In,
    Out,
    Own,
    Mate,
    Foreign,
    Unl,
    Unlimited,
}

const A: &str = "m-a";
const B: &str = "m-b";

struct World<'a> {
    s: &'a Server,
    keys: HashMap<K, String>,
    /// Owners of things other keys create: enroller limited to A, to B, unlimited.
    mate: String,
    foreign: String,
    unl: String,
    face: HashMap<&'static str, String>,
    transient: HashMap<String, String>,
    /// A second transient face of each owner.
    second: HashMap<String, String>,
    session: HashMap<String, String>,
    webhook: HashMap<String, String>,
    verification: HashMap<String, String>,
    n: AtomicUsize,
}

impl World<'_> {
    fn fresh(&self, what: &str) -> String {
        format!("{what}-{}", self.n.fetch_add(1, Ordering::Relaxed))
    }
    fn owner(&self, k: K, t: T) -> Option<String> {
        match t {
            T::Own => Some(self.keys[&k].clone()),
            T::Mate => Some(self.mate.clone()),
            T::Foreign => Some(self.foreign.clone()),
            T::Unl => Some(self.unl.clone()),
            _ => None,
        }
    }
    fn coll(t: T) -> &'static str {
        if t == T::Out {
            B
        } else {
            A
        }
    }
    async fn session_of(&self, owner: &str) -> String {
        self.s
            .ok_as(owner, "POST", "/v1/liveness/sessions", Some(json!({})))
            .await["sessionId"]
            .as_str()
            .unwrap()
            .to_string()
    }
    async fn webhook_of(&self, owner: &str) -> String {
        self.s
            .ok_as(
                owner,
                "POST",
                "/v1/webhooks",
                Some(json!({"url": "http://127.0.0.1:9/hook"})),
            )
            .await["webhookId"]
            .as_str()
            .unwrap()
            .to_string()
    }
    async fn verification_of(&self, owner: &str, collection: &str) -> String {
        self.s
            .ok_as(
                owner,
                "POST",
                "/v1/verifications",
                Some(json!({"collectionId": collection, "externalUserId": self.fresh("v")})),
            )
            .await["verificationId"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// Verifications: `Unl`'s is in A, `Foreign`'s in B.
    fn verification_collection(t: T) -> &'static str {
        if t == T::Foreign {
            B
        } else {
            A
        }
    }
}

/// The targets each route is tried on.
fn targets(route: &str) -> Vec<T> {
    use T::*;
    match route {
        "POST /v1/detect"
        | "POST /v1/compare"
        | "GET /v1/collections"
        | "POST /v1/liveness/sessions"
        | "GET /v1/webhooks"
        | "POST /v1/webhooks"
        | "GET /v1/keys"
        | "GET /healthz"
        | "GET /readyz"
        | "GET /openapi.json"
        | "GET /.well-known/jwks.json"
        | "GET /.well-known/openid-configuration"
        | "GET /oidc/authorize"
        | "POST /oidc/authorize/complete"
        | "POST /oidc/token"
        | "GET /oidc/userinfo"
        | "POST /oidc/userinfo"
        | "GET /v1/oidc/clients"
        | "GET /metrics" => vec![In],
        "POST /v1/keys" | "DELETE /v1/keys/{keyId}" => vec![In, Out, Unlimited],
        "POST /v1/verify" => vec![Own, Mate, Foreign, Unl, In, Out],
        "POST /v1/find-similar"
        | "POST /v1/group"
        | "GET /v1/liveness/sessions/{sessionId}"
        | "DELETE /v1/liveness/sessions/{sessionId}"
        | "DELETE /v1/webhooks/{webhookId}"
        | "DELETE /v1/oidc/clients/{clientId}"
        | "GET /v1/webhooks/{webhookId}/deliveries"
        | "GET /v1/verifications/{verificationId}"
        | "PUT /v1/verifications/{verificationId}/document"
        | "DELETE /v1/verifications/{verificationId}" => vec![Own, Mate, Foreign, Unl],
        _ => vec![In, Out],
    }
}

/// The status each (route, key, target) must get: the rule of docs/security.md.
fn expect(route: &str, k: K, t: T) -> u16 {
    use T::*;
    // What another key created: its owner, its collection's admins, unlimited admins.
    let visible = match t {
        Own => true,
        Mate => k.admin(),
        Foreign | Unl => k == K::AdminAll,
        _ => true,
    };
    // A verification is also visible to the admins of its collection.
    let visible_verification = match t {
        Own => true,
        Mate | Unl => k.admin(),
        _ => k == K::AdminAll,
    };
    let in_scope = t != Out || !k.limited();
    let recognize = if in_scope { 200 } else { 403 };
    let enrol = |ok: u16| if k.enrols() && in_scope { ok } else { 403 };
    match route {
        "POST /v1/detect"
        | "POST /v1/compare"
        | "POST /v1/liveness/sessions"
        | "GET /v1/webhooks"
        | "GET /v1/collections"
        | "GET /healthz"
        | "GET /readyz"
        | "GET /.well-known/jwks.json"
        | "GET /.well-known/openid-configuration"
        | "GET /v1/oidc/clients"
        | "GET /openapi.json" => 200,
        // The provider's endpoints take no API key: without a client, a request or a
        // token they refuse whoever calls.
        "GET /oidc/authorize" | "POST /oidc/authorize/complete" => 400,
        "POST /oidc/token" | "GET /oidc/userinfo" | "POST /oidc/userinfo" => 401,
        "POST /v1/oidc/clients" => enrol(201),
        "DELETE /v1/oidc/clients/{clientId}" => {
            if visible {
                204
            } else {
                404
            }
        }
        "GET /metrics" => {
            if k == K::AdminAll {
                200
            } else {
                403
            }
        }
        "POST /v1/webhooks" => enrol(200),
        "GET /v1/keys" => {
            if k.admin() {
                200
            } else {
                403
            }
        }
        "POST /v1/keys" => match (k.admin(), k == K::AdminAll || t == In) {
            (true, true) => 201,
            _ => 403,
        },
        "DELETE /v1/keys/{keyId}" => match (k.admin(), k == K::AdminAll || t == In) {
            (false, _) => 403,
            (true, true) => 204,
            (true, false) => 404,
        },
        "POST /v1/collections" => match (k.enrols(), t) {
            (false, _) => 403,
            (true, In) => 409,
            (true, _) if k.limited() => 403,
            _ => 201,
        },
        "DELETE /v1/collections/{collectionId}" => enrol(204),
        "GET /v1/collections/{collectionId}"
        | "GET /v1/collections/{collectionId}/faces"
        | "POST /v1/collections/{collectionId}/search"
        | "GET /v1/collections/{collectionId}/users"
        | "POST /v1/collections/{collectionId}/search-users"
        | "POST /v1/identify" => recognize,
        "POST /v1/collections/{collectionId}/faces"
        | "DELETE /v1/collections/{collectionId}/faces"
        | "POST /v1/collections/{collectionId}/users/{userId}/faces"
        | "DELETE /v1/collections/{collectionId}/users/{userId}/faces"
        | "POST /v1/verifications" => enrol(200),
        "POST /v1/collections/{collectionId}/users" => enrol(201),
        "DELETE /v1/collections/{collectionId}/users/{userId}" => enrol(204),
        "POST /v1/verify" => match t {
            In | Out => recognize,
            _ if visible => 200,
            _ => 404,
        },
        "POST /v1/find-similar"
        | "POST /v1/group"
        | "GET /v1/liveness/sessions/{sessionId}"
        | "GET /v1/webhooks/{webhookId}/deliveries" => {
            if visible {
                200
            } else {
                404
            }
        }
        "DELETE /v1/liveness/sessions/{sessionId}" | "DELETE /v1/webhooks/{webhookId}" => {
            if visible {
                204
            } else {
                404
            }
        }
        "GET /v1/verifications/{verificationId}" => {
            if visible_verification {
                200
            } else {
                404
            }
        }
        // A blank image: past the checks, the document step finds no face (400).
        "PUT /v1/verifications/{verificationId}/document" => {
            match (visible_verification, k.enrols()) {
                (false, _) => 404,
                (true, false) => 403,
                (true, true) => 400,
            }
        }
        "DELETE /v1/verifications/{verificationId}" => match (visible_verification, k.enrols()) {
            (false, _) => 404,
            (true, false) => 403,
            (true, true) => 204,
        },
        // Face login. Past the checks: an unstreamed session of the caller's (409
        // SessionNotFinished), a user without a profile (404).
        "PUT /v1/collections/{collectionId}/users/{userId}/profile"
        | "POST /v1/collections/{collectionId}/users/{userId}/profile/templates" => enrol(409),
        "DELETE /v1/collections/{collectionId}/users/{userId}/profile" => enrol(404),
        "GET /v1/collections/{collectionId}/users/{userId}/profile" => {
            if in_scope {
                404
            } else {
                403
            }
        }
        "POST /v1/collections/{collectionId}/logins" => {
            if in_scope {
                409
            } else {
                403
            }
        }
        "GET /v1/collections/{collectionId}/logins"
        | "POST /v1/collections/{collectionId}/login-unlock" => enrol(200),
        other => panic!("{other} has no rule in the matrix: add one (and to docs/security.md)"),
    }
}

/// Makes whatever the attempt needs, then sends it as `k`. `None`: the combination does
/// not exist (a recognizer owns no webhook or verification).
async fn attempt(w: &World<'_>, route: &str, k: K, t: T) -> Option<(StatusCode, Value)> {
    let s = w.s;
    let key = w.keys[&k].clone();
    let c = World::coll(t);
    let img = b64(&fixture("obama.jpg"));
    let (method, path) = route.split_once(' ').unwrap();
    let mut path = path.replace("{collectionId}", c);
    let body: Option<Value>;
    let mut as_key = key.clone();
    match route {
        "POST /v1/detect" => body = Some(json!({"image": img})),
        "POST /v1/compare" => body = Some(json!({"sourceImage": img, "targetImage": img})),
        "GET /v1/collections"
        | "GET /v1/webhooks"
        | "GET /v1/keys"
        | "GET /healthz"
        | "GET /readyz"
        | "GET /openapi.json"
        | "GET /.well-known/jwks.json"
        | "GET /metrics" => body = None,
        "POST /v1/liveness/sessions" => body = Some(json!({})),
        "POST /v1/webhooks" => body = Some(json!({"url": "http://127.0.0.1:9/hook"})),
        "POST /v1/keys" => {
            body = Some(match t {
                T::In => json!({"role": "recognizer", "collectionId": A}),
                T::Out => json!({"role": "recognizer", "collectionId": B}),
                _ => json!({"role": "admin"}),
            })
        }
        "DELETE /v1/keys/{keyId}" => {
            let target = match t {
                T::In => s.key("recognizer", Some(A)).await,
                T::Out => s.key("recognizer", Some(B)).await,
                _ => s.key("recognizer", None).await,
            };
            path = path.replace("{keyId}", &key_id(&target));
            body = None;
        }
        "POST /v1/collections" => {
            let name = if t == T::In {
                A.to_string()
            } else {
                w.fresh("new")
            };
            body = Some(json!({"collectionId": name}));
        }
        "DELETE /v1/collections/{collectionId}" => {
            let name = w.fresh("doomed");
            s.collection(&name).await;
            if t == T::In && k.limited() {
                // A key of the same kind limited to the collection about to go.
                as_key = s.key(k.role(), Some(&name)).await;
            }
            path = format!("/v1/collections/{name}");
            body = None;
        }
        "GET /v1/collections/{collectionId}"
        | "GET /v1/collections/{collectionId}/faces"
        | "GET /v1/collections/{collectionId}/users" => body = None,
        "POST /v1/collections/{collectionId}/faces" => body = Some(json!({"image": img})),
        "DELETE /v1/collections/{collectionId}/faces" => {
            body = Some(json!({"faceIds": [uuid::Uuid::new_v4().to_string()]}))
        }
        "POST /v1/collections/{collectionId}/search" => body = Some(json!({"faceId": w.face[c]})),
        "POST /v1/collections/{collectionId}/search-users" => {
            body = Some(json!({"faceId": w.face[c]}))
        }
        "POST /v1/collections/{collectionId}/users" => body = Some(json!({"userId": w.fresh("u")})),
        "DELETE /v1/collections/{collectionId}/users/{userId}"
        | "POST /v1/collections/{collectionId}/users/{userId}/faces"
        | "DELETE /v1/collections/{collectionId}/users/{userId}/faces" => {
            let u = w.fresh("u");
            s.ok(
                "POST",
                &format!("/v1/collections/{c}/users"),
                Some(json!({"userId": u})),
            )
            .await;
            path = path.replace("{userId}", &u);
            body = if method == "DELETE" && !path.ends_with("/faces") {
                None
            } else {
                Some(json!({"faceIds": [w.face[c]]}))
            };
        }
        "POST /v1/identify" => {
            body = Some(json!({"faceIds": [w.transient[&key]], "collectionId": c}))
        }
        "POST /v1/verify" => {
            body = Some(match t {
                T::In | T::Out => json!({
                    "faceId": w.transient[&key],
                    "collectionId": c,
                    "userId": format!("u-{c}"),
                }),
                _ => json!({
                    "faceId": w.transient[&w.owner(k, t)?],
                    "faceId2": w.transient[&key],
                }),
            })
        }
        "POST /v1/find-similar" => {
            let target = &w.transient[&w.owner(k, t)?];
            body = Some(json!({"faceId": target, "faceIds": [target]}));
        }
        "POST /v1/group" => {
            // The target and another face of the caller's own (two distinct ids).
            body = Some(json!({"faceIds": [w.transient[&w.owner(k, t)?], w.second[&key]]}))
        }
        "GET /v1/liveness/sessions/{sessionId}" => {
            path = path.replace("{sessionId}", &w.session[&w.owner(k, t)?]);
            body = None;
        }
        "DELETE /v1/liveness/sessions/{sessionId}" => {
            let id = w.session_of(&w.owner(k, t)?).await;
            path = path.replace("{sessionId}", &id);
            body = None;
        }
        "DELETE /v1/webhooks/{webhookId}" | "GET /v1/webhooks/{webhookId}/deliveries" => {
            if t == T::Own && !k.enrols() {
                return None;
            }
            let owner = w.owner(k, t)?;
            let id = if method == "DELETE" {
                w.webhook_of(&owner).await
            } else {
                w.webhook[&owner].clone()
            };
            path = path.replace("{webhookId}", &id);
            body = None;
        }
        "POST /v1/verifications" => {
            body = Some(json!({"collectionId": c, "externalUserId": w.fresh("v")}))
        }
        "GET /v1/verifications/{verificationId}"
        | "PUT /v1/verifications/{verificationId}/document"
        | "DELETE /v1/verifications/{verificationId}" => {
            if t == T::Own && !k.enrols() {
                return None;
            }
            let owner = w.owner(k, t)?;
            let id = if method == "GET" {
                w.verification[&owner].clone()
            } else {
                w.verification_of(&owner, World::verification_collection(t))
                    .await
            };
            path = path.replace("{verificationId}", &id);
            body = (method == "PUT").then(|| json!({"image": b64(&blank_png())}));
        }
        "GET /.well-known/openid-configuration"
        | "GET /oidc/authorize"
        | "GET /oidc/userinfo"
        | "POST /oidc/userinfo"
        | "GET /v1/oidc/clients" => body = None,
        "POST /oidc/authorize/complete" | "POST /oidc/token" => body = Some(json!({})),
        "POST /v1/oidc/clients" => {
            body = Some(json!({
                "name": "App", "collectionId": c, "redirectUris": ["https://app.test/cb"],
            }))
        }
        "DELETE /v1/oidc/clients/{clientId}" => {
            if t == T::Own && !k.enrols() {
                return None;
            }
            let owner = w.owner(k, t)?;
            let id = s
                .ok_as(
                    &owner,
                    "POST",
                    "/v1/oidc/clients",
                    Some(json!({
                        "name": "App",
                        "collectionId": World::verification_collection(t),
                        "redirectUris": ["https://app.test/cb"],
                    })),
                )
                .await["clientId"]
                .as_str()
                .unwrap()
                .to_string();
            path = path.replace("{clientId}", &id);
            body = None;
        }
        "PUT /v1/collections/{collectionId}/users/{userId}/profile"
        | "POST /v1/collections/{collectionId}/users/{userId}/profile/templates"
        | "POST /v1/collections/{collectionId}/logins" => {
            path = path.replace("{userId}", &w.fresh("p"));
            let session = w.session_of(&key).await;
            body = Some(if route.ends_with("/logins") {
                json!({"livenessSessionId": session, "userId": w.fresh("p")})
            } else {
                json!({"livenessSessionId": session})
            });
        }
        "GET /v1/collections/{collectionId}/users/{userId}/profile"
        | "DELETE /v1/collections/{collectionId}/users/{userId}/profile" => {
            path = path.replace("{userId}", &w.fresh("p"));
            body = None;
        }
        "GET /v1/collections/{collectionId}/logins" => body = None,
        "POST /v1/collections/{collectionId}/login-unlock" => {
            body = Some(json!({"userId": w.fresh("p")}))
        }
        other => panic!("{other} is not in the matrix: add how to call it"),
    }
    Some(s.call(method, &path, Some(&as_key), body).await)
}

async fn matrix(backend: Backend) {
    let Some(s) = Server::start(backend, |_| {}).await else {
        return;
    };
    let img = b64(&fixture("obama.jpg"));
    for c in [A, B] {
        s.collection(c).await;
    }
    let mut face = HashMap::new();
    for c in [A, B] {
        let v = s
            .ok(
                "POST",
                &format!("/v1/collections/{c}/faces"),
                Some(json!({"image": img})),
            )
            .await;
        let f = v["faceRecords"][0]["face"]["faceId"]
            .as_str()
            .unwrap()
            .to_string();
        s.ok(
            "POST",
            &format!("/v1/collections/{c}/users"),
            Some(json!({"userId": format!("u-{c}")})),
        )
        .await;
        s.ok(
            "POST",
            &format!("/v1/collections/{c}/users/u-{c}/faces"),
            Some(json!({"faceIds": [f]})),
        )
        .await;
        face.insert(c, f);
    }
    let mut keys = HashMap::new();
    for k in K::ALL {
        let scope = k.limited().then_some(A);
        keys.insert(k, s.key(k.role(), scope).await);
    }
    let w0 = World {
        s: &s,
        mate: s.key("enroller", Some(A)).await,
        foreign: s.key("enroller", Some(B)).await,
        unl: s.key("enroller", None).await,
        keys,
        face,
        transient: HashMap::new(),
        second: HashMap::new(),
        session: HashMap::new(),
        webhook: HashMap::new(),
        verification: HashMap::new(),
        n: AtomicUsize::new(0),
    };
    // What each key (and each other owner) created, for the reads.
    let mut owners: Vec<(String, bool, &'static str)> = K::ALL
        .iter()
        .map(|k| (w0.keys[k].clone(), k.enrols(), A))
        .collect();
    owners.push((w0.mate.clone(), true, A));
    owners.push((w0.foreign.clone(), true, B));
    owners.push((w0.unl.clone(), true, A));
    let mut w = w0;
    for (owner, enrols, c) in &owners {
        let v = s
            .ok_as(
                owner,
                "POST",
                "/v1/detect",
                Some(json!({"image": b64(&fixture("t1.jpg")), "returnFaceId": true})),
            )
            .await;
        let t = v["faceDetails"][0]["faceId"].as_str().unwrap().to_string();
        w.transient.insert(owner.clone(), t);
        let t2 = v["faceDetails"][1]["faceId"].as_str().unwrap().to_string();
        w.second.insert(owner.clone(), t2);
        let session = w.session_of(owner).await;
        w.session.insert(owner.clone(), session);
        if *enrols {
            let hook = w.webhook_of(owner).await;
            w.webhook.insert(owner.clone(), hook);
            let v = w.verification_of(owner, c).await;
            w.verification.insert(owner.clone(), v);
        }
    }

    // Every documented operation is in the matrix.
    let (_, doc) = s.call("GET", "/openapi.json", None, None).await;
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "delete"] {
            if item.get(m).is_some() {
                routes.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(routes.len() >= 38, "{routes:?}");
    let mut wrong = Vec::new();
    let mut tried = 0;
    for route in &routes {
        for t in targets(route) {
            for k in K::ALL {
                let want = expect(route, k, t);
                let Some((got, v)) = attempt(&w, route, k, t).await else {
                    continue;
                };
                tried += 1;
                if got.as_u16() != want {
                    wrong.push(format!(
                        "{route} as {k:?} on {t:?}: {got} (want {want}) {v}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(tried > 250, "{tried} attempts");

    // What the allowed reads return is within reach too.
    let listed = s.ok_as(&w.keys[&K::AdminA], "GET", "/v1/keys", None).await;
    let listed = listed.as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(
        listed.iter().all(|k| k["collection"] == A),
        "a limited admin lists keys of its collection only: {listed:?}"
    );
    for k in [K::AdminA, K::EnrA, K::RecA] {
        let v = s.ok_as(&w.keys[&k], "GET", "/v1/collections", None).await;
        let ids: Vec<&str> = v["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["collectionId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [A], "{k:?}");
    }
    s.stop().await;
}

/// Item 1 (and 2, 3): no key reaches beyond itself, on any route. SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_scope_route_matrix_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

/// Item 1 (and 2, 3): the same matrix on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_scope_route_matrix_on_postgres() {
    matrix(Backend::Postgres).await;
}
