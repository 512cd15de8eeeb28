//! Face login's rows: profiles, the one-time live face, attempts, lock-outs, signing
//! keys.

use super::*;

fn template(c: &str, u: &str, id: &str, ms: i64) -> ProfileTemplateRow {
    ProfileTemplateRow {
        template_id: id.into(),
        collection_id: c.into(),
        user_id: u.into(),
        template: id.as_bytes().to_vec(),
        source: "liveness".into(),
        source_id: format!("session-{id}"),
        details: "{}".into(),
        created_ms: ms,
    }
}

pub(super) async fn login_profiles(s: &Store) {
    s.insert_collection(&collection("login")).await.unwrap();
    assert!(matches!(
        s.enrol_profile("nope", "u", &[template("nope", "u", "x", 1)], false, 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Enrolling creates the user; adding appends; replacing starts over.
    let n = s
        .enrol_profile(
            "login",
            "ann",
            &[template("login", "ann", "p1", 1)],
            false,
            1,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        s.list_users("login", None, 10).await.unwrap().len(),
        1,
        "the user exists"
    );
    let n = s
        .enrol_profile(
            "login",
            "ann",
            &[template("login", "ann", "p2", 2)],
            false,
            2,
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    s.enrol_profile(
        "login",
        "bob",
        &[template("login", "bob", "p3", 3)],
        false,
        3,
    )
    .await
    .unwrap();
    let ids = |v: Vec<ProfileTemplateRow>| v.into_iter().map(|r| r.template_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.profile_templates("login", Some("ann")).await.unwrap()),
        ["p1", "p2"]
    );
    assert_eq!(
        ids(s.profile_templates("login", None).await.unwrap()),
        ["p1", "p2", "p3"]
    );
    assert_eq!(s.profile_counts("login").await.unwrap(), (2, 3));
    let n = s
        .enrol_profile(
            "login",
            "ann",
            &[template("login", "ann", "p4", 4)],
            true,
            4,
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "replaced");
    assert_eq!(
        ids(s.profile_templates("login", Some("ann")).await.unwrap()),
        ["p4"]
    );
    // A template id is unique.
    assert!(matches!(
        s.enrol_profile(
            "login",
            "bob",
            &[template("login", "bob", "p3", 5)],
            false,
            5
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.delete_profile("login", "ann").await.unwrap(), 1);
    assert_eq!(s.delete_profile("login", "ann").await.unwrap(), 0);
    assert_eq!(s.profile_counts("login").await.unwrap(), (1, 1));
    // Deleting the collection deletes the profiles.
    s.delete_collection("login", 10).await.unwrap().unwrap();
    assert!(s.profile_templates("login", None).await.unwrap().is_empty());
}

pub(super) async fn live_faces_are_taken_once(s: &Store) {
    let row = |id: &str| LivenessRow {
        session_id: id.into(),
        owner_key: "kid-live".into(),
        token_hash: vec![3; 32],
        device_id: Some("phone-1".into()),
        settings: "{}".into(),
        reference: None,
        status: LivenessStatus::Created,
        result: None,
        images: None,
        created_ms: 1_000,
        expires_ms: 181_000,
        started_ms: None,
        finished_ms: None,
        images_until_ms: None,
        retain_until_ms: 172_801_000,
        cancelled_ms: None,
    };
    s.insert_liveness(&row("live-1")).await.unwrap();
    s.insert_liveness(&row("live-2")).await.unwrap();
    assert_eq!(
        s.take_live_face("nope", 1).await.unwrap(),
        Err(LiveFaceUnavailable::Unknown)
    );
    // Not finished: returned as it is, not consumed.
    let f = s.take_live_face("live-1", 1_500).await.unwrap().unwrap();
    assert_eq!(f.status, LivenessStatus::Created);
    assert!(s.start_liveness("live-1", 2_000).await.unwrap());
    assert!(s
        .finish_liveness(
            "live-1",
            LivenessStatus::Succeeded,
            "{\"confidence\":90}",
            None,
            Some(&[7, 7]),
            Some("{\"yaw\":1}"),
            3_000,
            183_000,
        )
        .await
        .unwrap());
    let f = s.take_live_face("live-1", 4_000).await.unwrap().unwrap();
    assert_eq!(f.owner_key, "kid-live");
    assert_eq!(f.device_id.as_deref(), Some("phone-1"));
    assert_eq!(f.status, LivenessStatus::Succeeded);
    assert_eq!(f.finished_ms, Some(3_000));
    assert_eq!(f.template.as_deref(), Some(&[7u8, 7][..]));
    assert_eq!(f.details.as_deref(), Some("{\"yaw\":1}"));
    assert_eq!(f.result.as_deref(), Some("{\"confidence\":90}"));
    assert_eq!(
        s.take_live_face("live-1", 5_000).await.unwrap(),
        Err(LiveFaceUnavailable::Consumed),
        "a session is used once"
    );
    // A live face nobody took goes with the images' time.
    assert!(s.start_liveness("live-2", 2_000).await.unwrap());
    assert!(s
        .finish_liveness(
            "live-2",
            LivenessStatus::Succeeded,
            "{}",
            None,
            Some(&[8]),
            Some("{}"),
            3_000,
            10_000,
        )
        .await
        .unwrap());
    s.sweep_liveness(9_999).await.unwrap();
    let f = s.take_live_face("live-2", 9_999).await.unwrap().unwrap();
    assert_eq!(f.template.as_deref(), Some(&[8u8][..]), "kept until 10 000");
    s.delete_liveness("live-2").await.unwrap();
    s.insert_liveness(&row("live-3")).await.unwrap();
    assert!(s.start_liveness("live-3", 2_000).await.unwrap());
    s.finish_liveness(
        "live-3",
        LivenessStatus::Succeeded,
        "{}",
        None,
        Some(&[9]),
        Some("{}"),
        3_000,
        10_000,
    )
    .await
    .unwrap();
    s.sweep_liveness(10_000).await.unwrap();
    let f = s.take_live_face("live-3", 10_000).await.unwrap().unwrap();
    assert_eq!((f.template, f.details), (None, None), "cleared at 10 000");
    for id in ["live-1", "live-3"] {
        s.delete_liveness(id).await.unwrap();
    }
}

pub(super) async fn login_attempts_and_lockouts(s: &Store) {
    let attempt = |id: &str, user: Option<&str>, at: i64| LoginAttemptRow {
        attempt_id: id.into(),
        owner_key: "kid1".into(),
        collection_id: "attempts".into(),
        user_id: user.map(String::from),
        client_id: Some("kiosk".into()),
        outcome: "FAILED".into(),
        record: "{}".into(),
        created_ms: at,
        retain_until_ms: at + 1_000,
    };
    s.insert_login_attempt(&attempt("a1", Some("ann"), 1_000))
        .await
        .unwrap();
    s.insert_login_attempt(&attempt("a2", None, 2_000))
        .await
        .unwrap();
    s.insert_login_attempt(&attempt("a3", Some("ann"), 3_000))
        .await
        .unwrap();
    let ids = |v: Vec<LoginAttemptRow>| v.into_iter().map(|r| r.attempt_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.login_attempts("attempts", Some("ann"), 10).await.unwrap()),
        ["a3", "a1"]
    );
    assert_eq!(
        ids(s.login_attempts("attempts", None, 2).await.unwrap()),
        ["a3", "a2"]
    );
    let got = s.login_attempts("attempts", None, 1).await.unwrap();
    assert_eq!(got[0], attempt("a3", Some("ann"), 3_000));
    // Retention.
    assert_eq!(s.sweep_login_attempts(2_999).await.unwrap(), 1);
    assert_eq!(s.sweep_login_attempts(4_000).await.unwrap(), 2);
    assert!(s
        .login_attempts("attempts", None, 10)
        .await
        .unwrap()
        .is_empty());

    // Lock-outs: written, replaced, cleared.
    assert_eq!(s.lockout("attempts", "user:ann").await.unwrap(), None);
    let mut l = LockoutRow {
        collection_id: "attempts".into(),
        subject: "user:ann".into(),
        failures: 1,
        lockouts: 0,
        locked_until_ms: None,
        updated_ms: 1,
    };
    s.put_lockout(&l).await.unwrap();
    l.failures = 5;
    l.lockouts = 1;
    l.locked_until_ms = Some(60_000);
    s.put_lockout(&l).await.unwrap();
    assert_eq!(s.lockout("attempts", "user:ann").await.unwrap(), Some(l));
    assert_eq!(s.lockout("attempts", "client:kiosk").await.unwrap(), None);
    assert!(s.delete_lockout("attempts", "user:ann").await.unwrap());
    assert!(!s.delete_lockout("attempts", "user:ann").await.unwrap());
    // Counted atomically: the third failure locks, the count starts again.
    for i in 1..=2 {
        assert_eq!(
            s.count_login_failure("attempts", "client:k", 3, i)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        s.count_login_failure("attempts", "client:k", 3, 3)
            .await
            .unwrap(),
        Some(1)
    );
    s.lock_until("attempts", "client:k", 60_000).await.unwrap();
    s.lock_until("attempts", "client:k", 50_000).await.unwrap();
    let l = s.lockout("attempts", "client:k").await.unwrap().unwrap();
    assert_eq!(
        (l.failures, l.lockouts, l.locked_until_ms),
        (0, 1, Some(60_000))
    );
    for i in 4..=5 {
        assert_eq!(
            s.count_login_failure("attempts", "client:k", 3, i)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        s.count_login_failure("attempts", "client:k", 3, 6)
            .await
            .unwrap(),
        Some(2)
    );
    // Swept once it locks nothing and has been idle.
    assert_eq!(
        s.sweep_lockouts(59_999, 100).await.unwrap(),
        0,
        "still locked"
    );
    assert_eq!(
        s.sweep_lockouts(60_000, 6).await.unwrap(),
        0,
        "changed at 6"
    );
    assert_eq!(s.sweep_lockouts(60_000, 7).await.unwrap(), 1);
}

pub(super) async fn signing_keys_rotate(s: &Store) {
    let key = |kid: &str, created: i64, retire: i64| SigningKeyRow {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key: vec![1, 2, 3],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_ms: created,
        retire_ms: retire,
    };
    s.insert_signing_key(&key("k1", 1_000, 10_000))
        .await
        .unwrap();
    s.insert_signing_key(&key("k2", 5_000, 20_000))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_signing_key(&key("k2", 6_000, 20_000)).await,
        Err(StoreError::Conflict(_))
    ));
    let kids = |v: Vec<SigningKeyRow>| v.into_iter().map(|r| r.kid).collect::<Vec<_>>();
    assert_eq!(kids(s.signing_keys(9_999).await.unwrap()), ["k2", "k1"]);
    assert_eq!(kids(s.signing_keys(10_000).await.unwrap()), ["k2"]);
    assert_eq!(
        s.signing_keys(0).await.unwrap()[1],
        key("k1", 1_000, 10_000)
    );
    assert_eq!(s.delete_retired_signing_keys(10_000).await.unwrap(), 1);
    assert_eq!(s.delete_retired_signing_keys(30_000).await.unwrap(), 1);
    assert!(s.signing_keys(0).await.unwrap().is_empty());
}

pub(super) async fn oidc_clients_and_grants(s: &Store) {
    let client = OidcClientRow {
        client_id: "client-1".into(),
        secret_hash: vec![7; 32],
        name: "App".into(),
        owner_key: "kid1".into(),
        collection_id: "oidc".into(),
        redirect_uris: "[\"https://app.test/cb\"]".into(),
        level: "standard".into(),
        created_ms: 1,
    };
    s.insert_oidc_client(&client).await.unwrap();
    assert!(matches!(
        s.insert_oidc_client(&client).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_oidc_client("client-1").await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(s.list_oidc_clients().await.unwrap(), vec![client.clone()]);
    let grant = |id: &str, expires: i64| OidcGrantRow {
        grant_id: id.into(),
        code_hash: None,
        client_id: "client-1".into(),
        collection_id: "oidc".into(),
        redirect_uri: "https://app.test/cb".into(),
        state: Some("st".into()),
        nonce: Some("n".into()),
        code_challenge: "cc".into(),
        login_hint: None,
        liveness_session_id: "sess".into(),
        user_id: None,
        login_id: None,
        auth_time_ms: None,
        id_token: None,
        status: "pending".into(),
        created_ms: 1,
        expires_ms: expires,
    };
    s.insert_oidc_grant(&grant("g1", 1_000)).await.unwrap();
    s.insert_oidc_grant(&grant("g2", 1_000)).await.unwrap();
    assert_eq!(
        s.get_oidc_grant("g1", 999).await.unwrap(),
        Some(grant("g1", 1_000))
    );
    assert_eq!(
        s.get_oidc_grant("g1", 1_000).await.unwrap(),
        None,
        "expired"
    );
    // Started once, issued once, redeemed once.
    assert!(
        !s.issue_oidc_code("g1", "hash-0", "ann", "login-0", 500, "jwt", 2_000)
            .await
            .unwrap(),
        "not started"
    );
    assert!(s.start_oidc_grant("g1").await.unwrap());
    assert!(!s.start_oidc_grant("g1").await.unwrap(), "a second post");
    assert!(s.start_oidc_grant("g2").await.unwrap());
    assert!(s
        .issue_oidc_code("g1", "hash-1", "ann", "login-1", 500, "jwt", 2_000)
        .await
        .unwrap());
    assert!(!s
        .issue_oidc_code("g1", "hash-x", "bob", "login-2", 500, "jwt", 2_000)
        .await
        .unwrap());
    assert_eq!(s.redeem_oidc_code("nope", 600).await.unwrap(), None);
    let (g, first) = s.redeem_oidc_code("hash-1", 600).await.unwrap().unwrap();
    assert!(first);
    assert_eq!(
        (g.user_id.as_deref(), g.status.as_str()),
        (Some("ann"), "issued")
    );
    assert_eq!(g.id_token.as_deref(), Some("jwt"));
    let (_, again) = s.redeem_oidc_code("hash-1", 601).await.unwrap().unwrap();
    assert!(!again, "a code is redeemed once");
    // An expired code is not redeemed.
    assert!(s
        .issue_oidc_code("g2", "hash-2", "ann", "login-3", 500, "jwt", 700)
        .await
        .unwrap());
    let (_, ok) = s.redeem_oidc_code("hash-2", 700).await.unwrap().unwrap();
    assert!(!ok);
    assert_eq!(s.sweep_oidc_grants(2_000).await.unwrap(), 2);
    assert!(s.insert_oidc_grant(&grant("g3", 5_000)).await.is_ok());
    assert!(s.delete_oidc_client("client-1").await.unwrap());
    assert_eq!(
        s.get_oidc_grant("g3", 0).await.unwrap(),
        None,
        "went with its client"
    );
    assert!(!s.delete_oidc_client("client-1").await.unwrap());
}
