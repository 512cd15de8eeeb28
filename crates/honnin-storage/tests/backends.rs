//! The shared storage suite against both backends.
//!
//! PostgreSQL: `HONNIN_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! must accept `CREATE DATABASE`; each run creates and drops its own database. Without
//! a server the PostgreSQL test skips with a message, unless `HONNIN_REQUIRE_POSTGRES`
//! is set (CI sets it), which turns the skip into a failure.

use honnin_storage::testing::run_suite;
use honnin_storage::Store;

#[tokio::test]
async fn sqlite_passes_the_suite() {
    let dir = std::env::temp_dir().join(format!("honnin-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("suite.db");
    let _ = std::fs::remove_file(&db);
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    run_suite(&store).await;
    store.close().await;
    // Reopening finds the data (migrations are idempotent).
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v1"));
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_passes_the_suite() {
    let Some(db) = honnin_storage::testing::fresh_postgres_database("suite").await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    run_suite(&store).await;
    store.close().await;
    db.drop().await;
}
