//! Meta, API keys, collections, faces, users, collection deletion and the key vault.

use super::*;

pub(super) async fn meta(s: &Store) {
    assert_eq!(s.get_meta("k").await.unwrap(), None);
    assert_eq!(s.put_meta_if_absent("k", "v1").await.unwrap(), "v1");
    assert_eq!(
        s.put_meta_if_absent("k", "v2").await.unwrap(),
        "v1",
        "first value wins"
    );
}

pub(super) async fn keys(s: &Store) {
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

pub(super) async fn collections(s: &Store) {
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

pub(super) async fn faces(s: &Store) {
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

pub(super) async fn users(s: &Store) {
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

pub(super) async fn collection_delete_removes_everything(s: &Store) {
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

pub(super) async fn vault(s: &Store) {
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
