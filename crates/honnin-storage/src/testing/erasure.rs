//! Key revocation and erasure: what a revoked key or a deleted subject leaves behind.

use super::*;

pub(super) async fn revocation_ends_the_keys_work(s: &Store) {
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
        status: status.parse().expect("a status spelling"),
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
        status: status.parse().expect("a status spelling"),
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
        LivenessStatus::Created,
        "another key's"
    );
    let v = s.get_verification("rv-v1").await.unwrap().unwrap();
    assert_eq!(
        (v.status.as_str(), v.document, v.images),
        ("cancelled", None, None)
    );
    assert_eq!(
        s.get_verification("rv-v2").await.unwrap().unwrap().status,
        VerificationState::Approved,
        "decided: kept"
    );
    assert_eq!(
        s.get_verification("rv-v3").await.unwrap().unwrap().status,
        VerificationState::AwaitingDocument
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

pub(super) async fn erasure_leaves_no_row_about_the_subject(s: &Store) {
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
                status: LivenessStatus::Succeeded,
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
            s.finish_liveness(
                &sess,
                LivenessStatus::Succeeded,
                "{}",
                None,
                None,
                None,
                1,
                2,
            )
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
                status: VerificationState::Approved,
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
            login_rows_about(s, c, &u).await;
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
    assert_eq!(d.login_records, 3, "profile template, attempt, lock-out");
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

/// A login profile template, an attempt and a lock-out about user `u` of `c`.
async fn login_rows_about(s: &Store, c: &str, u: &str) {
    s.enrol_profile(
        c,
        u,
        &[ProfileTemplateRow {
            template_id: format!("profile-template-of-{u}"),
            collection_id: c.into(),
            user_id: u.into(),
            template: format!("sealed-profile-of-{u}").into_bytes(),
            source: "liveness".into(),
            source_id: format!("session-of-{u}"),
            details: "{}".into(),
            created_ms: 1,
        }],
        false,
        1,
    )
    .await
    .unwrap();
    s.insert_login_attempt(&LoginAttemptRow {
        attempt_id: format!("login-of-{u}"),
        owner_key: "kid1".into(),
        collection_id: c.into(),
        user_id: Some(u.into()),
        client_id: None,
        outcome: "FAILED".into(),
        record: "{}".into(),
        created_ms: 1,
        retain_until_ms: i64::MAX / 4,
    })
    .await
    .unwrap();
    s.put_lockout(&LockoutRow {
        collection_id: c.into(),
        subject: format!("user:{u}"),
        failures: 1,
        lockouts: 0,
        locked_until_ms: None,
        updated_ms: 1,
    })
    .await
    .unwrap();
}
