//! The `/v1` API end to end, in-process, against both storage backends: one small test
//! per behaviour, grouped by domain (one module each).
//!
//! Tests listed in `both!` run twice, `…::on_sqlite` and `…::on_postgres`, each on the
//! binary's shared server of that backend (SQLite in a temporary folder, or a fresh
//! PostgreSQL database: `HONNIN_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; skipped with a message when it is
//! unreachable, unless `HONNIN_REQUIRE_POSTGRES` is set, as in CI). Such a test builds
//! the state it needs with `common::fixtures`, under unique collection names and with
//! its own keys, so it runs alone (`cargo test --workspace --test api -- <name>`) or
//! beside the others. Tests that change the server's configuration start their own
//! server (SQLite, as before).

#[path = "../common/mod.rs"]
mod common;

/// Defines, for each `async fn name(s: &Server)` named, a module `name` with the tests
/// `on_sqlite` and `on_postgres`, which run it on the shared server of that backend.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn on_sqlite() {
                    crate::common::on_shared(crate::common::Backend::Sqlite, super::$name);
                }

                #[test]
                fn on_postgres() {
                    crate::common::on_shared(crate::common::Backend::Postgres, super::$name);
                }
            }
        )*
    };
}

mod auth;
mod bad_input;
mod faces;
mod limits;
mod liveness;
mod liveness_limits;
mod login;
mod login_lifetimes;
mod oidc;
mod shredding;
mod transient;
mod users;
mod verification_decisions;
mod verification_documents;
mod webhooks;
