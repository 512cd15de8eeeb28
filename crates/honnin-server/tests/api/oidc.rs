//! The OpenID Connect provider: discovery, the authorization code flow with PKCE over a
//! face login, and each error case of the specification.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::fixtures::live_outcome;
use crate::common::{fixture, unique, Server};

both!(
    discovery_names_the_endpoints_and_the_keys,
    the_code_flow_with_pkce_logs_the_person_in,
    an_unknown_client_or_redirect_uri_is_shown_not_redirected,
    request_errors_go_back_to_the_client_with_the_state,
    a_failed_face_login_is_access_denied,
    a_code_is_redeemed_once_by_its_client_with_its_verifier,
    an_expired_code_is_refused,
    userinfo_needs_a_valid_access_token,
    client_registration_checks_redirect_uris_and_hides_the_secret,
    a_revoked_owner_key_ends_its_clients_logins,
    a_request_completes_once,
);

const CB: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// A client that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A collection with obama enrolled and a registered client: (collection, client id,
/// client secret).
async fn app(s: &Server) -> (String, String, String) {
    let c = unique("oidc");
    s.collection(&c).await;
    let enroller = s.key("enroller", Some(&c)).await;
    let session =
        crate::common::fixtures::live_session(s, &enroller, &fixture("obama.jpg"), 95.0).await;
    s.ok_as(
        &enroller,
        "PUT",
        &format!("/v1/collections/{c}/users/obama/profile"),
        Some(json!({"livenessSessionId": session})),
    )
    .await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/oidc/clients",
            Some(&enroller),
            Some(json!({"name": "Example <App>", "collectionId": c, "redirectUris": [CB]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        c,
        v["clientId"].as_str().unwrap().into(),
        v["clientSecret"].as_str().unwrap().into(),
    )
}

fn authorize_url(s: &Server, client: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{}/oidc/authorize", s.base)).unwrap();
    {
        let mut q = u.query_pairs_mut();
        let defaults = [
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("state", "st-42"),
            ("nonce", "n-0S6"),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in defaults {
            if !extra.iter().any(|(x, _)| *x == k) {
                q.append_pair(k, v);
            }
        }
        if !extra.iter().any(|(x, _)| *x == "code_challenge") {
            q.append_pair("code_challenge", &challenge(VERIFIER));
        }
        for (k, v) in extra {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
    }
    u.to_string()
}

/// The hosted page's configuration.
fn page_config(html: &str) -> Value {
    let start = html.find("id=\"honnin-login\">").unwrap() + "id=\"honnin-login\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// Runs the hosted page's part: the liveness session ends with `photo`'s face at
/// `confidence`, then the page posts its request. Returns the redirect's location.
async fn run_page(s: &Server, url: &str, photo: &str, confidence: f32) -> url::Url {
    let b = browser();
    let r = b.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("<honnin-liveness") || html.contains("honnin-liveness"));
    let cfg = page_config(&html);
    assert_eq!(cfg["clientName"], "Example <App>");
    assert!(!html.contains("Example <App>"), "escaped in the page");
    let ticket = s
        .service
        .open_liveness_stream(
            cfg["sessionId"].as_str().unwrap(),
            cfg["clientToken"].as_str().unwrap(),
        )
        .await
        .unwrap();
    s.service
        .complete_liveness_stream(&ticket, live_outcome(&fixture(photo), confidence))
        .await
        .unwrap();
    let r = b
        .post(format!("{}/oidc/authorize/complete", s.base))
        .form(&[("request", cfg["requestId"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(u: &url::Url, k: &str) -> Option<String> {
    u.query_pairs()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.into_owned())
}

async fn token(
    s: &Server,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut r = browser().post(format!("{}/oidc/token", s.base)).form(form);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    let r = r.send().await.unwrap();
    let st = r.status();
    (st, r.json().await.unwrap())
}

async fn code_for(s: &Server, client: &str, extra: &[(&str, &str)]) -> String {
    let loc = run_page(s, &authorize_url(s, client, extra), "obama2.jpg", 95.0).await;
    assert_eq!(loc.as_str().split('?').next(), Some(CB));
    assert_eq!(query(&loc, "state").as_deref(), Some("st-42"), "{loc}");
    query(&loc, "code").unwrap_or_else(|| panic!("{loc}"))
}

async fn discovery_names_the_endpoints_and_the_keys(s: &Server) {
    let (st, d) = s
        .call("GET", "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let iss = d["issuer"].as_str().unwrap();
    assert_eq!(iss, s.base.trim_end_matches('/'));
    assert_eq!(d["authorization_endpoint"], format!("{iss}/oidc/authorize"));
    assert_eq!(d["token_endpoint"], format!("{iss}/oidc/token"));
    assert_eq!(d["jwks_uri"], format!("{iss}/.well-known/jwks.json"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
}

async fn the_code_flow_with_pkce_logs_the_person_in(s: &Server) {
    let (_, client, secret) = app(s).await;
    let code = code_for(s, &client, &[]).await;
    let (st, t) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let id_token = t["id_token"].as_str().unwrap();
    // Verified with the published key, for this client and issuer.
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let (_, jwks) = s.call("GET", "/.well-known/jwks.json", None, None).await;
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .unwrap()
        .clone();
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[&client]);
    v.set_issuer(&[s.base.trim_end_matches('/')]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "obama");
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["acr"], "urn:honnin:acr:standard");
    assert!(claims["auth_time"].is_i64());
    // The access token reads the user.
    let r = browser()
        .get(format!("{}/oidc/userinfo", s.base))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["sub"], "obama");
    // client_secret_post works too, and login_hint makes a 1:1 login.
    let code = code_for(s, &client, &[("login_hint", "obama")]).await;
    let (st, t) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", &client),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{t}");
}

async fn an_unknown_client_or_redirect_uri_is_shown_not_redirected(s: &Server) {
    let (_, client, _) = app(s).await;
    for url in [
        authorize_url(s, "hnc_unknown", &[]),
        authorize_url(s, &client, &[("redirect_uri", "http://127.0.0.1:9/other")]),
        authorize_url(s, &client, &[("redirect_uri", "http://127.0.0.1:9/cb/")]),
    ] {
        let r = browser().get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("This login cannot go on"));
    }
    // A request id that does not exist (or was used) is a page too.
    let r = browser()
        .post(format!("{}/oidc/authorize/complete", s.base))
        .form(&[("request", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn request_errors_go_back_to_the_client_with_the_state(s: &Server) {
    let (_, client, _) = app(s).await;
    let long_nonce = "n".repeat(513);
    let cases: [(&[(&str, &str)], &str); 8] = [
        (&[("code_challenge", "short")], "invalid_request"),
        (&[("nonce", long_nonce.as_str())], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("scope", "profile")], "invalid_scope"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("prompt", "none")], "login_required"),
        (&[("login_hint", "no spaces allowed")], "invalid_request"),
    ];
    for (extra, error) in cases {
        // (An empty value leaves the parameter out: `code_challenge` "" is none.)
        let url = authorize_url(s, &client, extra);
        let r = browser().get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{error}");
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(query(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query(&loc, "state").as_deref(), Some("st-42"));
        assert!(query(&loc, "code").is_none());
    }
}

async fn a_failed_face_login_is_access_denied(s: &Server) {
    let (_, client, _) = app(s).await;
    for (photo, confidence) in [("biden.jpg", 95.0), ("obama2.jpg", 10.0)] {
        let loc = run_page(s, &authorize_url(s, &client, &[]), photo, confidence).await;
        assert_eq!(
            query(&loc, "error").as_deref(),
            Some("access_denied"),
            "{loc}"
        );
        assert_eq!(query(&loc, "state").as_deref(), Some("st-42"));
        assert!(query(&loc, "code").is_none());
    }
}

async fn a_code_is_redeemed_once_by_its_client_with_its_verifier(s: &Server) {
    let (_, client, secret) = app(s).await;
    let (_, other, other_secret) = app(s).await;
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), CB.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let as_pairs = |v: &Vec<(String, String)>| -> Vec<(String, String)> { v.clone() };
    let send = |f: Vec<(String, String)>, id: String, sec: String| async move {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        token(s, &pairs, Some((&id, &sec))).await
    };
    // Reused code.
    let code = code_for(s, &client, &[]).await;
    let (st, _) = send(
        as_pairs(&form(&code, VERIFIER)),
        client.clone(),
        secret.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = send(
        as_pairs(&form(&code, VERIFIER)),
        client.clone(),
        secret.clone(),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    // PKCE mismatch.
    let code = code_for(s, &client, &[]).await;
    let wrong = "A".repeat(43);
    let (st, e) = send(
        as_pairs(&form(&code, &wrong)),
        client.clone(),
        secret.clone(),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    assert!(e["error_description"].as_str().unwrap().contains("PKCE"));
    let (st, e) = send(
        as_pairs(&form(&code, VERIFIER)),
        client.clone(),
        secret.clone(),
    )
    .await;
    assert_eq!(e["error"], "invalid_grant", "the code is spent: {st} {e}");
    // Another client's code; a wrong secret; no credentials; a wrong redirect URI.
    let code = code_for(s, &client, &[]).await;
    let (st, e) = send(
        as_pairs(&form(&code, VERIFIER)),
        other.clone(),
        other_secret.clone(),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    let code = code_for(s, &client, &[]).await;
    let (st, e) = send(
        as_pairs(&form(&code, VERIFIER)),
        client.clone(),
        "wrong".into(),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{e}"
    );
    let (st, e) = token(
        s,
        &[("grant_type", "authorization_code"), ("code", &code)],
        None,
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let mut f = form(&code, VERIFIER);
    f[2].1 = "http://127.0.0.1:9/elsewhere".into();
    let (st, e) = send(f, client.clone(), secret.clone()).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    // Wrong grant type.
    let mut f = form("x", VERIFIER);
    f[0].1 = "password".into();
    let (st, e) = send(f, client.clone(), secret.clone()).await;
    assert_eq!(e["error"], "unsupported_grant_type", "{st} {e}");
}

async fn an_expired_code_is_refused(s: &Server) {
    let (c, client, secret) = app(s).await;
    // A code issued 61 s ago (the lifetime is 60 s).
    let code = "expired-code-0123456789";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let grant = honnin_storage::OidcGrantRow {
        grant_id: unique("grant"),
        code_hash: None,
        client_id: client.clone(),
        collection_id: c,
        redirect_uri: CB.into(),
        state: None,
        nonce: None,
        code_challenge: challenge(VERIFIER),
        login_hint: None,
        liveness_session_id: "none".into(),
        user_id: None,
        login_id: None,
        auth_time_ms: None,
        id_token: None,
        status: "pending".into(),
        created_ms: now - 120_000,
        expires_ms: now + 60_000,
    };
    let store = s.service.store();
    store.insert_oidc_grant(&grant).await.unwrap();
    let hash: String = sha2::Sha256::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(store.start_oidc_grant(&grant.grant_id).await.unwrap());
    assert!(store
        .issue_oidc_code(
            &grant.grant_id,
            &hash,
            "obama",
            "l",
            now - 61_000,
            "jwt",
            now - 1_000
        )
        .await
        .unwrap());
    let (st, e) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    // (The server's sweep may have deleted it already: unknown then, refused alike.)
}

async fn userinfo_needs_a_valid_access_token(s: &Server) {
    let get = |token: Option<String>| async move {
        let mut r = browser().get(format!("{}/oidc/userinfo", s.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.headers().get("www-authenticate").cloned())
    };
    let (st, h) = get(None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.unwrap().to_str().unwrap().starts_with("Bearer"));
    assert_eq!(
        get(Some("not.a.jwt".into())).await.0,
        StatusCode::UNAUTHORIZED
    );
    // An ID token is not an access token (another audience).
    let (_, client, secret) = app(s).await;
    let code = code_for(s, &client, &[]).await;
    let (_, t) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
        Some((&client, &secret)),
    )
    .await;
    let id_token = t["id_token"].as_str().unwrap().to_string();
    assert_eq!(get(Some(id_token)).await.0, StatusCode::UNAUTHORIZED);
}

async fn client_registration_checks_redirect_uris_and_hides_the_secret(s: &Server) {
    let c = unique("oidc");
    s.collection(&c).await;
    let enroller = s.key("enroller", Some(&c)).await;
    for bad in [
        json!({"name": "A", "collectionId": c, "redirectUris": ["http://app.example/cb"]}),
        json!({"name": "A", "collectionId": c, "redirectUris": []}),
        json!({"name": "", "collectionId": c, "redirectUris": [CB]}),
        json!({"name": "A", "collectionId": c, "redirectUris": ["https://a.example/cb#x"]}),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/oidc/clients",
                Some(&enroller),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, v) = s
        .call(
            "POST",
            "/v1/oidc/clients",
            Some(&enroller),
            Some(json!({"name": "A", "collectionId": c, "redirectUris": [CB], "level": "high"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["level"], "high");
    let listed = s.ok_as(&enroller, "GET", "/v1/oidc/clients", None).await;
    let mine = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["clientId"] == v["clientId"])
        .unwrap()
        .clone();
    assert!(mine.get("clientSecret").is_none(), "{mine}");
    let id = v["clientId"].as_str().unwrap();
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/oidc/clients/{id}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let r = browser()
        .get(authorize_url(s, id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a deleted client is unknown"
    );
}

async fn a_revoked_owner_key_ends_its_clients_logins(s: &Server) {
    let (_, client, secret) = app(s).await;
    let code = code_for(s, &client, &[]).await;
    // The registering key is the collection's enroller: revoke it.
    let listed = s.ok("GET", "/v1/oidc/clients", None).await;
    let owner = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == client.as_str())
        .unwrap()["ownerKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok("DELETE", &format!("/v1/keys/{owner}"), None).await;
    // Past the key cache of this process.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (st, e) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
        "{e}"
    );
    let r = browser()
        .get(authorize_url(s, &client, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&loc, "error").as_deref(), Some("unauthorized_client"));
}

async fn a_request_completes_once(s: &Server) {
    let (_, client, _) = app(s).await;
    let b = browser();
    let html = b
        .get(authorize_url(s, &client, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cfg = page_config(&html);
    let ticket = s
        .service
        .open_liveness_stream(
            cfg["sessionId"].as_str().unwrap(),
            cfg["clientToken"].as_str().unwrap(),
        )
        .await
        .unwrap();
    s.service
        .complete_liveness_stream(&ticket, live_outcome(&fixture("obama2.jpg"), 95.0))
        .await
        .unwrap();
    let request = cfg["requestId"].as_str().unwrap().to_string();
    let url = format!("{}/oidc/authorize/complete", s.base);
    let first = b
        .post(&url)
        .form(&[("request", request.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let loc = url::Url::parse(first.headers()["location"].to_str().unwrap()).unwrap();
    assert!(query(&loc, "code").is_some(), "{loc}");
    let second = b
        .post(&url)
        .form(&[("request", request.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        second.status(),
        StatusCode::BAD_REQUEST,
        "shown, not redirected"
    );
}
