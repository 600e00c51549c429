//! Calls: the calls going on, one row each (the record as JSON), and each
//! user in a call in `call_users`, whose key makes one call per user. Every
//! change is one write of the single writer (a savepoint of its
//! transaction): it reads the row, decides and writes back with nothing
//! in between, so of two answers one wins and of two ends one ends.
//!
//! Calls are ephemeral: at open, the sides of the calls a previous process
//! left are marked gone (its connections are gone with it), so that the
//! next sweep ([`CallStore::due`]) ends them and records how they ended.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{Answered, CallRecord, CallStore, Started, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;
use crate::{from_json, to_json};

/// The call store of a database.
#[derive(Clone)]
pub struct SqliteCallStore {
    db: Arc<Db>,
}

impl SqliteCallStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The call `id`, as stored.
fn load(c: &Connection, id: &str) -> StoreResult<Option<CallRecord>> {
    let json: Option<String> = c
        .prepare_cached("SELECT record FROM calls WHERE id = ?1")
        .map_err(map_err)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    json.map(|j| from_json(&j, "calls.record")).transpose()
}

/// The call `user` is in.
fn load_of(c: &Connection, user: &UserId) -> StoreResult<Option<CallRecord>> {
    let json: Option<String> = c
        .prepare_cached(
            "SELECT c.record FROM call_users u JOIN calls c ON c.id = u.call WHERE u.user = ?1",
        )
        .map_err(map_err)?
        .query_row([user.as_str()], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    json.map(|j| from_json(&j, "calls.record")).transpose()
}

/// Writes back a changed call.
fn save(c: &Connection, call: &CallRecord) -> StoreResult<()> {
    c.prepare_cached("UPDATE calls SET record = ?2 WHERE id = ?1")
        .map_err(map_err)?
        .execute(params![call.id, to_json(call)?])
        .map_err(map_err)?;
    Ok(())
}

fn in_a_call(c: &Connection, user: &UserId) -> StoreResult<bool> {
    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM call_users WHERE user = ?1)")
        .map_err(map_err)?
        .query_row([user.as_str()], |r| r.get(0))
        .map_err(map_err)
}

#[async_trait]
impl CallStore for SqliteCallStore {
    async fn start(&self, call: &CallRecord) -> StoreResult<Started> {
        let call = call.clone();
        self.db
            .write(move |c| {
                if load(c, &call.id)?.is_some() {
                    return Ok(Started::Exists);
                }
                if in_a_call(c, &call.caller)? {
                    return Ok(Started::CallerBusy);
                }
                if in_a_call(c, &call.callee)? {
                    return Ok(Started::CalleeBusy);
                }
                c.prepare_cached("INSERT INTO calls (id, started_at, record) VALUES (?1, ?2, ?3)")
                    .map_err(map_err)?
                    .execute(params![call.id, call.started_at, to_json(&call)?])
                    .map_err(map_err)?;
                // A call to oneself holds one row.
                let mut user = c
                    .prepare_cached("INSERT OR IGNORE INTO call_users (user, call) VALUES (?1, ?2)")
                    .map_err(map_err)?;
                for u in [&call.caller, &call.callee] {
                    user.execute(params![u.as_str(), call.id])
                        .map_err(map_err)?;
                }
                Ok(Started::Started)
            })
            .await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let id = id.to_owned();
        self.db.read(move |c| load(c, &id)).await
    }

    async fn of_user(&self, user: &UserId) -> StoreResult<Option<CallRecord>> {
        let user = user.clone();
        self.db.read(move |c| load_of(c, &user)).await
    }

    async fn set_ringing(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let id = id.to_owned();
        self.db
            .write(move |c| {
                let Some(mut call) = load(c, &id)? else {
                    return Ok(None);
                };
                if call.ringing || call.answered_by.is_some() {
                    return Ok(None);
                }
                call.ringing = true;
                save(c, &call)?;
                Ok(Some(call))
            })
            .await
    }

    async fn answer(
        &self,
        id: &str,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<Answered> {
        let (id, device, conn) = (id.to_owned(), device.clone(), conn.to_owned());
        self.db
            .write(move |c| {
                let Some(mut call) = load(c, &id)? else {
                    return Ok(Answered::Gone);
                };
                if call.answered_by.is_some() {
                    return Ok(Answered::Taken(call));
                }
                call.answered_by = Some(device);
                call.answered_at = Some(now);
                call.callee_conn = Some(conn);
                call.offer = None;
                save(c, &call)?;
                Ok(Answered::Answered(call))
            })
            .await
    }

    async fn end(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let id = id.to_owned();
        self.db
            .write(move |c| {
                let Some(call) = load(c, &id)? else {
                    return Ok(None);
                };
                c.prepare_cached("DELETE FROM call_users WHERE call = ?1")
                    .map_err(map_err)?
                    .execute([&id])
                    .map_err(map_err)?;
                c.prepare_cached("DELETE FROM calls WHERE id = ?1")
                    .map_err(map_err)?
                    .execute([&id])
                    .map_err(map_err)?;
                Ok(Some(call))
            })
            .await
    }

    async fn conn_closed(
        &self,
        user: &UserId,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (user, device, conn) = (user.clone(), device.clone(), conn.to_owned());
        self.db
            .write(move |c| {
                let Some(mut call) = load_of(c, &user)? else {
                    return Ok(());
                };
                if !call.in_call(&user, &device) {
                    return Ok(());
                }
                let before = (call.caller_gone_at, call.callee_gone_at);
                if user == call.caller && call.caller_conn == conn {
                    call.caller_gone_at.get_or_insert(now);
                } else if user == call.callee && call.callee_conn.as_deref() == Some(conn.as_str())
                {
                    call.callee_gone_at.get_or_insert(now);
                }
                if (call.caller_gone_at, call.callee_gone_at) != before {
                    save(c, &call)?;
                }
                Ok(())
            })
            .await
    }

    async fn conn_opened(&self, user: &UserId, device: &DeviceId, conn: &str) -> StoreResult<bool> {
        let (user, device, conn) = (user.clone(), device.clone(), conn.to_owned());
        self.db
            .write(move |c| {
                let Some(mut call) = load_of(c, &user)? else {
                    return Ok(false);
                };
                if !call.in_call(&user, &device) {
                    return Ok(false);
                }
                if user == call.caller && call.caller_gone_at.is_some() {
                    call.caller_gone_at = None;
                    call.caller_conn = conn;
                } else if user == call.callee && call.callee_gone_at.is_some() {
                    call.callee_gone_at = None;
                    call.callee_conn = Some(conn);
                } else {
                    return Ok(false);
                }
                save(c, &call)?;
                Ok(true)
            })
            .await
    }

    async fn due(
        &self,
        ringing_before: Millis,
        gone_before: Millis,
    ) -> StoreResult<Vec<CallRecord>> {
        // Calls are few: every one is read and tested here.
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT record FROM calls ORDER BY started_at, id")
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                let mut due = Vec::new();
                for row in rows {
                    let call: CallRecord = from_json(&row.map_err(map_err)?, "calls.record")?;
                    let gone = [call.caller_gone_at, call.callee_gone_at]
                        .into_iter()
                        .flatten()
                        .any(|t| t < gone_before);
                    if (call.answered_by.is_none() && call.started_at < ringing_before) || gone {
                        due.push(call);
                    }
                }
                Ok(due)
            })
            .await
    }
}
