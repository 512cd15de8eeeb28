//! Collections, faces (with their tombstones) and users: the gallery's rows.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::*;

impl Store {
    // ------------------------------------------------------------------ collections

    /// Inserts a collection. `Conflict` if a collection of that name exists.
    pub async fn insert_collection(&self, c: &CollectionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO collections (collection_id, collection_uid, face_model, wrapped_key, created_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.collection_id)
        .bind(&c.collection_uid)
        .bind(&c.face_model)
        .bind(&c.wrapped_key)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("collection {}", c.collection_id))
            }
            other => other,
        })?;
        Ok(())
    }

    fn collection_from_row(r: &AnyRow) -> Result<CollectionRow> {
        Ok(CollectionRow {
            collection_id: r.try_get("collection_id")?,
            collection_uid: r.try_get("collection_uid")?,
            face_model: r.try_get("face_model")?,
            wrapped_key: r.try_get("wrapped_key")?,
            created_ms: r.try_get("created_ms")?,
        })
    }

    /// The collection named `id`, if it exists.
    pub async fn get_collection(&self, id: &str) -> Result<Option<CollectionRow>> {
        let r = sqlx::query("SELECT * FROM collections WHERE collection_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::collection_from_row).transpose()
    }

    /// Collections in id order after `after` (exclusive), at most `limit`; with
    /// `only_uid`, just the collection of that identity (filtered before paging).
    pub async fn list_collections(
        &self,
        after: Option<&str>,
        limit: i64,
        only_uid: Option<&str>,
    ) -> Result<Vec<CollectionRow>> {
        let rows = match only_uid {
            None => {
                sqlx::query(
                    "SELECT * FROM collections WHERE collection_id > $1 ORDER BY collection_id LIMIT $2",
                )
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some(uid) => {
                sqlx::query(
                    "SELECT * FROM collections WHERE collection_id > $1 AND collection_uid = $2 \
                     ORDER BY collection_id LIMIT $3",
                )
                .bind(after.unwrap_or(""))
                .bind(uid)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(Self::collection_from_row).collect()
    }

    /// Every collection as (id, internal identity): the index follows these.
    pub async fn collection_ids(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT collection_id, collection_uid FROM collections ORDER BY collection_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("collection_id")?, r.try_get("collection_uid")?)))
            .collect()
    }

    /// Empties a collection's legacy `wrapped_key` once its key is in the vault, and
    /// scrubs the old bytes from the files.
    pub async fn clear_legacy_wrapped_key(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE collections SET wrapped_key = $1 WHERE collection_id = $2")
            .bind(Vec::<u8>::new())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await
    }

    /// Deletes a metadata row (a legacy key moved to the vault) and scrubs it.
    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await
    }

    /// How many faces the collection `collection` holds (0 for an unknown collection).
    pub async fn count_faces(&self, collection: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM faces WHERE collection_id = $1")
            .bind(collection)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// How many users the collection `collection` holds (0 for an unknown collection).
    pub async fn count_users(&self, collection: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE collection_id = $1")
            .bind(collection)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    // ------------------------------------------------------------------ faces

    /// Inserts faces in one transaction; when it returns Ok they are durable.
    /// Fails with `NotFound` if the collection is gone, or (with `uid`) is no longer
    /// the collection of that identity (deleted and re-created meanwhile: its templates
    /// would be sealed with the old, destroyed data key).
    pub async fn insert_faces(&self, faces: &[FaceRow], uid: Option<&str>) -> Result<()> {
        if faces.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for f in faces {
            let exists = sqlx::query(
                "SELECT 1 AS one FROM collections WHERE collection_id = $1 \
                 AND ($2 = '' OR collection_uid = $2)",
            )
            .bind(&f.collection_id)
            .bind(uid.unwrap_or(""))
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!(
                    "collection {}",
                    f.collection_id
                )));
            }
            sqlx::query(&format!(
                "INSERT INTO faces ({FACE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(&f.face_id)
            .bind(&f.collection_id)
            .bind(&f.user_id)
            .bind(&f.external_image_id)
            .bind(&f.image_id)
            .bind(&f.details)
            .bind(&f.template)
            .bind(f.created_ms)
            .bind(f.updated_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Faces of a collection in id order after `after`, optionally only one user's.
    pub async fn list_faces(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
        user: Option<&str>,
    ) -> Result<Vec<FaceRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id > $2 AND user_id = $3 \
                     ORDER BY face_id LIMIT $4"
                ))
                .bind(collection)
                .bind(after.unwrap_or(""))
                .bind(u)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id > $2 ORDER BY face_id LIMIT $3"
                ))
                .bind(collection)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(face_from_row).collect()
    }

    /// The faces among `ids` that belong to `collection`.
    pub async fn get_faces(&self, collection: &str, ids: &[String]) -> Result<Vec<FaceRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).bind(collection);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(face_from_row).collect()
    }

    /// Deletes faces (writing tombstones); returns the ids actually deleted.
    pub async fn delete_faces(
        &self,
        collection: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        let mut tx = self.write_tx().await?;
        for id in ids {
            let r = sqlx::query("DELETE FROM faces WHERE collection_id = $1 AND face_id = $2")
                .bind(collection)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO tombstones (face_id, collection_id, deleted_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (face_id) DO UPDATE SET deleted_ms = $3",
                )
                .bind(id)
                .bind(collection)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                deleted.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Sets (or clears, with `None`) the user of faces; returns how many changed.
    pub async fn set_face_user(
        &self,
        collection: &str,
        ids: &[String],
        user: Option<&str>,
        now_ms: i64,
    ) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.write_tx().await?;
        for id in ids {
            let r = sqlx::query("UPDATE faces SET user_id = $1, updated_ms = $2 WHERE collection_id = $3 AND face_id = $4")
                .bind(user)
                .bind(now_ms)
                .bind(collection)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            n += r.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Faces written (inserted or updated) at or after `since_ms`, any collection.
    pub async fn faces_updated_since(&self, since_ms: i64) -> Result<Vec<FaceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {FACE_COLS} FROM faces WHERE updated_ms >= $1"
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(face_from_row).collect()
    }

    /// Faces deleted at or after `since_ms`.
    pub async fn tombstones_since(&self, since_ms: i64) -> Result<Vec<Tombstone>> {
        let rows = sqlx::query(
            "SELECT face_id, collection_id, deleted_ms FROM tombstones WHERE deleted_ms >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tombstone {
                    face_id: r.try_get("face_id")?,
                    collection_id: r.try_get("collection_id")?,
                    deleted_ms: r.try_get("deleted_ms")?,
                })
            })
            .collect()
    }

    /// Forgets tombstones older than `before_ms`; returns how many.
    pub async fn purge_tombstones(&self, before_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM tombstones WHERE deleted_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // ------------------------------------------------------------------ users

    /// Inserts a user. `NotFound` if its collection does not exist, `Conflict` if the
    /// user exists already.
    pub async fn insert_user(&self, u: &UserRow) -> Result<()> {
        let exists = self.get_collection(&u.collection_id).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!(
                "collection {}",
                u.collection_id
            )));
        }
        sqlx::query("INSERT INTO users (collection_id, user_id, created_ms) VALUES ($1, $2, $3)")
            .bind(&u.collection_id)
            .bind(&u.user_id)
            .bind(u.created_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("user {}", u.user_id)),
                other => other,
            })?;
        Ok(())
    }

    /// The user `user` of the collection `collection`, if it exists.
    pub async fn get_user(&self, collection: &str, user: &str) -> Result<Option<UserRow>> {
        let r = sqlx::query("SELECT * FROM users WHERE collection_id = $1 AND user_id = $2")
            .bind(collection)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(UserRow {
                collection_id: r.try_get("collection_id")?,
                user_id: r.try_get("user_id")?,
                created_ms: r.try_get("created_ms")?,
            })
        })
        .transpose()
    }

    /// Users of a collection in id order after `after` (exclusive), at most `limit`.
    pub async fn list_users(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT * FROM users WHERE collection_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
        )
        .bind(collection)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserRow {
                    collection_id: r.try_get("collection_id")?,
                    user_id: r.try_get("user_id")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }
}
