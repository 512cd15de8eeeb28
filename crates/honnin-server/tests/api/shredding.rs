//! Crypto-shredding: deleting a collection destroys its wrapped data key, so a
//! collection re-created under the same id cannot open the old templates.

use serde_json::json;

use crate::common::fixtures::collection_with_face;
use crate::common::{b64, fixture, Server};

/// What the store held about a collection with one face, read before its deletion.
struct Before {
    c: String,
    fid: String,
    backup: Vec<honnin_storage::FaceRow>,
    old_uid: String,
    old_key_ref: String,
    old_key: Vec<u8>,
}

/// A collection with obama's face, a "backup" of its face rows and its wrapped data key,
/// then the collection deleted.
async fn deleted_collection(s: &Server) -> Before {
    let (c, fid) = collection_with_face(s, "shred").await;
    let store = s.service.store();
    // A "backup" of the face rows taken before deletion.
    let backup = store
        .get_faces(&c, std::slice::from_ref(&fid))
        .await
        .unwrap();
    assert_eq!(backup.len(), 1);
    let old_uid = store
        .get_collection(&c)
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    let old_key_ref = format!("collection:{old_uid}");
    let old_key = store.vault().get(&old_key_ref).await.unwrap().unwrap();
    s.ok("DELETE", &format!("/v1/collections/{c}"), None).await;
    Before {
        c,
        fid,
        backup,
        old_uid,
        old_key_ref,
        old_key,
    }
}

/// Deleting a collection deletes its row, its faces and its wrapped data key.
async fn deleting_a_collection_destroys_its_data_key_and_faces(s: &Server) {
    let b = deleted_collection(s).await;
    let store = s.service.store();
    assert!(store.get_collection(&b.c).await.unwrap().is_none());
    assert!(
        store.vault().get(&b.old_key_ref).await.unwrap().is_none(),
        "the wrapped data key is destroyed"
    );
    assert!(store
        .get_faces(&b.c, std::slice::from_ref(&b.fid))
        .await
        .unwrap()
        .is_empty());
}

/// A new collection with the same id gets a new identity and a new key that cannot
/// open the old template: its search finds nothing.
async fn a_recreated_collection_gets_a_new_key_and_finds_nothing_old(s: &Server) {
    let b = deleted_collection(s).await;
    let store = s.service.store();
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": b.c})),
    )
    .await;
    let new_uid = store
        .get_collection(&b.c)
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    assert_ne!(new_uid, b.old_uid, "a new identity");
    let new_key = store
        .vault()
        .get(&format!("collection:{new_uid}"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(b.old_key, new_key);
    let r = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/search", b.c),
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    assert!(r["faceMatches"].as_array().unwrap().is_empty());
}

/// Face rows hold sealed templates, never the plain encoding.
async fn templates_are_stored_sealed(s: &Server) {
    let b = deleted_collection(s).await;
    assert!(
        !b.backup[0].template.windows(8).any(|w| w == b"honnin-1"),
        "templates are stored sealed"
    );
}

both!(
    deleting_a_collection_destroys_its_data_key_and_faces,
    a_recreated_collection_gets_a_new_key_and_finds_nothing_old,
    templates_are_stored_sealed,
);
