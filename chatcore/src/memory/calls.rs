//! Calls in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::{DeviceId, Millis, UserId};
use crate::store::{Answered, CallRecord, CallStore, Started, StoreResult};
use crate::IdMap;

#[derive(Default)]
struct Calls {
    by_id: IdMap<String, CallRecord>,
    /// Each user in a call: its id.
    by_user: IdMap<UserId, String>,
}

/// The calls going on, in memory: one node's (a single node, or tests).
#[derive(Default)]
pub struct MemoryCallStore {
    inner: Mutex<Calls>,
}

impl MemoryCallStore {
    /// No calls.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn start(&self, call: &CallRecord) -> StoreResult<Started> {
        let mut calls = lock(&self.inner);
        if calls.by_id.contains_key(&call.id) {
            return Ok(Started::Exists);
        }
        if calls.by_user.contains_key(&call.caller) {
            return Ok(Started::CallerBusy);
        }
        if calls.by_user.contains_key(&call.callee) {
            return Ok(Started::CalleeBusy);
        }
        calls.by_user.insert(call.caller.clone(), call.id.clone());
        calls.by_user.insert(call.callee.clone(), call.id.clone());
        calls.by_id.insert(call.id.clone(), call.clone());
        Ok(Started::Started)
    }

    async fn get(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        Ok(lock(&self.inner).by_id.get(id).cloned())
    }

    async fn of_user(&self, user: &UserId) -> StoreResult<Option<CallRecord>> {
        let calls = lock(&self.inner);
        Ok(calls
            .by_user
            .get(user)
            .and_then(|id| calls.by_id.get(id))
            .cloned())
    }

    async fn set_ringing(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let mut calls = lock(&self.inner);
        Ok(match calls.by_id.get_mut(id) {
            Some(call) if !call.ringing && call.answered_by.is_none() => {
                call.ringing = true;
                Some(call.clone())
            }
            _ => None,
        })
    }

    async fn answer(
        &self,
        id: &str,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<Answered> {
        let mut calls = lock(&self.inner);
        Ok(match calls.by_id.get_mut(id) {
            None => Answered::Gone,
            Some(call) if call.answered_by.is_some() => Answered::Taken(call.clone()),
            Some(call) => {
                call.answered_by = Some(device.clone());
                call.answered_at = Some(now);
                call.callee_conn = Some(conn.to_owned());
                call.offer = None;
                Answered::Answered(call.clone())
            }
        })
    }

    async fn end(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let mut calls = lock(&self.inner);
        let Some(call) = calls.by_id.remove(id) else {
            return Ok(None);
        };
        for user in [&call.caller, &call.callee] {
            if calls.by_user.get(user) == Some(&call.id) {
                calls.by_user.remove(user);
            }
        }
        Ok(Some(call))
    }

    async fn conn_closed(
        &self,
        user: &UserId,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let mut calls = lock(&self.inner);
        let Some(id) = calls.by_user.get(user).cloned() else {
            return Ok(());
        };
        if let Some(call) = calls.by_id.get_mut(&id) {
            if !call.in_call(user, device) {
                return Ok(());
            }
            if *user == call.caller && call.caller_conn == conn {
                call.caller_gone_at.get_or_insert(now);
            } else if *user == call.callee && call.callee_conn.as_deref() == Some(conn) {
                call.callee_gone_at.get_or_insert(now);
            }
        }
        Ok(())
    }

    async fn conn_opened(&self, user: &UserId, device: &DeviceId, conn: &str) -> StoreResult<bool> {
        let mut calls = lock(&self.inner);
        let Some(id) = calls.by_user.get(user).cloned() else {
            return Ok(false);
        };
        let Some(call) = calls.by_id.get_mut(&id) else {
            return Ok(false);
        };
        if !call.in_call(user, device) {
            return Ok(false);
        }
        if *user == call.caller && call.caller_gone_at.is_some() {
            call.caller_gone_at = None;
            call.caller_conn = conn.to_owned();
            return Ok(true);
        }
        if *user == call.callee && call.callee_gone_at.is_some() {
            call.callee_gone_at = None;
            call.callee_conn = Some(conn.to_owned());
            return Ok(true);
        }
        Ok(false)
    }

    async fn due(
        &self,
        ringing_before: Millis,
        gone_before: Millis,
    ) -> StoreResult<Vec<CallRecord>> {
        let calls = lock(&self.inner);
        let mut due: Vec<CallRecord> = calls
            .by_id
            .values()
            .filter(|c| {
                (c.answered_by.is_none() && c.started_at < ringing_before)
                    || [c.caller_gone_at, c.callee_gone_at]
                        .iter()
                        .flatten()
                        .any(|t| *t < gone_before)
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(due)
    }
}
