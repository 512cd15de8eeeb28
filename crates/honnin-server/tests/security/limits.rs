//! Bounded work: engine admission, slow clients, faces beyond the cap; the demo
//! routes, metrics, and a collection named `transient`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{b64, code, fixture, Backend, Server};

/// A large JPEG (noise, so it does not compress away) of `w`×`h`.
fn big_jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut x: u32 = 12345;
    let img = image::RgbImage::from_fn(w, h, |i, j| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((x >> 16) & 3) as u8;
        image::Rgb([
            ((i / 7) as u8).wrapping_add(n),
            ((j / 5) as u8).wrapping_add(n),
            128 + n,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// Item 9: engine work is admitted into a bounded queue (over it: 503
/// `ServiceUnavailable` + `Retry-After`), and work whose request timed out stops: the
/// memory it reserved is free within a few seconds of the last answer instead of after
/// every queued job has run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_work_is_admitted_and_abandoned_work_stops() {
    let jpeg = big_jpeg(5000, 5000);
    assert!(jpeg.len() < 5 << 20, "{} bytes", jpeg.len());
    eprintln!("a {} KB 5000×5000 JPEG", jpeg.len() / 1024);
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.admission.max_concurrent = 1;
        c.service.admission.max_queued = 1;
    })
    .await
    else {
        return;
    };
    let body = json!({"image": b64(&jpeg)});
    let calls =
        (0..4).map(|_| s.call_full("POST", "/v1/detect", Some(&s.admin), Some(body.clone())));
    let answers = futures_util::future::join_all(calls).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0.as_u16()).collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    for (st, h, v) in &answers {
        if *st == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(code(v), "ServiceUnavailable");
            assert_eq!(h["retry-after"], "1");
        }
    }
    s.stop().await;

    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.limits.request_timeout_secs = 1;
        c.service.admission.max_concurrent = 1;
        c.service.admission.max_queued = 16;
    })
    .await
    else {
        return;
    };
    let calls = (0..6).map(|_| s.call("POST", "/v1/detect", Some(&s.admin), Some(body.clone())));
    let answers = futures_util::future::join_all(calls).await;
    let timed_out = answers
        .iter()
        .filter(|a| a.0 == StatusCode::REQUEST_TIMEOUT)
        .count();
    assert!(
        timed_out >= 4,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let last = Instant::now();
    let a = s.service.admission();
    // The running job stops at its next stage; allow for a machine busy with other
    // tests (the measured figure is in docs/benchmarks.md, not asserted here).
    while a.memory_reserved_mib() > 0 || a.queued() > 0 {
        assert!(
            last.elapsed() < Duration::from_secs(30),
            "abandoned work still holds {} MiB, {} queued",
            a.memory_reserved_mib(),
            a.queued()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The decisive count: the requests that timed out while they waited never started
    // their work (before admission control, all six ran to the end).
    let started = a.started();
    assert!(
        started <= 6 - timed_out + 2,
        "{started} jobs started; {timed_out} of 6 timed out"
    );
    eprintln!(
        "{started} of 6 jobs started; all engine work ended {:?} after the last answer",
        last.elapsed()
    );
    s.stop().await;
}

/// Item 13: a disabled demo answers 404 JSON on every demo route whatever the body;
/// an enabled one answers bad bodies with 400 JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_routes_check_first_and_answer_json() {
    for enabled in [false, true] {
        let Some(s) = Server::start(Backend::Sqlite, |c| c.demo.enabled = enabled).await else {
            return;
        };
        let routes = [
            ("GET", "/demo/liveness"),
            ("GET", "/demo/verify"),
            ("POST", "/demo/api/verifications"),
            ("GET", "/demo/api/verifications/x"),
            ("PUT", "/demo/api/verifications/x/document"),
            ("POST", "/demo/api/liveness-sessions"),
            ("GET", "/demo/api/liveness-sessions/x"),
        ];
        if !enabled {
            // A wrong method on a demo path does not tell the route exists.
            for (_, p) in routes {
                for m in ["GET", "POST", "PUT", "DELETE"] {
                    let (st, v) = s.call(m, p, None, None).await;
                    assert_eq!(
                        (st, code(&v)),
                        (StatusCode::NOT_FOUND, "ResourceNotFound"),
                        "{m} {p}"
                    );
                }
            }
        }
        for (m, p) in routes {
            for (ct, body) in [
                ("text/plain", "hello"),
                ("application/json", "{not json"),
                ("application/json", "{\"unknown\": 1}"),
            ] {
                let res = s
                    .http
                    .request(
                        reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                        format!("{}{p}", s.base),
                    )
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let st = res.status();
                let json_ct = res
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                let text = res.text().await.unwrap();
                if !enabled {
                    assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p} {ct}: {text}");
                    assert!(json_ct, "{m} {p}: {text}");
                    assert!(text.contains("demo is disabled"), "{text}");
                } else if m != "GET" {
                    assert!(st.is_client_error(), "{m} {p} {ct}: {st} {text}");
                    assert!(json_ct, "{m} {p} {ct}: {st} {text}");
                }
            }
        }
        s.stop().await;
    }
}

/// Item 15: `/metrics` needs the metrics token or an unlimited admin key; with
/// `metrics.listen` it moves to its own address (no key) and the API port answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_or_an_admin_key() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.metrics.token = "prom-secret-token".into()
    })
    .await
    else {
        return;
    };
    let get = |key: Option<String>| {
        let mut r = s.http.get(format!("{}/metrics", s.base));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(get(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(Some("wrong".into())).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(Some(s.key("recognizer", None).await)).await,
        StatusCode::FORBIDDEN
    );
    s.collection("m").await;
    assert_eq!(
        get(Some(s.key("admin", Some("m")).await)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(Some("prom-secret-token".into())).await, StatusCode::OK);
    assert_eq!(get(Some(s.admin.clone())).await, StatusCode::OK);
    s.stop().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let Some(s) = Server::start(Backend::Sqlite, |c| c.metrics.listen = Some(port)).await else {
        return;
    };
    let (st, _) = s.call("GET", "/metrics", Some(&s.admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(r) = s.http.get(format!("http://{port}/metrics")).send().await {
            text = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("honnin_templates_in_memory"), "{text}");
    s.stop().await;
}

/// An image with `n`×`n` copies of a face (so more than 100 faces), each about 70 px.
fn crowd(n: u32) -> Vec<u8> {
    let photo = image::load_from_memory(&fixture("obama.jpg"))
        .unwrap()
        .to_rgb8();
    let engine = crate::common::engine();
    let img = engine.decode(&fixture("obama.jpg")).unwrap();
    let f = engine
        .detect(&img, &honnin_engine::DetectOptions::default())
        .unwrap()
        .remove(0)
        .bounding_box_pixels;
    // The face with a margin, as a portrait crop.
    let (cx, cy) = (f.left + f.width / 2.0, f.top + f.height / 2.0);
    let side = f.width.max(f.height) * 1.6;
    let x0 = (cx - side / 2.0).max(0.0) as u32;
    let y0 = (cy - side / 2.0).max(0.0) as u32;
    let crop =
        image::imageops::crop_imm(&photo, x0, y0, side as u32, (side * 1.2) as u32).to_image();
    let tile = image::imageops::resize(&crop, 90, 112, image::imageops::FilterType::Triangle);
    let mut img = image::RgbImage::from_pixel(n * 96, n * 118, image::Rgb([200, 200, 200]));
    for y in 0..n {
        for x in 0..n {
            image::imageops::overlay(&mut img, &tile, (x * 96) as i64, (y * 118) as i64);
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// Item 19: faces found beyond the cap are counted in `facesOmitted` (detect, index,
/// compare), not dropped without a sign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_beyond_the_cap_are_counted_not_dropped() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let img = b64(&crowd(11));
    let v = s
        .ok("POST", "/v1/detect", Some(json!({"image": img})))
        .await;
    let shown = v["faceDetails"].as_array().unwrap().len();
    let omitted = v["facesOmitted"].as_u64().unwrap();
    assert_eq!(shown, 100, "the cap");
    assert!(omitted >= 1, "{omitted} omitted");
    eprintln!(
        "{} faces found in the crowd: 100 returned, {omitted} omitted",
        100 + omitted
    );
    let v = s
        .ok(
            "POST",
            "/v1/detect",
            Some(json!({"image": img, "maxFaces": 3})),
        )
        .await;
    assert_eq!(v["facesOmitted"].as_u64().unwrap(), 97 + omitted);
    s.collection("crowd").await;
    let v = s
        .ok(
            "POST",
            "/v1/collections/crowd/faces",
            Some(json!({"image": img, "qualityFilter": "NONE"})),
        )
        .await;
    let accounted =
        v["faceRecords"].as_array().unwrap().len() + v["unindexedFaces"].as_array().unwrap().len();
    assert_eq!(accounted, 100);
    assert_eq!(v["facesOmitted"].as_u64().unwrap(), omitted);
    let v = s
        .ok(
            "POST",
            "/v1/compare",
            Some(json!({"sourceImage": b64(&fixture("obama.jpg")), "targetImage": img})),
        )
        .await;
    let compared =
        v["faceMatches"].as_array().unwrap().len() + v["unmatchedFaces"].as_array().unwrap().len();
    assert_eq!(compared, 100);
    assert_eq!(v["facesOmitted"].as_u64().unwrap(), omitted);
    // An ordinary image omits nothing, and says so.
    let v = s
        .ok(
            "POST",
            "/v1/detect",
            Some(json!({"image": b64(&fixture("t1.jpg"))})),
        )
        .await;
    assert_eq!(v["facesOmitted"], 0);
    s.stop().await;
}

/// Item 16: a collection named `transient` is an ordinary collection, its data key
/// apart from the service's transient key (see also `crypto`'s unit test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_named_transient_is_just_a_collection() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    s.collection("transient").await;
    let img = b64(&fixture("obama.jpg"));
    s.ok(
        "POST",
        "/v1/collections/transient/faces",
        Some(json!({"image": img})),
    )
    .await;
    let t = s
        .ok(
            "POST",
            "/v1/detect",
            Some(json!({"image": img, "returnFaceId": true})),
        )
        .await;
    let tid = t["faceDetails"][0]["faceId"].as_str().unwrap();
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": tid, "faceId2": tid})),
        )
        .await;
    assert_eq!(v["isIdentical"], true);
    let v = s
        .ok(
            "POST",
            "/v1/collections/transient/search",
            Some(json!({"image": img})),
        )
        .await;
    assert_eq!(v["faceMatches"].as_array().unwrap().len(), 1, "{v}");
    let store = s.service.store();
    let uid = store
        .get_collection("transient")
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    let coll = store
        .vault()
        .get(&format!("collection:{uid}"))
        .await
        .unwrap()
        .unwrap();
    let service = store
        .vault()
        .get("service:transient")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(coll, service);
    s.stop().await;
}

/// Slow clients (issue 12's kind "bounded work", found by a review after the audit):
/// connections that never finish their headers are closed after the header read
/// timeout, and one client address cannot open more than its share, while another
/// client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_cannot_hold_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.limits.header_read_timeout_secs = 1;
        c.limits.max_connections_per_client = 20;
    })
    .await
    else {
        return;
    };
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    // Closed: the connection answers end-of-file (or a reset) to a read.
    async fn closed(c: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(within, c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
    let mut refused = 0;
    for c in held.iter_mut() {
        if closed(c, Duration::from_millis(200)).await {
            refused += 1;
        }
    }
    assert!(
        refused >= 20,
        "{refused} of 40 closed at once (the cap is 20 per client)"
    );
    // Another client (127.0.0.2) is served meanwhile.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let st = other
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    // After the header read timeout, every slow connection is gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for c in held.iter_mut() {
        assert!(
            closed(c, Duration::from_millis(500)).await,
            "a slow connection is still open"
        );
    }
    // And the client can connect again.
    let st = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
