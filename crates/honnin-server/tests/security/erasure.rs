//! Erasure: no bytes left in the database files, no record left about the subject.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{b64, fixture, receiver, Backend, Server};

use super::{id, poll};

/// The files of the SQLite test database and its key vault.
fn database_files(s: &Server) -> Vec<std::path::PathBuf> {
    ["t.db", "t.db-wal", "t-keys.db", "t-keys.db-wal"]
        .iter()
        .map(|f| s.dir.path().join(f))
        .collect()
}

/// Which of `needles` (name, bytes) occur in any of `files`.
fn found_in(files: &[std::path::PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    needles
        .iter()
        .filter(|(_, n)| {
            contents
                .iter()
                .any(|c| c.windows(n.len()).any(|w| w == n.as_slice()))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Item 11: after a collection is deleted, neither the database file nor its
/// write-ahead log nor the key vault's files hold its wrapped data key, any sealed
/// template, or a kept document image; and a copy of the database file alone (a
/// backup) never held a data key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_collections_leave_no_bytes_in_the_database_files() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let store = s.service.store();
    s.collection("raw").await;
    for f in ["obama.jpg", "biden.jpg", "t1.jpg"] {
        s.ok(
            "POST",
            "/v1/collections/raw/faces",
            Some(json!({"image": b64(&fixture(f))})),
        )
        .await;
    }
    let v = s
        .ok(
            "POST",
            "/v1/verifications",
            Some(json!({"collectionId": "raw", "externalUserId": "u", "policy": {"keepImagesSecs": 3600}})),
        )
        .await;
    let vid = id(&v, "verificationId");
    s.ok(
        "PUT",
        &format!("/v1/verifications/{vid}/document"),
        Some(json!({"image": b64(&fixture("obama2.jpg"))})),
    )
    .await;
    let uid = store
        .get_collection("raw")
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    let wrapped = store
        .vault()
        .get(&format!("collection:{uid}"))
        .await
        .unwrap()
        .unwrap();
    needles.push(("the wrapped data key".into(), wrapped[..40].to_vec()));
    for f in store.list_faces("raw", None, 1000, None).await.unwrap() {
        needles.push((
            format!("template of {}", f.face_id),
            f.template[..48].to_vec(),
        ));
    }
    let row = store.get_verification(&vid).await.unwrap().unwrap();
    needles.push((
        "the document template".into(),
        row.document.unwrap()[..48].to_vec(),
    ));
    needles.push((
        "the kept document image".into(),
        row.images.unwrap()[..48].to_vec(),
    ));
    assert!(needles.len() >= 9, "{}", needles.len());
    store.erase_checkpoint().await.unwrap();
    // The search finds what is there…
    let before = found_in(&database_files(&s), &needles);
    assert_eq!(before.len(), needles.len(), "found only {before:?}");
    // …and a backup of the database file alone holds no data key.
    let backup = [s.dir.path().join("t.db")];
    assert!(
        found_in(&backup, &needles[..1]).is_empty(),
        "the data key is in the vault, not the database"
    );

    s.ok("DELETE", "/v1/collections/raw", None).await;
    let after = found_in(&database_files(&s), &needles);
    assert!(
        after.is_empty(),
        "still on disk after the deletion: {after:?}"
    );
    let (st, _) = s
        .call(
            "GET",
            &format!("/v1/verifications/{vid}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "the verification went with its collection"
    );
    s.stop().await;
}

/// Item 12: deleting a collection erases its verifications (kept images and templates
/// included) and their liveness sessions; deleting a user erases the user's faces,
/// verifications and the events about them (`keepFaces=true`: Rekognition's detach).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_collection_or_a_user_erases_every_record_about_it() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 2;
        c.background.work_interval_ms = 100;
    })
    .await
    else {
        return;
    };
    let (url, _) = receiver().await;
    s.ok("POST", "/v1/webhooks", Some(json!({"url": url})))
        .await;
    let hooks = s.ok("GET", "/v1/webhooks", None).await;
    let hook = hooks[0]["webhookId"].as_str().unwrap().to_string();
    for c in ["keep", "gone"] {
        s.collection(c).await;
    }
    let mut vids = HashMap::new();
    for (c, u) in [("gone", "eve"), ("keep", "eve"), ("keep", "sam")] {
        let v = s
            .ok(
                "POST",
                "/v1/verifications",
                Some(json!({"collectionId": c, "externalUserId": u, "policy": {"keepImagesSecs": 600}})),
            )
            .await;
        vids.insert(
            (c, u),
            (id(&v, "verificationId"), id(&v, "livenessSessionId")),
        );
    }
    for ((c, u), (vid, _)) in &vids {
        let v = poll(&s, &s.admin, &format!("/v1/verifications/{vid}"), 15, |v| {
            v["decision"].is_object()
        })
        .await;
        assert_eq!(v["collectionId"], *c);
        assert_eq!(v["externalUserId"], *u);
    }
    poll(
        &s,
        &s.admin,
        &format!("/v1/webhooks/{hook}/deliveries"),
        15,
        |v| v.as_array().is_some_and(|d| d.len() == 3),
    )
    .await;
    // Users with faces.
    for (u, f) in [
        ("eve", "obama.jpg"),
        ("sam", "biden.jpg"),
        ("kim", "obama2.jpg"),
    ] {
        s.ok(
            "POST",
            "/v1/collections/keep/users",
            Some(json!({"userId": u})),
        )
        .await;
        let r = s
            .ok(
                "POST",
                "/v1/collections/keep/faces",
                Some(json!({"image": b64(&fixture(f))})),
            )
            .await;
        let fid = r["faceRecords"][0]["face"]["faceId"]
            .as_str()
            .unwrap()
            .to_string();
        s.ok(
            "POST",
            &format!("/v1/collections/keep/users/{u}/faces"),
            Some(json!({"faceIds": [fid]})),
        )
        .await;
    }
    s.ok("DELETE", "/v1/collections/gone", None).await;
    let (gone_v, gone_s) = &vids[&("gone", "eve")];
    for p in [
        format!("/v1/verifications/{gone_v}"),
        format!("/v1/liveness/sessions/{gone_s}"),
    ] {
        let (st, _) = s.call("GET", &p, Some(&s.admin), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    }
    s.ok("DELETE", "/v1/collections/keep/users/eve", None).await;
    let faces = s.ok("GET", "/v1/collections/keep/faces", None).await;
    let owners: Vec<&str> = faces["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["userId"].as_str())
        .collect();
    assert_eq!(
        faces["faces"].as_array().unwrap().len(),
        2,
        "eve's face is erased: {faces}"
    );
    assert!(!owners.contains(&"eve"));
    let found = s
        .ok(
            "POST",
            "/v1/collections/keep/search",
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    assert!(
        found["faceMatches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["face"]["userId"] != "eve"),
        "{found}"
    );
    let (eve_v, _) = &vids[&("keep", "eve")];
    let (st, _) = s
        .call(
            "GET",
            &format!("/v1/verifications/{eve_v}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (sam_v, _) = &vids[&("keep", "sam")];
    s.ok("GET", &format!("/v1/verifications/{sam_v}"), None)
        .await;
    let d = s
        .ok("GET", &format!("/v1/webhooks/{hook}/deliveries"), None)
        .await;
    let d = d.as_array().unwrap();
    assert_eq!(d.len(), 1, "only sam's event is left: {d:?}");
    // keepFaces: the face stays, detached.
    s.ok(
        "DELETE",
        "/v1/collections/keep/users/kim?keepFaces=true",
        None,
    )
    .await;
    let faces = s.ok("GET", "/v1/collections/keep/faces", None).await;
    assert_eq!(faces["faces"].as_array().unwrap().len(), 2);
    s.stop().await;
}
