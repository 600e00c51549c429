//! Contacts, requests and blocks: one row per pair, changed by a
//! compare-and-swap on its version, and the listing tags derived from
//! [`ContactView::shows`] at every write (the one definition of the
//! listings), so each listing is one range of an index.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{Millis, UserId};
use chatcore::store::{
    pair_key, ContactStore, ContactView, Link, Relation, StoreError, StoreResult, Written,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::Db;
use crate::error::map_err;
use crate::{limit_i64, to_i64, to_u64};

/// The listings a relation is tagged for. A view that chatcore adds later
/// is listed by a scan of the user's pairs until it is added here (with a
/// migration that tags the stored rows).
const LISTED_VIEWS: [ContactView; 4] = [
    ContactView::Contacts,
    ContactView::Incoming,
    ContactView::Outgoing,
    ContactView::Blocked,
];

/// The tag of `user`'s listing of `view`; `None` for a view not in
/// [`LISTED_VIEWS`].
fn listing_tag(view: ContactView, user: &UserId) -> Option<String> {
    let name = match view {
        ContactView::Contacts => "contacts",
        ContactView::Incoming => "incoming",
        ContactView::Outgoing => "outgoing",
        ContactView::Blocked => "blocked",
        _ => return None,
    };
    Some(format!("{name}:{}", user.0))
}

/// The contact store.
#[derive(Clone)]
pub struct SqliteContactStore {
    db: Arc<Db>,
}

impl SqliteContactStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "key, user_a, user_b, link, link_by, link_at, blocked_a, blocked_b, \
                       retry_a, retry_b, unaccepted_a, unaccepted_b, version";

type RelationRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Millis>,
    [Option<Millis>; 4],
    [bool; 2],
    i64,
);

fn relation_row(r: &Row<'_>) -> rusqlite::Result<RelationRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
        [r.get(10)?, r.get(11)?],
        r.get(12)?,
    ))
}

/// The relation of a row; `Corrupt` if the pair is out of order or does
/// not match its key (the per-user columns would be read for the wrong
/// user), or the link is unknown.
fn into_relation(row: RelationRow) -> StoreResult<Relation> {
    let (key, a, b, link, by, at, times, unaccepted, version) = row;
    let (a, b) = (UserId(a), UserId(b));
    let mut r = Relation::new(&a, &b);
    if r.users[0] != a || pair_key(&a, &b) != key {
        return Err(StoreError::Corrupt(format!(
            "relation {key}: users {a}, {b} out of order or not its key"
        )));
    }
    let corrupt = || StoreError::Corrupt(format!("relation {key}: link {link:?} incomplete"));
    r.link = match link.as_str() {
        "none" => Link::None,
        "requested" => Link::Requested {
            by: UserId(by.ok_or_else(corrupt)?),
            at: at.ok_or_else(corrupt)?,
        },
        "contacts" => Link::Contacts {
            since: at.ok_or_else(corrupt)?,
        },
        _ => return Err(corrupt()),
    };
    r.blocked = [times[0], times[1]];
    r.retry_at = [times[2], times[3]];
    r.unaccepted = unaccepted;
    r.version = to_u64(version, "relation version")?;
    Ok(r)
}

fn query(c: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<Relation>> {
    let mut stmt = c.prepare_cached(sql).map_err(map_err)?;
    let rows = stmt.query_map(params, relation_row).map_err(map_err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(into_relation(row.map_err(map_err)?)?);
    }
    Ok(out)
}

fn get(c: &Connection, key: &str) -> StoreResult<Option<Relation>> {
    Ok(query(
        c,
        &format!("SELECT {COLUMNS} FROM relations WHERE key = ?1"),
        [key],
    )?
    .pop())
}

#[async_trait]
impl ContactStore for SqliteContactStore {
    async fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Option<Relation>> {
        let key = pair_key(a, b);
        self.db.read(move |c| get(c, &key)).await
    }

    async fn relations(&self, user: &UserId, others: &[UserId]) -> StoreResult<Vec<Relation>> {
        let keys: Vec<String> = others.iter().map(|o| pair_key(user, o)).collect();
        self.db
            .read(move |c| {
                let mut out = Vec::new();
                for key in &keys {
                    out.extend(get(c, key)?);
                }
                Ok(out)
            })
            .await
    }

    async fn change(&self, relation: &Relation) -> StoreResult<Written> {
        let r = relation.clone();
        self.db
            .write(move |c| {
                let key = r.key();
                let stored: Option<i64> = c
                    .query_row(
                        "SELECT version FROM relations WHERE key = ?1",
                        [&key],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                let stored = stored.map_or(Ok(0), |v| to_u64(v, "relation version"))?;
                if stored + 1 != r.version {
                    return Ok(Written::Stale);
                }
                let (link, by, at) = match &r.link {
                    Link::None => ("none", None, None),
                    Link::Requested { by, at } => ("requested", Some(by.0.clone()), Some(*at)),
                    Link::Contacts { since } => ("contacts", None, Some(*since)),
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "a contact link this store cannot hold: {other:?}"
                        )))
                    }
                };
                c.execute("DELETE FROM relation_listings WHERE key = ?1", [&key])
                    .map_err(map_err)?;
                c.prepare_cached(&format!(
                    "INSERT OR REPLACE INTO relations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
                     ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        key,
                        r.users[0].0,
                        r.users[1].0,
                        link,
                        by,
                        at,
                        r.blocked[0],
                        r.blocked[1],
                        r.retry_at[0],
                        r.retry_at[1],
                        r.unaccepted[0],
                        r.unaccepted[1],
                        to_i64(r.version),
                    ])
                })
                .map_err(map_err)?;
                let mut tag = c
                    .prepare_cached("INSERT INTO relation_listings (tag, key) VALUES (?1, ?2)")
                    .map_err(map_err)?;
                for user in &r.users {
                    for view in LISTED_VIEWS {
                        if view.shows(&r, user) {
                            if let Some(t) = listing_tag(view, user) {
                                tag.execute(params![t, key]).map_err(map_err)?;
                            }
                        }
                    }
                }
                Ok(Written::Done)
            })
            .await
    }

    async fn list(
        &self,
        user: &UserId,
        view: ContactView,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Relation>> {
        let user = user.clone();
        let after = after.unwrap_or("").to_owned();
        self.db
            .read(move |c| match listing_tag(view, &user) {
                Some(tag) => {
                    let cols = COLUMNS
                        .split(", ")
                        .map(|col| format!("r.{col}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    query(
                        c,
                        &format!(
                            "SELECT {cols} FROM relation_listings l JOIN relations r ON r.key = \
                             l.key WHERE l.tag = ?1 AND l.key > ?2 ORDER BY l.key LIMIT ?3"
                        ),
                        params![tag, after, limit_i64(limit)],
                    )
                }
                None => {
                    let mut all = query(
                        c,
                        &format!(
                            "SELECT {COLUMNS} FROM relations WHERE (user_a = ?1 OR user_b = ?1) \
                             AND key > ?2 ORDER BY key"
                        ),
                        params![user.0, after],
                    )?;
                    all.retain(|r| view.shows(r, &user));
                    all.truncate(limit);
                    Ok(all)
                }
            })
            .await
    }
}
