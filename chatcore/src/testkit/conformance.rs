//! The conformance suite: what every implementation of the store traits
//! must do, written once as generic async tests over [`Backends`].
//!
//! Each case gets fresh backends from the [`Factory`] and panics (with an
//! `assert!`) when the implementation breaks the trait's documented contract.
//! [`run_all`] runs them all and reports every failing case by name.

use futures_util::FutureExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use super::{BoxFuture, Factory};
use crate::model::{Content, ConversationId, ConversationKind, DeviceId, Millis, UserId};
use crate::store::{
    BrokerHandler, ConversationState, Event, NewMessage, NewUser, ProfileUpdate, Quota, ResetToken,
    SearchQuery, SessionRecord, StoreError, Topic,
};
use crate::Backends;

/// One conformance case.
pub type Case = fn(Backends) -> BoxFuture<'static, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, by name.
        pub fn cases() -> Vec<(&'static str, Case)> {
            vec![$((stringify!($name), (|b| Box::pin($name(b))) as Case)),*]
        }
    };
}

cases!(
    users_create_get_and_find,
    users_unique_keys_conflict_without_partial_writes,
    users_concurrent_creates_of_one_name_admit_one,
    users_search_orders_filters_and_pages,
    users_update_profile_and_password,
    sessions_create_get_expire_extend_revoke,
    sessions_revoke_all_keeps_one,
    resets_are_single_use_and_expire,
    resets_concurrent_takes_admit_one,
    resets_revoke_user_deletes_only_that_users_tokens,
    messages_seq_is_gap_free_from_one,
    messages_retry_with_same_client_id_is_stored_once,
    messages_concurrent_appends_are_gap_free,
    messages_concurrent_retries_store_once,
    messages_history_pages_backwards,
    messages_read_after_and_conversations,
    messages_cursors_never_move_back,
    messages_unread_counts_others_after_read_marker,
    presence_tracks_connections_and_last_seen,
    limiter_counts_in_a_sliding_window,
    limiter_spends_budgets_in_fixed_windows,
    limiter_concurrent_spends_never_exceed_the_budget,
    broker_delivers_to_the_attached_handler,
);

/// Runs every case against fresh backends from `factory`; panics listing
/// each failing case and its message.
pub async fn run_all(factory: &dyn Factory) {
    let mut failures = Vec::new();
    for (name, case) in cases() {
        let backends = factory.backends().await;
        if let Err(panic) = AssertUnwindSafe(case(backends)).catch_unwind().await {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

const T0: Millis = 1_700_000_000_000;

fn new_user(name: &str) -> NewUser {
    NewUser::new(
        UserId::generate(),
        name.to_owned(),
        name.to_lowercase(),
        format!("{name}@example.com"),
        format!("{}@example.com", name.to_lowercase()),
        format!("+1555{:07}", fxhash(name) % 10_000_000),
        format!("{name} Example"),
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
        T0,
    )
}

/// A deterministic small hash, so each test name gets its own phone number.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn text(t: &str) -> Content {
    Content::Text { text: t.to_owned() }
}

fn msg(
    conv: &ConversationId,
    from: &UserId,
    _to: &UserId,
    client_id: &str,
    ts: Millis,
) -> NewMessage {
    NewMessage::new(
        conv.clone(),
        from.clone(),
        client_id.to_owned(),
        ts,
        text(client_id),
    )
}

/// Two new users and their direct conversation, opened.
async fn pair_in(b: &Backends) -> (UserId, UserId, ConversationId) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let c = open(b, &a, &z).await;
    (a, z, c)
}

/// Opens the direct conversation of `a` and `z`.
async fn open(b: &Backends, a: &UserId, z: &UserId) -> ConversationId {
    b.messages
        .open_direct(ConversationState::direct(a, z, T0))
        .await
        .unwrap()
        .conv
}

/// The unread count of one conversation.
async fn unread_of(b: &Backends, user: &UserId, conv: &ConversationId) -> u64 {
    let state = b.messages.conversation(conv).await.unwrap();
    match state {
        Some(s) => b.messages.unread(user, &[&s]).await.unwrap()[0],
        None => 0,
    }
}

fn seqs(v: Vec<crate::model::Message>) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

async fn users_create_get_and_find(b: Backends) {
    let u = new_user("Alice");
    let created = b.users.create(u.clone()).await.unwrap();
    assert_eq!(created.id, u.id);
    assert_eq!(created.about, "");
    assert_eq!(created.avatar, None);
    let got = b
        .users
        .get(&u.id)
        .await
        .unwrap()
        .expect("created user is found by id");
    assert_eq!(got, created);
    assert_eq!(
        b.users
            .find_by_username("alice")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(u.id.clone())
    );
    assert_eq!(
        b.users
            .find_by_email("alice@example.com")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(u.id.clone())
    );
    assert_eq!(
        b.users.find_by_username("Alice").await.unwrap(),
        None,
        "lookups are by the normalised key"
    );
    assert_eq!(b.users.get(&UserId::from("nobody")).await.unwrap(), None);
    assert_eq!(
        b.users.find_by_email("nobody@example.com").await.unwrap(),
        None
    );
}

async fn users_unique_keys_conflict_without_partial_writes(b: Backends) {
    let alice = new_user("alice");
    b.users.create(alice.clone()).await.unwrap();
    let conflict = |field: &str| {
        Err(StoreError::Conflict {
            field: field.to_owned(),
        })
    };

    let mut same_name = new_user("bob");
    same_name.username_key = alice.username_key.clone();
    assert_eq!(
        b.users.create(same_name.clone()).await.map(|_| ()),
        conflict("username")
    );

    let mut same_email = new_user("carol");
    same_email.email_key = alice.email_key.clone();
    assert_eq!(
        b.users.create(same_email.clone()).await.map(|_| ()),
        conflict("email")
    );

    let mut same_phone = new_user("dave");
    same_phone.phone = alice.phone.clone();
    assert_eq!(
        b.users.create(same_phone.clone()).await.map(|_| ()),
        conflict("phone")
    );

    // Nothing of the refused users was stored: their other keys are still free.
    for refused in [&same_name, &same_email, &same_phone] {
        assert_eq!(b.users.get(&refused.id).await.unwrap(), None);
    }
    assert_eq!(
        b.users.find_by_email("bob@example.com").await.unwrap(),
        None
    );
    assert_eq!(b.users.find_by_username("carol").await.unwrap(), None);
    let mut dave_again = new_user("dave");
    dave_again.phone = "+15550000001".into();
    b.users
        .create(dave_again)
        .await
        .expect("dave's username and email were not left taken");
}

async fn users_concurrent_creates_of_one_name_admit_one(b: Backends) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let users = b.users.clone();
        let mut u = new_user(&format!("racer{i}"));
        u.username_key = "racer".into();
        tasks.push(tokio::spawn(async move { users.create(u).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { field }) => assert_eq!(field, "username"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent create wins");
}

async fn users_search_orders_filters_and_pages(b: Backends) {
    for (name, display) in [
        ("zed", "Zed Alpha"),
        ("amy", "Amy Pond"),
        ("alan", "Alan Turing"),
        ("bob", "Bob Alvarez"),
    ] {
        let mut u = new_user(name);
        u.display_name = display.to_owned();
        b.users.create(u).await.unwrap();
    }
    let keys = |v: Vec<crate::store::UserRecord>| {
        v.into_iter().map(|u| u.username_key).collect::<Vec<_>>()
    };
    let all = b
        .users
        .search(&SearchQuery::new("", None, 10))
        .await
        .unwrap();
    assert_eq!(
        keys(all),
        ["alan", "amy", "bob", "zed"],
        "ordered by username key"
    );
    let al = b
        .users
        .search(&SearchQuery::new("al", None, 10))
        .await
        .unwrap();
    assert_eq!(
        keys(al),
        ["alan", "bob", "zed"],
        "username prefix or any display-name word prefix"
    );
    let page1 = b
        .users
        .search(&SearchQuery::new("", None, 2))
        .await
        .unwrap();
    assert_eq!(keys(page1.clone()), ["alan", "amy"]);
    let after = page1.last().map(|u| u.username_key.clone());
    let page2 = b
        .users
        .search(&SearchQuery::new("", after, 2))
        .await
        .unwrap();
    assert_eq!(keys(page2), ["bob", "zed"]);
    let none = b
        .users
        .search(&SearchQuery::new("q", None, 10))
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn users_update_profile_and_password(b: Backends) {
    let u = new_user("erin");
    b.users.create(u.clone()).await.unwrap();
    let update = ProfileUpdate {
        about: Some("hi there".into()),
        avatar: Some(Some("media:1".into())),
        ..ProfileUpdate::default()
    };
    let r = b.users.update_profile(&u.id, &update).await.unwrap();
    assert_eq!(
        (r.about.as_str(), r.avatar.as_deref()),
        ("hi there", Some("media:1"))
    );
    assert_eq!(r.display_name, u.display_name, "absent fields stay");
    let clear = ProfileUpdate {
        avatar: Some(None),
        ..ProfileUpdate::default()
    };
    let r = b.users.update_profile(&u.id, &clear).await.unwrap();
    assert_eq!(r.avatar, None);
    assert_eq!(
        b.users.get(&u.id).await.unwrap().map(|r| r.about),
        Some("hi there".into())
    );
    b.users.set_password_hash(&u.id, "$new").await.unwrap();
    assert_eq!(
        b.users.get(&u.id).await.unwrap().map(|r| r.password_hash),
        Some("$new".into())
    );
    let ghost = UserId::from("ghost");
    assert_eq!(
        b.users.update_profile(&ghost, &update).await.map(|_| ()),
        Err(StoreError::NotFound)
    );
    assert_eq!(
        b.users.set_password_hash(&ghost, "x").await,
        Err(StoreError::NotFound)
    );
}

fn session(hash: &str, user: &UserId, expires_at: Millis) -> SessionRecord {
    SessionRecord::new(
        hash.to_owned(),
        user.clone(),
        DeviceId::generate(),
        "phone".into(),
        T0,
        expires_at,
    )
}

async fn sessions_create_get_expire_extend_revoke(b: Backends) {
    let u = UserId::generate();
    let s = session("h1", &u, T0 + 1000);
    b.sessions.create(s.clone()).await.unwrap();
    assert_eq!(
        b.sessions.create(s.clone()).await,
        Err(StoreError::Conflict {
            field: "token".into()
        })
    );
    assert_eq!(b.sessions.get("h1", T0).await.unwrap(), Some(s.clone()));
    assert_eq!(
        b.sessions.get("h1", T0 + 1000).await.unwrap(),
        None,
        "expired at expires_at"
    );
    let s2 = session("h2", &u, T0 + 1000);
    b.sessions.create(s2).await.unwrap();
    b.sessions.extend("h2", T0 + 5000).await.unwrap();
    assert_eq!(
        b.sessions
            .get("h2", T0 + 4999)
            .await
            .unwrap()
            .map(|s| s.expires_at),
        Some(T0 + 5000)
    );
    assert_eq!(
        b.sessions.extend("nope", T0).await,
        Err(StoreError::NotFound)
    );
    assert!(b.sessions.revoke("h2").await.unwrap());
    assert!(
        !b.sessions.revoke("h2").await.unwrap(),
        "revoke is idempotent"
    );
    assert_eq!(b.sessions.get("h2", T0).await.unwrap(), None);
}

async fn sessions_revoke_all_keeps_one(b: Backends) {
    let (u, other) = (UserId::generate(), UserId::generate());
    for h in ["a", "b", "c"] {
        b.sessions
            .create(session(h, &u, T0 + 10_000))
            .await
            .unwrap();
    }
    b.sessions
        .create(session("o", &other, T0 + 10_000))
        .await
        .unwrap();
    assert_eq!(b.sessions.revoke_all(&u, Some("b")).await.unwrap(), 2);
    assert!(b.sessions.get("b", T0).await.unwrap().is_some());
    assert!(b.sessions.get("a", T0).await.unwrap().is_none());
    assert!(
        b.sessions.get("o", T0).await.unwrap().is_some(),
        "other users untouched"
    );
    assert_eq!(b.sessions.revoke_all(&u, None).await.unwrap(), 1);
    assert!(b.sessions.get("b", T0).await.unwrap().is_none());
}

async fn resets_are_single_use_and_expire(b: Backends) {
    let u = UserId::generate();
    b.resets
        .insert(ResetToken::new("r1".into(), u.clone(), T0 + 1000))
        .await
        .unwrap();
    assert_eq!(b.resets.get("r1", T0).await.unwrap(), Some(u.clone()));
    assert_eq!(
        b.resets.get("r1", T0).await.unwrap(),
        Some(u.clone()),
        "get does not consume"
    );
    assert_eq!(b.resets.take("r1", T0).await.unwrap(), Some(u.clone()));
    assert_eq!(b.resets.take("r1", T0).await.unwrap(), None, "single use");
    assert_eq!(b.resets.get("r1", T0).await.unwrap(), None);
    b.resets
        .insert(ResetToken::new("r2".into(), u.clone(), T0 + 1000))
        .await
        .unwrap();
    assert_eq!(
        b.resets.get("r2", T0 + 1000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        b.resets.take("r2", T0 + 1000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(b.resets.take("unknown", T0).await.unwrap(), None);
}

async fn resets_concurrent_takes_admit_one(b: Backends) {
    let u = UserId::generate();
    b.resets
        .insert(ResetToken::new("race".into(), u.clone(), T0 + 60_000))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let r = b.resets.clone();
            tokio::spawn(async move { r.take("race", T0).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn resets_revoke_user_deletes_only_that_users_tokens(b: Backends) {
    let (u, v) = (UserId::generate(), UserId::generate());
    for (hash, user) in [("u1", &u), ("u2", &u), ("v1", &v)] {
        b.resets
            .insert(ResetToken::new(hash.into(), user.clone(), T0 + 60_000))
            .await
            .unwrap();
    }
    assert_eq!(b.resets.revoke_user(&u).await.unwrap(), 2);
    assert_eq!(b.resets.get("u1", T0).await.unwrap(), None);
    assert_eq!(b.resets.take("u2", T0).await.unwrap(), None);
    assert_eq!(b.resets.get("v1", T0).await.unwrap(), Some(v.clone()));
    assert_eq!(b.resets.revoke_user(&u).await.unwrap(), 0, "idempotent");
}

async fn messages_seq_is_gap_free_from_one(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    for i in 1..=5u64 {
        let from = if i % 2 == 0 { &z } else { &a };
        let to = if i % 2 == 0 { &a } else { &z };
        let r = b
            .messages
            .append(msg(&c, from, to, &format!("m{i}"), T0 + i as i64))
            .await
            .unwrap();
        assert!(!r.duplicate);
        assert_eq!(r.message.seq, i);
        assert_eq!(r.message.conv, c);
        assert_eq!(&r.message.from, from);
        assert_eq!(r.message.ts, T0 + i as i64);
    }
    let (a2, z2, c2) = pair_in(&b).await;
    let r = b
        .messages
        .append(msg(&c2, &a2, &z2, "m1", T0))
        .await
        .unwrap();
    assert_eq!(r.message.seq, 1, "each conversation counts on its own");
    let state = b
        .messages
        .conversation(&c)
        .await
        .unwrap()
        .expect("conversation exists");
    assert_eq!((state.last_seq, state.last_ts), (5, T0 + 5));
    let mut members: Vec<UserId> = state.members.iter().map(|m| m.user.clone()).collect();
    members.sort();
    let mut expected = vec![a, z];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(state.kind, ConversationKind::Direct);
    assert_eq!(
        b.messages
            .conversation(&ConversationId::from("dm:x:y"))
            .await
            .unwrap(),
        None
    );
}

async fn messages_retry_with_same_client_id_is_stored_once(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let first = b
        .messages
        .append(msg(&c, &a, &z, "same", T0))
        .await
        .unwrap();
    let mut retry = msg(&c, &a, &z, "same", T0 + 50);
    retry.content = text("different body, same key");
    let again = b.messages.append(retry).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        again.message, first.message,
        "the first stored message is returned"
    );
    let other_sender = b
        .messages
        .append(msg(&c, &z, &a, "same", T0))
        .await
        .unwrap();
    assert!(!other_sender.duplicate, "client ids are per sender");
    assert_eq!(other_sender.message.seq, 2);
    assert_eq!(b.messages.history(&c, None, 10).await.unwrap().len(), 2);
}

async fn messages_concurrent_appends_are_gap_free(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let m = b.messages.clone();
            let (from, to) = if i % 2 == 0 {
                (a.clone(), z.clone())
            } else {
                (z.clone(), a.clone())
            };
            let nm = msg(&c, &from, &to, &format!("c{i}"), T0 + i);
            tokio::spawn(async move { m.append(nm).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().message.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
    let stored: Vec<u64> = b
        .messages
        .history(&c, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, (1..=40).collect::<Vec<u64>>());
}

async fn messages_concurrent_retries_store_once(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let m = b.messages.clone();
            let nm = msg(&c, &a, &z, "retry", T0);
            tokio::spawn(async move { m.append(nm).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        ids.insert((r.message.id.clone(), r.message.seq));
        fresh += usize::from(!r.duplicate);
    }
    assert_eq!(ids.len(), 1, "every retry sees the same message");
    assert_eq!(fresh, 1, "exactly one append stored it");
    let next = b
        .messages
        .append(msg(&c, &a, &z, "next", T0))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 2, "no seq was burnt by the duplicates");
}

async fn messages_history_pages_backwards(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    for i in 1..=7 {
        b.messages
            .append(msg(&c, &a, &z, &format!("h{i}"), T0 + i))
            .await
            .unwrap();
    }
    assert_eq!(
        seqs(b.messages.history(&c, None, 3).await.unwrap()),
        [5, 6, 7],
        "newest page, ascending"
    );
    assert_eq!(
        seqs(b.messages.history(&c, Some(5), 3).await.unwrap()),
        [2, 3, 4]
    );
    assert_eq!(seqs(b.messages.history(&c, Some(2), 3).await.unwrap()), [1]);
    assert_eq!(
        seqs(b.messages.history(&c, Some(1), 3).await.unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(b.messages.history(&c, Some(100), 2).await.unwrap()),
        [6, 7]
    );
    assert!(b
        .messages
        .history(&ConversationId::from("dm:n:o"), None, 3)
        .await
        .unwrap()
        .is_empty());
}

async fn messages_read_after_and_conversations(b: Backends) {
    let (a, z, c1) = pair_in(&b).await;
    let y = UserId::generate();
    let c2 = open(&b, &a, &y).await;
    for i in 1..=4 {
        b.messages
            .append(msg(&c1, &a, &z, &format!("x{i}"), T0 + i))
            .await
            .unwrap();
    }
    b.messages
        .append(msg(&c2, &y, &a, "y1", T0 + 10))
        .await
        .unwrap();
    assert_eq!(
        seqs(b.messages.read_after(&c1, 1, 2).await.unwrap()),
        [2, 3]
    );
    assert_eq!(
        seqs(b.messages.read_after(&c1, 0, 10).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(
        seqs(b.messages.read_after(&c1, 4, 10).await.unwrap()),
        Vec::<u64>::new()
    );
    let convs: Vec<_> = b
        .messages
        .conversations(&a, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.conv)
        .collect();
    assert_eq!(convs, [c2.clone(), c1.clone()], "newest activity first");
    let zc: Vec<_> = b
        .messages
        .conversations(&z, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.conv, s.last_seq))
        .collect();
    assert_eq!(zc, [(c1, 4)]);
    assert!(b
        .messages
        .conversations(&UserId::generate(), None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn messages_cursors_never_move_back(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let (d1, d2) = (DeviceId::generate(), DeviceId::generate());
    assert!(b.messages.cursors(&a, &d1).await.unwrap().is_empty());
    b.messages.set_cursor(&a, &d1, &c, 3).await.unwrap();
    b.messages.set_cursor(&a, &d1, &c, 2).await.unwrap();
    b.messages.set_cursor(&a, &d2, &c, 1).await.unwrap();
    assert_eq!(b.messages.cursors(&a, &d1).await.unwrap().get(&c), Some(&3));
    assert_eq!(
        b.messages.cursors(&a, &d2).await.unwrap().get(&c),
        Some(&1),
        "per device"
    );
    assert!(
        b.messages.cursors(&z, &d1).await.unwrap().is_empty(),
        "per user"
    );
}

async fn messages_unread_counts_others_after_read_marker(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    b.messages.append(msg(&c, &z, &a, "1", T0)).await.unwrap();
    b.messages.append(msg(&c, &a, &z, "2", T0)).await.unwrap();
    b.messages.append(msg(&c, &z, &a, "3", T0)).await.unwrap();
    assert_eq!(
        unread_of(&b, &a, &c).await,
        2,
        "own messages are not unread"
    );
    assert_eq!(unread_of(&b, &z, &c).await, 1);
    b.messages.mark_read(&a, &c, 1).await.unwrap();
    assert_eq!(unread_of(&b, &a, &c).await, 1);
    b.messages.mark_read(&a, &c, 3).await.unwrap();
    b.messages.mark_read(&a, &c, 2).await.unwrap();
    assert_eq!(
        unread_of(&b, &a, &c).await,
        0,
        "read markers never move back"
    );
}

async fn presence_tracks_connections_and_last_seen(b: Backends) {
    let (u, never) = (UserId::generate(), UserId::generate());
    assert!(
        b.presence.connect(&u, "n/1", T0).await.unwrap(),
        "first connection goes online"
    );
    assert!(!b.presence.connect(&u, "n/2", T0).await.unwrap());
    assert!(
        !b.presence.connect(&u, "n/2", T0).await.unwrap(),
        "idempotent per connection"
    );
    let p = b.presence.get(&[u.clone(), never.clone()]).await.unwrap();
    assert_eq!(
        (p[0].user.clone(), p[0].online, p[0].last_seen),
        (u.clone(), true, None)
    );
    assert_eq!(
        (p[1].user.clone(), p[1].online, p[1].last_seen),
        (never.clone(), false, None)
    );
    assert!(!b.presence.disconnect(&u, "n/1", T0 + 5).await.unwrap());
    assert!(
        !b.presence.disconnect(&u, "n/1", T0 + 6).await.unwrap(),
        "idempotent"
    );
    assert!(
        b.presence.disconnect(&u, "n/2", T0 + 7).await.unwrap(),
        "last connection goes offline"
    );
    let p = b.presence.get(std::slice::from_ref(&u)).await.unwrap();
    assert_eq!((p[0].online, p[0].last_seen), (false, Some(T0 + 7)));
    assert!(b.presence.connect(&u, "n/3", T0 + 9).await.unwrap());
    assert_eq!(
        b.presence.get(std::slice::from_ref(&u)).await.unwrap()[0].last_seen,
        None
    );
}

async fn limiter_counts_in_a_sliding_window(b: Backends) {
    let q = Quota {
        max: 3,
        window_ms: 1000,
    };
    assert_eq!(b.limiter.check("k", q, T0).await.unwrap(), None);
    for t in [0, 100, 200] {
        b.limiter.record("k", q, T0 + t).await.unwrap();
    }
    assert_eq!(
        b.limiter.check("k", q, T0 + 300).await.unwrap(),
        Some(700),
        "until the oldest leaves the window"
    );
    assert_eq!(
        b.limiter.check("other", q, T0 + 300).await.unwrap(),
        None,
        "per key"
    );
    assert_eq!(
        b.limiter.check("k", q, T0 + 1000).await.unwrap(),
        None,
        "the oldest left"
    );
    b.limiter.clear("k").await.unwrap();
    assert_eq!(b.limiter.check("k", q, T0 + 300).await.unwrap(), None);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(Topic, Event)>>);

impl BrokerHandler for Recorder {
    fn deliver(&self, topic: &Topic, event: Arc<Event>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((topic.clone(), (*event).clone()));
    }
}

async fn limiter_spends_budgets_in_fixed_windows(b: Backends) {
    let q = Quota {
        max: 100,
        window_ms: 1000,
    };
    // T0 is a multiple of the window: windows are [T0, T0+1000), ...
    let start = T0 - T0 % 1000;
    assert_eq!(b.limiter.spend("s", 60, q, start).await.unwrap(), None);
    assert_eq!(b.limiter.spend("s", 40, q, start + 10).await.unwrap(), None);
    assert_eq!(
        b.limiter.spend("s", 1, q, start + 400).await.unwrap(),
        Some(600),
        "over the budget: the wait until the window ends"
    );
    assert_eq!(
        b.limiter.spend("other", 100, q, start + 400).await.unwrap(),
        None,
        "keys are independent"
    );
    assert_eq!(
        b.limiter.spend("big", 101, q, start).await.unwrap(),
        Some(1000),
        "a cost larger than the whole budget never passes"
    );
    // A refused spend adds nothing: 10 more still fit after a refusal...
    let r = Quota {
        max: 10,
        window_ms: 1000,
    };
    assert_eq!(b.limiter.spend("r", 5, r, start).await.unwrap(), None);
    assert!(b.limiter.spend("r", 6, r, start).await.unwrap().is_some());
    assert_eq!(b.limiter.spend("r", 5, r, start).await.unwrap(), None);
    // ...and the next window starts from nothing.
    assert_eq!(
        b.limiter.spend("s", 100, q, start + 1000).await.unwrap(),
        None
    );
    assert_eq!(
        b.limiter.spend("s", 1, q, start + 1999).await.unwrap(),
        Some(1)
    );
}

async fn limiter_concurrent_spends_never_exceed_the_budget(b: Backends) {
    let q = Quota {
        max: 10,
        window_ms: 60_000,
    };
    let start = T0 - T0 % 60_000;
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let l = b.limiter.clone();
            tokio::spawn(async move { l.spend("race", 1, q, start).await })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_none() {
            passed += 1;
        }
    }
    assert_eq!(passed, 10, "exactly the budget passes");
}

async fn broker_delivers_to_the_attached_handler(b: Backends) {
    let rec = Arc::new(Recorder::default());
    b.broker.attach(rec.clone());
    let u = UserId::generate();
    let topic = Topic::User(u.clone());
    b.broker.subscribe(&topic).await.unwrap();
    let ev = Event::Revoked(crate::store::Revocation::AllDevices);
    b.broker.publish(&topic, ev.clone()).await.unwrap();
    // A broker between nodes delivers asynchronously: wait for it, bounded.
    for _ in 0..200 {
        if !rec.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let got = rec.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(got, vec![(topic.clone(), ev)]);
    b.broker.unsubscribe(&topic).await.unwrap();
}
