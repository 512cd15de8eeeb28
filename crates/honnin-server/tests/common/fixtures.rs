//! Domain set-ups shared by the API tests: detected (transient) faces, shrunk photos,
//! ID cards, verifications driven through their steps, liveness streams. Each small
//! test builds the state it needs with these, on a shared server, under unique names.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{b64, engine, fixture, unique, Server};

/// Detects the face of a fixture with `returnFaceId`; the transient face id (it has an
/// expiry).
pub async fn detect_id(s: &Server, img: &str) -> String {
    let body = json!({"image": b64(&fixture(img)), "returnFaceId": true});
    let v = s.ok("POST", "/v1/detect", Some(body)).await;
    assert!(v["faceDetails"][0]["faceIdExpiresAt"].is_string());
    v["faceDetails"][0]["faceId"].as_str().unwrap().to_string()
}

/// A fixture shrunk to a seventh of its size (a face of about 55 px), as PNG.
pub fn shrunk(name: &str) -> Vec<u8> {
    let img = image::load_from_memory(&fixture(name)).unwrap();
    let img = img.resize(
        img.width() / 7,
        img.height() / 7,
        image::imageops::FilterType::Triangle,
    );
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A new collection (a unique name starting with `prefix`) holding the face of
/// obama.jpg: its name and the face id.
pub async fn collection_with_face(s: &Server, prefix: &str) -> (String, String) {
    let c = unique(prefix);
    s.ok("POST", "/v1/collections", Some(json!({"collectionId": c})))
        .await;
    let f = s
        .ok(
            "POST",
            &format!("/v1/collections/{c}/faces"),
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    let fid = f["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    (c, fid)
}

/// A collection (unique name) with the face of obama.jpg associated to user `o`; its
/// name.
pub async fn collection_with_user(s: &Server) -> String {
    let (c, fid) = collection_with_face(s, "t").await;
    s.ok(
        "POST",
        &format!("/v1/collections/{c}/users"),
        Some(json!({"userId": "o"})),
    )
    .await;
    s.ok(
        "POST",
        &format!("/v1/collections/{c}/users/o/faces"),
        Some(json!({"faceIds": [fid]})),
    )
    .await;
    c
}

// ---------------------------------------------------------------- liveness streams

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Server {
    pub fn ws_url(&self, session: &str, token: &str) -> String {
        format!(
            "{}/v1/liveness/sessions/{session}/stream?token={token}",
            self.base.replace("http://", "ws://")
        )
    }

    /// Opens a session's stream; Err(HTTP status, JSON body) when refused before the upgrade.
    pub async fn open_stream(&self, session: &str, token: &str) -> Result<Ws, (u16, Value)> {
        match tokio_tungstenite::connect_async(self.ws_url(session, token)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                let status = res.status().as_u16();
                let body = res
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((status, body))
            }
            Err(e) => panic!("websocket: {e}"),
        }
    }
}

/// Reads server messages until one of type `want` (returns it) or the socket closes.
pub async fn ws_until(ws: &mut Ws, want: &str) -> Option<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg {
            Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                if v["type"] == want {
                    return Some(v);
                }
            }
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

pub async fn ws_send(ws: &mut Ws, v: Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        v.to_string().into(),
    ))
    .await
    .unwrap();
}

// ---------------------------------------------------------------------- verifications

/// An ID-card-like image: a pale card with the face of `photo` as the main portrait
/// (left), a faded small ghost copy (right) and dark "text" bars, as a phone sees a card.
pub fn id_card(photo: &[u8]) -> Vec<u8> {
    id_card_with_portrait(photo, 240)
}

/// A card whose portrait is `width` pixels wide (a 240-px portrait of the fixtures
/// holds a face of about 100 px).
pub fn id_card_with_portrait(photo: &[u8], width: u32) -> Vec<u8> {
    use image::imageops;
    let face = image::load_from_memory(photo).unwrap().to_rgb8();
    let mut card = image::RgbImage::from_pixel(860, 540, image::Rgb([214, 226, 236]));
    let portrait = imageops::resize(
        &face,
        width,
        width * face.height() / face.width(),
        imageops::FilterType::Triangle,
    );
    let portrait = imageops::crop_imm(
        &portrait,
        0,
        0,
        width,
        (width * 5 / 4).min(portrait.height()),
    )
    .to_image();
    imageops::overlay(&mut card, &portrait, 40, 150);
    let mut ghost = imageops::resize(
        &portrait,
        100,
        100 * portrait.height() / portrait.width(),
        imageops::FilterType::Triangle,
    );
    for p in ghost.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as u16 / 2 + 110) as u8;
        }
    }
    imageops::overlay(&mut card, &ghost, 700, 330);
    for (i, w) in [420u32, 300, 360, 250, 380].iter().enumerate() {
        for y in 0..18 {
            for x in 0..*w {
                card.put_pixel(310 + x, 170 + 50 * i as u32 + y, image::Rgb([40, 48, 60]));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(card)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

pub fn template_of(photo: &[u8]) -> honnin_engine::Template {
    let e = engine();
    let img = e.decode(photo).unwrap();
    let faces = e.detect(&img, &Default::default()).unwrap();
    e.templates(&img, &faces[..1]).unwrap().remove(0)
}

/// Runs a verification's liveness step at the service boundary: claims the stream with
/// the client token (as the WebSocket does) and records an outcome whose live face is
/// `live_photo`. The WebSocket and the analysis themselves are tested by
/// the liveness tests (tests/api/liveness.rs), the liveness crate's simulator tests and the browser test.
pub async fn finish_liveness(
    s: &Server,
    session: &str,
    token: &str,
    confidence: f32,
    live_photo: &[u8],
) {
    let ticket = s
        .service
        .open_liveness_stream(session, token)
        .await
        .unwrap();
    s.service
        .complete_liveness_stream(&ticket, live_outcome(live_photo, confidence))
        .await
        .unwrap();
}

/// A finished session's outcome whose reference frame is `live_photo`'s largest face
/// (its template, pose and quality, as the analysis keeps them) at `confidence`.
pub fn live_outcome(live_photo: &[u8], confidence: f32) -> honnin_liveness::LivenessOutcome {
    let e = engine();
    let img = e.decode(live_photo).unwrap();
    let faces = e.detect(&img, &Default::default()).unwrap();
    let mut outcome = honnin_liveness::LivenessOutcome::failed("unused", 60);
    outcome.status = honnin_liveness::OutcomeStatus::Succeeded;
    outcome.status_reason = None;
    outcome.reasons.clear();
    outcome.confidence = confidence;
    outcome.decision = honnin_liveness::Decision::from_confidence(confidence);
    outcome.reference_template = Some(e.templates(&img, &faces[..1]).unwrap().remove(0));
    outcome.reference_face = Some(faces[0].clone());
    outcome.reference_image = Some(honnin_liveness::CapturedImage {
        jpeg: live_photo.to_vec(),
        bounding_box: Default::default(),
        width: 0,
        height: 0,
        timestamp_ms: 0.0,
    });
    outcome
}

/// A liveness session of `key`'s, finished with `outcome` (see [`live_outcome`]);
/// returns its id.
pub async fn live_session_with(
    s: &Server,
    key: &str,
    outcome: honnin_liveness::LivenessOutcome,
) -> String {
    let v = s
        .ok_as(
            key,
            "POST",
            "/v1/liveness/sessions",
            Some(serde_json::json!({})),
        )
        .await;
    let (id, token) = (
        v["sessionId"].as_str().unwrap().to_string(),
        v["clientToken"].as_str().unwrap().to_string(),
    );
    let ticket = s.service.open_liveness_stream(&id, &token).await.unwrap();
    s.service
        .complete_liveness_stream(&ticket, outcome)
        .await
        .unwrap();
    id
}

/// A liveness session of `key`'s whose live face is `photo`, finished at `confidence`.
pub async fn live_session(s: &Server, key: &str, photo: &[u8], confidence: f32) -> String {
    live_session_with(s, key, live_outcome(photo, confidence)).await
}

pub async fn start_verification(
    s: &Server,
    key: &str,
    collection: &str,
    user: &str,
    policy: Value,
) -> (String, String, String) {
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(key),
            Some(json!({"collectionId": collection, "externalUserId": user, "policy": policy})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "awaiting_document");
    (
        v["verificationId"].as_str().unwrap().into(),
        v["livenessSessionId"].as_str().unwrap().into(),
        v["clientToken"].as_str().unwrap().into(),
    )
}

pub async fn put_document(s: &Server, key: &str, id: &str, image: &[u8]) -> (StatusCode, Value) {
    s.call(
        "PUT",
        &format!("/v1/verifications/{id}/document"),
        Some(key),
        Some(json!({"image": b64(image)})),
    )
    .await
}

pub async fn put_document_ok(s: &Server, key: &str, id: &str, image: &[u8]) {
    let (st, v) = put_document(s, key, id, image).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

pub async fn decided(s: &Server, key: &str, id: &str) -> Value {
    for _ in 0..100 {
        let (st, v) = s
            .call("GET", &format!("/v1/verifications/{id}"), Some(key), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        if v["decision"].is_object() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("verification {id} was not decided");
}

pub fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["decision"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {v}"))
}

/// A collection for verifications (unique name), an enroller key limited to it and an
/// unlimited recognizer key.
pub struct Kyc {
    pub c: String,
    pub enroller: String,
    pub rec: String,
}

pub async fn kyc(s: &Server) -> Kyc {
    let c = unique("kyc");
    let enroller = s.key("enroller", Some(&c)).await;
    let rec = s.key("recognizer", None).await;
    s.ok("POST", "/v1/collections", Some(json!({"collectionId": c})))
        .await;
    Kyc { c, enroller, rec }
}

/// A decided verification and what it was started with.
pub struct Verified {
    pub id: String,
    pub session: String,
    pub token: String,
    pub v: Value,
}

/// Runs a verification of `user` in `k`'s collection through both steps: the document
/// `card`, then a liveness outcome of `confidence` whose live face is `live`; waits for
/// the decision.
pub async fn verified(
    s: &Server,
    k: &Kyc,
    user: &str,
    policy: Value,
    card: &[u8],
    confidence: f32,
    live: &[u8],
) -> Verified {
    let (id, session, token) = start_verification(s, &k.enroller, &k.c, user, policy).await;
    put_document_ok(s, &k.enroller, &id, card).await;
    finish_liveness(s, &session, &token, confidence, live).await;
    let v = decided(s, &k.enroller, &id).await;
    Verified {
        id,
        session,
        token,
        v,
    }
}

/// Two people side by side (obama.jpg and biden.jpg, 300 px wide each), as PNG.
pub fn two_people() -> Vec<u8> {
    use image::imageops;
    let a = image::load_from_memory(&fixture("obama.jpg"))
        .unwrap()
        .to_rgb8();
    let b = image::load_from_memory(&fixture("biden.jpg"))
        .unwrap()
        .to_rgb8();
    let a = imageops::resize(
        &a,
        300,
        300 * a.height() / a.width(),
        imageops::FilterType::Triangle,
    );
    let b = imageops::resize(
        &b,
        300,
        300 * b.height() / b.width(),
        imageops::FilterType::Triangle,
    );
    let mut canvas =
        image::RgbImage::from_pixel(640, a.height().max(b.height()), image::Rgb([200, 200, 200]));
    imageops::overlay(&mut canvas, &a, 0, 0);
    imageops::overlay(&mut canvas, &b, 330, 0);
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(canvas)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A card photographed from further away (its portrait's face about 50 px), as PNG.
pub fn small_card(card: &[u8]) -> Vec<u8> {
    let c = image::load_from_memory(card).unwrap();
    let c = c.resize(520, 520, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    c.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
