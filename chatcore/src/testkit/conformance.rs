//! The conformance suite: what every implementation of the store traits
//! must do, written once as generic async tests over [`Backends`].
//!
//! Each case gets fresh backends from the [`Factory`] and panics (with an
//! `assert!`) when the implementation breaks the trait's documented contract.
//! [`run_all`] runs them all and reports every failing case by name.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::{BoxFuture, Factory};
use crate::model::{
    Audience, CallMedia, Content, ConversationId, ConversationKind, DeviceId, Millis, Privacy,
    Receipt, UserId,
};
use crate::store::{
    Answered, Backup, BackupKey, BrokerHandler, CallRecord, Changed, ContactView,
    ConversationState, DeviceKeys, Event, IdentitySet, Link, Listing, MasterKey, MasterSignature,
    NewMessage, NewUser, OneTimeKey, Pending, ProfileUpdate, PutKeys, Queued, Quota, Relation,
    Report, ResetToken, SearchQuery, SessionRecord, Started, StoreError, ToDevice, Topic,
    UserRecord, Written,
};
use crate::Backends;

/// One conformance case.
pub type Case = fn(Backends) -> BoxFuture<'static, ()>;

cases!(
    fn own_cases;
    users_create_get_and_find,
    users_unique_keys_conflict_without_partial_writes,
    users_concurrent_creates_of_one_name_admit_one,
    users_search_orders_filters_and_pages,
    users_update_profile_and_password,
    users_privacy_round_trips_with_a_default,
    sessions_create_get_expire_extend_revoke,
    sessions_revoke_all_keeps_one,
    sessions_devices_lists_the_users_live_sessions_oldest_first,
    sessions_rename_device_renames_only_that_users_device,
    sessions_revoke_device_ends_every_session_of_that_device_only,
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
    receipts_rise_with_acks_and_reads_and_never_fall,
    receipts_concurrent_rises_keep_the_highest,
    conversations_open_direct_is_idempotent_and_race_free,
    conversations_append_needs_a_current_member,
    conversations_create_group_writes_its_first_notice,
    conversations_change_compares_and_swaps,
    conversations_concurrent_changes_admit_one,
    conversations_send_racing_a_removal_lands_before_it_or_fails,
    conversations_list_pages_newest_first,
    conversations_unread_counts_messages_in_the_members_window,
    conversations_last_entries_in_one_call,
    conversations_mute_is_per_member_and_reaches_the_recipients,
    conversations_blocked_refuses_every_append_until_cleared,
    conversations_requests_are_listed_apart_until_accepted,
    conversations_invitations_are_listed_to_the_invited_only,
    conversations_encrypted_refuses_plain_text_and_stays_on,
    contacts_change_compares_and_swaps_on_version,
    contacts_relations_returns_only_stored_pairs,
    contacts_list_filters_orders_and_pages_each_view,
    contacts_concurrent_changes_of_one_pair_admit_one,
    contacts_relations_keep_unaccepted_requests,
    reports_replace_per_pair_and_page_newest_first,
    keys_identity_is_set_once_per_device,
    keys_master_keys_replace_and_sign_devices,
    keys_one_time_keys_are_claimed_once_then_the_fallback,
    keys_concurrent_claims_hand_out_each_key_once,
    keys_uploads_are_bounded_and_retries_store_nothing_twice,
    to_device_queues_until_acked_bounded_and_idempotent,
    backups_one_current_version_per_user,
    backups_keep_the_better_copy_of_each_session,
    backups_are_bounded_all_or_nothing_and_page_in_order,
    backups_concurrent_puts_lose_no_key,
    presence_tracks_connections_and_last_seen,
    calls_one_per_user_answered_once_ended_once,
    calls_concurrent_answers_and_ends_admit_one,
    calls_due_by_ring_timeout_and_by_a_gone_connection,
    limiter_counts_in_a_sliding_window,
    limiter_spends_budgets_in_fixed_windows,
    limiter_concurrent_spends_never_exceed_the_budget,
    broker_delivers_to_the_attached_handler,
);

/// Every case, by name: this module's and those of a message's life
/// (the `testkit::life` module).
pub fn cases() -> Vec<(&'static str, Case)> {
    let mut cases = own_cases();
    cases.extend(super::life::cases());
    cases
}

/// Runs every case against fresh backends from `factory`; panics listing
/// each failing case and its message.
pub async fn run_all(factory: &dyn Factory) {
    super::run_cases("conformance", cases(), || factory.backends()).await;
}

pub(super) const T0: Millis = 1_700_000_000_000;

pub(super) fn new_user(name: &str) -> NewUser {
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

pub(super) fn text(t: &str) -> Content {
    Content::Text { text: t.to_owned() }
}

pub(super) fn msg(
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
pub(super) async fn pair_in(b: &Backends) -> (UserId, UserId, ConversationId) {
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
        Some(s) => b.messages.unread(user, &[&s]).await.unwrap()[0].messages,
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

async fn users_privacy_round_trips_with_a_default(b: Backends) {
    let u = new_user("Priva");
    let other = new_user("Publius");
    let created = b.users.create(u.clone()).await.unwrap();
    b.users.create(other.clone()).await.unwrap();
    assert_eq!(
        created.privacy,
        Privacy::default(),
        "new users have the default"
    );
    assert_eq!(
        b.users.get(&u.id).await.unwrap().map(|r| r.privacy),
        Some(Privacy::default())
    );
    let private = Privacy {
        direct: Audience::Contacts,
        groups: Audience::Contacts,
        presence: Audience::Nobody,
        read_receipts: false,
    };
    let r = b.users.set_privacy(&u.id, &private).await.unwrap();
    assert_eq!(r.privacy, private, "the new record is returned");
    assert_eq!(
        UserRecord {
            privacy: Privacy::default(),
            ..r.clone()
        },
        created,
        "nothing else changes"
    );
    assert_eq!(b.users.get(&u.id).await.unwrap(), Some(r.clone()));
    assert_eq!(
        b.users
            .find_by_username(&u.username_key)
            .await
            .unwrap()
            .map(|r| r.privacy),
        Some(private)
    );
    let mut many: Vec<(UserId, Privacy)> = b
        .users
        .get_many(&[u.id.clone(), other.id.clone()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.privacy))
        .collect();
    many.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![
        (u.id.clone(), private),
        (other.id.clone(), Privacy::default()),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(many, expected, "get_many carries each user's own");
    // A profile update keeps the settings, and they can change again.
    let update = ProfileUpdate {
        about: Some("private person".into()),
        ..ProfileUpdate::default()
    };
    let r = b.users.update_profile(&u.id, &update).await.unwrap();
    assert_eq!(r.privacy, private, "a profile update keeps the privacy");
    let contacts_only = Privacy {
        direct: Audience::Everyone,
        groups: Audience::Everyone,
        presence: Audience::Contacts,
        read_receipts: true,
    };
    b.users.set_privacy(&u.id, &contacts_only).await.unwrap();
    assert_eq!(
        b.users.get(&u.id).await.unwrap().map(|r| r.privacy),
        Some(contacts_only)
    );
    assert_eq!(
        b.users
            .set_privacy(&UserId::from("ghost"), &private)
            .await
            .map(|_| ()),
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
    assert_eq!(s.last_active, T0, "active since it was created");
    assert_eq!(
        b.sessions.get("h1", T0 + 1000).await.unwrap(),
        None,
        "expired at expires_at"
    );
    let s2 = session("h2", &u, T0 + 1000);
    b.sessions.create(s2).await.unwrap();
    b.sessions.extend("h2", T0 + 700, T0 + 5000).await.unwrap();
    assert_eq!(
        b.sessions.get("h2", T0 + 4999).await.unwrap().map(|s| (
            s.expires_at,
            s.last_active,
            s.created_at
        )),
        Some((T0 + 5000, T0 + 700, T0)),
        "extend moves the expiry and the last activity, never the creation"
    );
    assert_eq!(
        b.sessions.extend("nope", T0, T0).await,
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

/// A session of `user` on `device` named `name`, created at `at`.
fn device_session(
    hash: &str,
    user: &UserId,
    device: &str,
    name: &str,
    at: Millis,
    expires_at: Millis,
) -> SessionRecord {
    SessionRecord::new(
        hash.to_owned(),
        user.clone(),
        DeviceId::from(device),
        name.to_owned(),
        at,
        expires_at,
    )
}

async fn sessions_devices_lists_the_users_live_sessions_oldest_first(b: Backends) {
    let (u, other) = (UserId::generate(), UserId::generate());
    let phone = device_session("hp", &u, "d-phone", "Phone", T0 + 20, T0 + 10_000);
    let laptop = device_session("hl", &u, "d-laptop", "Laptop", T0 + 10, T0 + 10_000);
    let stale = device_session("hs", &u, "d-stale", "Old", T0, T0 + 500);
    let theirs = device_session("ho", &other, "d-other", "Theirs", T0, T0 + 10_000);
    for s in [&phone, &laptop, &stale, &theirs] {
        b.sessions.create(s.clone()).await.unwrap();
    }
    assert_eq!(
        b.sessions.devices(&u, T0 + 100).await.unwrap(),
        vec![stale.clone(), laptop.clone(), phone.clone()],
        "oldest first, each as stored"
    );
    assert_eq!(
        b.sessions.devices(&u, T0 + 500).await.unwrap(),
        vec![laptop.clone(), phone.clone()],
        "an expired session is no device"
    );
    b.sessions
        .extend("hl", T0 + 900, T0 + 20_000)
        .await
        .unwrap();
    let listed = b.sessions.devices(&u, T0 + 1000).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.device.as_str(), s.last_active, s.expires_at))
            .collect::<Vec<_>>(),
        vec![
            ("d-laptop", T0 + 900, T0 + 20_000),
            ("d-phone", T0 + 20, T0 + 10_000)
        ],
        "a resume moves last_active"
    );
    assert_eq!(b.sessions.devices(&other, T0).await.unwrap(), vec![theirs]);
    assert!(b
        .sessions
        .devices(&UserId::generate(), T0)
        .await
        .unwrap()
        .is_empty());
}

async fn sessions_rename_device_renames_only_that_users_device(b: Backends) {
    let (u, other) = (UserId::generate(), UserId::generate());
    b.sessions
        .create(device_session("a1", &u, "d1", "Phone", T0, T0 + 10_000))
        .await
        .unwrap();
    b.sessions
        .create(device_session("a2", &u, "d1", "Phone", T0 + 1, T0 + 10_000))
        .await
        .unwrap();
    b.sessions
        .create(device_session("a3", &u, "d2", "Laptop", T0, T0 + 10_000))
        .await
        .unwrap();
    b.sessions
        .create(device_session(
            "o1",
            &other,
            "d9",
            "Theirs",
            T0,
            T0 + 10_000,
        ))
        .await
        .unwrap();
    let d1 = DeviceId::from("d1");
    assert!(b
        .sessions
        .rename_device(&u, &d1, "Work phone")
        .await
        .unwrap());
    assert!(
        b.sessions
            .rename_device(&u, &d1, "Work phone")
            .await
            .unwrap(),
        "idempotent"
    );
    let names = |v: Vec<SessionRecord>| {
        v.into_iter()
            .map(|s| (s.token_hash, s.device_name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(b.sessions.devices(&u, T0 + 5).await.unwrap()),
        vec![
            ("a1".to_owned(), "Work phone".to_owned()),
            ("a3".to_owned(), "Laptop".to_owned()),
            ("a2".to_owned(), "Work phone".to_owned()),
        ],
        "every session of the device, and only those"
    );
    assert!(
        !b.sessions
            .rename_device(&other, &d1, "Mine now")
            .await
            .unwrap(),
        "another user's device is not theirs to rename"
    );
    assert!(!b
        .sessions
        .rename_device(&u, &DeviceId::from("d9"), "Mine now")
        .await
        .unwrap());
    assert!(!b
        .sessions
        .rename_device(&u, &DeviceId::from("nope"), "x")
        .await
        .unwrap());
    assert_eq!(
        names(b.sessions.devices(&other, T0 + 5).await.unwrap()),
        vec![("o1".to_owned(), "Theirs".to_owned())]
    );
    assert_eq!(
        b.sessions
            .get("a1", T0 + 5)
            .await
            .unwrap()
            .map(|s| s.device_name),
        Some("Work phone".to_owned())
    );
}

async fn sessions_revoke_device_ends_every_session_of_that_device_only(b: Backends) {
    let (u, other) = (UserId::generate(), UserId::generate());
    for (h, user, d) in [
        ("a1", &u, "d1"),
        ("a2", &u, "d1"),
        ("a3", &u, "d2"),
        ("o1", &other, "d1"),
    ] {
        b.sessions
            .create(device_session(h, user, d, "x", T0, T0 + 10_000))
            .await
            .unwrap();
    }
    b.sessions
        .create(device_session("a4", &u, "d3", "x", T0, T0 + 10))
        .await
        .unwrap();
    let d1 = DeviceId::from("d1");
    assert!(b.sessions.revoke_device(&u, &d1).await.unwrap());
    assert!(
        !b.sessions.revoke_device(&u, &d1).await.unwrap(),
        "idempotent"
    );
    for gone in ["a1", "a2"] {
        assert_eq!(b.sessions.get(gone, T0).await.unwrap(), None, "{gone}");
    }
    assert!(b.sessions.get("a3", T0).await.unwrap().is_some());
    assert!(
        b.sessions.get("o1", T0).await.unwrap().is_some(),
        "the same device id of another user is untouched"
    );
    assert!(!b
        .sessions
        .revoke_device(&u, &DeviceId::from("nope"))
        .await
        .unwrap());
    assert!(
        b.sessions
            .revoke_device(&u, &DeviceId::from("d3"))
            .await
            .unwrap(),
        "an expired session is deleted too"
    );
    assert_eq!(
        b.sessions
            .devices(&u, T0)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.token_hash)
            .collect::<Vec<_>>(),
        vec!["a3".to_owned()]
    );
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
        .conversations(&a, Listing::Main, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.conv)
        .collect();
    assert_eq!(convs, [c2.clone(), c1.clone()], "newest activity first");
    let zc: Vec<_> = b
        .messages
        .conversations(&z, Listing::Main, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.conv, s.last_seq))
        .collect();
    assert_eq!(zc, [(c1, 4)]);
    assert!(b
        .messages
        .conversations(&UserId::generate(), Listing::Main, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn messages_cursors_never_move_back(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let (d1, d2) = (DeviceId::generate(), DeviceId::generate());
    assert!(b.messages.cursors(&a, &d1).await.unwrap().is_empty());
    b.messages.set_cursor(&a, &d1, &c, 3, T0).await.unwrap();
    b.messages.set_cursor(&a, &d1, &c, 2, T0).await.unwrap();
    b.messages.set_cursor(&a, &d2, &c, 1, T0).await.unwrap();
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
    b.messages.mark_read(&a, &c, 1, true, T0).await.unwrap();
    assert_eq!(unread_of(&b, &a, &c).await, 1);
    b.messages.mark_read(&a, &c, 3, true, T0).await.unwrap();
    b.messages.mark_read(&a, &c, 2, true, T0).await.unwrap();
    assert_eq!(
        unread_of(&b, &a, &c).await,
        0,
        "read markers never move back"
    );
}

fn receipt(conv: &ConversationId, user: &UserId, delivered: u64, read: u64, at: Millis) -> Receipt {
    Receipt {
        conv: conv.clone(),
        user: user.clone(),
        delivered,
        read,
        at,
    }
}

async fn receipts_rise_with_acks_and_reads_and_never_fall(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    for (from, to, id) in [(&z, &a, "1"), (&z, &a, "2"), (&a, &z, "3"), (&z, &a, "4")] {
        b.messages.append(msg(&c, from, to, id, T0)).await.unwrap();
    }
    assert!(b
        .messages
        .receipts(&c, Millis::MIN)
        .await
        .unwrap()
        .is_empty());
    let (d1, d2) = (DeviceId::generate(), DeviceId::generate());
    let m = &b.messages;
    assert_eq!(
        m.set_cursor(&a, &d1, &c, 2, T0 + 1).await.unwrap(),
        Some(receipt(&c, &a, 2, 0, T0 + 1)),
        "an ack raises the user's delivered mark"
    );
    assert_eq!(
        m.set_cursor(&a, &d2, &c, 1, T0 + 2).await.unwrap(),
        None,
        "another device had it"
    );
    assert_eq!(
        m.set_cursor(&a, &d1, &c, 2, T0 + 2).await.unwrap(),
        None,
        "again"
    );
    assert_eq!(
        m.cursors(&a, &d2).await.unwrap().get(&c),
        Some(&1),
        "the device's cursor moved all the same"
    );
    assert_eq!(
        m.mark_read(&a, &c, 1, true, T0 + 3).await.unwrap(),
        Some(receipt(&c, &a, 2, 1, T0 + 3)),
        "a shared read raises the read mark"
    );
    assert_eq!(
        m.mark_read(&a, &c, 4, false, T0 + 4).await.unwrap(),
        Some(receipt(&c, &a, 4, 1, T0 + 4)),
        "a read not shared is a delivery all the same, and leaves the read mark"
    );
    assert_eq!(unread_of(&b, &a, &c).await, 0, "the read marker moved");
    assert_eq!(
        m.mark_read(&a, &c, 4, false, T0 + 5).await.unwrap(),
        None,
        "nothing rose"
    );
    assert_eq!(
        m.mark_read(&a, &c, 2, true, T0 + 6).await.unwrap(),
        Some(receipt(&c, &a, 4, 2, T0 + 6)),
        "shared again: the read mark catches up to what is read now"
    );
    assert_eq!(m.mark_read(&a, &c, 1, true, T0 + 7).await.unwrap(), None);
    assert_eq!(
        m.set_cursor(&a, &d2, &c, 3, T0 + 7).await.unwrap(),
        None,
        "below delivered"
    );
    assert_eq!(
        m.receipts(&c, Millis::MIN).await.unwrap(),
        [receipt(&c, &a, 4, 2, T0 + 6)],
        "one receipt per member, whatever the messages; none for one that never received"
    );
    assert_eq!(
        m.set_cursor(&z, &DeviceId::generate(), &c, 4, T0 + 8)
            .await
            .unwrap(),
        Some(receipt(&c, &z, 4, 0, T0 + 8))
    );
    let mut both = vec![receipt(&c, &a, 4, 2, T0 + 6), receipt(&c, &z, 4, 0, T0 + 8)];
    both.sort_by(|x, y| x.user.cmp(&y.user));
    assert_eq!(
        m.receipts(&c, Millis::MIN).await.unwrap(),
        both,
        "ordered by user"
    );
    assert_eq!(
        m.receipts(&c, T0 + 7).await.unwrap(),
        [receipt(&c, &z, 4, 0, T0 + 8)],
        "only those that rose at or after `since`"
    );
    assert_eq!(
        m.receipts(&c, T0 + 8).await.unwrap(),
        [receipt(&c, &z, 4, 0, T0 + 8)],
        "at `since` itself too: nothing of that millisecond is lost"
    );
    assert!(m.receipts(&c, T0 + 9).await.unwrap().is_empty());
    // Another conversation's receipts are its own.
    let other = open(&b, &a, &UserId::generate()).await;
    b.messages
        .append(msg(&other, &a, &z, "x", T0))
        .await
        .unwrap();
    m.set_cursor(&a, &d1, &other, 1, T0 + 9).await.unwrap();
    assert_eq!(m.receipts(&c, T0 + 9).await.unwrap(), []);
    assert_eq!(
        m.receipts(&other, Millis::MIN).await.unwrap(),
        [receipt(&other, &a, 1, 0, T0 + 9)]
    );
    assert!(m
        .receipts(&ConversationId::generate_group(), Millis::MIN)
        .await
        .unwrap()
        .is_empty());
}

async fn receipts_concurrent_rises_keep_the_highest(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    for i in 0..20 {
        b.messages
            .append(msg(&c, &z, &a, &format!("m{i}"), T0))
            .await
            .unwrap();
    }
    let devices: Vec<DeviceId> = (0..4).map(|_| DeviceId::generate()).collect();
    let tasks = (1..=20u64).map(|seq| {
        let (m, a, c, d) = (
            b.messages.clone(),
            a.clone(),
            c.clone(),
            devices[seq as usize % 4].clone(),
        );
        async move {
            let risen = if seq % 3 == 0 {
                m.mark_read(&a, &c, seq, true, T0 + 1).await.unwrap()
            } else {
                m.set_cursor(&a, &d, &c, seq, T0 + 1).await.unwrap()
            };
            if let Some(r) = &risen {
                assert!(r.read <= r.delivered, "never read beyond delivered: {r:?}");
                assert!(r.delivered >= seq, "a returned receipt covers what rose it");
            }
            risen
        }
    });
    let risen: Vec<_> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(!risen.is_empty());
    assert_eq!(
        b.messages.receipts(&c, Millis::MIN).await.unwrap(),
        [receipt(&c, &a, 20, 18, T0 + 1)],
        "the highest of each mark"
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

/// A call as invited, with its offer sealed for two of the callee's
/// devices (every store keeps it whole, through every change).
fn call(id: &str, caller: &UserId, callee: &UserId) -> CallRecord {
    let mut record = CallRecord::new(
        id.to_owned(),
        ConversationId::direct(caller, callee),
        (
            caller.clone(),
            DeviceId::from("dev-caller"),
            "n/caller".to_owned(),
        ),
        callee.clone(),
        CallMedia::Video,
        true,
        T0,
    );
    record.offer = Some(crate::store::CallOffer::sealed([
        (DeviceId::from("dev-b1"), "c2VhbGVkIGZvciBiMQ".to_owned()),
        (DeviceId::from("dev-b2"), "c2VhbGVkIGZvciBiMg".to_owned()),
    ]));
    record
}

async fn calls_one_per_user_answered_once_ended_once(b: Backends) {
    let (a, bob, carol) = (UserId::generate(), UserId::generate(), UserId::generate());
    let c = &b.calls;
    let first = call("call-1", &a, &bob);
    assert_eq!(c.start(&first).await.unwrap(), Started::Started);
    assert_eq!(
        c.get("call-1").await.unwrap(),
        Some(first.clone()),
        "stored whole"
    );
    assert_eq!(c.of_user(&a).await.unwrap(), Some(first.clone()));
    assert_eq!(c.of_user(&bob).await.unwrap(), Some(first.clone()));
    assert_eq!(c.of_user(&carol).await.unwrap(), None);
    // One call per user, and per id.
    assert_eq!(
        c.start(&call("call-1", &carol, &UserId::generate()))
            .await
            .unwrap(),
        Started::Exists
    );
    assert_eq!(
        c.start(&call("call-2", &a, &carol)).await.unwrap(),
        Started::CallerBusy
    );
    assert_eq!(
        c.start(&call("call-3", &carol, &bob)).await.unwrap(),
        Started::CalleeBusy
    );
    assert_eq!(
        c.get("call-3").await.unwrap(),
        None,
        "a busy call is not stored"
    );
    assert_eq!(c.of_user(&carol).await.unwrap(), None);
    // Ringing: once.
    let rung = c.set_ringing("call-1").await.unwrap().expect("first ring");
    assert!(rung.ringing);
    assert_eq!(c.set_ringing("call-1").await.unwrap(), None);
    assert_eq!(c.set_ringing("nope").await.unwrap(), None);
    // Answered by one device; a second is told who took it.
    let (d1, d2) = (DeviceId::from("dev-1"), DeviceId::from("dev-2"));
    let Answered::Answered(on) = c.answer("call-1", &d1, "n/d1", T0 + 5).await.unwrap() else {
        panic!("the first answer takes the call");
    };
    assert_eq!(
        (
            on.answered_by.clone(),
            on.answered_at,
            on.callee_conn.clone()
        ),
        (Some(d1.clone()), Some(T0 + 5), Some("n/d1".to_owned()))
    );
    assert!(on.in_call(&bob, &d1) && !on.in_call(&bob, &d2) && on.in_call(&a, &on.caller_device));
    assert_eq!(
        (rung.offer.clone(), on.offer.clone()),
        (first.offer.clone(), None),
        "the offer kept while it rings, dropped once answered"
    );
    assert_eq!(c.get("call-1").await.unwrap().and_then(|r| r.offer), None);
    assert!(!on.rings_for(&bob), "answered: it rings no more");
    match c.answer("call-1", &d2, "n/d2", T0 + 6).await.unwrap() {
        Answered::Taken(r) => assert_eq!(r.answered_by, Some(d1.clone())),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.set_ringing("call-1").await.unwrap(), None, "answered");
    assert_eq!(
        c.answer("nope", &d1, "n/d1", T0).await.unwrap(),
        Answered::Gone
    );
    // Ended once; both users are free again.
    let ended = c.end("call-1").await.unwrap().expect("ended");
    assert_eq!(ended.answered_by, Some(d1.clone()));
    assert_eq!(c.end("call-1").await.unwrap(), None);
    assert_eq!(c.get("call-1").await.unwrap(), None);
    assert_eq!(c.of_user(&a).await.unwrap(), None);
    assert_eq!(c.of_user(&bob).await.unwrap(), None);
    assert_eq!(
        c.answer("call-1", &d2, "n/d2", T0).await.unwrap(),
        Answered::Gone
    );
    assert_eq!(
        c.start(&call("call-4", &carol, &bob)).await.unwrap(),
        Started::Started
    );
}

async fn calls_concurrent_answers_and_ends_admit_one(b: Backends) {
    for round in 0..5 {
        let (a, bob) = (UserId::generate(), UserId::generate());
        let id = format!("race-{round}");
        assert_eq!(
            b.calls.start(&call(&id, &a, &bob)).await.unwrap(),
            Started::Started
        );
        let answers = (0..8).map(|i| {
            let (calls, id) = (b.calls.clone(), id.clone());
            async move {
                let device = DeviceId::from(format!("dev-{i}").as_str());
                calls.answer(&id, &device, "n/x", T0 + i).await.unwrap()
            }
        });
        let results = futures_util::future::join_all(answers).await;
        let won = results
            .iter()
            .filter(|r| matches!(r, Answered::Answered(_)))
            .count();
        assert_eq!(won, 1, "{results:?}");
        let ends = (0..8).map(|_| {
            let (calls, id) = (b.calls.clone(), id.clone());
            async move { calls.end(&id).await.unwrap() }
        });
        let ended = futures_util::future::join_all(ends).await;
        assert_eq!(ended.iter().filter(|e| e.is_some()).count(), 1);
        assert_eq!(b.calls.of_user(&a).await.unwrap(), None);
    }
}

async fn calls_due_by_ring_timeout_and_by_a_gone_connection(b: Backends) {
    let c = &b.calls;
    let (a, bob, carol, dan) = (
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let ringing = call("ring", &a, &bob);
    let mut answered = call("talk", &carol, &dan);
    answered.started_at = T0 + 10;
    c.start(&ringing).await.unwrap();
    c.start(&answered).await.unwrap();
    let dev = DeviceId::from("dev-dan");
    c.answer("talk", &dev, "n/dan", T0 + 20).await.unwrap();
    let ids = |v: Vec<CallRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(c.due(T0, T0).await.unwrap()), Vec::<String>::new());
    // Ringing unanswered since T0: due once the timeout passes it; an answered call is not.
    assert_eq!(ids(c.due(T0 + 1, T0).await.unwrap()), ["ring"]);
    assert_eq!(ids(c.due(T0 + 100, T0).await.unwrap()), ["ring"]);
    // Another connection of Dan's device closing changes nothing.
    c.conn_closed(&dan, &dev, "n/other", T0 + 30).await.unwrap();
    // Nor does a device not in the call.
    c.conn_closed(&dan, &DeviceId::from("dev-x"), "n/dan", T0 + 30)
        .await
        .unwrap();
    assert_eq!(
        ids(c.due(T0, T0 + 1000).await.unwrap()),
        Vec::<String>::new()
    );
    // The connection holding the call closes at T0 + 40 (a later close keeps the time).
    c.conn_closed(&dan, &dev, "n/dan", T0 + 40).await.unwrap();
    c.conn_closed(&dan, &dev, "n/dan", T0 + 50).await.unwrap();
    assert_eq!(
        c.get("talk").await.unwrap().unwrap().callee_gone_at,
        Some(T0 + 40)
    );
    assert_eq!(ids(c.due(T0, T0 + 40).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(c.due(T0, T0 + 41).await.unwrap()), ["talk"]);
    // The device comes back on a new connection: not due, and that one holds it now.
    assert!(c.conn_opened(&dan, &dev, "n/dan-2").await.unwrap());
    assert!(
        !c.conn_opened(&dan, &dev, "n/dan-3").await.unwrap(),
        "not gone"
    );
    assert_eq!(
        ids(c.due(T0, T0 + 1000).await.unwrap()),
        Vec::<String>::new()
    );
    c.conn_closed(&dan, &dev, "n/dan", T0 + 60).await.unwrap();
    assert_eq!(
        ids(c.due(T0, T0 + 1000).await.unwrap()),
        Vec::<String>::new(),
        "old conn"
    );
    c.conn_closed(&dan, &dev, "n/dan-2", T0 + 70).await.unwrap();
    // The caller's side too, while ringing, and both due calls oldest first.
    c.conn_closed(&a, &DeviceId::from("dev-caller"), "n/caller", T0 + 5)
        .await
        .unwrap();
    assert_eq!(ids(c.due(T0, T0 + 71).await.unwrap()), ["ring", "talk"]);
    assert!(!c
        .conn_opened(&bob, &DeviceId::from("dev-b"), "n/b")
        .await
        .unwrap());
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

/// A group of `owner` and `others` (members from seq 1), stored with its
/// creation notice.
pub(super) async fn group_of(b: &Backends, owner: &UserId, others: &[UserId]) -> ConversationState {
    let info = crate::groups::info("Tea".into(), String::new(), None);
    let mut state = ConversationState::group(owner, others, info, T0);
    let created = NewMessage::notice(
        state.conv.clone(),
        owner.clone(),
        T0,
        Content::GroupCreated {
            title: "Tea".into(),
            members: others.to_vec(),
        },
    );
    let m = b
        .messages
        .create_group(state.clone(), created)
        .await
        .unwrap();
    assert_eq!(m.seq, 1, "the creation notice is entry 1");
    state.last_seq = 1;
    state
}

/// `state` with `user` removed by `by` as its next change, and the notice.
fn removal(
    state: &ConversationState,
    by: &UserId,
    user: &UserId,
) -> (ConversationState, NewMessage) {
    let (next, notice) = crate::groups::apply(
        state,
        by,
        crate::groups::Action::Remove(user.clone()),
        T0 + 100,
        1000,
    )
    .unwrap();
    let notice = NewMessage::notice(state.conv.clone(), by.clone(), T0 + 100, notice.unwrap());
    (next, notice)
}

async fn conversations_open_direct_is_idempotent_and_race_free(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let m = b.messages.clone();
            let state = if i % 2 == 0 {
                ConversationState::direct(&a, &z, T0 + i)
            } else {
                ConversationState::direct(&z, &a, T0 + i)
            };
            tokio::spawn(async move { m.open_direct(state).await })
        })
        .collect();
    let mut opened = Vec::new();
    for t in tasks {
        opened.push(t.await.unwrap().unwrap());
    }
    assert!(
        opened.iter().all(|s| *s == opened[0]),
        "everyone gets the one stored conversation"
    );
    let stored = b.messages.conversation(&opened[0].conv).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&opened[0]));
    let s = &opened[0];
    assert_eq!(s.kind, ConversationKind::Direct);
    assert_eq!((s.last_seq, s.version), (0, 0));
    assert!(s.has_member(&a) && s.has_member(&z));
    assert_eq!(s.peer_of(&a), Some(&z));
    assert!(
        b.messages
            .conversations(&a, Listing::Main, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a direct conversation without entries is not listed"
    );
}

async fn conversations_append_needs_a_current_member(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let x = UserId::generate();
    assert_eq!(
        b.messages
            .append(msg(&ConversationId::from("nowhere"), &a, &z, "n1", T0))
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        b.messages
            .append(msg(&c, &x, &a, "x1", T0))
            .await
            .unwrap_err(),
        StoreError::NotMember
    );
    let r = b.messages.append(msg(&c, &a, &z, "a1", T0)).await.unwrap();
    assert_eq!(r.message.seq, 1, "a refused append burns no seq");
    let mut to: Vec<UserId> = r.recipients.iter().map(|m| m.user.clone()).collect();
    to.sort();
    let mut both = vec![a, z];
    both.sort();
    assert_eq!(to, both, "the recipients are the members");
}

async fn conversations_create_group_writes_its_first_notice(b: Backends) {
    let (o, m1, m2) = (UserId::generate(), UserId::generate(), UserId::generate());
    let g = group_of(&b, &o, &[m1.clone(), m2.clone()]).await;
    let stored = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    assert_eq!(stored, g);
    assert_eq!(stored.kind, ConversationKind::Group);
    assert_eq!(stored.member(&o).unwrap().role, crate::model::Role::Owner);
    assert_eq!(stored.member(&m1).unwrap().joined_seq, 1);
    let first = b.messages.history(&g.conv, None, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(matches!(first[0].content, Content::GroupCreated { .. }));
    let again = NewMessage::notice(g.conv.clone(), o.clone(), T0, Content::MemberJoined {});
    assert_eq!(
        b.messages.create_group(g.clone(), again).await.unwrap_err(),
        StoreError::Conflict {
            field: "conv".into()
        }
    );
    let r = b
        .messages
        .append(msg(&g.conv, &m2, &o, "hi", T0 + 1))
        .await
        .unwrap();
    assert_eq!(r.message.seq, 2);
    assert_eq!(r.recipients.len(), 3);
    let listed = b
        .messages
        .conversations(&m1, Listing::Main, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "a group is listed for each member");
    assert_eq!(listed[0].last_seq, 2);
}

async fn conversations_change_compares_and_swaps(b: Backends) {
    let (o, m) = (UserId::generate(), UserId::generate());
    let g = group_of(&b, &o, std::slice::from_ref(&m)).await;
    // A message moves the head: a change with a notice read before it is stale.
    b.messages
        .append(msg(&g.conv, &m, &o, "m1", T0 + 1))
        .await
        .unwrap();
    let (next, notice) = removal(&g, &o, &m);
    assert_eq!(
        b.messages.change(&next, Some(notice)).await.unwrap(),
        Changed::Stale
    );
    // Without a notice only the version counts.
    let mut invite = g.clone();
    invite.version += 1;
    invite.invite = Some("hash-1".into());
    assert!(matches!(
        b.messages.change(&invite, None).await.unwrap(),
        Changed::Done(None)
    ));
    let found = b.messages.by_invite("hash-1").await.unwrap().unwrap();
    assert_eq!((found.conv.clone(), found.version), (g.conv.clone(), 1));
    assert_eq!(found.last_seq, 2, "a change without notice keeps the head");
    assert_eq!(
        b.messages.change(&invite, None).await.unwrap(),
        Changed::Stale,
        "the same version twice"
    );
    // Read again, remove: the notice lands at the next seq, atomically.
    let (next, notice) = removal(&found, &o, &m);
    let done = b.messages.change(&next, Some(notice)).await.unwrap();
    let Changed::Done(Some(notice)) = done else {
        panic!("expected the notice, got {done:?}");
    };
    assert_eq!(notice.seq, 3);
    let stored = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 3);
    assert_eq!(stored.member(&m).unwrap().left_seq, Some(3));
    assert!(!stored.has_member(&m));
    assert_eq!(
        b.messages
            .append(msg(&g.conv, &m, &o, "late", T0 + 2))
            .await
            .unwrap_err(),
        StoreError::NotMember
    );
    // Revoking the invite forgets its hash.
    let mut revoked = stored.clone();
    revoked.version += 1;
    revoked.invite = None;
    assert!(matches!(
        b.messages.change(&revoked, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert_eq!(b.messages.by_invite("hash-1").await.unwrap(), None);
    let mut absent = revoked.clone();
    absent.conv = ConversationId::from("g:absent");
    absent.version += 1;
    assert_eq!(
        b.messages.change(&absent, None).await.unwrap_err(),
        StoreError::NotFound
    );
}

async fn conversations_concurrent_changes_admit_one(b: Backends) {
    let owner = UserId::generate();
    let (x, y) = (UserId::generate(), UserId::generate());
    let g = group_of(&b, &owner, &[x.clone(), y.clone()]).await;
    // Two changes read from the same state: exactly one is stored.
    let tasks: Vec<_> = [x, y]
        .into_iter()
        .map(|u| {
            let m = b.messages.clone();
            let (next, notice) = removal(&g, &owner, &u);
            tokio::spawn(async move { m.change(&next, Some(notice)).await })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Changed::Done(Some(n)) => {
                assert_eq!(n.seq, 2);
                done += 1;
            }
            Changed::Stale => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, 1, "one change wins, the other is stale");
    let stored = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    assert_eq!((stored.last_seq, stored.member_count()), (2, 2));
    assert_eq!(
        seqs(b.messages.read_after(&g.conv, 0, 10).await.unwrap()),
        [1, 2]
    );
}

async fn conversations_send_racing_a_removal_lands_before_it_or_fails(b: Backends) {
    let owner = UserId::generate();
    let x = UserId::generate();
    let g = group_of(&b, &owner, std::slice::from_ref(&x)).await;
    let sends: Vec<_> = (0..30)
        .map(|i| {
            let m = b.messages.clone();
            let nm = msg(&g.conv, &x, &owner, &format!("r{i}"), T0 + i);
            tokio::spawn(async move { m.append(nm).await })
        })
        .collect();
    // The owner removes x while x sends, retrying while the head moves.
    let mut removed_at = None;
    for _ in 0..1000 {
        let state = b.messages.conversation(&g.conv).await.unwrap().unwrap();
        let (next, notice) = removal(&state, &owner, &x);
        if let Changed::Done(Some(n)) = b.messages.change(&next, Some(notice)).await.unwrap() {
            removed_at = Some(n.seq);
            break;
        }
        tokio::task::yield_now().await;
    }
    let removed_at = removed_at.expect("the removal lands");
    for t in sends {
        match t.await.unwrap() {
            Ok(r) => assert!(
                r.message.seq < removed_at,
                "a send stored at {} after the removal at {removed_at}",
                r.message.seq
            ),
            Err(e) => assert_eq!(e, StoreError::NotMember),
        }
    }
    let all = b.messages.read_after(&g.conv, 0, 100).await.unwrap();
    let head = b
        .messages
        .conversation(&g.conv)
        .await
        .unwrap()
        .unwrap()
        .last_seq;
    assert_eq!(
        seqs(all.clone()),
        (1..=head).collect::<Vec<u64>>(),
        "gap-free"
    );
    assert!(all
        .iter()
        .filter(|m| m.seq > removed_at)
        .all(|m| m.from != x));
}

async fn conversations_list_pages_newest_first(b: Backends) {
    let me = UserId::generate();
    let mut convs = Vec::new();
    for i in 0..5i64 {
        let other = UserId::generate();
        let c = open(&b, &me, &other).await;
        b.messages
            .append(msg(&c, &other, &me, "x", T0 + 10 * i))
            .await
            .unwrap();
        convs.push(c);
    }
    convs.reverse();
    let first = b
        .messages
        .conversations(&me, Listing::Main, None, 2)
        .await
        .unwrap();
    let ids = |v: &[ConversationState]| v.iter().map(|s| s.conv.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), convs[..2]);
    let after = (first[1].last_ts, first[1].conv.clone());
    let second = b
        .messages
        .conversations(&me, Listing::Main, Some(&after), 2)
        .await
        .unwrap();
    assert_eq!(ids(&second), convs[2..4]);
    let after = (second[1].last_ts, second[1].conv.clone());
    let third = b
        .messages
        .conversations(&me, Listing::Main, Some(&after), 2)
        .await
        .unwrap();
    assert_eq!(ids(&third), convs[4..]);
    // Equal times are ordered by id, and a page boundary between them loses nothing.
    let you = UserId::generate();
    let mut same = Vec::new();
    for _ in 0..3 {
        let other = UserId::generate();
        let c = open(&b, &you, &other).await;
        b.messages
            .append(msg(&c, &other, &you, "t", T0))
            .await
            .unwrap();
        same.push(c);
    }
    same.sort();
    let p1 = b
        .messages
        .conversations(&you, Listing::Main, None, 2)
        .await
        .unwrap();
    let after = (p1[1].last_ts, p1[1].conv.clone());
    let p2 = b
        .messages
        .conversations(&you, Listing::Main, Some(&after), 2)
        .await
        .unwrap();
    assert_eq!([ids(&p1), ids(&p2)].concat(), same);
    // A former member still lists the group.
    let owner = UserId::generate();
    let g = group_of(&b, &owner, std::slice::from_ref(&you)).await;
    let (next, notice) = removal(&g, &owner, &you);
    assert!(matches!(
        b.messages.change(&next, Some(notice)).await.unwrap(),
        Changed::Done(Some(_))
    ));
    let all = b
        .messages
        .conversations(&you, Listing::Main, None, 10)
        .await
        .unwrap();
    assert!(all.iter().any(|s| s.conv == g.conv));
}

async fn conversations_unread_counts_messages_in_the_members_window(b: Backends) {
    let owner = UserId::generate();
    let (early, late) = (UserId::generate(), UserId::generate());
    let g = group_of(&b, &owner, std::slice::from_ref(&early)).await;
    for i in 0..3 {
        b.messages
            .append(msg(&g.conv, &owner, &early, &format!("o{i}"), T0 + i))
            .await
            .unwrap();
    }
    // seq 5: `late` is added; it counts only what comes after.
    let state = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    let (next, notice) = crate::groups::apply(
        &state,
        &owner,
        crate::groups::Action::Add {
            users: vec![late.clone()],
            invite: Vec::new(),
        },
        T0 + 10,
        1000,
    )
    .unwrap();
    let notice = NewMessage::notice(g.conv.clone(), owner.clone(), T0 + 10, notice.unwrap());
    assert!(matches!(
        b.messages.change(&next, Some(notice)).await.unwrap(),
        Changed::Done(Some(_))
    ));
    b.messages
        .append(msg(&g.conv, &owner, &late, "o3", T0 + 11))
        .await
        .unwrap();
    b.messages
        .append(msg(&g.conv, &late, &owner, "l1", T0 + 12))
        .await
        .unwrap();
    // seq 8: `early` is removed; nothing after counts for it.
    let state = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    let (next, notice) = removal(&state, &owner, &early);
    assert!(matches!(
        b.messages.change(&next, Some(notice)).await.unwrap(),
        Changed::Done(Some(_))
    ));
    b.messages
        .append(msg(&g.conv, &late, &owner, "l2", T0 + 13))
        .await
        .unwrap();
    let (x, y, c) = pair_in(&b).await;
    b.messages.append(msg(&c, &y, &x, "d", T0)).await.unwrap();
    let state = b.messages.conversation(&g.conv).await.unwrap().unwrap();
    let direct = b.messages.conversation(&c).await.unwrap().unwrap();
    let counts = |u: UserId| {
        let (state, direct) = (state.clone(), direct.clone());
        let m = b.messages.clone();
        async move {
            m.unread(&u, &[&state, &direct])
                .await
                .unwrap()
                .iter()
                .map(|n| n.messages)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        counts(owner.clone()).await,
        [2, 0],
        "own messages and notices do not count"
    );
    assert_eq!(counts(early.clone()).await, [5, 0], "up to its removal");
    assert_eq!(counts(late.clone()).await, [1, 0], "from its joining");
    assert_eq!(counts(x.clone()).await, [0, 1], "in the order given");
    b.messages
        .mark_read(&early, &g.conv, 3, true, T0)
        .await
        .unwrap();
    assert_eq!(counts(early).await, [3, 0]);
}

async fn conversations_last_entries_in_one_call(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    for i in 1..=3 {
        b.messages
            .append(msg(&c, &a, &z, &format!("e{i}"), T0 + i))
            .await
            .unwrap();
    }
    let (_, _, empty) = pair_in(&b).await;
    let got = b
        .messages
        .last_entries(&[
            (c.clone(), 3),
            (empty.clone(), 0),
            (c.clone(), 2),
            (ConversationId::from("nowhere"), 5),
        ])
        .await
        .unwrap();
    let got: Vec<Option<u64>> = got.into_iter().map(|m| m.map(|m| m.seq)).collect();
    assert_eq!(got, [Some(3), None, Some(2), None]);
}

async fn conversations_mute_is_per_member_and_reaches_the_recipients(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    b.messages.set_muted(&z, &c, Some(T0 + 1000)).await.unwrap();
    assert_eq!(
        b.messages
            .set_muted(&UserId::generate(), &c, Some(T0))
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    let r = b.messages.append(msg(&c, &a, &z, "m", T0)).await.unwrap();
    let muted: Vec<(UserId, bool)> = r
        .recipients
        .iter()
        .map(|m| (m.user.clone(), m.is_muted(T0)))
        .collect();
    assert!(muted.contains(&(z.clone(), true)) && muted.contains(&(a.clone(), false)));
    let state = b.messages.conversation(&c).await.unwrap().unwrap();
    assert!(!state.member(&z).unwrap().is_muted(T0 + 1000), "until then");
    b.messages.set_muted(&z, &c, None).await.unwrap();
    let r = b.messages.append(msg(&c, &a, &z, "n", T0)).await.unwrap();
    assert!(r.recipients.iter().all(|m| !m.is_muted(T0)));
}

async fn conversations_blocked_refuses_every_append_until_cleared(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    b.messages.append(msg(&c, &a, &z, "a1", T0)).await.unwrap();
    // z blocks a: the state is changed like any other field, by version.
    let mut state = b.messages.conversation(&c).await.unwrap().unwrap();
    assert!(state.blocked.is_empty(), "a new conversation blocks nobody");
    state.version += 1;
    state.blocked = vec![z.clone()];
    assert!(matches!(
        b.messages.change(&state, None).await.unwrap(),
        Changed::Done(None)
    ));
    let stored = b.messages.conversation(&c).await.unwrap().unwrap();
    assert_eq!(
        (stored.blocked.clone(), stored.version),
        (vec![z.clone()], 1)
    );
    let listed = b
        .messages
        .conversations(&a, Listing::Main, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].blocked,
        std::slice::from_ref(&z),
        "the listed state carries it"
    );
    for (from, to, client_id) in [(&a, &z, "a2"), (&z, &a, "z1")] {
        assert_eq!(
            b.messages
                .append(msg(&c, from, to, client_id, T0 + 1))
                .await
                .map(|_| ()),
            Err(StoreError::Blocked),
            "refused whoever sends"
        );
    }
    let retry = b
        .messages
        .append(msg(&c, &a, &z, "a1", T0 + 2))
        .await
        .unwrap();
    assert!(
        retry.duplicate,
        "a retry of a stored message is still answered"
    );
    assert_eq!(retry.message.seq, 1);
    assert_eq!(seqs(b.messages.history(&c, None, 10).await.unwrap()), [1]);
    // Both block: stored as given.
    let mut both = stored.clone();
    both.version += 1;
    both.blocked = vec![z.clone(), a.clone()];
    assert!(matches!(
        b.messages.change(&both, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert_eq!(
        b.messages.conversation(&c).await.unwrap().unwrap().blocked,
        [z.clone(), a.clone()]
    );
    assert_eq!(
        b.messages.change(&both, None).await.unwrap(),
        Changed::Stale,
        "a stale unblock is refused like any stale change"
    );
    // Cleared: appends work again, from the next seq.
    let mut clear = both.clone();
    clear.version += 1;
    clear.blocked.clear();
    assert!(matches!(
        b.messages.change(&clear, None).await.unwrap(),
        Changed::Done(None)
    ));
    let stored = b.messages.conversation(&c).await.unwrap().unwrap();
    assert!(stored.blocked.is_empty());
    let r = b
        .messages
        .append(msg(&c, &z, &a, "z1", T0 + 3))
        .await
        .unwrap();
    assert!(!r.duplicate);
    assert_eq!(r.message.seq, 2, "refused appends burnt no seq");
}

/// The ids of listed conversations.
fn ids(states: &[ConversationState]) -> Vec<ConversationId> {
    states.iter().map(|c| c.conv.clone()).collect()
}

async fn conversations_encrypted_refuses_plain_text_and_stays_on(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let stored = b
        .messages
        .open_direct(ConversationState::direct(&a, &z, T0))
        .await
        .unwrap();
    assert!(!stored.encrypted, "a new conversation is not encrypted");
    let c = stored.conv.clone();
    b.messages
        .append(msg(&c, &a, &z, "plain", T0 + 1))
        .await
        .unwrap();
    let ciphertext = |id: &str| Content::Encrypted {
        algorithm: "megolm.v1".into(),
        device: DeviceId::from("DEV"),
        session: "s1".into(),
        ciphertext: format!("AwgA{id}"),
    };
    // Turned on with its notice, in one step.
    let mut on = b.messages.conversation(&c).await.unwrap().unwrap();
    on.version += 1;
    on.last_seq += 1;
    on.encrypted = true;
    let notice = NewMessage::new(
        c.clone(),
        a.clone(),
        "on".into(),
        T0 + 2,
        Content::EncryptionEnabled {},
    );
    assert!(matches!(
        b.messages.change(&on, Some(notice)).await.unwrap(),
        Changed::Done(Some(_))
    ));
    let got = b.messages.conversation(&c).await.unwrap().unwrap();
    assert!(got.encrypted, "read back");
    assert_eq!(got.last_seq, 2);
    assert_eq!(
        b.messages
            .append(msg(&c, &z, &a, "late", T0 + 3))
            .await
            .map(|_| ()),
        Err(StoreError::Encrypted),
        "plain text is refused from the notice on"
    );
    assert!(
        b.messages
            .append(msg(&c, &a, &z, "plain", T0 + 3))
            .await
            .unwrap()
            .duplicate,
        "a retry of a message stored before is still answered"
    );
    let sent = b
        .messages
        .append(NewMessage::new(
            c.clone(),
            z.clone(),
            "e1".into(),
            T0 + 4,
            ciphertext("e1"),
        ))
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 3, "ciphertext is taken, the log gap-free");
    assert_eq!(sent.message.content, ciphertext("e1"), "stored as sent");
    // A change that says otherwise does not turn it off.
    let mut off = b.messages.conversation(&c).await.unwrap().unwrap();
    off.version += 1;
    off.encrypted = false;
    assert!(matches!(
        b.messages.change(&off, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert!(
        b.messages
            .conversation(&c)
            .await
            .unwrap()
            .unwrap()
            .encrypted
    );
    assert_eq!(
        b.messages
            .append(msg(&c, &a, &z, "again", T0 + 5))
            .await
            .map(|_| ()),
        Err(StoreError::Encrypted),
        "never turned off"
    );
    let page = b.messages.history(&c, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.content.kind()).collect::<Vec<_>>(),
        vec!["text", "encryption_enabled", "encrypted"],
        "every kind read back"
    );
}

async fn conversations_requests_are_listed_apart_until_accepted(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    // a writes first to z, who is not a contact: a request to z.
    let mut state = ConversationState::direct(&a, &z, T0);
    state.pending.push(Pending::new(z.clone(), a.clone(), T0));
    let stored = b.messages.open_direct(state.clone()).await.unwrap();
    assert_eq!(stored.pending, state.pending, "stored as given");
    let c = stored.conv.clone();
    let list = |u: &UserId, l: Listing| {
        let (b, u) = (b.clone(), u.clone());
        async move { ids(&b.messages.conversations(&u, l, None, 10).await.unwrap()) }
    };
    assert!(
        list(&z, Listing::Requests).await.is_empty(),
        "a request with nothing in it is not listed"
    );
    b.messages
        .append(msg(&c, &a, &z, "a1", T0 + 1))
        .await
        .unwrap();
    b.messages
        .append(msg(&c, &a, &z, "a2", T0 + 2))
        .await
        .unwrap();
    assert_eq!(
        list(&a, Listing::Main).await,
        std::slice::from_ref(&c),
        "the sender's chat"
    );
    assert!(list(&a, Listing::Requests).await.is_empty());
    assert!(list(&z, Listing::Main).await.is_empty(), "not in z's chats");
    assert_eq!(list(&z, Listing::Requests).await, std::slice::from_ref(&c));
    let got = b.messages.conversation(&c).await.unwrap().unwrap();
    assert_eq!(got.pending, state.pending, "read back");
    assert_eq!(
        b.messages
            .append(msg(&c, &z, &a, "z1", T0 + 3))
            .await
            .map(|_| ()),
        Err(StoreError::NotAccepted),
        "the recipient writes only once it accepts"
    );
    // z deletes what it holds so far: nothing left to list.
    let mut deleted = got.clone();
    deleted.version += 1;
    for m in &mut deleted.members {
        if m.user == z {
            m.joined_seq = got.last_seq + 1;
        }
    }
    assert!(matches!(
        b.messages.change(&deleted, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert!(list(&z, Listing::Requests).await.is_empty(), "deleted");
    b.messages
        .append(msg(&c, &a, &z, "a3", T0 + 4))
        .await
        .unwrap();
    assert_eq!(
        list(&z, Listing::Requests).await,
        std::slice::from_ref(&c),
        "a later message makes it a request again"
    );
    // Blocked by z: no longer among z's requests.
    let mut blocked = b.messages.conversation(&c).await.unwrap().unwrap();
    blocked.version += 1;
    blocked.blocked = vec![z.clone()];
    assert!(matches!(
        b.messages.change(&blocked, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert!(list(&z, Listing::Requests).await.is_empty(), "blocked");
    // Accepted (and unblocked): a chat like any other, and z may write.
    let mut accepted = blocked.clone();
    accepted.version += 1;
    accepted.blocked.clear();
    accepted.pending.clear();
    assert!(matches!(
        b.messages.change(&accepted, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert_eq!(list(&z, Listing::Main).await, std::slice::from_ref(&c));
    assert!(list(&z, Listing::Requests).await.is_empty());
    let r = b
        .messages
        .append(msg(&c, &z, &a, "z1", T0 + 5))
        .await
        .unwrap();
    assert_eq!(r.message.seq, 4, "the refused append burnt no seq");
}

async fn conversations_invitations_are_listed_to_the_invited_only(b: Backends) {
    let (owner, member, guest) = (UserId::generate(), UserId::generate(), UserId::generate());
    let created = group_of(&b, &owner, std::slice::from_ref(&member)).await;
    let g = created.conv.clone();
    let stored = b.messages.conversation(&g).await.unwrap().unwrap();
    let mut invited = stored.clone();
    invited.version += 1;
    invited
        .pending
        .push(Pending::new(guest.clone(), owner.clone(), T0 + 1));
    assert!(matches!(
        b.messages.change(&invited, None).await.unwrap(),
        Changed::Done(None)
    ));
    let requests = b
        .messages
        .conversations(&guest, Listing::Requests, None, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&requests),
        std::slice::from_ref(&g),
        "the invitation is listed"
    );
    assert_eq!(requests[0].pending, invited.pending);
    assert!(b
        .messages
        .conversations(&guest, Listing::Main, None, 10)
        .await
        .unwrap()
        .is_empty());
    for u in [&owner, &member] {
        assert!(b
            .messages
            .conversations(u, Listing::Requests, None, 10)
            .await
            .unwrap()
            .is_empty());
    }
    // The guest is not a member: it neither writes nor receives.
    let append = b
        .messages
        .append(msg(&g, &guest, &owner, "g1", T0 + 2))
        .await;
    assert_eq!(append.map(|_| ()), Err(StoreError::NotMember));
    let sent = b
        .messages
        .append(msg(&g, &owner, &member, "o1", T0 + 3))
        .await
        .unwrap();
    assert!(!sent.recipients.iter().any(|m| m.user == guest));
    // Declined: listed nowhere.
    let mut declined = b.messages.conversation(&g).await.unwrap().unwrap();
    declined.version += 1;
    declined.pending.clear();
    assert!(matches!(
        b.messages.change(&declined, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert!(b
        .messages
        .conversations(&guest, Listing::Requests, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn contacts_relations_keep_unaccepted_requests(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let mut r = Relation::new(&a, &z);
    r.version = 1;
    let zi = r.side(&z).unwrap();
    r.unaccepted[zi] = true;
    assert!(!r.is_empty(), "an unaccepted request is something");
    assert_eq!(b.contacts.change(&r).await.unwrap(), Written::Done);
    let got = b.contacts.relation(&z, &a).await.unwrap().unwrap();
    assert_eq!(got, r, "stored as given");
    assert!(got.awaits(&z) && !got.awaits(&a));
    let mut cleared = got;
    cleared.version += 1;
    cleared.unaccepted = [false, false];
    assert_eq!(b.contacts.change(&cleared).await.unwrap(), Written::Done);
    assert_eq!(b.contacts.relation(&a, &z).await.unwrap().unwrap(), cleared);
}

async fn reports_replace_per_pair_and_page_newest_first(b: Backends) {
    let (a, z, y) = (UserId::generate(), UserId::generate(), UserId::generate());
    let conv = ConversationId::direct(&a, &z);
    let first = Report::new(a.clone(), z.clone(), Some(conv.clone()), "spam".into(), T0);
    b.reports.file(&first).await.unwrap();
    let other = Report::new(y.clone(), z.clone(), None, String::new(), T0 + 1);
    b.reports.file(&other).await.unwrap();
    let again = Report::new(a.clone(), z.clone(), None, "still spam".into(), T0 + 2);
    b.reports.file(&again).await.unwrap();
    let all = b.reports.list(None, 10).await.unwrap();
    assert_eq!(
        all,
        [again.clone(), other.clone()],
        "one per pair, newest first"
    );
    let page = b.reports.list(None, 1).await.unwrap();
    assert_eq!(page, std::slice::from_ref(&again));
    let after = (page[0].at, page[0].key());
    assert_eq!(b.reports.list(Some(&after), 10).await.unwrap(), [other]);
    assert!(b.reports.list(None, 0).await.unwrap().is_empty());
}

fn device_keys(user: &UserId, device: &str, signing: &str) -> DeviceKeys {
    DeviceKeys {
        user: user.clone(),
        device: DeviceId::from(device),
        algorithm: "olm.v1".into(),
        signing_key: signing.into(),
        agreement_key: format!("agree-{signing}"),
        signature: format!("sig-{signing}"),
        uploaded_at: T0,
        master_signature: None,
    }
}

fn otks(prefix: &str, n: usize) -> Vec<OneTimeKey> {
    (0..n)
        .map(|i| OneTimeKey::new(format!("{prefix}{i}"), format!("key-{prefix}{i}"), "sig"))
        .collect()
}

async fn keys_identity_is_set_once_per_device(b: Backends) {
    let (u, v) = (UserId::generate(), UserId::generate());
    let k1 = device_keys(&u, "d1", "s1");
    assert_eq!(b.keys.set_identity(&k1).await.unwrap(), IdentitySet::Stored);
    let mut later = k1.clone();
    later.uploaded_at = T0 + 5;
    assert_eq!(
        b.keys.set_identity(&later).await.unwrap(),
        IdentitySet::Same,
        "a retry"
    );
    let other = device_keys(&u, "d1", "s9");
    assert_eq!(
        b.keys.set_identity(&other).await.unwrap(),
        IdentitySet::Different
    );
    let k2 = device_keys(&u, "d2", "s2");
    b.keys.set_identity(&k2).await.unwrap();
    b.keys
        .set_identity(&device_keys(&v, "d1", "s3"))
        .await
        .unwrap();
    assert_eq!(
        b.keys.identities(&u).await.unwrap(),
        [k1.clone(), k2.clone()],
        "the first keys stay; by device"
    );
    b.keys
        .remove_device(&u, &DeviceId::from("d1"))
        .await
        .unwrap();
    assert_eq!(b.keys.identities(&u).await.unwrap(), [k2]);
    assert_eq!(b.keys.identities(&v).await.unwrap().len(), 1);
    assert!(b
        .keys
        .identities(&UserId::generate())
        .await
        .unwrap()
        .is_empty());
}

async fn keys_master_keys_replace_and_sign_devices(b: Backends) {
    let (u, v) = (UserId::generate(), UserId::generate());
    let m1 = MasterKey::new(u.clone(), "m1".into(), "self-sig-1".into(), T0);
    assert!(b
        .keys
        .master_keys(std::slice::from_ref(&u))
        .await
        .unwrap()
        .is_empty());
    assert!(b.keys.set_master_key(&m1).await.unwrap(), "stored");
    let mut again = m1.clone();
    again.uploaded_at = T0 + 1;
    assert!(
        !b.keys.set_master_key(&again).await.unwrap(),
        "the same key again changes nothing"
    );
    assert_eq!(
        b.keys
            .master_keys(&[u.clone(), v.clone(), u.clone()])
            .await
            .unwrap(),
        std::slice::from_ref(&m1),
        "each user that has one, once"
    );
    // Signatures of devices: only of devices with keys.
    let d1 = DeviceId::from("d1");
    let sig = MasterSignature::new("m1", "sig-of-d1");
    assert!(
        !b.keys.sign_device(&u, &d1, &sig).await.unwrap(),
        "no identity keys yet"
    );
    b.keys
        .set_identity(&device_keys(&u, "d1", "s1"))
        .await
        .unwrap();
    b.keys
        .set_identity(&device_keys(&u, "d2", "s2"))
        .await
        .unwrap();
    assert!(b.keys.sign_device(&u, &d1, &sig).await.unwrap());
    let ids = b.keys.identities(&u).await.unwrap();
    assert_eq!(ids[0].master_signature.as_ref(), Some(&sig));
    assert_eq!(ids[0].signed_by("m1"), Some(&sig));
    assert_eq!(ids[1].master_signature, None, "d2 is not signed");
    // A new master key: the old signatures stay stored but no longer count.
    let m2 = MasterKey::new(u.clone(), "m2".into(), "self-sig-2".into(), T0 + 2);
    assert!(b.keys.set_master_key(&m2).await.unwrap(), "replaced");
    assert_eq!(
        b.keys.master_keys(std::slice::from_ref(&u)).await.unwrap(),
        [m2]
    );
    let ids = b.keys.identities(&u).await.unwrap();
    assert_eq!(ids[0].signed_by("m2"), None);
    let sig2 = MasterSignature::new("m2", "sig2-of-d1");
    assert!(b.keys.sign_device(&u, &d1, &sig2).await.unwrap());
    assert_eq!(
        b.keys.identities(&u).await.unwrap()[0].signed_by("m2"),
        Some(&sig2),
        "replaced"
    );
    // An identity uploaded with a signature keeps none: signing is apart.
    let mut forged = device_keys(&v, "d9", "s9");
    forged.master_signature = Some(MasterSignature::new("m1", "forged"));
    b.keys.set_identity(&forged).await.unwrap();
    assert_eq!(
        b.keys.identities(&v).await.unwrap()[0].master_signature,
        None
    );
    // Removing the device removes its signature with it.
    b.keys.remove_device(&u, &d1).await.unwrap();
    b.keys
        .set_identity(&device_keys(&u, "d1", "s1"))
        .await
        .unwrap();
    assert_eq!(
        b.keys.identities(&u).await.unwrap()[0].master_signature,
        None
    );
}

async fn keys_one_time_keys_are_claimed_once_then_the_fallback(b: Backends) {
    let u = UserId::generate();
    let d = DeviceId::from("phone");
    let target = [(u.clone(), d.clone())];
    assert!(
        b.keys.claim(&target).await.unwrap().is_empty(),
        "nothing uploaded"
    );
    assert!(b
        .keys
        .add_one_time_keys(&u, &d, &otks("a", 2), 10)
        .await
        .unwrap());
    let fallback = OneTimeKey::new("f1", "key-f1", "sig");
    b.keys.set_fallback(&u, &d, &fallback).await.unwrap();
    let counts = b.keys.counts(&u, &d).await.unwrap();
    assert_eq!((counts.one_time, counts.fallback_unused), (2, true));
    let mut got = Vec::new();
    for _ in 0..2 {
        let c = b.keys.claim(&target).await.unwrap();
        assert_eq!(c.len(), 1);
        assert!(!c[0].fallback);
        got.push(c[0].key.id.clone());
    }
    got.sort();
    assert_eq!(got, ["a0", "a1"], "each once");
    for _ in 0..2 {
        let c = b.keys.claim(&target).await.unwrap();
        assert_eq!((c[0].key.clone(), c[0].fallback), (fallback.clone(), true));
    }
    let counts = b.keys.counts(&u, &d).await.unwrap();
    assert_eq!((counts.one_time, counts.fallback_unused), (0, false));
    let fresh = OneTimeKey::new("f2", "key-f2", "sig");
    b.keys.set_fallback(&u, &d, &fresh).await.unwrap();
    assert!(b.keys.counts(&u, &d).await.unwrap().fallback_unused);
    // Several targets in one claim, in order; a device without keys is left out.
    let other = DeviceId::from("laptop");
    b.keys
        .add_one_time_keys(&u, &other, &otks("b", 1), 10)
        .await
        .unwrap();
    let nobody = (UserId::generate(), DeviceId::from("x"));
    let c = b
        .keys
        .claim(&[(u.clone(), other.clone()), nobody, (u.clone(), d.clone())])
        .await
        .unwrap();
    let ids: Vec<(&str, bool)> = c.iter().map(|c| (c.key.id.as_str(), c.fallback)).collect();
    assert_eq!(ids, [("b0", false), ("f2", true)]);
    b.keys.remove_device(&u, &d).await.unwrap();
    assert!(b.keys.claim(&target).await.unwrap().is_empty(), "removed");
    assert_eq!(b.keys.counts(&u, &d).await.unwrap().one_time, 0);
}

async fn keys_concurrent_claims_hand_out_each_key_once(b: Backends) {
    let u = UserId::generate();
    let d = DeviceId::from("phone");
    assert!(b
        .keys
        .add_one_time_keys(&u, &d, &otks("k", 20), 100)
        .await
        .unwrap());
    b.keys
        .set_fallback(&u, &d, &OneTimeKey::new("fb", "key-fb", "sig"))
        .await
        .unwrap();
    let claims = (0..30).map(|_| {
        let (b, u, d) = (b.clone(), u.clone(), d.clone());
        async move { b.keys.claim(&[(u, d)]).await.unwrap() }
    });
    let got: Vec<_> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(got.len(), 30, "every claim gets a key");
    let one_time: HashSet<String> = got
        .iter()
        .filter(|c| !c.fallback)
        .map(|c| c.key.id.clone())
        .collect();
    let handed = got.iter().filter(|c| !c.fallback).count();
    assert_eq!(handed, 20, "all one-time keys handed out");
    assert_eq!(one_time.len(), 20, "none twice");
    assert!(got.iter().filter(|c| c.fallback).all(|c| c.key.id == "fb"));
    assert_eq!(b.keys.counts(&u, &d).await.unwrap().one_time, 0);
}

async fn keys_uploads_are_bounded_and_retries_store_nothing_twice(b: Backends) {
    let u = UserId::generate();
    let d = DeviceId::from("phone");
    assert!(b
        .keys
        .add_one_time_keys(&u, &d, &otks("a", 3), 5)
        .await
        .unwrap());
    assert!(
        b.keys
            .add_one_time_keys(&u, &d, &otks("a", 3), 5)
            .await
            .unwrap(),
        "a retry: accepted, nothing new"
    );
    assert_eq!(b.keys.counts(&u, &d).await.unwrap().one_time, 3);
    assert!(
        !b.keys
            .add_one_time_keys(&u, &d, &otks("b", 3), 5)
            .await
            .unwrap(),
        "3 + 3 > 5: refused whole"
    );
    assert_eq!(b.keys.counts(&u, &d).await.unwrap().one_time, 3);
    // A claimed key's id is spent: uploading it again stores nothing.
    b.keys.claim(&[(u.clone(), d.clone())]).await.unwrap();
    assert!(b
        .keys
        .add_one_time_keys(&u, &d, &otks("a", 3), 5)
        .await
        .unwrap());
    assert_eq!(b.keys.counts(&u, &d).await.unwrap().one_time, 2);
    // Concurrent uploads never pass the bound.
    let v = UserId::generate();
    let uploads = (0..8).map(|i| {
        let (b, v, d) = (b.clone(), v.clone(), d.clone());
        async move {
            b.keys
                .add_one_time_keys(&v, &d, &otks(&format!("c{i}-"), 4), 10)
                .await
                .unwrap()
        }
    });
    let ok = futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, 2, "two batches of 4 fit in 10");
    assert_eq!(b.keys.counts(&v, &d).await.unwrap().one_time, 8);
}

fn to_device(id: &str, from: (&UserId, &str), to: (&UserId, &str)) -> ToDevice {
    ToDevice {
        id: id.into(),
        from_user: from.0.clone(),
        from_device: DeviceId::from(from.1),
        to_user: to.0.clone(),
        to_device: DeviceId::from(to.1),
        kind: "olm.v1".into(),
        payload: format!("payload {id}").into_bytes(),
        ts: T0,
    }
}

async fn to_device_queues_until_acked_bounded_and_idempotent(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let m1 = to_device("m1", (&a, "a1"), (&z, "z1"));
    let m2 = to_device("m2", (&a, "a1"), (&z, "z1"));
    let other = to_device("m1", (&a, "a2"), (&z, "z1"));
    let elsewhere = to_device("m1", (&a, "a1"), (&z, "z2"));
    let got = b
        .to_device
        .enqueue(
            &[m1.clone(), m2.clone(), other.clone(), elsewhere.clone()],
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        [Queued::Stored; 4],
        "ids are per sender device and target"
    );
    let again = b
        .to_device
        .enqueue(std::slice::from_ref(&m1), 3)
        .await
        .unwrap();
    assert_eq!(again, [Queued::Duplicate]);
    let full = b
        .to_device
        .enqueue(&[to_device("m3", (&a, "a1"), (&z, "z1"))], 3)
        .await
        .unwrap();
    assert_eq!(full, [Queued::Full], "three wait already");
    let z1 = DeviceId::from("z1");
    let waiting = b.to_device.pending(&z, &z1, 10).await.unwrap();
    assert_eq!(
        waiting,
        [m1.clone(), m2.clone(), other.clone()],
        "oldest first"
    );
    assert_eq!(
        b.to_device.pending(&z, &z1, 1).await.unwrap(),
        std::slice::from_ref(&m1)
    );
    b.to_device
        .ack(
            &z,
            &z1,
            &[
                (DeviceId::from("a1"), "m1".into()),
                (DeviceId::from("a1"), "nope".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        b.to_device.pending(&z, &z1, 10).await.unwrap(),
        [m2.clone(), other.clone()],
        "only what was acknowledged goes"
    );
    let room = b
        .to_device
        .enqueue(&[to_device("m3", (&a, "a1"), (&z, "z1"))], 3)
        .await
        .unwrap();
    assert_eq!(room, [Queued::Stored]);
    b.to_device.remove_device(&z, &z1).await.unwrap();
    assert!(b.to_device.pending(&z, &z1, 10).await.unwrap().is_empty());
    assert_eq!(
        b.to_device
            .pending(&z, &DeviceId::from("z2"), 10)
            .await
            .unwrap(),
        [elsewhere]
    );
}

fn backup_key(conv: &str, session: &str, rank: (u32, u32, bool), data: &str) -> BackupKey {
    BackupKey::new(
        ConversationId::from(conv),
        session.into(),
        rank,
        data.as_bytes().to_vec(),
    )
}

async fn backups_one_current_version_per_user(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    assert_eq!(b.backups.current(&a).await.unwrap(), None);
    let v1 = Backup::new("v1".into(), "chatcore.backup.v1".into(), "auth".into(), T0);
    b.backups.create(&a, v1.clone()).await.unwrap();
    assert_eq!(b.backups.current(&a).await.unwrap(), Some(v1.clone()));
    assert_eq!(b.backups.current(&z).await.unwrap(), None, "per user");
    let k = backup_key("g:1", "s1", (0, 0, true), "key");
    assert!(matches!(
        b.backups
            .put_keys(&a, "v1", std::slice::from_ref(&k), 10)
            .await,
        Ok(PutKeys::Stored(_))
    ));
    // Another user cannot reach it, even naming its version.
    assert_eq!(
        b.backups
            .put_keys(&z, "v1", std::slice::from_ref(&k), 10)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        b.backups.keys(&z, "v1", None, 10).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(b.backups.delete(&z, "v1").await, Err(StoreError::NotFound));

    let updated = b.backups.update(&a, "v1", "auth 2".into()).await.unwrap();
    assert_eq!(updated.auth_data, "auth 2");
    assert_eq!((updated.count, updated.version.as_str()), (1, "v1"));
    assert_eq!(
        b.backups.update(&a, "v0", "x".into()).await,
        Err(StoreError::NotFound)
    );

    // A new backup replaces the old one and its keys.
    let v2 = Backup::new(
        "v2".into(),
        "chatcore.backup.v1".into(),
        "new".into(),
        T0 + 1,
    );
    b.backups.create(&a, v2.clone()).await.unwrap();
    assert_eq!(b.backups.current(&a).await.unwrap(), Some(v2));
    for old in [
        b.backups.keys(&a, "v1", None, 10).await.map(|_| ()),
        b.backups
            .put_keys(&a, "v1", std::slice::from_ref(&k), 10)
            .await
            .map(|_| ()),
        b.backups.update(&a, "v1", "x".into()).await.map(|_| ()),
        b.backups.delete(&a, "v1").await,
    ] {
        assert_eq!(old, Err(StoreError::NotFound), "v1 is gone");
    }
    assert!(b.backups.keys(&a, "v2", None, 10).await.unwrap().is_empty());
    b.backups.delete(&a, "v2").await.unwrap();
    assert_eq!(b.backups.current(&a).await.unwrap(), None);
    assert_eq!(
        b.backups.keys(&a, "v2", None, 10).await,
        Err(StoreError::NotFound)
    );
}

async fn backups_keep_the_better_copy_of_each_session(b: Backends) {
    let a = UserId::generate();
    b.backups
        .create(&a, Backup::new("v".into(), "alg".into(), "".into(), T0))
        .await
        .unwrap();
    let put = |keys: Vec<BackupKey>| {
        let b = b.clone();
        let a = a.clone();
        async move {
            match b.backups.put_keys(&a, "v", &keys, 100).await.unwrap() {
                PutKeys::Stored(backup) => backup,
                PutKeys::Full => panic!("not full"),
            }
        }
    };
    let first = put(vec![backup_key("g:1", "s", (5, 1, false), "first")]).await;
    assert_eq!(first.count, 1);
    let stored = |b: Backends, a: UserId| async move {
        let keys = b.backups.keys(&a, "v", None, 10).await.unwrap();
        assert_eq!(keys.len(), 1);
        String::from_utf8(keys[0].data.clone()).unwrap()
    };
    // Worse copies change nothing, not even the etag.
    let same = put(vec![
        backup_key("g:1", "s", (6, 0, false), "later index"),
        backup_key("g:1", "s", (5, 2, false), "more forwards"),
    ])
    .await;
    assert_eq!((same.count, same.etag), (1, first.etag));
    assert_eq!(stored(b.clone(), a.clone()).await, "first");
    // Fewer forwards at the same index wins; then an earlier index; then
    // a verified copy, even from a later index.
    for (rank, data) in [
        ((5, 0, false), "fewer forwards"),
        ((2, 3, false), "earlier index"),
        ((9, 9, true), "verified"),
    ] {
        let before = b.backups.current(&a).await.unwrap().unwrap().etag;
        let after = put(vec![backup_key("g:1", "s", rank, data)]).await;
        assert_ne!(after.etag, before, "{data}: the etag changes");
        assert_eq!(after.count, 1);
        assert_eq!(stored(b.clone(), a.clone()).await, data);
    }
    let kept = put(vec![backup_key("g:1", "s", (0, 0, false), "unverified")]).await;
    assert_eq!(stored(b.clone(), a.clone()).await, "verified");
    assert_eq!(kept.count, 1);
    // Two copies of one session in one request: the better one.
    put(vec![
        backup_key("g:2", "s", (3, 0, false), "worse"),
        backup_key("g:2", "s", (1, 0, false), "better"),
        backup_key("g:2", "s", (2, 0, false), "middle"),
    ])
    .await;
    let keys = b.backups.keys(&a, "v", None, 10).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].conv.as_str(), "g:2");
    assert_eq!(keys[1].data, b"better");
    assert_eq!((keys[1].first_index, keys[1].forwarded), (1, 0));
}

async fn backups_are_bounded_all_or_nothing_and_page_in_order(b: Backends) {
    let a = UserId::generate();
    b.backups
        .create(&a, Backup::new("v".into(), "alg".into(), "".into(), T0))
        .await
        .unwrap();
    let keys: Vec<BackupKey> = [("g:b", "s2"), ("g:a", "s2"), ("dm:x", "s1"), ("g:a", "s1")]
        .iter()
        .map(|(c, s)| backup_key(c, s, (0, 0, false), &format!("{c}/{s}")))
        .collect();
    assert!(matches!(
        b.backups.put_keys(&a, "v", &keys[..3], 3).await.unwrap(),
        PutKeys::Stored(ref backup) if backup.count == 3
    ));
    // A fourth key would pass the bound: nothing of the request is stored,
    // not even the better copy of a key already there.
    let better = backup_key("g:a", "s2", (0, 0, true), "better");
    assert_eq!(
        b.backups
            .put_keys(&a, "v", &[better.clone(), keys[3].clone()], 3)
            .await
            .unwrap(),
        PutKeys::Full
    );
    let now = b.backups.current(&a).await.unwrap().unwrap();
    assert_eq!(now.count, 3);
    let all = b.backups.keys(&a, "v", None, 10).await.unwrap();
    assert!(all.iter().all(|k| k.data != b"better"), "nothing stored");
    // Replacing a key within the bound is fine.
    assert!(matches!(
        b.backups.put_keys(&a, "v", std::slice::from_ref(&better), 3).await.unwrap(),
        PutKeys::Stored(ref backup) if backup.count == 3
    ));
    assert!(matches!(
        b.backups.put_keys(&a, "v", &keys[3..], 4).await.unwrap(),
        PutKeys::Stored(ref backup) if backup.count == 4
    ));
    // Pages in (conv, session) order.
    let order = |ks: &[BackupKey]| {
        ks.iter()
            .map(|k| format!("{}/{}", k.conv, k.session))
            .collect::<Vec<_>>()
    };
    let first = b.backups.keys(&a, "v", None, 2).await.unwrap();
    assert_eq!(order(&first), ["dm:x/s1", "g:a/s1"]);
    let last = &first[1];
    let second = b
        .backups
        .keys(&a, "v", Some((&last.conv, last.session.as_str())), 2)
        .await
        .unwrap();
    assert_eq!(order(&second), ["g:a/s2", "g:b/s2"]);
    assert_eq!(second[0].data, b"better");
    let end = &second[1];
    assert!(b
        .backups
        .keys(&a, "v", Some((&end.conv, end.session.as_str())), 2)
        .await
        .unwrap()
        .is_empty());
}

async fn backups_concurrent_puts_lose_no_key(b: Backends) {
    let a = UserId::generate();
    b.backups
        .create(&a, Backup::new("v".into(), "alg".into(), "".into(), T0))
        .await
        .unwrap();
    let puts = (0..8).map(|i| {
        let (b, a) = (b.clone(), a.clone());
        async move {
            let keys: Vec<BackupKey> = (0..5)
                .map(|j| backup_key("g:1", &format!("s{i}-{j}"), (0, 0, false), "k"))
                .collect();
            b.backups.put_keys(&a, "v", &keys, 1000).await.unwrap()
        }
    });
    for outcome in futures_util::future::join_all(puts).await {
        assert!(matches!(outcome, PutKeys::Stored(_)));
    }
    let backup = b.backups.current(&a).await.unwrap().unwrap();
    assert_eq!(backup.count, 40);
    assert_eq!(b.backups.keys(&a, "v", None, 100).await.unwrap().len(), 40);
}

/// The relation of `a` and `z` at `version`, with each user's block and
/// retry time given from that user's side.
fn relation(
    (a, z): (&UserId, &UserId),
    link: Link,
    blocks: (Option<Millis>, Option<Millis>),
    version: u64,
) -> Relation {
    let mut r = Relation::new(a, z);
    let (ia, iz) = if r.users[0] == *a { (0, 1) } else { (1, 0) };
    r.link = link;
    r.blocked[ia] = blocks.0;
    r.blocked[iz] = blocks.1;
    r.version = version;
    r
}

fn requested(by: &UserId, at: Millis) -> Link {
    Link::Requested { by: by.clone(), at }
}

async fn contacts_change_compares_and_swaps_on_version(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    assert_eq!(b.contacts.relation(&a, &z).await.unwrap(), None);
    let first = relation((&a, &z), requested(&a, T0), (None, None), 1);
    assert_eq!(b.contacts.change(&first).await.unwrap(), Written::Done);
    assert_eq!(
        b.contacts.relation(&a, &z).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        b.contacts.relation(&z, &a).await.unwrap(),
        Some(first.clone()),
        "found in either order"
    );
    // Another first change, read from the same nothing: stale.
    let rival = relation((&z, &a), Link::None, (Some(T0), None), 1);
    assert_eq!(b.contacts.change(&rival).await.unwrap(), Written::Stale);
    assert_eq!(
        b.contacts.relation(&a, &z).await.unwrap(),
        Some(first.clone())
    );
    // The next version, every field set.
    let mut second = relation(
        (&a, &z),
        Link::Contacts { since: T0 + 1 },
        (None, Some(T0 + 2)),
        2,
    );
    let ia = second.side(&a).unwrap();
    second.retry_at[ia] = Some(T0 + 3);
    assert_eq!(b.contacts.change(&second).await.unwrap(), Written::Done);
    assert_eq!(
        b.contacts.relation(&z, &a).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        b.contacts.change(&second).await.unwrap(),
        Written::Stale,
        "the same version twice"
    );
    for skipped in [0, 1, 4] {
        let mut r = second.clone();
        r.version = skipped;
        r.link = Link::None;
        assert_eq!(
            b.contacts.change(&r).await.unwrap(),
            Written::Stale,
            "version {skipped} over 2"
        );
    }
    // A request by the other side, then nothing but a retry time: each is
    // stored as given.
    let third = relation((&a, &z), requested(&z, T0 + 4), (None, None), 3);
    assert_eq!(b.contacts.change(&third).await.unwrap(), Written::Done);
    assert_eq!(
        b.contacts.relation(&a, &z).await.unwrap(),
        Some(third.clone())
    );
    let mut fourth = relation((&a, &z), Link::None, (None, None), 4);
    fourth.retry_at[ia] = Some(T0 + 5);
    assert_eq!(b.contacts.change(&fourth).await.unwrap(), Written::Done);
    assert_eq!(b.contacts.relation(&z, &a).await.unwrap(), Some(fourth));
    // A first change that skips version 1 stores nothing.
    let (c, d) = (UserId::generate(), UserId::generate());
    let skip = relation((&c, &d), requested(&c, T0), (None, None), 2);
    assert_eq!(b.contacts.change(&skip).await.unwrap(), Written::Stale);
    assert_eq!(b.contacts.relation(&c, &d).await.unwrap(), None);
    assert_eq!(b.contacts.relation(&a, &c).await.unwrap(), None);
}

async fn contacts_relations_returns_only_stored_pairs(b: Backends) {
    let me = UserId::generate();
    let (x, y, none, stranger) = (
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let rx = relation((&me, &x), Link::Contacts { since: T0 }, (None, None), 1);
    let ry = relation((&y, &me), requested(&y, T0), (None, Some(T0)), 1);
    let other = relation(
        (&x, &stranger),
        Link::Contacts { since: T0 },
        (None, None),
        1,
    );
    for r in [&rx, &ry, &other] {
        assert_eq!(b.contacts.change(r).await.unwrap(), Written::Done);
    }
    let sorted = |mut v: Vec<Relation>| {
        v.sort_by_key(Relation::key);
        v
    };
    let got = b
        .contacts
        .relations(&me, &[none.clone(), y.clone(), x.clone(), stranger.clone()])
        .await
        .unwrap();
    assert_eq!(sorted(got), sorted(vec![rx.clone(), ry.clone()]));
    assert_eq!(
        b.contacts
            .relations(&me, std::slice::from_ref(&x))
            .await
            .unwrap(),
        std::slice::from_ref(&rx)
    );
    assert!(b.contacts.relations(&me, &[]).await.unwrap().is_empty());
    assert!(b
        .contacts
        .relations(&none, &[me.clone(), x.clone(), y.clone()])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        b.contacts.relations(&stranger, &[me, x]).await.unwrap(),
        [other],
        "only the pairs of the user asked for"
    );
}

async fn contacts_list_filters_orders_and_pages_each_view(b: Backends) {
    let me = UserId::generate();
    let o: Vec<UserId> = (0..17).map(|_| UserId::generate()).collect();
    let contacts = |since| Link::Contacts { since };
    let blk = Some(T0);
    // Every kind of pair `me` can be in, and some it is not in.
    let mut stored = vec![
        relation((&me, &o[0]), contacts(T0), (None, None), 1),
        relation((&me, &o[1]), contacts(T0), (blk, None), 1),
        relation((&me, &o[2]), requested(&o[2], T0), (None, None), 1),
        relation((&me, &o[3]), requested(&o[3], T0), (blk, None), 1),
        relation((&me, &o[4]), requested(&me, T0), (None, None), 1),
        relation((&me, &o[5]), requested(&me, T0), (None, blk), 1),
        relation((&me, &o[6]), Link::None, (blk, None), 1),
        relation((&me, &o[7]), Link::None, (None, blk), 1),
        relation((&me, &o[8]), contacts(T0), (blk, blk), 1),
        relation((&me, &o[9]), requested(&o[9], T0), (None, blk), 1),
        relation((&me, &o[10]), contacts(T0), (None, None), 1),
        relation((&me, &o[11]), requested(&o[11], T0), (None, None), 1),
        relation((&me, &o[12]), requested(&me, T0), (None, None), 1),
        relation((&me, &o[13]), Link::None, (blk, None), 1),
        relation((&me, &o[16]), requested(&me, T0), (None, None), 1),
        relation((&o[0], &o[2]), contacts(T0), (None, None), 1),
        relation((&o[3], &o[4]), requested(&o[3], T0), (blk, None), 1),
    ];
    let mut retry_only = relation((&me, &o[14]), Link::None, (None, None), 1);
    retry_only.retry_at = [Some(T0), None];
    stored.push(retry_only);
    for r in &stored {
        assert_eq!(b.contacts.change(r).await.unwrap(), Written::Done);
    }
    // Changes move pairs between listings: accepted, blocked, unblocked.
    let moves = [
        relation((&me, &o[4]), contacts(T0 + 1), (None, None), 2),
        relation((&me, &o[2]), requested(&o[2], T0), (blk, None), 2),
        relation((&me, &o[6]), Link::None, (None, None), 2),
        relation((&me, &o[15]), requested(&o[15], T0), (None, None), 1),
    ];
    for r in moves {
        assert_eq!(b.contacts.change(&r).await.unwrap(), Written::Done);
        match stored.iter_mut().find(|s| s.key() == r.key()) {
            Some(s) => *s = r,
            None => stored.push(r),
        }
    }
    let views = [
        ContactView::Contacts,
        ContactView::Incoming,
        ContactView::Outgoing,
        ContactView::Blocked,
    ];
    let expected = |user: &UserId, view: ContactView, after: Option<&str>| {
        let mut v: Vec<Relation> = stored
            .iter()
            .filter(|r| view.shows(r, user))
            .filter(|r| after.is_none_or(|a| r.key().as_str() > a))
            .cloned()
            .collect();
        v.sort_by_key(Relation::key);
        v
    };
    let everyone: Vec<&UserId> = std::iter::once(&me).chain(&o).collect();
    for user in &everyone {
        for view in views {
            let got = b.contacts.list(user, view, None, 100).await.unwrap();
            assert_eq!(got, expected(user, view, None), "{view:?} of {user}");
        }
    }
    // Sanity of the scenario: every listing of `me` has several pairs.
    for view in views {
        assert!(expected(&me, view, None).len() >= 3, "{view:?}");
    }
    // Pages of any size join into the whole listing: no gap, no duplicate.
    for view in views {
        let whole = expected(&me, view, None);
        for limit in [1, 2, 3] {
            let mut joined = Vec::new();
            let mut after: Option<String> = None;
            // Bounded, so that a store ignoring `after` fails, not hangs.
            for _ in 0..=whole.len() {
                let page = b
                    .contacts
                    .list(&me, view, after.as_deref(), limit)
                    .await
                    .unwrap();
                assert!(page.len() <= limit, "{view:?}: a page over its limit");
                let Some(last) = page.last() else { break };
                after = Some(last.key());
                joined.extend(page);
            }
            assert_eq!(joined, whole, "{view:?} in pages of {limit}");
        }
        // `after` is any key: one of a pair not listed here, or none stored.
        let mut positions: Vec<String> = stored.iter().map(Relation::key).collect();
        positions.extend([String::new(), format!("{}|", me), "~".to_owned()]);
        for after in &positions {
            assert_eq!(
                b.contacts.list(&me, view, Some(after), 100).await.unwrap(),
                expected(&me, view, Some(after)),
                "{view:?} after {after:?}"
            );
        }
        assert!(b
            .contacts
            .list(&me, view, None, 0)
            .await
            .unwrap()
            .is_empty());
    }
}

async fn contacts_concurrent_changes_of_one_pair_admit_one(b: Backends) {
    let (a, z) = (UserId::generate(), UserId::generate());
    let mut base: Option<Relation> = None;
    for version in [1, 2] {
        // Eight writers read the same state and each writes its own next one.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let contacts = b.contacts.clone();
                let mut next = base.clone().unwrap_or_else(|| Relation::new(&a, &z));
                next.version = version;
                let by = if i % 2 == 0 { &a } else { &z };
                next.link = requested(by, T0 + i);
                tokio::spawn(async move { (contacts.change(&next).await, next) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (written, next) = t.await.unwrap();
            if written.unwrap() == Written::Done {
                winners.push(next);
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "version {version}: exactly one change wins"
        );
        let stored = b.contacts.relation(&z, &a).await.unwrap();
        assert_eq!(stored.as_ref(), winners.first(), "the winner is stored");
        base = stored;
    }
}
