//! Conformance cases of a message's life after it is sent: replies, edits,
//! reactions, deletion, disappearing messages and mentions, as the stores
//! keep them (the rules of who may do what are the request layer's).
//! [`super::conformance::cases`] runs them with the others.

use super::conformance::{group_of, msg, new_user, pair_in, text, Case, T0};
use crate::model::MediaId;
use crate::model::{Content, ConversationId, Message, MessageId, Rel, RelKind, UserId};
use crate::store::ProfileUpdate;
use crate::store::{Changed, ConversationState, NewMessage};
use crate::Backends;

cases!(
    pub(super) fn cases;
    life_relations_round_trip_and_are_found_by_their_target,
    life_delete_removes_the_content_of_the_target_its_edits_and_reactions,
    life_a_retried_delete_is_stored_once_and_returns_the_tombstones_stay,
    life_expire_removes_content_when_due_and_keeps_the_seq,
    life_unread_counts_stand_alone_messages_and_mentions,
    life_media_lists_are_kept_and_go_with_the_content,
    life_media_in_use_follows_messages_avatars_and_deletions,
);

const HOUR: i64 = 3_600_000;

/// An entry of `from` pointing at `target` with `rel`.
fn related(
    conv: &ConversationId,
    from: &UserId,
    client_id: &str,
    kind: RelKind,
    target: &MessageId,
    content: Content,
) -> NewMessage {
    NewMessage::new(
        conv.clone(),
        from.clone(),
        client_id.to_owned(),
        T0 + 1,
        content,
    )
    .related(Some(Rel::new(kind, target.clone())), Vec::new())
}

async fn put(b: &Backends, m: NewMessage) -> Message {
    let appended = b.messages.append(m).await.unwrap();
    assert!(!appended.duplicate);
    Message::clone(&appended.message)
}

async fn all(b: &Backends, conv: &ConversationId) -> Vec<Message> {
    b.messages.read_after(conv, 0, 1000).await.unwrap()
}

fn client_ids(v: &[Message]) -> Vec<&str> {
    v.iter().map(|m| m.client_id.as_str()).collect()
}

fn deleted() -> Content {
    Content::Deleted {}
}

async fn life_relations_round_trip_and_are_found_by_their_target(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let m1 = put(&b, msg(&c, &a, &z, "m1", T0)).await;
    let m2 = put(&b, msg(&c, &z, &a, "m2", T0)).await;
    let reply = put(&b, related(&c, &z, "r", RelKind::Reply, &m1.id, text("re"))).await;
    let edit = put(&b, related(&c, &a, "e", RelKind::Edit, &m1.id, text("m1!"))).await;
    let x = put(
        &b,
        related(&c, &z, "x", RelKind::Reaction, &m1.id, text("👍")),
    )
    .await;
    let y = put(
        &b,
        related(&c, &a, "y", RelKind::Reaction, &m2.id, text("🎉")),
    )
    .await;
    assert_eq!(
        (reply.seq, edit.seq, x.seq, y.seq),
        (3, 4, 5, 6),
        "relations share the conversation's seq"
    );
    let stored = all(&b, &c).await;
    assert_eq!(stored[2], reply, "the relation is kept as sent");
    assert_eq!(
        stored[3].rel,
        Some(Rel::new(RelKind::Edit, m1.id.clone())),
        "{stored:?}"
    );
    assert_eq!(stored[4].content, text("👍"));
    let got = b
        .messages
        .by_ids(&c, &[m2.id.clone(), MessageId::generate(), m1.id.clone()])
        .await
        .unwrap();
    assert_eq!(
        client_ids(&got),
        ["m1", "m2"],
        "by seq, unknown ids left out"
    );
    let about_m1 = b
        .messages
        .related(&c, std::slice::from_ref(&m1.id), None)
        .await
        .unwrap();
    assert_eq!(
        client_ids(&about_m1),
        ["e", "x"],
        "edits and reactions, not replies"
    );
    let by_z = b
        .messages
        .related(&c, &[m1.id.clone(), m2.id.clone()], Some(&z))
        .await
        .unwrap();
    assert_eq!(client_ids(&by_z), ["x"], "only the sender asked for");
    let both = b
        .messages
        .related(&c, &[m2.id.clone(), m1.id.clone()], None)
        .await
        .unwrap();
    assert_eq!(client_ids(&both), ["e", "x", "y"], "ascending by seq");
    // Another conversation knows none of these ids.
    let (_, _, other) = pair_in(&b).await;
    assert!(b
        .messages
        .by_ids(&other, std::slice::from_ref(&m1.id))
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .messages
        .related(&other, std::slice::from_ref(&m1.id), None)
        .await
        .unwrap()
        .is_empty());
    assert!(b.messages.related(&c, &[], None).await.unwrap().is_empty());
    // A retry of a relation is stored once, like any message.
    let again = b
        .messages
        .append(related(&c, &z, "x", RelKind::Reaction, &m1.id, text("👍")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(*again.message, x);
    assert_eq!(all(&b, &c).await.len(), 6);
}

async fn life_delete_removes_the_content_of_the_target_its_edits_and_reactions(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let m1 = put(&b, msg(&c, &a, &z, "m1", T0)).await;
    let m2 = put(&b, msg(&c, &a, &z, "m2", T0)).await;
    put(
        &b,
        related(&c, &a, "e", RelKind::Edit, &m1.id, text("secret!")),
    )
    .await;
    put(
        &b,
        related(&c, &z, "x", RelKind::Reaction, &m1.id, text("👍")),
    )
    .await;
    put(&b, related(&c, &z, "r", RelKind::Reply, &m1.id, text("re"))).await;
    let keep = put(
        &b,
        related(&c, &z, "k", RelKind::Reaction, &m2.id, text("🎉")),
    )
    .await;
    let d = put(&b, related(&c, &a, "d", RelKind::Delete, &m1.id, deleted())).await;
    assert_eq!(d.seq, 7);
    assert_eq!(d.content, deleted());
    let stored = all(&b, &c).await;
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>(),
        "nothing leaves a gap"
    );
    let contents: Vec<(&str, &Content)> = stored
        .iter()
        .map(|m| (m.client_id.as_str(), &m.content))
        .collect();
    assert_eq!(
        contents,
        [
            ("m1", &deleted()),
            ("m2", &text("m2")),
            ("e", &deleted()),
            ("x", &deleted()),
            ("r", &text("re")),
            ("k", &text("🎉")),
            ("d", &deleted()),
        ],
        "the target, its edit and its reaction lose their content; the reply is a message of its own"
    );
    assert_eq!(stored[0].id, m1.id, "a tombstone keeps the envelope");
    assert_eq!((stored[0].from.clone(), stored[0].ts), (a.clone(), m1.ts));
    assert_eq!(
        stored[3].rel,
        Some(Rel::new(RelKind::Reaction, m1.id.clone())),
        "and the relation"
    );
    // Every way of reading it sees the tombstone, the idempotency index too.
    let page = b.messages.history(&c, None, 50).await.unwrap();
    assert_eq!(page, stored);
    let by_id = b
        .messages
        .by_ids(&c, std::slice::from_ref(&m1.id))
        .await
        .unwrap();
    assert_eq!(by_id[0].content, deleted());
    let retry = b.messages.append(msg(&c, &a, &z, "m1", T0)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        retry.message.content,
        deleted(),
        "no copy of the content is left"
    );
    let last = b.messages.last_entries(&[(c.clone(), 1)]).await.unwrap();
    assert_eq!(last[0].as_ref().map(|m| &m.content), Some(&deleted()));
    // Taking a reaction back deletes only it.
    put(
        &b,
        related(&c, &z, "undo", RelKind::Delete, &keep.id, deleted()),
    )
    .await;
    let stored = all(&b, &c).await;
    assert_eq!(stored[5].content, deleted());
    assert_eq!(stored[1].content, text("m2"), "its target stays");
}

async fn life_a_retried_delete_is_stored_once_and_returns_the_tombstones_stay(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let m1 = put(&b, msg(&c, &a, &z, "m1", T0)).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let m = b.messages.clone();
            let d = related(&c, &a, "d", RelKind::Delete, &m1.id, deleted());
            tokio::spawn(async move { m.append(d).await.unwrap() })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        let appended = t.await.unwrap();
        stored += usize::from(!appended.duplicate);
        assert_eq!(appended.message.seq, 2);
    }
    assert_eq!(
        stored, 1,
        "concurrent retries of one deletion store it once"
    );
    let entries = all(&b, &c).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].content, deleted());
    // A relation to a deleted message (one that raced the deletion) is
    // kept as sent: the request layer refuses those it sees in time.
    put(
        &b,
        related(&c, &z, "late", RelKind::Reaction, &m1.id, text("👀")),
    )
    .await;
    assert_eq!(all(&b, &c).await.len(), 3);
}

/// `state` with its timer set to `after` by `by`, stored with its notice.
async fn set_timer(b: &Backends, conv: &ConversationId, by: &UserId, after: Option<i64>) {
    let state = b.messages.conversation(conv).await.unwrap().unwrap();
    let (next, notice) =
        crate::groups::apply(&state, by, crate::groups::Action::SetTimer(after), T0, 1000).unwrap();
    let notice = NewMessage::notice(conv.clone(), by.clone(), T0, notice.unwrap());
    assert!(matches!(
        b.messages.change(&next, Some(notice)).await.unwrap(),
        Changed::Done(Some(_))
    ));
    let stored = b.messages.conversation(conv).await.unwrap().unwrap();
    assert_eq!(stored.expire_after, after, "the timer is stored");
}

async fn life_expire_removes_content_when_due_and_keeps_the_seq(b: Backends) {
    let (a, z, c) = pair_in(&b).await;
    let before = put(&b, msg(&c, &a, &z, "before", T0)).await;
    assert_eq!(before.expires_at, None, "no timer, no expiry");
    set_timer(&b, &c, &a, Some(HOUR)).await;
    let notice = all(&b, &c).await.pop().unwrap();
    assert_eq!(
        notice.content,
        Content::TimerChanged {
            expire_after: Some(HOUR)
        }
    );
    assert_eq!(notice.expires_at, None, "a notice has no content to lose");
    let m1 = put(&b, msg(&c, &a, &z, "m1", T0 + 10)).await;
    assert_eq!(m1.expires_at, Some(T0 + 10 + HOUR), "from the send");
    let edit = NewMessage::new(
        c.clone(),
        a.clone(),
        "e".into(),
        T0 + 20 * HOUR / 10,
        text("m1!"),
    )
    .related(Some(Rel::new(RelKind::Edit, m1.id.clone())), Vec::new());
    let edit = put(&b, edit).await;
    assert_eq!(edit.expires_at, Some(T0 + 30 * HOUR / 10));
    let m2 = put(&b, msg(&c, &z, &a, "m2", T0 + HOUR)).await;
    // In another conversation, with a shorter timer due sooner.
    let (p, q, other) = pair_in(&b).await;
    set_timer(&b, &other, &q, Some(HOUR)).await;
    let o1 = put(&b, msg(&other, &p, &q, "o1", T0)).await;
    set_timer(&b, &c, &z, None).await;
    let after = put(&b, msg(&c, &a, &z, "after", T0 + 10)).await;
    assert_eq!(after.expires_at, None, "the timer is off again");

    assert_eq!(b.messages.expire(T0 + 9, 100).await.unwrap(), 0, "none due");
    assert_eq!(
        b.messages.expire(T0 + 10 + HOUR, 1).await.unwrap(),
        1,
        "at most `limit`"
    );
    assert_eq!(b.messages.expire(T0 + 10 + HOUR, 100).await.unwrap(), 1);
    assert_eq!(b.messages.expire(T0 + 10 + HOUR, 100).await.unwrap(), 0);
    let gone = all(&b, &other).await;
    assert_eq!(gone.last().map(|m| &m.content), Some(&deleted()));
    assert_eq!(gone.last().map(|m| m.id.clone()), Some(o1.id));
    let entries = all(&b, &c).await;
    let by_id = |id: &MessageId| entries.iter().find(|m| m.id == *id).unwrap();
    assert_eq!(by_id(&m1.id).content, deleted());
    assert_eq!(by_id(&m1.id).expires_at, None, "handled once");
    assert_eq!(
        by_id(&edit.id).content,
        deleted(),
        "an edit goes with its message, before its own time"
    );
    assert_eq!(by_id(&m2.id).content, text("m2"), "not due yet");
    assert_eq!(by_id(&before.id).content, text("before"));
    assert_eq!(by_id(&after.id).content, text("after"));
    assert_eq!(
        entries.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=entries.len() as u64).collect::<Vec<_>>(),
        "the tombstones keep their seqs"
    );
    let retry = b.messages.append(msg(&c, &a, &z, "m1", T0)).await.unwrap();
    assert_eq!(retry.message.content, deleted(), "no copy is left behind");
    assert_eq!(b.messages.expire(T0 + 2 * HOUR, 100).await.unwrap(), 1);
    let later = all(&b, &c).await;
    assert_eq!(later[m2.seq as usize - 1].content, deleted());
}

async fn life_unread_counts_stand_alone_messages_and_mentions(b: Backends) {
    let (owner, x, y) = (UserId::generate(), UserId::generate(), UserId::generate());
    let g = group_of(&b, &owner, &[x.clone(), y.clone()]).await;
    let c = g.conv.clone();
    let mention = |from: &UserId, id: &str, who: Vec<UserId>| {
        NewMessage::new(c.clone(), from.clone(), id.into(), T0, text(id)).related(None, who)
    };
    let m1 = put(&b, mention(&x, "m1", vec![owner.clone()])).await;
    assert_eq!(
        m1.mentions,
        std::slice::from_ref(&owner),
        "mentions are kept"
    );
    put(&b, mention(&y, "m2", vec![owner.clone(), x.clone()])).await;
    put(&b, mention(&owner, "m3", vec![owner.clone()])).await;
    put(
        &b,
        related(&c, &y, "x", RelKind::Reaction, &m1.id, text("👍")),
    )
    .await;
    put(&b, related(&c, &x, "e", RelKind::Edit, &m1.id, text("m1!"))).await;
    put(&b, related(&c, &y, "r", RelKind::Reply, &m1.id, text("re"))).await;
    let state: ConversationState = b.messages.conversation(&c).await.unwrap().unwrap();
    let unread = |u: UserId| {
        let (state, m) = (state.clone(), b.messages.clone());
        async move {
            let n = m.unread(&u, &[&state]).await.unwrap()[0];
            (n.messages, n.mentions)
        }
    };
    assert_eq!(
        unread(owner.clone()).await,
        (3, 2),
        "reactions and edits are not unread; own messages neither"
    );
    assert_eq!(unread(x.clone()).await, (3, 1));
    assert_eq!(unread(y.clone()).await, (2, 0));
    b.messages
        .mark_read(&owner, &c, m1.seq, true, T0)
        .await
        .unwrap();
    assert_eq!(unread(owner).await, (2, 1));
}

async fn life_media_lists_are_kept_and_go_with_the_content(b: Backends) {
    use crate::model::MediaId;
    let (a, z, c) = pair_in(&b).await;
    let (photo, doc) = (MediaId::generate(), MediaId::generate());
    let image = Content::Image {
        encryption: None,
        media: photo.clone(),
        mime: "image/png".into(),
        width: 640,
        height: 480,
        size: 1234,
        thumbnail: Some("iVBORw0KGgo".into()),
        caption: Some("the view".into()),
    };
    let album = NewMessage::new(c.clone(), a.clone(), "album".into(), T0, image.clone())
        .with_media(vec![photo.clone(), doc.clone()]);
    let stored = put(&b, album).await;
    assert_eq!(stored.media, [photo.clone(), doc.clone()]);
    assert_eq!(stored.content, image);
    let plain = put(&b, msg(&c, &z, &a, "plain", T0)).await;
    assert!(plain.media.is_empty());
    let entries = all(&b, &c).await;
    assert_eq!(entries[0].media, [photo, doc], "the list is kept, in order");
    assert_eq!(entries[0].content, image, "and the content as sent");
    assert!(entries[1].media.is_empty());
    // A deletion takes the list with the content: the files can be collected.
    put(
        &b,
        related(&c, &a, "d", RelKind::Delete, &stored.id, deleted()),
    )
    .await;
    let entries = all(&b, &c).await;
    assert_eq!(entries[0].content, deleted());
    assert!(entries[0].media.is_empty(), "{:?}", entries[0]);
}

/// What the collection of unreferenced files asks the stores: which of
/// some ids a live entry lists, or a group or user has as avatar; a
/// deletion or expiry, a changed avatar and a left group let go.
async fn life_media_in_use_follows_messages_avatars_and_deletions(b: Backends) {
    let sorted = |mut v: Vec<MediaId>| {
        v.sort();
        v
    };
    let (a, z, c) = pair_in(&b).await;
    let [photo, doc, again, fleeting, group_pic, face, lone] =
        std::array::from_fn::<_, 7, _>(|_| MediaId::generate());
    let file = |m: &MediaId| Content::File {
        encryption: None,
        media: m.clone(),
        name: "f".into(),
        mime: "text/plain".into(),
        size: 1,
    };
    let album = put(
        &b,
        NewMessage::new(c.clone(), a.clone(), "album".into(), T0, file(&photo))
            .with_media(vec![photo.clone(), doc.clone()]),
    )
    .await;
    // The same photo in another entry, and one that disappears.
    put(
        &b,
        NewMessage::new(c.clone(), z.clone(), "again".into(), T0, file(&photo))
            .with_media(vec![photo.clone(), again.clone()]),
    )
    .await;
    let mut state = b.messages.conversation(&c).await.unwrap().unwrap();
    state.expire_after = Some(HOUR);
    state.version += 1;
    assert!(matches!(
        b.messages.change(&state, None).await.unwrap(),
        Changed::Done(_)
    ));
    put(
        &b,
        NewMessage::new(c.clone(), a.clone(), "brief".into(), T0, file(&fleeting))
            .with_media(vec![fleeting.clone()]),
    )
    .await;
    let mut group = group_of(&b, &a, std::slice::from_ref(&z)).await;
    group.info.avatar = Some(group_pic.as_str().to_owned());
    group.version += 1;
    assert!(matches!(
        b.messages.change(&group, None).await.unwrap(),
        Changed::Done(_)
    ));
    let face_update = ProfileUpdate {
        avatar: Some(Some(face.as_str().to_owned())),
        ..ProfileUpdate::default()
    };
    // Avatars are users' (the conversations above need no user records).
    let someone = b.users.create(new_user("Pictured")).await.unwrap().id;
    b.users
        .update_profile(&someone, &face_update)
        .await
        .unwrap();

    let ids = [&photo, &doc, &again, &fleeting, &group_pic, &face, &lone].map(|m| m.clone());
    let in_use = b.messages.media_in_use(&ids).await.unwrap();
    assert_eq!(
        sorted(in_use),
        sorted(vec![
            photo.clone(),
            doc.clone(),
            again.clone(),
            fleeting.clone(),
            group_pic.clone()
        ])
    );
    assert_eq!(
        b.users.avatars_in_use(&ids).await.unwrap(),
        std::slice::from_ref(&face)
    );
    assert!(b.messages.media_in_use(&[]).await.unwrap().is_empty());

    // The album deleted: its doc is free, its photo still listed by the
    // other entry. The brief one expires. The avatars change.
    put(
        &b,
        related(&c, &a, "del", RelKind::Delete, &album.id, deleted()),
    )
    .await;
    assert_eq!(b.messages.expire(T0 + 2 * HOUR, 100).await.unwrap(), 1);
    group.info.avatar = None;
    group.version += 1;
    assert!(matches!(
        b.messages.change(&group, None).await.unwrap(),
        Changed::Done(_)
    ));
    let other = ProfileUpdate {
        avatar: Some(Some(lone.as_str().to_owned())),
        ..ProfileUpdate::default()
    };
    b.users.update_profile(&someone, &other).await.unwrap();
    let in_use = b.messages.media_in_use(&ids).await.unwrap();
    assert_eq!(sorted(in_use), sorted(vec![photo.clone(), again.clone()]));
    assert_eq!(
        b.users.avatars_in_use(&ids).await.unwrap(),
        std::slice::from_ref(&lone)
    );
    let none = ProfileUpdate {
        avatar: Some(None),
        ..ProfileUpdate::default()
    };
    b.users.update_profile(&someone, &none).await.unwrap();
    assert!(b.users.avatars_in_use(&ids).await.unwrap().is_empty());
}
