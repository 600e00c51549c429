//! [`RedisCallStore`]: chatcore's [`CallStore`] on Redis, shared by every
//! node. Each change is one Lua script, so it is atomic across nodes: of two
//! devices answering at once one wins, of two nodes ending a call at once
//! one ends it.
//!
//! A call is a hash (`<prefix>:{calls}:call:<id>`): the record as invited,
//! encoded once (`rec`: a schema byte and the record in named MessagePack,
//! so unknown fields from newer nodes are ignored), beside the fields the
//! scripts read and change one by one (`caller`, `callee`, `caller_device`,
//! `ringing`, `answered_by`, `answered_at`, `caller_conn`, `callee_conn`,
//! `caller_gone`, `callee_gone`). The scripts never decode or re-encode the
//! record, so its numbers stay exact; a reader overlays the fields on it.
//! Each user in a call has `<prefix>:{calls}:of:<user>` (the call's id), and
//! `<prefix>:{calls}:all` is a sorted set of the calls' ids by their start,
//! which [`CallStore::due`] scans (calls are few).
//!
//! Every call key expires a day ([`CALL_TTL_MS`]) after the call's last
//! change, a safety net only: a call lost by every node (all of them died
//! before ending it) never blocks its users for ever. Calls are ended by
//! [`CallStore::due`]'s sweeps long before that.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{Answered, CallRecord, CallStore, Started, StoreResult};
use redis::{Script, Value};

use crate::{corrupt, int_of, store_error, string_of, RedisStore};

/// How long a call's keys live after its last change (a day): a safety net
/// against calls that no node ends, never the way calls end.
pub const CALL_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The first byte of an encoded record: its schema. Records of another
/// schema are `Corrupt` to this node.
const SCHEMA: u8 = 1;

/// Helpers every script starts with. `P` is the calls' key prefix
/// (`<prefix>:{calls}`), `TTL` the keys' expiry in ms.
/// `touch(id, key)`: renews the expiry of the call's hash and of its users'
/// keys that still name it. `busy(user)`: whether the user is in a call
/// (a key naming a call that expired is dropped).
const PRELUDE: &str = r"
local function touch(P, TTL, id, key)
  redis.call('PEXPIRE', key, TTL)
  local users = redis.call('HMGET', key, 'caller', 'callee')
  for _, u in ipairs(users) do
    if u then
      local of = P .. ':of:' .. u
      if redis.call('GET', of) == id then redis.call('PEXPIRE', of, TTL) end
    end
  end
end
local function busy(P, user)
  local of = P .. ':of:' .. user
  local id = redis.call('GET', of)
  if not id then return false end
  if redis.call('EXISTS', P .. ':call:' .. id) == 1 then return true end
  redis.call('DEL', of)
  return false
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// `start`: answers 1 (started), 2 (caller busy), 3 (callee busy) or 4
/// (the id exists).
/// KEYS: the call, the calls by start.
/// ARGV: P, TTL, id, caller, callee, caller device, caller conn, started,
/// record, offer (empty: none).
static START: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local P, TTL, id, caller, callee = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 1 then return 4 end
if busy(P, caller) then return 2 end
if busy(P, callee) then return 3 end
redis.call('HSET', KEYS[1], 'rec', ARGV[9], 'caller', caller, 'callee', callee,
  'caller_device', ARGV[6], 'caller_conn', ARGV[7])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'offer', ARGV[10]) end
redis.call('PEXPIRE', KEYS[1], TTL)
redis.call('SET', P .. ':of:' .. caller, id, 'PX', TTL)
redis.call('SET', P .. ':of:' .. callee, id, 'PX', TTL)
redis.call('ZADD', KEYS[2], ARGV[8], id)
return 1
",
    )
});

/// `of_user`: the hash of the user's call (empty when none).
/// KEYS: the user's key. ARGV: P.
static OF_USER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. ':call:' .. id)
",
    )
});

/// `set_ringing`: the call's hash when this marked it ringing, else empty.
/// KEYS: the call. ARGV: P, TTL, id.
static SET_RINGING: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if redis.call('HEXISTS', KEYS[1], 'ringing') == 1 then return {} end
if redis.call('HEXISTS', KEYS[1], 'answered_by') == 1 then return {} end
redis.call('HSET', KEYS[1], 'ringing', '1')
touch(ARGV[1], ARGV[2], ARGV[3], KEYS[1])
return redis.call('HGETALL', KEYS[1])
",
    )
});

/// `answer`: `{0}` (gone), `{1, hash}` (answered by this device) or
/// `{2, hash}` (taken by another).
/// KEYS: the call. ARGV: P, TTL, id, device, conn, now.
static ANSWER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if redis.call('HEXISTS', KEYS[1], 'answered_by') == 1 then
  return {2, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'answered_by', ARGV[4], 'answered_at', ARGV[6], 'callee_conn', ARGV[5])
redis.call('HDEL', KEYS[1], 'offer')
touch(ARGV[1], ARGV[2], ARGV[3], KEYS[1])
return {1, redis.call('HGETALL', KEYS[1])}
",
    )
});

/// `end`: removes the call, its users' keys that name it and its entry in
/// the calls by start; answers its hash (empty when it was gone).
/// KEYS: the call, the calls by start. ARGV: P, id.
static END: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
redis.call('ZREM', KEYS[2], ARGV[2])
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {} end
local users = redis.call('HMGET', KEYS[1], 'caller', 'callee')
for _, u in ipairs(users) do
  if u then
    local of = ARGV[1] .. ':of:' .. u
    if redis.call('GET', of) == ARGV[2] then redis.call('DEL', of) end
  end
end
redis.call('DEL', KEYS[1])
return h
",
    )
});

/// The user's call and whether `device` holds a side of it (the caller's
/// device, or the callee's that answered): `id, key, fields` or nil.
const IN_CALL: &str = r"
local function in_call(P, user, device)
  local id = redis.call('GET', P .. ':of:' .. user)
  if not id then return nil end
  local key = P .. ':call:' .. id
  local f = redis.call('HMGET', key, 'caller', 'callee', 'caller_device', 'answered_by',
    'caller_conn', 'callee_conn', 'caller_gone', 'callee_gone')
  if not f[1] then return nil end
  local held = (user == f[1] and device == f[3]) or (user == f[2] and f[4] and device == f[4])
  if not held then return nil end
  return id, key, f
end
";

/// `conn_closed`: marks the side held by the connection gone (keeping an
/// earlier time).
/// ARGV: P, TTL, user, device, conn, now.
static CONN_CLOSED: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{IN_CALL}{}",
        r"
local P, TTL, user, device, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local id, key, f = in_call(P, user, device)
if not id then return 0 end
local field = nil
if user == f[1] and f[5] == conn then
  if not f[7] then field = 'caller_gone' end
elseif user == f[2] and f[6] == conn then
  if not f[8] then field = 'callee_gone' end
end
if not field then return 0 end
redis.call('HSET', key, field, ARGV[6])
touch(P, TTL, id, key)
return 1
"
    ))
});

/// `conn_opened`: when the device's side is gone, the connection holds it
/// now; answers 1 then, else 0.
/// ARGV: P, TTL, user, device, conn.
static CONN_OPENED: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        "{IN_CALL}{}",
        r"
local P, TTL, user, device, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local id, key, f = in_call(P, user, device)
if not id then return 0 end
if user == f[1] and f[7] then
  redis.call('HDEL', key, 'caller_gone')
  redis.call('HSET', key, 'caller_conn', conn)
elseif user == f[2] and f[8] then
  redis.call('HDEL', key, 'callee_gone')
  redis.call('HSET', key, 'callee_conn', conn)
else
  return 0
end
touch(P, TTL, id, key)
return 1
"
    ))
});

/// `due`: the hashes of the calls due, oldest first (by start, then id);
/// drops the ids of calls that expired.
/// KEYS: the calls by start. ARGV: P, ringing before, gone before.
static DUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local P, ring, gone = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #all, 2 do
  local id, started = all[i], tonumber(all[i + 1])
  local key = P .. ':call:' .. id
  local f = redis.call('HMGET', key, 'caller', 'answered_by', 'caller_gone', 'callee_gone')
  if not f[1] then
    redis.call('ZREM', KEYS[1], id)
  else
    local due = (not f[2] and started < ring)
      or (f[3] and tonumber(f[3]) < gone)
      or (f[4] and tonumber(f[4]) < gone)
    if due then out[#out + 1] = redis.call('HGETALL', key) end
  end
end
return out
",
    )
});

/// The calls going on, on Redis (see the module docs for the keys): shared
/// by every node on the same Redis and prefix; every change is one atomic
/// script. Call keys expire a day ([`CALL_TTL_MS`]) after the call's last
/// change: a safety net, so that a call no node ends (every node that knew
/// it died) frees its users in the end.
#[derive(Clone, Debug)]
pub struct RedisCallStore {
    store: RedisStore,
    /// `<prefix>:{calls}`: the hash tag puts every call key on one cluster
    /// slot (the scripts touch several).
    base: String,
}

impl RedisCallStore {
    /// The call store of `store`'s Redis and prefix.
    pub fn new(store: RedisStore) -> Self {
        let base = store.key("{calls}");
        Self { store, base }
    }

    fn call_key(&self, id: &str) -> String {
        format!("{}:call:{id}", self.base)
    }

    fn of_key(&self, user: &UserId) -> String {
        format!("{}:of:{user}", self.base)
    }

    fn all_key(&self) -> String {
        format!("{}:all", self.base)
    }
}

/// A record as stored in `rec`.
/// A call's `rec` (without its offer) and its `offer` field (empty: none),
/// apart so that answering drops the offer without writing `rec` again.
fn encode(call: &CallRecord) -> StoreResult<(Vec<u8>, Vec<u8>)> {
    let failed = |e: rmp_serde::encode::Error| corrupt(format!("a call does not encode: {e}"));
    let mut rec = vec![SCHEMA];
    let mut offer = Vec::new();
    if let Some(o) = &call.offer {
        rmp_serde::encode::write_named(&mut offer, o).map_err(failed)?;
        let mut without = call.clone();
        without.offer = None;
        rmp_serde::encode::write_named(&mut rec, &without).map_err(failed)?;
    } else {
        rmp_serde::encode::write_named(&mut rec, call).map_err(failed)?;
    }
    Ok((rec, offer))
}

/// A call's hash (`HGETALL`'s flat answer): the record as invited with the
/// changing fields laid over it. `None` when the hash is empty (no call).
fn decode(v: &Value) -> StoreResult<Option<CallRecord>> {
    let mut fields: HashMap<String, &Value> = HashMap::new();
    match v {
        Value::Nil => return Ok(None),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(corrupt("a call's hash: an odd list"));
            }
            for pair in items.chunks_exact(2) {
                fields.insert(string_of(&pair[0], "a call's field name")?, &pair[1]);
            }
        }
        // `HGETALL` in RESP3.
        Value::Map(pairs) => {
            for (name, value) in pairs {
                fields.insert(string_of(name, "a call's field name")?, value);
            }
        }
        other => return Err(corrupt(format!("a call's hash: {other:?}"))),
    }
    if fields.is_empty() {
        return Ok(None);
    }
    let rec = match fields.get("rec") {
        Some(Value::BulkString(b)) => b.as_slice(),
        _ => return Err(corrupt("a call without its record")),
    };
    let Some((&schema, body)) = rec.split_first() else {
        return Err(corrupt("a call's record is empty"));
    };
    if schema != SCHEMA {
        return Err(corrupt(format!(
            "a call's record of schema {schema} (this node reads {SCHEMA})"
        )));
    }
    let mut call: CallRecord =
        rmp_serde::from_slice(body).map_err(|e| corrupt(format!("a call's record: {e}")))?;
    let text = |name: &str| -> StoreResult<Option<String>> {
        fields
            .get(name)
            .map(|v| string_of(v, &format!("a call's {name}")))
            .transpose()
    };
    let int = |name: &str| -> StoreResult<Option<Millis>> {
        match fields.get(name) {
            Some(v) => int_of(v, &format!("a call's {name}")),
            None => Ok(None),
        }
    };
    call.ringing = fields.contains_key("ringing");
    call.answered_by = text("answered_by")?.map(DeviceId);
    call.answered_at = int("answered_at")?;
    if let Some(conn) = text("caller_conn")? {
        call.caller_conn = conn;
    }
    call.callee_conn = text("callee_conn")?;
    call.caller_gone_at = int("caller_gone")?;
    call.callee_gone_at = int("callee_gone")?;
    call.offer = match fields.get("offer") {
        Some(Value::BulkString(b)) => {
            Some(rmp_serde::from_slice(b).map_err(|e| corrupt(format!("a call's offer: {e}")))?)
        }
        Some(other) => return Err(corrupt(format!("a call's offer: {other:?}"))),
        None => None,
    };
    Ok(Some(call))
}

fn code(v: &Value, what: &str) -> StoreResult<i64> {
    int_of(v, what)?.ok_or_else(|| corrupt(format!("{what} answered nil")))
}

#[async_trait]
impl CallStore for RedisCallStore {
    async fn start(&self, call: &CallRecord) -> StoreResult<Started> {
        let (rec, offer) = encode(call)?;
        let mut c = self.store.connection();
        let v: Value = START
            .key(self.call_key(&call.id))
            .key(self.all_key())
            .arg(&self.base)
            .arg(CALL_TTL_MS)
            .arg(&call.id)
            .arg(call.caller.as_str())
            .arg(call.callee.as_str())
            .arg(call.caller_device.as_str())
            .arg(&call.caller_conn)
            .arg(call.started_at)
            .arg(rec)
            .arg(offer)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        match code(&v, "call start")? {
            1 => Ok(Started::Started),
            2 => Ok(Started::CallerBusy),
            3 => Ok(Started::CalleeBusy),
            4 => Ok(Started::Exists),
            other => Err(corrupt(format!("call start answered {other}"))),
        }
    }

    async fn get(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let mut c = self.store.connection();
        let v: Value = redis::cmd("HGETALL")
            .arg(self.call_key(id))
            .query_async(&mut c)
            .await
            .map_err(store_error)?;
        decode(&v)
    }

    async fn of_user(&self, user: &UserId) -> StoreResult<Option<CallRecord>> {
        let mut c = self.store.connection();
        let v: Value = OF_USER
            .key(self.of_key(user))
            .arg(&self.base)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        decode(&v)
    }

    async fn set_ringing(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let mut c = self.store.connection();
        let v: Value = SET_RINGING
            .key(self.call_key(id))
            .arg(&self.base)
            .arg(CALL_TTL_MS)
            .arg(id)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        decode(&v)
    }

    async fn answer(
        &self,
        id: &str,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<Answered> {
        let mut c = self.store.connection();
        let v: Value = ANSWER
            .key(self.call_key(id))
            .arg(&self.base)
            .arg(CALL_TTL_MS)
            .arg(id)
            .arg(device.as_str())
            .arg(conn)
            .arg(now)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        let Value::Array(items) = v else {
            return Err(corrupt(format!("call answer answered {v:?}")));
        };
        let Some((first, rest)) = items.split_first() else {
            return Err(corrupt("call answer answered nothing"));
        };
        let kind = code(first, "call answer")?;
        if kind == 0 {
            return Ok(Answered::Gone);
        }
        let call = rest
            .first()
            .map(decode)
            .transpose()?
            .flatten()
            .ok_or_else(|| corrupt("call answer answered no call"))?;
        match kind {
            1 => Ok(Answered::Answered(call)),
            2 => Ok(Answered::Taken(call)),
            other => Err(corrupt(format!("call answer answered {other}"))),
        }
    }

    async fn end(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        let mut c = self.store.connection();
        let v: Value = END
            .key(self.call_key(id))
            .key(self.all_key())
            .arg(&self.base)
            .arg(id)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        decode(&v)
    }

    async fn conn_closed(
        &self,
        user: &UserId,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let mut c = self.store.connection();
        // The script reads the user's key, then the call it names (on the
        // same slot); it declares the user's key.
        CONN_CLOSED
            .key(self.of_key(user))
            .arg(&self.base)
            .arg(CALL_TTL_MS)
            .arg(user.as_str())
            .arg(device.as_str())
            .arg(conn)
            .arg(now)
            .invoke_async::<Value>(&mut c)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn conn_opened(&self, user: &UserId, device: &DeviceId, conn: &str) -> StoreResult<bool> {
        let mut c = self.store.connection();
        let v: Value = CONN_OPENED
            .key(self.of_key(user))
            .arg(&self.base)
            .arg(CALL_TTL_MS)
            .arg(user.as_str())
            .arg(device.as_str())
            .arg(conn)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        match code(&v, "call conn_opened")? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(format!("call conn_opened answered {other}"))),
        }
    }

    async fn due(
        &self,
        ringing_before: Millis,
        gone_before: Millis,
    ) -> StoreResult<Vec<CallRecord>> {
        let mut c = self.store.connection();
        let v: Value = DUE
            .key(self.all_key())
            .arg(&self.base)
            .arg(ringing_before)
            .arg(gone_before)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        let Value::Array(items) = v else {
            return Err(corrupt(format!("calls due answered {v:?}")));
        };
        let mut due = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(call) = decode(item)? {
                due.push(call);
            }
        }
        Ok(due)
    }
}
