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
        collection_uid: format!("uid-{id}"),
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
    vault(store).await;
    claims_are_fair_and_circuits_open(store).await;
    revocation_ends_the_keys_work(store).await;
    erasure_leaves_no_row_about_the_subject(store).await;
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
        scope_uid: None,
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
    assert_eq!(s.list_keys(None).await.unwrap().len(), 2);
    // A limited key made before its collection is bound on first use, once.
    assert!(s.bind_key_scope("kid2", "uid-c1").await.unwrap());
    assert!(
        !s.bind_key_scope("kid2", "uid-other").await.unwrap(),
        "bound once"
    );
    assert!(
        !s.bind_key_scope("kid1", "uid-c1").await.unwrap(),
        "unlimited keys stay so"
    );
    assert_eq!(
        s.get_key("kid2")
            .await
            .unwrap()
            .unwrap()
            .scope_uid
            .as_deref(),
        Some("uid-c1")
    );
    let k3 = KeyRow {
        key_id: "kid3".into(),
        collection_id: Some("c1".into()),
        scope_uid: Some("uid-old-c1".into()),
        created_ms: 7,
        ..k.clone()
    };
    s.insert_key(&k3).await.unwrap();
    let scoped: Vec<String> = s
        .list_keys(Some(("c1", "uid-c1")))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(
        scoped,
        ["kid2"],
        "not the unlimited key, not a key of an older c1"
    );
    assert!(s.revoke_key("kid2", 99).await.unwrap().is_some());
    assert!(
        s.revoke_key("kid2", 100).await.unwrap().is_none(),
        "already revoked"
    );
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
    let page = s.list_collections(None, 2, None).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|c| c.collection_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let page = s.list_collections(Some("b"), 2, None).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].collection_id, "c");
    // Filtered before paging: one identity's page holds only that collection.
    let only = s.list_collections(None, 1, Some("uid-c")).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].collection_id, "c");
    assert!(s
        .list_collections(Some("c"), 1, Some("uid-c"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.get_collection("a").await.unwrap().unwrap().wrapped_key,
        vec![9; 60]
    );
    assert_eq!(
        s.collection_ids().await.unwrap(),
        [("a", "uid-a"), ("b", "uid-b"), ("c", "uid-c")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

async fn faces(s: &Store) {
    s.insert_faces(
        &[
            face("a", "f1", 10),
            face("a", "f2", 20),
            face("b", "f3", 30),
        ],
        None,
    )
    .await
    .unwrap();
    // Faces sealed for an older incarnation of a collection are refused.
    let err = s
        .insert_faces(&[face("a", "f8", 10)], Some("uid-of-a-deleted-a"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    // All or nothing: a batch naming a missing collection writes nothing.
    let err = s
        .insert_faces(&[face("a", "f9", 10), face("zz", "f10", 10)], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(s.get_faces("a", &["f9".into()]).await.unwrap().is_empty());
    // Duplicate ids are refused.
    assert!(matches!(
        s.insert_faces(&[face("a", "f1", 10)], Some("uid-a")).await,
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
    let d = s
        .delete_user("a", "alice", 70, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.face_ids, ["f1"]);
    assert!(s
        .delete_user("a", "alice", 70, true)
        .await
        .unwrap()
        .is_none());
    let f = s.get_faces("a", &["f1".into()]).await.unwrap();
    assert_eq!(
        f[0].user_id, None,
        "with keep_faces, faces are detached, not deleted"
    );
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
        cancelled_ms: None,
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
    s.vault()
        .put_if_absent("collection:uid-b", &[1, 2, 3], 1)
        .await
        .unwrap();
    // Keys for `b`: one bound to it, one made for its name and never used, one bound
    // to another collection.
    for (id, coll, uid) in [
        ("kb-bound", "b", Some("uid-b")),
        ("kb-never-used", "b", None),
        ("kb-other", "a", Some("uid-a")),
    ] {
        s.insert_key(&KeyRow {
            key_id: id.into(),
            secret_hash: vec![1; 32],
            role: "enroller".into(),
            collection_id: Some(coll.into()),
            name: id.into(),
            created_ms: 1,
            revoked_ms: None,
            scope_uid: uid.map(String::from),
        })
        .await
        .unwrap();
    }
    let d = s.delete_collection("b", 500).await.unwrap().unwrap();
    assert_eq!(d.revoked.keys, 2, "the bound key and the never-used one");
    for (id, revoked) in [
        ("kb-bound", true),
        ("kb-never-used", true),
        ("kb-other", false),
    ] {
        let k = s.get_key(id).await.unwrap().unwrap();
        assert_eq!(k.revoked_ms.is_some(), revoked, "{id}");
    }
    assert_eq!(
        (d.collection_uid.as_str(), d.faces, d.users),
        ("uid-b", 1, 1)
    );
    assert!(s.delete_collection("b", 500).await.unwrap().is_none());
    assert_eq!(s.get_collection("b").await.unwrap(), None);
    assert_eq!(
        s.vault().get("collection:uid-b").await.unwrap(),
        None,
        "the data key left the vault"
    );
    assert_eq!(s.count_faces("b").await.unwrap(), 0);
    assert_eq!(s.count_users("b").await.unwrap(), 0);
    assert!(
        !s.collection_ids()
            .await
            .unwrap()
            .iter()
            .any(|(c, _)| c == "b"),
        "other processes drop the collection when it leaves the list"
    );
    // A new collection with the same id starts empty, under a new identity.
    s.insert_collection(&CollectionRow {
        collection_uid: "uid-b2".into(),
        ..collection("b")
    })
    .await
    .unwrap();
    assert_eq!(s.count_faces("b").await.unwrap(), 0);
}

async fn vault(s: &Store) {
    let v = s.vault();
    assert_eq!(v.get("service:test").await.unwrap(), None);
    assert_eq!(v.put_if_absent("service:test", &[1], 5).await.unwrap(), [1]);
    assert_eq!(
        v.put_if_absent("service:test", &[2], 6).await.unwrap(),
        [1],
        "the first key wins (servers starting at once agree)"
    );
    v.put_if_absent("collection:x1", &[3], 7).await.unwrap();
    let e = v.entries("collection:").await.unwrap();
    assert_eq!(
        e,
        [VaultEntry {
            key_ref: "collection:x1".into(),
            created_ms: 7
        }]
    );
    assert!(v.delete("collection:x1").await.unwrap());
    assert!(!v.delete("collection:x1").await.unwrap());
    assert!(v.delete("service:test").await.unwrap());
}

async fn claims_are_fair_and_circuits_open(s: &Store) {
    let hook = |id: &str, owner: &str| WebhookRow {
        webhook_id: id.into(),
        owner_key: owner.into(),
        url: format!("https://example.test/{id}"),
        secret: vec![1; 44],
        events: "[]".into(),
        created_ms: 1,
        disabled_ms: None,
        consecutive_failures: 0,
        circuit_open_until_ms: None,
    };
    let d = |id: String, hook: &str, due: i64| DeliveryRow {
        delivery_id: id,
        webhook_id: hook.into(),
        event: "verification.completed".into(),
        body: "{}".into(),
        attempts: 0,
        next_attempt_ms: due,
        lease_until_ms: None,
        delivered_ms: None,
        failed_ms: None,
        last_error: None,
        created_ms: due,
        collection_id: None,
        user_id: None,
        verification_id: None,
    };
    s.insert_webhook(&hook("fa", "owner-a")).await.unwrap();
    s.insert_webhook(&hook("fb", "owner-b")).await.unwrap();
    s.insert_webhook(&hook("fc", "owner-c")).await.unwrap();
    // Owner A has a backlog of 20 older deliveries; B and C one each, due later.
    let mut rows: Vec<DeliveryRow> = (0..20)
        .map(|i| d(format!("fa-{i:02}"), "fa", 10 + i))
        .collect();
    rows.push(d("fb-0".into(), "fb", 100));
    rows.push(d("fc-0".into(), "fc", 100));
    s.enqueue_deliveries(&rows).await.unwrap();
    let limits = ClaimLimits {
        now_ms: 1_000,
        lease_until_ms: 2_000,
        limit: 5,
        per_owner: 2,
    };
    let got = s.claim_deliveries(limits, |_| true).await.unwrap();
    let owners: Vec<&str> = got.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(owners.len(), 4, "{owners:?}");
    assert_eq!(
        owners.iter().filter(|o| **o == "owner-a").count(),
        2,
        "at most 2 per owner"
    );
    assert!(
        owners.contains(&"owner-b") && owners.contains(&"owner-c"),
        "{owners:?}"
    );
    // The caller's admission decides too (an owner at its concurrency cap).
    let got = s
        .claim_deliveries(
            ClaimLimits {
                lease_until_ms: 2_500,
                ..limits
            },
            |o| o != "owner-a",
        )
        .await
        .unwrap();
    assert!(
        got.is_empty(),
        "B and C are leased; A is refused by the caller"
    );
    // The circuit breaker: the 3rd failure in a row opens the circuit, doubling after.
    for n in 1..=2 {
        assert_eq!(
            s.record_webhook_outcome("fa", false, 1_000, 3, 500, 10_000)
                .await
                .unwrap(),
            n
        );
    }
    assert_eq!(
        s.get_webhook("fa")
            .await
            .unwrap()
            .unwrap()
            .circuit_open_until_ms,
        None
    );
    assert_eq!(
        s.record_webhook_outcome("fa", false, 1_000, 3, 500, 10_000)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.get_webhook("fa")
            .await
            .unwrap()
            .unwrap()
            .circuit_open_until_ms,
        Some(1_500)
    );
    s.record_webhook_outcome("fa", false, 1_000, 3, 500, 10_000)
        .await
        .unwrap();
    assert_eq!(
        s.get_webhook("fa")
            .await
            .unwrap()
            .unwrap()
            .circuit_open_until_ms,
        Some(2_000)
    );
    let open = ClaimLimits {
        now_ms: 1_999,
        lease_until_ms: 9_000,
        limit: 50,
        per_owner: 50,
    };
    assert!(
        s.claim_deliveries(open, |_| true).await.unwrap().is_empty(),
        "open circuit: A waits"
    );
    let closed = ClaimLimits {
        now_ms: 2_000,
        ..open
    };
    let again = s.claim_deliveries(closed, |_| true).await.unwrap();
    assert_eq!(
        again.iter().filter(|(_, o)| o == "owner-a").count(),
        20,
        "half-open: A's deliveries are tried again"
    );
    assert_eq!(
        s.record_webhook_outcome("fa", true, 2_100, 3, 500, 10_000)
            .await
            .unwrap(),
        0
    );
    let w = s.get_webhook("fa").await.unwrap().unwrap();
    assert_eq!((w.consecutive_failures, w.circuit_open_until_ms), (0, None));
    for h in ["fa", "fb", "fc"] {
        assert!(s.delete_webhook(h).await.unwrap());
    }
}

async fn revocation_ends_the_keys_work(s: &Store) {
    let key = |id: &str| KeyRow {
        key_id: id.into(),
        secret_hash: vec![7; 32],
        role: "enroller".into(),
        collection_id: None,
        name: id.into(),
        created_ms: 1,
        revoked_ms: None,
        scope_uid: None,
    };
    s.insert_key(&key("rv-gone")).await.unwrap();
    s.insert_key(&key("rv-kept")).await.unwrap();
    let session = |id: &str, owner: &str, status: &str| LivenessRow {
        session_id: id.into(),
        owner_key: owner.into(),
        token_hash: vec![3; 32],
        device_id: None,
        settings: "{}".into(),
        reference: Some(vec![5; 10]),
        status: status.into(),
        result: None,
        images: Some(vec![6; 10]),
        created_ms: 1,
        expires_ms: i64::MAX / 4,
        started_ms: None,
        finished_ms: None,
        images_until_ms: None,
        retain_until_ms: i64::MAX / 4,
        cancelled_ms: None,
    };
    let ver = |id: &str, owner: &str, sess: &str, status: &str| VerificationRow {
        verification_id: id.into(),
        owner_key: owner.into(),
        collection_id: "rv-c".into(),
        external_user_id: "u".into(),
        policy: "{}".into(),
        liveness_session_id: sess.into(),
        status: status.into(),
        document: Some(vec![8; 8]),
        document_info: None,
        decision: None,
        images: Some(vec![9; 8]),
        images_until_ms: None,
        created_ms: 1,
        updated_ms: 1,
        expires_ms: i64::MAX / 4,
        decided_ms: None,
        retain_until_ms: i64::MAX / 4,
    };
    for (id, st) in [
        ("rv-s1", "CREATED"),
        ("rv-s2", "IN_PROGRESS"),
        ("rv-s3", "SUCCEEDED"),
    ] {
        s.insert_liveness(&session(id, "rv-gone", st))
            .await
            .unwrap();
    }
    s.insert_liveness(&session("rv-s4", "rv-kept", "CREATED"))
        .await
        .unwrap();
    s.insert_verification(&ver("rv-v1", "rv-gone", "rv-s1", "awaiting_document"))
        .await
        .unwrap();
    s.insert_verification(&ver("rv-v2", "rv-gone", "rv-s3", "approved"))
        .await
        .unwrap();
    s.insert_verification(&ver("rv-v3", "rv-kept", "rv-s4", "awaiting_document"))
        .await
        .unwrap();
    let hook = |id: &str, owner: &str| WebhookRow {
        webhook_id: id.into(),
        owner_key: owner.into(),
        url: "https://example.test/h".into(),
        secret: vec![1; 44],
        events: "[]".into(),
        created_ms: 1,
        disabled_ms: None,
        consecutive_failures: 0,
        circuit_open_until_ms: None,
    };
    s.insert_webhook(&hook("rv-w1", "rv-gone")).await.unwrap();
    s.insert_webhook(&hook("rv-w2", "rv-kept")).await.unwrap();
    let delivery = |id: &str, hook: &str| DeliveryRow {
        delivery_id: id.into(),
        webhook_id: hook.into(),
        event: "verification.completed".into(),
        body: "{}".into(),
        attempts: 0,
        next_attempt_ms: 1,
        lease_until_ms: None,
        delivered_ms: None,
        failed_ms: None,
        last_error: None,
        created_ms: 1,
        collection_id: None,
        user_id: None,
        verification_id: None,
    };
    s.enqueue_deliveries(&[delivery("rv-d1", "rv-w1"), delivery("rv-d2", "rv-w2")])
        .await
        .unwrap();
    let t = |id: &str, owner: &str| TransientRow {
        face_id: id.into(),
        owner_key: owner.into(),
        template: vec![4; 8],
        details: "{}".into(),
        created_ms: 0,
        expires_ms: i64::MAX / 4,
    };
    s.insert_transient(&[t("rv-t1", "rv-gone"), t("rv-t2", "rv-kept")])
        .await
        .unwrap();

    let r = s.revoke_key("rv-gone", 777).await.unwrap().unwrap();
    assert_eq!(
        r,
        Revocation {
            keys: 1,
            sessions_cancelled: 2,
            verifications_cancelled: 1,
            webhooks_disabled: 1,
            deliveries_failed: 1,
            transient_deleted: 1,
        }
    );
    for id in ["rv-s1", "rv-s2"] {
        let l = s.get_liveness(id).await.unwrap().unwrap();
        assert_eq!(
            (l.status.as_str(), l.cancelled_ms),
            ("FAILED", Some(777)),
            "{id}"
        );
        assert_eq!(
            (l.reference, l.images),
            (None, None),
            "{id}: templates and images go"
        );
        assert!(
            !s.start_liveness(id, 778).await.unwrap(),
            "{id} never streams"
        );
    }
    assert_eq!(
        s.get_liveness("rv-s3").await.unwrap().unwrap().cancelled_ms,
        None,
        "finished: kept"
    );
    assert_eq!(
        s.get_liveness("rv-s4").await.unwrap().unwrap().status,
        "CREATED",
        "another key's"
    );
    let v = s.get_verification("rv-v1").await.unwrap().unwrap();
    assert_eq!(
        (v.status.as_str(), v.document, v.images),
        ("cancelled", None, None)
    );
    assert_eq!(
        s.get_verification("rv-v2").await.unwrap().unwrap().status,
        "approved",
        "decided: kept"
    );
    assert_eq!(
        s.get_verification("rv-v3").await.unwrap().unwrap().status,
        "awaiting_document"
    );
    assert_eq!(
        s.get_webhook("rv-w1").await.unwrap().unwrap().disabled_ms,
        Some(777)
    );
    assert_eq!(
        s.get_webhook("rv-w2").await.unwrap().unwrap().disabled_ms,
        None
    );
    let d1 = &s.list_deliveries("rv-w1", 10).await.unwrap()[0];
    assert_eq!(d1.failed_ms, Some(777));
    let claimed: Vec<String> = claim(s, 10, 20, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(
        claimed,
        ["rv-d2"],
        "a disabled webhook's deliveries are never claimed"
    );
    let left = s
        .get_transient(&["rv-t1".into(), "rv-t2".into()], 0)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].face_id, "rv-t2");
    assert!(s.revoke_key("rv-gone", 800).await.unwrap().is_none());
    // Clean up for the checks that follow.
    for id in ["rv-s1", "rv-s2", "rv-s3", "rv-s4"] {
        s.delete_liveness(id).await.unwrap();
    }
    for id in ["rv-v1", "rv-v2", "rv-v3"] {
        s.delete_verification(id).await.unwrap();
    }
    s.delete_webhook("rv-w1").await.unwrap();
    s.delete_webhook("rv-w2").await.unwrap();
    s.delete_expired_transient(i64::MAX).await.unwrap();
}

/// Every row of every table of the store (the catalogue's list, so a table added later
/// is searched too) that holds one of `needles` in a text or binary column, as
/// `table: row`. `skip` names tables left out on purpose.
pub async fn rows_mentioning(s: &Store, needles: &[&str], skip: &[&str]) -> Vec<String> {
    let tables: Vec<String> = match s.backend {
        Backend::Sqlite => sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
        ),
        Backend::Postgres => sqlx::query(
            "SELECT table_name::text AS name FROM information_schema.tables WHERE \
             table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '_sqlx%' ORDER BY table_name",
        ),
    }
    .fetch_all(&s.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String, _>("name").unwrap())
    .collect();
    assert!(tables.len() >= 11, "the catalogue lists {tables:?}");
    let mut found = Vec::new();
    let search = |table: &str, pool: &sqlx::AnyPool| {
        let table = table.to_string();
        let pool = pool.clone();
        async move {
            let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(&pool)
                .await
                .unwrap();
            let mut hits = Vec::new();
            for r in &rows {
                let mut cells: Vec<Vec<u8>> = Vec::new();
                for i in 0..sqlx::Row::len(r) {
                    if let Ok(Some(t)) = r.try_get::<Option<String>, _>(i) {
                        cells.push(t.into_bytes());
                    } else if let Ok(Some(b)) = r.try_get::<Option<Vec<u8>>, _>(i) {
                        cells.push(b);
                    }
                }
                for n in needles {
                    if cells
                        .iter()
                        .any(|c| c.windows(n.len()).any(|w| w == n.as_bytes()))
                    {
                        hits.push(format!("{table}: a row holds `{n}`"));
                    }
                }
            }
            hits
        }
    };
    for t in tables.iter().filter(|t| !skip.contains(&t.as_str())) {
        found.extend(search(t, &s.pool).await);
    }
    if s.vault_separate {
        found.extend(search("data_keys", &s.vault.pool).await);
    }
    found
}

async fn erasure_leaves_no_row_about_the_subject(s: &Store) {
    // Everything about collection `erase-me` (and its user `eve-7f3a`) in every table,
    // plus the same kinds of rows for `keep-me`, which must survive.
    for c in ["erase-me", "keep-me"] {
        s.insert_collection(&collection(c)).await.unwrap();
        s.vault()
            .put_if_absent(
                &format!("collection:uid-{c}"),
                format!("wrapped-{c}").as_bytes(),
                1,
            )
            .await
            .unwrap();
        for u in [format!("eve-7f3a-{c}"), format!("sam-{c}")] {
            s.insert_user(&UserRow {
                collection_id: c.into(),
                user_id: u.clone(),
                created_ms: 1,
            })
            .await
            .unwrap();
            let mut f = face(c, &format!("face-of-{u}"), 1);
            f.user_id = Some(u.clone());
            f.template = format!("template-of-{u}").into_bytes();
            s.insert_faces(&[f], None).await.unwrap();
            let sess = format!("session-of-{u}");
            s.insert_liveness(&LivenessRow {
                session_id: sess.clone(),
                owner_key: "kid1".into(),
                token_hash: vec![3; 32],
                device_id: None,
                settings: "{}".into(),
                reference: None,
                status: "SUCCEEDED".into(),
                result: Some("{}".into()),
                images: Some(format!("images-of-{u}").into_bytes()),
                created_ms: 1,
                expires_ms: 2,
                started_ms: None,
                finished_ms: None,
                images_until_ms: None,
                retain_until_ms: i64::MAX / 4,
                cancelled_ms: None,
            })
            .await
            .unwrap();
            s.finish_liveness(&sess, "SUCCEEDED", "{}", None, None, 1, 2)
                .await
                .unwrap();
            let vid = format!("verification-of-{u}");
            s.insert_verification(&VerificationRow {
                verification_id: vid.clone(),
                owner_key: "kid1".into(),
                collection_id: c.into(),
                external_user_id: u.clone(),
                policy: "{}".into(),
                liveness_session_id: sess.clone(),
                status: "approved".into(),
                document: Some(format!("document-of-{u}").into_bytes()),
                document_info: Some("{}".into()),
                decision: Some(format!("{{\"about\":\"{u}\"}}")),
                images: Some(format!("doc-image-of-{u}").into_bytes()),
                images_until_ms: None,
                created_ms: 1,
                updated_ms: 1,
                expires_ms: 2,
                decided_ms: Some(1),
                retain_until_ms: i64::MAX / 4,
            })
            .await
            .unwrap();
            s.insert_webhook(&WebhookRow {
                webhook_id: format!("hook-{u}"),
                owner_key: "kid1".into(),
                url: "https://example.test/h".into(),
                secret: vec![1; 44],
                events: "[]".into(),
                created_ms: 1,
                disabled_ms: None,
                consecutive_failures: 0,
                circuit_open_until_ms: None,
            })
            .await
            .unwrap();
            s.enqueue_deliveries(&[DeliveryRow {
                delivery_id: format!("delivery-about-{u}"),
                webhook_id: format!("hook-{u}"),
                event: "verification.completed".into(),
                body: format!("{{\"collectionId\":\"{c}\",\"externalUserId\":\"{u}\"}}"),
                attempts: 0,
                next_attempt_ms: 1,
                lease_until_ms: None,
                delivered_ms: None,
                failed_ms: None,
                last_error: None,
                created_ms: 1,
                collection_id: Some(c.into()),
                user_id: Some(u.clone()),
                verification_id: Some(vid.clone()),
            }])
            .await
            .unwrap();
        }
    }
    // Deleting a user erases the user's faces, verifications, sessions and events.
    let d = s
        .delete_user("erase-me", "eve-7f3a-erase-me", 10, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.face_ids, ["face-of-eve-7f3a-erase-me"]);
    assert_eq!(
        (d.verifications, d.liveness_sessions, d.deliveries),
        (1, 1, 1)
    );
    // Only the webhook row (the customer's, naming no one) and tombstones (a face id, for
    // other servers' indexes, purged after tombstone_retention_secs) may remain.
    let left = rows_mentioning(s, &["eve-7f3a-erase-me"], &["webhooks", "tombstones"]).await;
    assert!(left.is_empty(), "after deleting the user: {left:?}");
    assert!(
        !rows_mentioning(s, &["sam-erase-me", "eve-7f3a-keep-me"], &[])
            .await
            .is_empty()
    );
    // Deleting the collection erases every row about it, and its key.
    s.delete_collection("erase-me", 20).await.unwrap().unwrap();
    let left = rows_mentioning(
        s,
        &["erase-me", "uid-erase-me", "wrapped-erase-me"],
        &["webhooks"],
    )
    .await;
    assert!(left.is_empty(), "after deleting the collection: {left:?}");
    let kept = rows_mentioning(s, &["keep-me"], &[]).await;
    assert!(
        kept.len() >= 8,
        "the other collection is untouched (faces, users, sessions, verifications, events, key): {kept:?}"
    );
    s.delete_collection("keep-me", 30).await.unwrap().unwrap();
    for u in [
        "eve-7f3a-erase-me",
        "sam-erase-me",
        "eve-7f3a-keep-me",
        "sam-keep-me",
    ] {
        s.delete_webhook(&format!("hook-{u}")).await.unwrap();
    }
    let left = rows_mentioning(s, &["keep-me"], &[]).await;
    assert!(left.is_empty(), "{left:?}");
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
        cancelled_ms: None,
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

/// Claims with no per-owner limit that matters (the original claim semantics).
async fn claim(
    s: &Store,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    Ok(s.claim_deliveries(
        ClaimLimits {
            now_ms,
            lease_until_ms,
            limit,
            per_owner: limit,
        },
        |_| true,
    )
    .await?
    .into_iter()
    .map(|(d, _)| d)
    .collect())
}

async fn webhooks_and_outbox(s: &Store) {
    let hook = |id: &str, owner: &str, ms: i64| WebhookRow {
        webhook_id: id.into(),
        owner_key: owner.into(),
        url: format!("https://example.test/{id}"),
        secret: vec![1; 44],
        events: "[\"verification.completed\"]".into(),
        created_ms: ms,
        disabled_ms: None,
        consecutive_failures: 0,
        circuit_open_until_ms: None,
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
        collection_id: None,
        user_id: None,
        verification_id: None,
    };
    s.enqueue_deliveries(&[
        delivery("d1", "w1"),
        delivery("d2", "w2"),
        delivery("d3", "w3"),
    ])
    .await
    .unwrap();
    assert!(claim(s, 99, 200, 10).await.unwrap().is_empty(), "not due");
    let claimed = claim(s, 100, 200, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|d| d.lease_until_ms == Some(200)));
    // Leased ones are not claimed again until the lease runs out.
    let rest = claim(s, 150, 250, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(claim(s, 199, 300, 10).await.unwrap().is_empty());
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
        claim(s, 999, 2_000, 10).await.unwrap().is_empty(),
        "retry not due"
    );
    let again = claim(s, 1_000, 2_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery_id, ids[1]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));
    // An expired lease (its server died) is claimed again.
    let retaken = claim(s, 2_000, 3_000, 10).await.unwrap();
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
