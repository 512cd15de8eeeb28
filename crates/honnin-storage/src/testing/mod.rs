//! The storage test suite, run against every backend (see `tests/`). Public so the
//! backends' tests — and any future backend — run exactly the same checks.

use crate::*;

mod erasure;
mod gallery;
mod login;
mod outbox;
mod sessions;

use erasure::*;
use gallery::*;
use login::*;
use outbox::*;
use sessions::*;

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
    login_profiles(store).await;
    live_faces_are_taken_once(store).await;
    login_attempts_and_lockouts(store).await;
    signing_keys_rotate(store).await;
    oidc_clients_and_grants(store).await;
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

/// A throw-away PostgreSQL database for one test run.
pub struct TestDatabase {
    /// The database's URL (`postgres://…/honnin_test_<label>_<pid>_<nanos>`), for
    /// [`Store::open`].
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
