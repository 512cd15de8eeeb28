//! Transient faces and liveness sessions.

use super::*;

pub(super) async fn transient(s: &Store) {
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

pub(super) async fn liveness(s: &Store) {
    let row = |id: &str, device: Option<&str>, created: i64| LivenessRow {
        session_id: id.into(),
        owner_key: "kid1".into(),
        token_hash: vec![3; 32],
        device_id: device.map(String::from),
        settings: "{}".into(),
        reference: Some(vec![5; 10]),
        status: LivenessStatus::Created,
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
        !s.finish_liveness(
            "ls3",
            LivenessStatus::Succeeded,
            "{}",
            None,
            None,
            None,
            4_000,
            9_000
        )
        .await
        .unwrap(),
        "not started"
    );
    assert!(s
        .finish_liveness(
            "ls1",
            LivenessStatus::Succeeded,
            "{\"c\":1}",
            Some(&[1, 2, 3]),
            None,
            None,
            4_000,
            9_000
        )
        .await
        .unwrap());
    let got = s.get_liveness("ls1").await.unwrap().unwrap();
    assert_eq!(got.status, LivenessStatus::Succeeded);
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
    ls4.status = LivenessStatus::Succeeded;
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
