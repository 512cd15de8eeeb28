//! The storage test suite, run against every backend (see `tests/`). Public so the
//! backends' tests — and any future backend — run exactly the same checks.

use crate::*;

fn face(collection: &str, id: &str, ms: i64) -> FaceRow {
    FaceRow {
        face_id: id.to_string(),
        collection_id: collection.to_string(),
        user_id: None,
        external_image_id: Some(format!("ext-{id}")),
        image_id: "img-1".into(),
        details: "{}".into(),
        template: vec![1, 2, 3, id.len() as u8],
        created_ms: ms,
        updated_ms: ms,
    }
}

fn collection(id: &str) -> CollectionRow {
    CollectionRow {
        collection_id: id.to_string(),
        face_model: "honnin-1:test".into(),
        wrapped_key: vec![9; 60],
        created_ms: 1_000,
    }
}

/// Runs every check against `store` (which must be empty). Panics on the first failure.
pub async fn run_suite(store: &Store) {
    meta(store).await;
    keys(store).await;
    collections(store).await;
    faces(store).await;
    users(store).await;
    transient(store).await;
    liveness(store).await;
    verifications(store).await;
    webhooks_and_outbox(store).await;
    collection_delete_removes_everything(store).await;
}

async fn meta(s: &Store) {
    assert_eq!(s.get_meta("k").await.unwrap(), None);
    assert_eq!(s.put_meta_if_absent("k", "v1").await.unwrap(), "v1");
    assert_eq!(
        s.put_meta_if_absent("k", "v2").await.unwrap(),
        "v1",
        "first value wins"
    );
}

async fn keys(s: &Store) {
    let k = KeyRow {
        key_id: "kid1".into(),
        secret_hash: vec![7; 32],
        role: "admin".into(),
        collection_id: None,
        name: "first".into(),
        created_ms: 5,
        revoked_ms: None,
    };
    s.insert_key(&k).await.unwrap();
    assert!(matches!(
        s.insert_key(&k).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_key("kid1").await.unwrap(), Some(k.clone()));
    assert_eq!(s.get_key("nope").await.unwrap(), None);
    let k2 = KeyRow {
        key_id: "kid2".into(),
        role: "recognizer".into(),
        collection_id: Some("c1".into()),
        created_ms: 6,
        ..k.clone()
    };
    s.insert_key(&k2).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap().len(), 2);
    assert!(s.revoke_key("kid2", 99).await.unwrap());
    assert!(!s.revoke_key("kid2", 100).await.unwrap(), "already revoked");
    assert_eq!(
        s.get_key("kid2").await.unwrap().unwrap().revoked_ms,
        Some(99)
    );
}

async fn collections(s: &Store) {
    for id in ["b", "a", "c"] {
        s.insert_collection(&collection(id)).await.unwrap();
    }
    assert!(matches!(
        s.insert_collection(&collection("a")).await,
        Err(StoreError::Conflict(_))
    ));
    let page = s.list_collections(None, 2).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|c| c.collection_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let page = s.list_collections(Some("b"), 2).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].collection_id, "c");
    assert_eq!(
        s.get_collection("a").await.unwrap().unwrap().wrapped_key,
        vec![9; 60]
    );
    assert_eq!(s.collection_ids().await.unwrap(), ["a", "b", "c"]);
}

async fn faces(s: &Store) {
    s.insert_faces(&[
        face("a", "f1", 10),
        face("a", "f2", 20),
        face("b", "f3", 30),
    ])
    .await
    .unwrap();
    // All or nothing: a batch naming a missing collection writes nothing.
    let err = s
        .insert_faces(&[face("a", "f9", 10), face("zz", "f10", 10)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(s.get_faces("a", &["f9".into()]).await.unwrap().is_empty());
    // Duplicate ids are refused.
    assert!(matches!(
        s.insert_faces(&[face("a", "f1", 10)]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.count_faces("a").await.unwrap(), 2);
    let page = s.list_faces("a", None, 1, None).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].face_id, "f1");
    assert_eq!(
        page[0],
        face("a", "f1", 10),
        "round trip keeps every column"
    );
    assert_eq!(
        s.list_faces("a", Some("f1"), 10, None).await.unwrap()[0].face_id,
        "f2"
    );
    let got = s
        .get_faces("a", &["f1".into(), "f3".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "f3 is in another collection");
    // Change feed.
    let since = s.faces_updated_since(20).await.unwrap();
    let mut ids: Vec<_> = since.iter().map(|f| f.face_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["f2", "f3"]);
    // Deletion writes tombstones and never resurrects.
    let del = s
        .delete_faces("a", &["f2".into(), "nope".into()], 40)
        .await
        .unwrap();
    assert_eq!(del, ["f2"]);
    assert!(s.get_faces("a", &["f2".into()]).await.unwrap().is_empty());
    let t = s.tombstones_since(40).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].face_id, "f2");
    assert!(s.tombstones_since(41).await.unwrap().is_empty());
    assert_eq!(s.purge_tombstones(41).await.unwrap(), 1);
}

async fn users(s: &Store) {
    let u = UserRow {
        collection_id: "a".into(),
        user_id: "alice".into(),
        created_ms: 50,
    };
    s.insert_user(&u).await.unwrap();
    assert!(matches!(
        s.insert_user(&u).await,
        Err(StoreError::Conflict(_))
    ));
    let missing = UserRow {
        collection_id: "nope".into(),
        ..u.clone()
    };
    assert!(matches!(
        s.insert_user(&missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.count_users("a").await.unwrap(), 1);
    assert_eq!(
        s.set_face_user("a", &["f1".into(), "nope".into()], Some("alice"), 60)
            .await
            .unwrap(),
        1
    );
    let f = s.list_faces("a", None, 10, Some("alice")).await.unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].updated_ms, 60);
    assert_eq!(s.list_users("a", None, 10).await.unwrap(), vec![u.clone()]);
    assert!(s.delete_user("a", "alice", 70).await.unwrap());
    assert!(!s.delete_user("a", "alice", 70).await.unwrap());
    let f = s.get_faces("a", &["f1".into()]).await.unwrap();
    assert_eq!(f[0].user_id, None, "faces are detached, not deleted");
}

async fn transient(s: &Store) {
    let t = |id: &str, exp: i64| TransientRow {
        face_id: id.into(),
        owner_key: "kid1".into(),
        template: vec![4; 8],
        details: "{}".into(),
        created_ms: 0,
        expires_ms: exp,
    };
    s.insert_transient(&[t("t1", 100), t("t2", 200)])
        .await
        .unwrap();
    let got = s
        .get_transient(&["t1".into(), "t2".into()], 150)
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "t1 expired at 100");
    assert_eq!(got[0].face_id, "t2");
    assert_eq!(s.delete_expired_transient(150).await.unwrap(), 1);
    assert_eq!(s.count_transient().await.unwrap(), 1);
    assert_eq!(s.delete_expired_transient(1000).await.unwrap(), 1);
    assert_eq!(s.count_transient().await.unwrap(), 0);
}

async fn liveness(s: &Store) {
    let row = |id: &str, device: Option<&str>, created: i64| LivenessRow {
        session_id: id.into(),
        owner_key: "kid1".into(),
        token_hash: vec![3; 32],
        device_id: device.map(String::from),
        settings: "{}".into(),
        reference: Some(vec![5; 10]),
        status: "CREATED".into(),
        result: None,
        images: None,
        created_ms: created,
        expires_ms: created + 180_000,
        started_ms: None,
        finished_ms: None,
        images_until_ms: None,
        retain_until_ms: created + 172_800_000,
    };
    s.insert_liveness(&row("ls1", Some("dev"), 1_000))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_liveness(&row("ls1", None, 1_000)).await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_liveness(&row("ls2", Some("dev"), 2_000))
        .await
        .unwrap();
    s.insert_liveness(&row("ls3", None, 3_000)).await.unwrap();
    assert_eq!(
        s.get_liveness("ls1").await.unwrap(),
        Some(row("ls1", Some("dev"), 1_000))
    );
    assert_eq!(s.get_liveness("nope").await.unwrap(), None);
    assert_eq!(
        s.count_liveness_since(Some("dev"), None, 0).await.unwrap(),
        2
    );
    assert_eq!(
        s.count_liveness_since(Some("dev"), None, 1_500)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.count_liveness_since(None, Some("kid1"), 0).await.unwrap(),
        3
    );
    assert_eq!(
        s.count_liveness_since(Some("dev"), Some("other"), 0)
            .await
            .unwrap(),
        0
    );

    // A session streams once; not after it expired.
    assert!(s.start_liveness("ls1", 1_500).await.unwrap());
    assert!(
        !s.start_liveness("ls1", 1_600).await.unwrap(),
        "second start refused"
    );
    assert!(
        !s.start_liveness("ls2", 2_000 + 180_000).await.unwrap(),
        "expired"
    );
    assert!(!s.start_liveness("nope", 1).await.unwrap());

    // Finishing stores results and images and drops the reference template.
    assert!(
        !s.finish_liveness("ls3", "SUCCEEDED", "{}", None, None, 4_000, 9_000)
            .await
            .unwrap(),
        "not started"
    );
    assert!(s
        .finish_liveness(
            "ls1",
            "SUCCEEDED",
            "{\"c\":1}",
            Some(&[1, 2, 3]),
            None,
            4_000,
            9_000
        )
        .await
        .unwrap());
    let got = s.get_liveness("ls1").await.unwrap().unwrap();
    assert_eq!(got.status, "SUCCEEDED");
    assert_eq!(got.reference, None);
    assert_eq!(got.images.as_deref(), Some(&[1u8, 2, 3][..]));
    // Images are handed out once.
    assert_eq!(
        s.take_liveness_images("ls1").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(s.take_liveness_images("ls1").await.unwrap(), None);
    assert_eq!(
        s.get_liveness("ls1")
            .await
            .unwrap()
            .unwrap()
            .result
            .as_deref(),
        Some("{\"c\":1}")
    );

    // The sweeper: ls2 and ls3 never finished and expire; unread images go at their limit;
    // rows go at the end of retention.
    let mut ls4 = row("ls4", None, 1_000);
    ls4.status = "SUCCEEDED".into();
    ls4.images = Some(vec![9]);
    ls4.images_until_ms = Some(50_000);
    s.insert_liveness(&ls4).await.unwrap();
    let r = s.sweep_liveness(40_000).await.unwrap();
    assert_eq!(r, LivenessSweep::default(), "nothing due yet");
    let r = s.sweep_liveness(200_000).await.unwrap();
    assert_eq!((r.expired, r.images_cleared, r.deleted), (2, 1, 0));
    let ls2 = s.get_liveness("ls2").await.unwrap().unwrap();
    assert_eq!((ls2.status.as_str(), ls2.reference), ("EXPIRED", None));
    assert_eq!(s.get_liveness("ls4").await.unwrap().unwrap().images, None);
    let r = s.sweep_liveness(1_000 + 172_800_000).await.unwrap();
    assert_eq!(r.deleted, 2, "ls1 and ls4 reached their retention");
    assert!(s.delete_liveness("ls2").await.unwrap());
    assert!(!s.delete_liveness("ls2").await.unwrap());
    let r = s.sweep_liveness(i64::MAX / 2).await.unwrap();
    assert_eq!(r.deleted, 1, "ls3");
    assert_eq!(s.count_liveness_since(None, None, 0).await.unwrap(), 0);
}

async fn collection_delete_removes_everything(s: &Store) {
    s.insert_user(&UserRow {
        collection_id: "b".into(),
        user_id: "bob".into(),
        created_ms: 1,
    })
    .await
    .unwrap();
    assert!(s.delete_collection("b", 500).await.unwrap());
    assert!(!s.delete_collection("b", 500).await.unwrap());
    assert_eq!(
        s.get_collection("b").await.unwrap(),
        None,
        "the wrapped key is gone"
    );
    assert_eq!(s.count_faces("b").await.unwrap(), 0);
    assert_eq!(s.count_users("b").await.unwrap(), 0);
    let t = s.tombstones_since(500).await.unwrap();
    assert_eq!(
        t.iter().filter(|t| t.face_id == "f3").count(),
        1,
        "other processes learn of the deletion"
    );
    // A new collection with the same id starts empty.
    s.insert_collection(&collection("b")).await.unwrap();
    assert_eq!(s.count_faces("b").await.unwrap(), 0);
}

/// A throw-away PostgreSQL database for one test run.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

/// Creates a fresh database on the server named by `HONNIN_TEST_POSTGRES`
/// (default `postgres://postgres@127.0.0.1:5432/postgres`). Returns `None` (and says
/// so) when the server is unreachable, unless `HONNIN_REQUIRE_POSTGRES` is set.
pub async fn fresh_postgres_database(label: &str) -> Option<TestDatabase> {
    use sqlx::Connection;
    let admin_url = std::env::var("HONNIN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("HONNIN_REQUIRE_POSTGRES").is_some() {
                panic!("HONNIN_REQUIRE_POSTGRES is set but {admin_url} is unreachable: {e}");
            }
            eprintln!("SKIPPED: PostgreSQL test ({admin_url} unreachable: {e})");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("honnin_test_{label}_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin_url.clone());
    Some(TestDatabase {
        url: format!("{base}/{name}"),
        admin_url,
        name,
    })
}

impl TestDatabase {
    /// Drops the database (terminating leftover connections).
    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
            conn.close().await.ok();
        }
    }
}

async fn verifications(s: &Store) {
    let live = |id: &str| LivenessRow {
        session_id: id.into(),
        owner_key: "kid1".into(),
        token_hash: vec![3; 32],
        device_id: None,
        settings: "{}".into(),
        reference: None,
        status: "CREATED".into(),
        result: None,
        images: None,
        created_ms: 10_000,
        expires_ms: 190_000,
        started_ms: None,
        finished_ms: None,
        images_until_ms: None,
        retain_until_ms: 10_000 + 172_800_000,
    };
    let row = |id: &str, session: &str| VerificationRow {
        verification_id: id.into(),
        owner_key: "kid1".into(),
        collection_id: "c-ver".into(),
        external_user_id: "user-1".into(),
        policy: "{}".into(),
        liveness_session_id: session.into(),
        status: "awaiting_document".into(),
        document: None,
        document_info: None,
        decision: None,
        images: None,
        images_until_ms: None,
        created_ms: 10_000,
        updated_ms: 10_000,
        expires_ms: 610_000,
        decided_ms: None,
        retain_until_ms: 10_000 + 2_592_000_000,
    };
    for (v, l) in [("v1", "vl1"), ("v2", "vl2"), ("v3", "vl3")] {
        s.insert_liveness(&live(l)).await.unwrap();
        s.insert_verification(&row(v, l)).await.unwrap();
    }
    assert!(matches!(
        s.insert_verification(&row("v1", "vl1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_verification("v1").await.unwrap(),
        Some(row("v1", "vl1"))
    );
    assert_eq!(s.get_verification("nope").await.unwrap(), None);
    assert_eq!(
        s.verification_of_liveness("vl2").await.unwrap().as_deref(),
        Some("v2")
    );
    assert_eq!(s.verification_of_liveness("ls1").await.unwrap(), None);

    // The document step happens once, and moves the verification on.
    assert!(s
        .set_verification_document("v1", &[7, 7], "{\"w\":90}", Some(&[5]), 11_000)
        .await
        .unwrap());
    assert!(
        !s.set_verification_document("v1", &[8], "{}", None, 11_500)
            .await
            .unwrap(),
        "a second document is refused"
    );
    assert!(
        !s.set_verification_document("v2", &[8], "{}", None, 610_000)
            .await
            .unwrap(),
        "not after expiry"
    );
    let got = s.get_verification("v1").await.unwrap().unwrap();
    assert_eq!(got.status, "awaiting_liveness");
    assert_eq!(got.document.as_deref(), Some(&[7u8, 7][..]));
    assert_eq!(got.images.as_deref(), Some(&[5u8][..]));
    assert_eq!(got.updated_ms, 11_000);

    // Ready only once its liveness session has ended.
    assert!(s.verifications_ready(20_000, 10).await.unwrap().is_empty());
    assert!(s.start_liveness("vl1", 12_000).await.unwrap());
    assert!(s.verifications_ready(20_000, 10).await.unwrap().is_empty());
    assert_eq!(s.live_template("vl1").await.unwrap(), None);
    assert!(s
        .finish_liveness(
            "vl1",
            "SUCCEEDED",
            "{}",
            None,
            Some(&[4, 2]),
            13_000,
            20_000
        )
        .await
        .unwrap());
    // Ready, and the live template came with the finish (one statement): whoever sees
    // the session finished finds the live face.
    assert_eq!(
        s.verifications_ready(20_000, 10).await.unwrap(),
        vec!["v1".to_string()]
    );
    assert_eq!(s.live_template("vl1").await.unwrap(), Some(vec![4, 2]));

    // The live template is read as often as a retried decision needs; it goes with
    // the decision (below).
    assert_eq!(s.live_template("vl1").await.unwrap(), Some(vec![4, 2]));
    assert_eq!(s.live_template("nope").await.unwrap(), None);

    // One server wins the move to processing; deciding needs processing.
    assert!(
        !s.decide_verification("v1", "approved", "{}", None, None, 14_000, 99_000)
            .await
            .unwrap(),
        "not processing yet"
    );
    assert!(s
        .transition_verification("v1", "awaiting_liveness", "processing", 14_000)
        .await
        .unwrap());
    assert!(!s
        .transition_verification("v1", "awaiting_liveness", "processing", 14_000)
        .await
        .unwrap());
    assert!(s.verifications_ready(20_000, 10).await.unwrap().is_empty());
    // A processing verification whose server died is requeued.
    assert_eq!(
        s.requeue_stale_verifications(14_000, 15_000).await.unwrap(),
        0
    );
    assert_eq!(
        s.requeue_stale_verifications(14_001, 15_000).await.unwrap(),
        1
    );
    assert_eq!(
        s.live_template("vl1").await.unwrap(),
        Some(vec![4, 2]),
        "still there for the retry"
    );
    assert!(s
        .transition_verification("v1", "awaiting_liveness", "processing", 15_500)
        .await
        .unwrap());
    assert!(s
        .decide_verification(
            "v1",
            "approved",
            "{\"ok\":true}",
            Some(&[9]),
            Some(50_000),
            16_000,
            99_000
        )
        .await
        .unwrap());
    let got = s.get_verification("v1").await.unwrap().unwrap();
    assert_eq!(
        s.live_template("vl1").await.unwrap(),
        None,
        "gone with the decision"
    );
    assert_eq!(got.status, "approved");
    assert_eq!(got.document, None, "the document template is gone");
    assert_eq!(got.decision.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(got.decided_ms, Some(16_000));
    assert_eq!(got.images.as_deref(), Some(&[9u8][..]));
    assert!(!s
        .decide_verification("v1", "rejected", "{}", None, None, 17_000, 99_000)
        .await
        .unwrap());

    // The sweeper: v1's images go at 50 000, its row at 99 000.
    let sw = s.sweep_verifications(49_999).await.unwrap();
    assert_eq!(sw, VerificationSweep::default());
    let sw = s.sweep_verifications(50_000).await.unwrap();
    assert_eq!((sw.images_cleared, sw.deleted), (1, 0));
    assert_eq!(
        s.get_verification("v1").await.unwrap().unwrap().images,
        None
    );
    let sw = s.sweep_verifications(99_000).await.unwrap();
    assert_eq!(sw.deleted, 1);
    assert_eq!(s.get_verification("v1").await.unwrap(), None);
    // Out of time (610 000), waiting verifications become work for the processor,
    // whatever step they wait for.
    assert!(s
        .set_verification_document("v3", &[1], "{}", None, 20_000)
        .await
        .unwrap());
    assert!(s.verifications_ready(609_999, 10).await.unwrap().is_empty());
    assert_eq!(
        s.verifications_ready(610_000, 10).await.unwrap(),
        vec!["v2".to_string(), "v3".to_string()]
    );
    // ...as is one whose liveness session is gone.
    assert!(s.delete_liveness("vl3").await.unwrap());
    assert_eq!(
        s.verifications_ready(20_000, 10).await.unwrap(),
        vec!["v3".to_string()]
    );
    assert!(s.delete_verification("v2").await.unwrap());
    assert!(!s.delete_verification("v2").await.unwrap());
    assert!(s.delete_verification("v3").await.unwrap());
}

async fn webhooks_and_outbox(s: &Store) {
    let hook = |id: &str, owner: &str, ms: i64| WebhookRow {
        webhook_id: id.into(),
        owner_key: owner.into(),
        url: format!("https://example.test/{id}"),
        secret: vec![1; 44],
        events: "[\"verification.completed\"]".into(),
        created_ms: ms,
    };
    s.insert_webhook(&hook("w1", "kid1", 1)).await.unwrap();
    s.insert_webhook(&hook("w2", "kid1", 2)).await.unwrap();
    s.insert_webhook(&hook("w3", "kid2", 3)).await.unwrap();
    assert!(matches!(
        s.insert_webhook(&hook("w1", "kid1", 1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_webhook("w3").await.unwrap(),
        Some(hook("w3", "kid2", 3))
    );
    let mine: Vec<String> = s
        .list_webhooks("kid1")
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.webhook_id)
        .collect();
    assert_eq!(mine, ["w1", "w2"]);

    let delivery = |id: &str, hook: &str| DeliveryRow {
        delivery_id: id.into(),
        webhook_id: hook.into(),
        event: "verification.completed".into(),
        body: "{}".into(),
        attempts: 0,
        next_attempt_ms: 100,
        lease_until_ms: None,
        delivered_ms: None,
        failed_ms: None,
        last_error: None,
        created_ms: 100,
    };
    s.enqueue_deliveries(&[
        delivery("d1", "w1"),
        delivery("d2", "w2"),
        delivery("d3", "w3"),
    ])
    .await
    .unwrap();
    assert!(
        s.claim_deliveries(99, 200, 10).await.unwrap().is_empty(),
        "not due"
    );
    let claimed = s.claim_deliveries(100, 200, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|d| d.lease_until_ms == Some(200)));
    // Leased ones are not claimed again until the lease runs out.
    let rest = s.claim_deliveries(150, 250, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(s.claim_deliveries(199, 300, 10).await.unwrap().is_empty());
    let ids: Vec<&str> = claimed.iter().map(|d| d.delivery_id.as_str()).collect();
    s.record_delivery_attempt(ids[0], DeliveryOutcome::Delivered, 160)
        .await
        .unwrap();
    s.record_delivery_attempt(
        ids[1],
        DeliveryOutcome::Retry {
            next_attempt_ms: 1_000,
            error: "HTTP 503",
        },
        160,
    )
    .await
    .unwrap();
    s.record_delivery_attempt(
        &rest[0].delivery_id,
        DeliveryOutcome::Failed { error: "gave up" },
        170,
    )
    .await
    .unwrap();
    assert!(
        s.claim_deliveries(999, 2_000, 10).await.unwrap().is_empty(),
        "retry not due"
    );
    let again = s.claim_deliveries(1_000, 2_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery_id, ids[1]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));
    // An expired lease (its server died) is claimed again.
    let retaken = s.claim_deliveries(2_000, 3_000, 10).await.unwrap();
    assert_eq!(retaken.len(), 1);
    let w1 = s.list_deliveries("w1", 10).await.unwrap();
    assert_eq!(w1.len(), 1);
    assert_eq!(w1[0].delivered_ms, Some(160));
    assert_eq!(w1[0].attempts, 1);

    assert_eq!(s.purge_deliveries(160).await.unwrap(), 0);
    assert_eq!(
        s.purge_deliveries(171).await.unwrap(),
        2,
        "delivered and failed"
    );
    assert!(s.delete_webhook("w2").await.unwrap());
    assert!(
        s.list_deliveries("w2", 10).await.unwrap().is_empty(),
        "its deliveries go too"
    );
    assert!(!s.delete_webhook("w2").await.unwrap());
    assert!(s.delete_webhook("w1").await.unwrap());
    assert!(s.delete_webhook("w3").await.unwrap());
}
