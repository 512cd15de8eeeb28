//! Verifications, webhooks and the outbox: claims, leases, fairness and circuits.

use super::*;

pub(super) async fn claims_are_fair_and_circuits_open(s: &Store) {
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

pub(super) async fn verifications(s: &Store) {
    let live = |id: &str| LivenessRow {
        session_id: id.into(),
        owner_key: "kid1".into(),
        token_hash: vec![3; 32],
        device_id: None,
        settings: "{}".into(),
        reference: None,
        status: LivenessStatus::Created,
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
        status: VerificationState::AwaitingDocument,
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
    assert_eq!(got.status, VerificationState::AwaitingLiveness);
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
            LivenessStatus::Succeeded,
            "{}",
            None,
            Some(&[4, 2]),
            None,
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
        !s.decide_verification("v1", Outcome::Approved, "{}", None, None, 14_000, 99_000)
            .await
            .unwrap(),
        "not processing yet"
    );
    assert!(s
        .transition_verification(
            "v1",
            VerificationState::AwaitingLiveness,
            VerificationState::Processing,
            14_000
        )
        .await
        .unwrap());
    assert!(!s
        .transition_verification(
            "v1",
            VerificationState::AwaitingLiveness,
            VerificationState::Processing,
            14_000
        )
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
        .transition_verification(
            "v1",
            VerificationState::AwaitingLiveness,
            VerificationState::Processing,
            15_500
        )
        .await
        .unwrap());
    assert!(s
        .decide_verification(
            "v1",
            Outcome::Approved,
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
    assert_eq!(got.status, VerificationState::Approved);
    assert_eq!(got.document, None, "the document template is gone");
    assert_eq!(got.decision.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(got.decided_ms, Some(16_000));
    assert_eq!(got.images.as_deref(), Some(&[9u8][..]));
    assert!(!s
        .decide_verification("v1", Outcome::Rejected, "{}", None, None, 17_000, 99_000)
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
pub(super) async fn claim(
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

pub(super) async fn webhooks_and_outbox(s: &Store) {
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
