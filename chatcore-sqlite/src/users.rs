//! Accounts: one row per user, and the words of each display name for the
//! directory search.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{MediaId, Privacy, UserId};
use chatcore::store::{
    display_name_words, NewUser, ProfileUpdate, SearchQuery, StoreError, StoreResult, UserRecord,
    UserStore,
};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::db::Db;
use crate::error::map_err;
use crate::{from_json, limit_i64, to_json};

/// The account store. Usernames, emails and phones are unique indexes, so
/// of two concurrent creates of one name exactly one succeeds.
#[derive(Clone)]
pub struct SqliteUserStore {
    db: Arc<Db>,
}

const COLUMNS: &str = "id, username, username_key, email, email_key, phone, display_name, \
                       about, avatar, password_hash, created_at, privacy";

fn record(row: &Row<'_>) -> rusqlite::Result<(UserRecord, Option<String>)> {
    let mut user = UserRecord::from_new(NewUser::new(
        UserId(row.get(0)?),
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(9)?,
        row.get(10)?,
    ));
    user.about = row.get(7)?;
    user.avatar = row.get(8)?;
    Ok((user, row.get(11)?))
}

/// Finishes a row: the privacy column decoded.
fn finish((mut user, privacy): (UserRecord, Option<String>)) -> StoreResult<UserRecord> {
    if let Some(p) = privacy {
        user.privacy = from_json::<Privacy>(&p, "privacy")?;
    }
    Ok(user)
}

fn get_by(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<UserRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE {column} = ?1"))
        .and_then(|mut s| s.query_row([value], record).optional())
        .map_err(map_err)?
        .map(finish)
        .transpose()
}

fn index_words(conn: &Connection, id: &str, display_name: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM user_words WHERE user = ?1", [id])
        .map_err(map_err)?;
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO user_words (word, user) VALUES (?1, ?2)")
        .map_err(map_err)?;
    for word in display_name_words(display_name) {
        insert.execute(params![word, id]).map_err(map_err)?;
    }
    Ok(())
}

impl SqliteUserStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn create(&self, user: NewUser) -> StoreResult<UserRecord> {
        self.db
            .write(move |conn| {
                let rec = UserRecord::from_new(user);
                conn.prepare_cached(&format!(
                    "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                     ?10, ?11, NULL)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        rec.id.0,
                        rec.username,
                        rec.username_key,
                        rec.email,
                        rec.email_key,
                        rec.phone,
                        rec.display_name,
                        rec.about,
                        rec.avatar,
                        rec.password_hash,
                        rec.created_at,
                    ])
                })
                .map_err(map_err)?;
                index_words(conn, &rec.id.0, &rec.display_name)?;
                Ok(rec)
            })
            .await
    }

    async fn get(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let id = id.0.clone();
        self.db.read(move |c| get_by(c, "id", &id)).await
    }

    async fn get_many(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let ids: Vec<String> = ids.iter().map(|u| u.0.clone()).collect();
        self.db
            .read(move |c| {
                let mut found = Vec::with_capacity(ids.len());
                for id in &ids {
                    found.extend(get_by(c, "id", id)?);
                }
                Ok(found)
            })
            .await
    }

    async fn find_by_username(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        let key = key.to_owned();
        self.db.read(move |c| get_by(c, "username_key", &key)).await
    }

    async fn find_by_email(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        let key = key.to_owned();
        self.db.read(move |c| get_by(c, "email_key", &key)).await
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<UserRecord>> {
        let query = query.clone();
        self.db
            .read(move |c| {
                // `substr(x, 1, length(p)) = p` is an exact prefix test on
                // characters (LIKE would read `%` and `_` in the prefix).
                let sql = format!(
                    "SELECT {COLUMNS} FROM users u WHERE username_key > ?1 AND \
                     (substr(username_key, 1, length(?2)) = ?2 OR EXISTS (SELECT 1 FROM \
                     user_words w WHERE w.user = u.id AND w.word >= ?2 AND \
                     substr(w.word, 1, length(?2)) = ?2)) ORDER BY username_key LIMIT ?3"
                );
                let after = query.after.clone().unwrap_or_default();
                let mut stmt = c.prepare_cached(&sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(params![after, query.prefix, limit_i64(query.limit)], record)
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(finish(row.map_err(map_err)?)?);
                }
                Ok(out)
            })
            .await
    }

    async fn update_profile(&self, id: &UserId, update: &ProfileUpdate) -> StoreResult<UserRecord> {
        let (id, update) = (id.0.clone(), update.clone());
        self.db
            .write(move |c| {
                let mut rec = get_by(c, "id", &id)?.ok_or(StoreError::NotFound)?;
                rec.apply(&update);
                c.execute(
                    "UPDATE users SET display_name = ?2, about = ?3, avatar = ?4 WHERE id = ?1",
                    params![id, rec.display_name, rec.about, rec.avatar],
                )
                .map_err(map_err)?;
                if update.display_name.is_some() {
                    index_words(c, &id, &rec.display_name)?;
                }
                Ok(rec)
            })
            .await
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        let (id, hash) = (id.0.clone(), hash.to_owned());
        self.db
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                        params![id, hash],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    async fn set_privacy(&self, id: &UserId, privacy: &Privacy) -> StoreResult<UserRecord> {
        let (id, privacy) = (id.0.clone(), *privacy);
        self.db
            .write(move |c| {
                let json = to_json(&privacy)?;
                let n = c
                    .execute(
                        "UPDATE users SET privacy = ?2 WHERE id = ?1",
                        params![id, json],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                get_by(c, "id", &id)?.ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn avatars_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(|m| m.as_str().to_owned()).collect();
        self.db
            .read(move |c| {
                // The partial index `users_avatar`: one probe per id; in
                // chunks, far below SQLite's limit of variables.
                let mut out = Vec::new();
                for chunk in ids.chunks(crate::messages::IN_CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let mut stmt = c
                        .prepare_cached(&format!(
                            "SELECT DISTINCT avatar FROM users WHERE avatar IS NOT NULL AND \
                             avatar IN ({marks})"
                        ))
                        .map_err(map_err)?;
                    let found = stmt
                        .query_map(params_from_iter(chunk), |r| r.get::<_, String>(0))
                        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                        .map_err(map_err)?;
                    out.extend(found.into_iter().map(MediaId));
                }
                Ok(out)
            })
            .await
    }
}
