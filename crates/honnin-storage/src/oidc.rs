//! The OpenID Connect provider's rows: registered clients and authorization grants.
//!
//! A grant is one authorization request: `pending` while the person runs the liveness
//! check (bound to its liveness session), `issued` once a login succeeded (its code
//! stored as a SHA-256 hex digest, never the code), `redeemed` once the client traded
//! the code for tokens. Codes are redeemed at most once, atomically
//! ([`Store::redeem_oidc_code`]); grants are deleted at `expires_ms`.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store};

/// A registered relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientRow {
    /// The client id (random, URL-safe). Primary key.
    pub client_id: String,
    /// SHA-256 of the client secret.
    pub secret_hash: Vec<u8>,
    /// A display name, shown on the hosted login page.
    pub name: String,
    /// The API key that registered it: logins run as this key.
    pub owner_key: String,
    /// The collection people log in to.
    pub collection_id: String,
    /// The registered redirect URIs, as a JSON list (exact match).
    pub redirect_uris: String,
    /// The security level of its logins (owned by honnin-core).
    pub level: String,
    /// When it was registered, epoch milliseconds.
    pub created_ms: i64,
}

/// One authorization grant (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcGrantRow {
    /// The request's id (random; the hosted page holds it). Primary key.
    pub grant_id: String,
    /// SHA-256 hex of the issued code, once issued.
    pub code_hash: Option<String>,
    /// The client.
    pub client_id: String,
    /// The client's collection when the request was made.
    pub collection_id: String,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// The client's `state`, returned with the code.
    pub state: Option<String>,
    /// The client's `nonce`, put in the ID token.
    pub nonce: Option<String>,
    /// The PKCE `code_challenge` (S256).
    pub code_challenge: String,
    /// The `login_hint` (a user id: a 1:1 login), if any.
    pub login_hint: Option<String>,
    /// The liveness session the person runs.
    pub liveness_session_id: String,
    /// The user logged in, once issued.
    pub user_id: Option<String>,
    /// The login attempt, once issued.
    pub login_id: Option<String>,
    /// When the person was authenticated, epoch milliseconds.
    pub auth_time_ms: Option<i64>,
    /// The signed ID token the code is traded for, once issued.
    pub id_token: Option<String>,
    /// `pending`, `running` (its login is being decided), `issued` or `redeemed`.
    pub status: String,
    /// When the request was made, epoch milliseconds.
    pub created_ms: i64,
    /// When it (or its code) expires, epoch milliseconds.
    pub expires_ms: i64,
}

fn client_from_row(r: &AnyRow) -> Result<OidcClientRow> {
    Ok(OidcClientRow {
        client_id: r.try_get("client_id")?,
        secret_hash: r.try_get("secret_hash")?,
        name: r.try_get("name")?,
        owner_key: r.try_get("owner_key")?,
        collection_id: r.try_get("collection_id")?,
        redirect_uris: r.try_get("redirect_uris")?,
        level: r.try_get("level")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn grant_from_row(r: &AnyRow) -> Result<OidcGrantRow> {
    Ok(OidcGrantRow {
        grant_id: r.try_get("grant_id")?,
        code_hash: r.try_get("code_hash")?,
        client_id: r.try_get("client_id")?,
        collection_id: r.try_get("collection_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        state: r.try_get("state")?,
        nonce: r.try_get("nonce")?,
        code_challenge: r.try_get("code_challenge")?,
        login_hint: r.try_get("login_hint")?,
        liveness_session_id: r.try_get("liveness_session_id")?,
        user_id: r.try_get("user_id")?,
        login_id: r.try_get("login_id")?,
        auth_time_ms: r.try_get("auth_time_ms")?,
        id_token: r.try_get("id_token")?,
        status: r.try_get("status")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
    })
}

const CLIENT_COLS: &str =
    "client_id, secret_hash, name, owner_key, collection_id, redirect_uris, level, created_ms";
const GRANT_COLS: &str = "grant_id, code_hash, client_id, collection_id, redirect_uri, state, \
    nonce, code_challenge, login_hint, liveness_session_id, user_id, login_id, auth_time_ms, \
    id_token, status, created_ms, expires_ms";

impl Store {
    /// Registers a client.
    pub async fn insert_oidc_client(&self, c: &OidcClientRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oidc_clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&c.client_id)
        .bind(&c.secret_hash)
        .bind(&c.name)
        .bind(&c.owner_key)
        .bind(&c.collection_id)
        .bind(&c.redirect_uris)
        .bind(&c.level)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A client by id.
    pub async fn get_oidc_client(&self, id: &str) -> Result<Option<OidcClientRow>> {
        sqlx::query(&format!(
            "SELECT {CLIENT_COLS} FROM oidc_clients WHERE client_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    /// Every client, oldest first.
    pub async fn list_oidc_clients(&self) -> Result<Vec<OidcClientRow>> {
        sqlx::query(&format!(
            "SELECT {CLIENT_COLS} FROM oidc_clients ORDER BY created_ms, client_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(client_from_row)
        .collect()
    }

    /// Deletes a client and its grants; false if unknown.
    pub async fn delete_oidc_client(&self, id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM oidc_grants WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Stores a new (pending) grant.
    pub async fn insert_oidc_grant(&self, g: &OidcGrantRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oidc_grants ({GRANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&g.grant_id)
        .bind(&g.code_hash)
        .bind(&g.client_id)
        .bind(&g.collection_id)
        .bind(&g.redirect_uri)
        .bind(&g.state)
        .bind(&g.nonce)
        .bind(&g.code_challenge)
        .bind(&g.login_hint)
        .bind(&g.liveness_session_id)
        .bind(&g.user_id)
        .bind(&g.login_id)
        .bind(g.auth_time_ms)
        .bind(&g.id_token)
        .bind(&g.status)
        .bind(g.created_ms)
        .bind(g.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A grant by id, unless expired at `now_ms`.
    pub async fn get_oidc_grant(&self, id: &str, now_ms: i64) -> Result<Option<OidcGrantRow>> {
        sqlx::query(&format!(
            "SELECT {GRANT_COLS} FROM oidc_grants WHERE grant_id = $1 AND expires_ms > $2"
        ))
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    /// Marks a pending grant `running` (its login is being decided), once: false if it
    /// is not pending (a second post of the hosted page).
    pub async fn start_oidc_grant(&self, grant_id: &str) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE oidc_grants SET status = 'running' WHERE grant_id = $1 AND status = 'pending'",
        )
        .bind(grant_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Turns a running grant into an issued code (once): false if it is not running.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_oidc_code(
        &self,
        grant_id: &str,
        code_hash: &str,
        user_id: &str,
        login_id: &str,
        auth_time_ms: i64,
        id_token: &str,
        expires_ms: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE oidc_grants SET code_hash = $1, user_id = $2, login_id = $3, \
             auth_time_ms = $4, expires_ms = $5, status = 'issued', id_token = $7 \
             WHERE grant_id = $6 AND status = 'running'",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(login_id)
        .bind(auth_time_ms)
        .bind(expires_ms)
        .bind(grant_id)
        .bind(id_token)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Deletes a grant (a request that ended without a code); false if unknown.
    pub async fn delete_oidc_grant(&self, grant_id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM oidc_grants WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Redeems the code whose SHA-256 hex is `code_hash`: the grant, and whether this
    /// call redeemed it (false: it was redeemed before, or has expired). `None`: no such
    /// code.
    pub async fn redeem_oidc_code(
        &self,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(OidcGrantRow, bool)>> {
        let mut tx = self.write_tx().await?;
        let Some(g) = sqlx::query(&format!(
            "SELECT {GRANT_COLS} FROM oidc_grants WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(grant_from_row)
        .transpose()?
        else {
            return Ok(None);
        };
        let n = sqlx::query(
            "UPDATE oidc_grants SET status = 'redeemed' WHERE code_hash = $1 \
             AND status = 'issued' AND expires_ms > $2",
        )
        .bind(code_hash)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some((g, n == 1)))
    }

    /// Deletes the grants expired at `now_ms`; returns how many.
    pub async fn sweep_oidc_grants(&self, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM oidc_grants WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
