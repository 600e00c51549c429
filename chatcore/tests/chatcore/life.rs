//! A message's life after it is sent, through whole sessions: replies,
//! edits, reactions and deletions as entries that point at their target,
//! what history shows beside a page, who may do what (and the errors of
//! those who may not), mentions that alert in a muted group, and the
//! disappearing-message timer with the injected clock.

use std::sync::Arc;
use std::time::Duration;

use chatcore::model::{
    Content, ConversationId, Message, MessageId, Millis, Rel, RelKind, UserId, MAX_REACTIONS,
};
use chatcore::protocol::{ClientFrame, ErrorCode, ServerFrame};
use chatcore::server::ManualClock;
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};

use crate::sessions::{contacts, Client, PW};

const HOUR: Millis = 3_600_000;

fn server() -> (Arc<Server>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chatcore::model::now_millis()));
    let s = Server::with_clock(Backends::memory(), fast_config(), clock.clone()).unwrap();
    (s, clock)
}

fn text(t: &str) -> Content {
    Content::Text { text: t.into() }
}

/// Sends `content` to `conv` pointing at `target` with `kind` (or at
/// nothing), mentioning `mentions`.
async fn send(
    c: &mut Client,
    conv: &ConversationId,
    client_id: &str,
    rel: Option<(RelKind, &MessageId)>,
    mentions: Vec<UserId>,
    content: Content,
) -> ServerFrame {
    let conv = conv.clone();
    let rel = rel.map(|(kind, target)| Rel::new(kind, target.clone()));
    c.req(|id| ClientFrame::Send {
        media: Vec::new(),
        id,
        conv: Some(conv),
        to: None,
        client_id: client_id.into(),
        rel,
        mentions,
        content,
    })
    .await
}

/// The id and seq of a `sent` reply.
fn sent(f: &ServerFrame) -> (MessageId, u64) {
    match f {
        ServerFrame::Sent {
            message_id, seq, ..
        } => (message_id.clone(), *seq),
        other => panic!("expected sent: {other:?}"),
    }
}

async fn rel(
    c: &mut Client,
    conv: &ConversationId,
    client_id: &str,
    kind: RelKind,
    target: &MessageId,
    content: Content,
) -> ServerFrame {
    send(
        c,
        conv,
        client_id,
        Some((kind, target)),
        Vec::new(),
        content,
    )
    .await
}

/// The error code and message of an `error` reply.
fn refused(f: &ServerFrame) -> (ErrorCode, String) {
    match f {
        ServerFrame::Error { code, message, .. } => (*code, message.clone()),
        other => panic!("expected an error: {other:?}"),
    }
}

/// The messages pushed among `frames`.
fn messages(frames: &[ServerFrame]) -> Vec<Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { message } => Some(Message::clone(message)),
            _ => None,
        })
        .collect()
}

pub(crate) async fn history(
    c: &mut Client,
    conv: &ConversationId,
    before: Option<u64>,
    limit: u32,
) -> (Vec<Message>, Vec<Message>) {
    let conv = conv.clone();
    match c
        .req(|id| ClientFrame::History {
            id,
            conv,
            before,
            limit: Some(limit),
        })
        .await
    {
        ServerFrame::Messages {
            messages, related, ..
        } => (messages, related),
        other => panic!("{other:?}"),
    }
}

fn client_ids(v: &[Message]) -> Vec<&str> {
    v.iter().map(|m| m.client_id.as_str()).collect()
}

/// The first page of the caller's conversation list.
async fn conversations(c: &mut Client) -> Vec<chatcore::protocol::ConversationSummary> {
    match c
        .req(|id| ClientFrame::Conversations {
            id,
            list: None,
            after: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Conversations { conversations, .. } => conversations,
        other => panic!("{other:?}"),
    }
}

/// The id of Alice's "hello", seq 1 of the conversation `contacts` makes.
async fn hello_id(c: &mut Client, conv: &ConversationId) -> MessageId {
    let (page, _) = history(c, conv, Some(2), 1).await;
    assert_eq!(page[0].client_id, "hello");
    page[0].id.clone()
}

#[tokio::test]
async fn replies_edits_and_reactions_arrive_live_and_beside_the_history_page() {
    let (s, _) = server();
    let (mut a, mut b, alice, _bob, conv) = contacts(&s).await;
    let hello = hello_id(&mut a, &conv).await;

    let (reply, _) = sent(&rel(&mut b, &conv, "r1", RelKind::Reply, &hello, text("hi!")).await);
    let (edit, _) = sent(&rel(&mut a, &conv, "e1", RelKind::Edit, &hello, text("hello!")).await);
    let (thumb, _) = sent(&rel(&mut b, &conv, "x1", RelKind::Reaction, &hello, text("👍")).await);
    // A retry of the reaction is the same reaction.
    let retry = rel(&mut b, &conv, "x1", RelKind::Reaction, &hello, text("👍")).await;
    assert!(
        matches!(&retry, ServerFrame::Sent { duplicate: true, message_id, .. } if *message_id == thumb),
        "{retry:?}"
    );
    let live = messages(&a.drain().await);
    assert_eq!(
        client_ids(&live),
        ["r1", "x1"],
        "Alice sees Bob's reply and reaction"
    );
    assert_eq!(live[0].rel, Some(Rel::new(RelKind::Reply, hello.clone())));
    assert_eq!(
        live[1].rel,
        Some(Rel::new(RelKind::Reaction, hello.clone()))
    );
    let live = messages(&b.drain().await);
    assert_eq!(client_ids(&live), ["e1"], "Bob sees Alice's edit");
    assert_eq!(live[0].content, text("hello!"));

    // The page holding "hello" comes with its edit and reaction, though they are newer.
    let (page, related) = history(&mut b, &conv, Some(2), 1).await;
    assert_eq!(client_ids(&page), ["hello"]);
    assert_eq!(client_ids(&related), ["e1", "x1"]);
    // The page holding the reply comes with the message it quotes, and that one's edit
    // and reaction; what is on the page is not repeated.
    let (page, related) = history(&mut b, &conv, None, 3).await;
    assert_eq!(client_ids(&page), ["r1", "e1", "x1"]);
    assert_eq!(client_ids(&related), ["hello"]);
    let (page, related) = history(&mut b, &conv, Some(3), 1).await;
    assert_eq!(page[0].id, reply);
    assert_eq!(client_ids(&related), ["hello", "e1", "x1"]);
    assert_eq!(related[1].id, edit);

    // Edits and reactions are not unread messages; the reply is.
    let conversations = conversations(&mut b).await;
    assert_eq!(conversations[0].unread, 1, "Alice's hello; not her edit");
    assert_eq!(
        conversations[0].last.as_ref().unwrap().rel,
        Some(RelKind::Reaction)
    );
    let _ = alice;
}

#[tokio::test]
async fn who_may_edit_react_reply_and_delete_and_the_errors_of_the_others() {
    let (s, clock) = server();
    let (mut a, mut b, _alice, _bob, conv) = contacts(&s).await;
    let hello = hello_id(&mut a, &conv).await;
    let (thumb, _) = sent(&rel(&mut b, &conv, "x1", RelKind::Reaction, &hello, text("👍")).await);

    // Someone else's message is not one's own to edit or delete.
    let r = rel(&mut b, &conv, "e", RelKind::Edit, &hello, text("mine now")).await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden, "{r:?}");
    let r = rel(
        &mut b,
        &conv,
        "d",
        RelKind::Delete,
        &hello,
        Content::Deleted {},
    )
    .await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden);
    // Only a message is edited, reacted to or replied to; a deletion says so.
    let r = rel(&mut b, &conv, "e2", RelKind::Edit, &thumb, text("👎")).await;
    assert_eq!(refused(&r).0, ErrorCode::InvalidArgument);
    let r = rel(&mut a, &conv, "r", RelKind::Reply, &thumb, text("?")).await;
    assert_eq!(refused(&r).0, ErrorCode::InvalidArgument);
    let r = rel(&mut a, &conv, "d2", RelKind::Delete, &hello, text("gone")).await;
    assert_eq!(refused(&r).0, ErrorCode::InvalidArgument);
    let r = send(&mut a, &conv, "d3", None, Vec::new(), Content::Deleted {}).await;
    assert_eq!(refused(&r).0, ErrorCode::InvalidArgument);
    // A reaction is one emoji.
    for bad in ["ab", " ", "👍👍", &"👍".repeat(20)] {
        let r = rel(&mut a, &conv, "x", RelKind::Reaction, &hello, text(bad)).await;
        assert_eq!(refused(&r).0, ErrorCode::InvalidArgument, "{bad:?}");
    }
    let family = "👨‍👩‍👧‍👦";
    sent(
        &rel(
            &mut a,
            &conv,
            "fam",
            RelKind::Reaction,
            &hello,
            text(family),
        )
        .await,
    );
    // An unknown id, and another conversation's message, are not found alike.
    let r = rel(
        &mut a,
        &conv,
        "r2",
        RelKind::Reply,
        &MessageId::generate(),
        text("?"),
    )
    .await;
    assert_eq!(refused(&r).0, ErrorCode::NotFound);
    let mut c = Client::connect(&s).await;
    let carol = c.register("carol", "+443333333333").await;
    let elsewhere = sent(&c.send(&_alice, "c1", "hi alice").await).0;
    let r = rel(&mut a, &conv, "r3", RelKind::Reply, &elsewhere, text("?")).await;
    assert_eq!(refused(&r).0, ErrorCode::NotFound);
    // Nor can an outsider point at anything of the conversation.
    let r = rel(&mut c, &conv, "x9", RelKind::Reaction, &hello, text("👀")).await;
    assert_eq!(refused(&r).0, ErrorCode::NotFound);
    let _ = carol;

    // The sender edits within the window, not after it.
    sent(&rel(&mut a, &conv, "e3", RelKind::Edit, &hello, text("hello!")).await);
    clock.advance(Duration::from_millis(s.config().edit_window_ms + 1));
    let r = rel(&mut a, &conv, "e4", RelKind::Edit, &hello, text("hello?")).await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden);

    // Deleted for everyone: Bob is told, the content is gone, and nothing points at it again.
    b.drain().await;
    let (del, _) = sent(
        &rel(
            &mut a,
            &conv,
            "del",
            RelKind::Delete,
            &hello,
            Content::Deleted {},
        )
        .await,
    );
    let live = messages(&b.drain().await);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].rel, Some(Rel::new(RelKind::Delete, hello.clone())));
    assert_eq!(live[0].id, del);
    let again = rel(
        &mut a,
        &conv,
        "del",
        RelKind::Delete,
        &hello,
        Content::Deleted {},
    )
    .await;
    assert!(
        matches!(&again, ServerFrame::Sent { duplicate: true, message_id, .. } if *message_id == del),
        "a retried deletion is answered as the first: {again:?}"
    );
    let (page, related) = history(&mut b, &conv, Some(2), 1).await;
    assert_eq!(page[0].content, Content::Deleted {});
    assert!(
        related.iter().all(|m| m.content == Content::Deleted {}),
        "its edits and reactions went with it: {related:?}"
    );
    // A reply still quotes it (as "message deleted"); nothing else points at it.
    sent(
        &rel(
            &mut b,
            &conv,
            "late-reply",
            RelKind::Reply,
            &hello,
            text("?"),
        )
        .await,
    );
    for (kind, content) in [
        (RelKind::Reaction, text("👀")),
        (RelKind::Delete, Content::Deleted {}),
    ] {
        let r = rel(&mut b, &conv, "late", kind, &hello, content).await;
        let (code, message) = refused(&r);
        assert_eq!(code, ErrorCode::NotFound, "{kind:?}");
        assert!(message.contains("deleted"), "{message}");
    }
}

#[tokio::test]
async fn reactions_are_bounded_per_member_and_taking_one_back_frees_its_place() {
    let (s, _) = server();
    let (mut a, mut b, _alice, _bob, conv) = contacts(&s).await;
    let hello = hello_id(&mut a, &conv).await;
    let emoji: Vec<String> = (0..=MAX_REACTIONS as u32)
        .map(|i| char::from_u32(0x1F600 + i).unwrap().to_string())
        .collect();
    let mut ids = Vec::new();
    for (i, e) in emoji.iter().take(MAX_REACTIONS).enumerate() {
        let f = rel(
            &mut b,
            &conv,
            &format!("x{i}"),
            RelKind::Reaction,
            &hello,
            text(e),
        )
        .await;
        ids.push(sent(&f).0);
    }
    let last = &emoji[MAX_REACTIONS];
    let r = rel(&mut b, &conv, "over", RelKind::Reaction, &hello, text(last)).await;
    assert_eq!(refused(&r).0, ErrorCode::LimitReached);
    // Alice has her own allowance.
    sent(&rel(&mut a, &conv, "mine", RelKind::Reaction, &hello, text(last)).await);
    // Bob takes one back (a deletion of his reaction), and has room again.
    sent(
        &rel(
            &mut b,
            &conv,
            "undo",
            RelKind::Delete,
            &ids[0],
            Content::Deleted {},
        )
        .await,
    );
    sent(&rel(&mut b, &conv, "over", RelKind::Reaction, &hello, text(last)).await);
    // Alice cannot take Bob's back.
    let r = rel(
        &mut a,
        &conv,
        "undo2",
        RelKind::Delete,
        &ids[1],
        Content::Deleted {},
    )
    .await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden);
}

/// Creates a group of `owner` with `members`; its id.
async fn group(owner: &mut Client, members: &[&UserId]) -> ConversationId {
    let members = members.iter().map(|u| (*u).clone()).collect();
    match owner
        .req(|id| ClientFrame::CreateGroup {
            id,
            title: "Tea".into(),
            description: None,
            avatar: None,
            members,
            encrypted: false,
        })
        .await
    {
        ServerFrame::Conversation { conversation, .. } => conversation.conv.clone(),
        other => panic!("{other:?}"),
    }
}

async fn three(s: &Arc<Server>) -> (Client, Client, Client, UserId, UserId, UserId) {
    let (mut a, mut b, alice, bob, _) = contacts(s).await;
    let mut c = Client::connect(s).await;
    let carol = c.register("carol", "+443333333333").await;
    // Carol and Alice, Carol and Bob are contacts, so each may add the other.
    async fn befriend(x: &mut Client, y: &mut Client, xu: &UserId, yu: &UserId) {
        for (c, other) in [(&mut *x, yu), (&mut *y, xu)] {
            let other = other.clone();
            let r = c
                .req(|id| ClientFrame::Contact {
                    id,
                    user: other,
                    action: chatcore::protocol::ContactAction::Request,
                })
                .await;
            assert!(!matches!(r, ServerFrame::Error { .. }), "{r:?}");
        }
    }
    befriend(&mut c, &mut a, &carol, &alice).await;
    befriend(&mut c, &mut b, &carol, &bob).await;
    (a, b, c, alice, bob, carol)
}

#[tokio::test]
async fn in_a_group_admins_delete_any_message_and_members_only_their_own() {
    let (s, _) = server();
    let (mut a, mut b, mut c, _alice, bob, carol) = three(&s).await;
    let g = group(&mut a, &[&bob, &carol]).await;
    let (from_bob, _) = sent(&send(&mut b, &g, "b1", None, Vec::new(), text("hi")).await);
    let (from_carol, _) = sent(&send(&mut c, &g, "c1", None, Vec::new(), text("yo")).await);
    let r = rel(
        &mut c,
        &g,
        "d",
        RelKind::Delete,
        &from_bob,
        Content::Deleted {},
    )
    .await;
    assert_eq!(
        refused(&r).0,
        ErrorCode::Forbidden,
        "a member deletes only its own"
    );
    sent(
        &rel(
            &mut a,
            &g,
            "d",
            RelKind::Delete,
            &from_carol,
            Content::Deleted {},
        )
        .await,
    );
    let live = messages(&b.drain().await);
    assert_eq!(
        live.last().unwrap().rel,
        Some(Rel::new(RelKind::Delete, from_carol))
    );
    // Once Bob left, he reacts to nothing there.
    let left = b
        .req(|id| ClientFrame::Leave {
            id,
            conv: g.clone(),
        })
        .await;
    assert!(!matches!(left, ServerFrame::Error { .. }), "{left:?}");
    let r = rel(&mut b, &g, "late", RelKind::Reaction, &from_bob, text("👋")).await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden, "{r:?}");
}

#[tokio::test]
async fn a_mention_alerts_in_a_muted_group_and_is_counted_in_the_list() {
    let (s, _) = server();
    let (mut a, mut b, mut c, alice, bob, carol) = three(&s).await;
    let g = group(&mut a, &[&bob, &carol]).await;
    let mute = {
        let g = g.clone();
        a.req(|id| ClientFrame::Mute {
            id,
            conv: g,
            until: None,
        })
        .await
    };
    assert!(matches!(mute, ServerFrame::Ok { .. }), "{mute:?}");
    a.drain().await;
    sent(&send(&mut b, &g, "plain", None, Vec::new(), text("hi all")).await);
    let stranger = UserId::generate();
    let (mentioned, _) = sent(
        &send(
            &mut c,
            &g,
            "ping",
            None,
            vec![alice.clone(), alice.clone(), stranger, carol.clone()],
            text("@alice look"),
        )
        .await,
    );
    let frames = a.drain().await;
    let alerts: Vec<&MessageId> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Alert { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, [&mentioned], "muted: only the mention alerts");
    let pushed = messages(&frames);
    assert_eq!(
        pushed.last().unwrap().mentions,
        std::slice::from_ref(&alice),
        "members only, once, never the sender"
    );
    let conversations = conversations(&mut a).await;
    let summary = conversations.iter().find(|c| c.conv == g).unwrap();
    assert_eq!((summary.unread, summary.mentions), (2, 1));
}

#[tokio::test]
async fn the_disappearing_timer_is_a_notice_and_the_content_goes_when_it_is_up() {
    let (s, clock) = server();
    let (mut a, mut b, _alice, _bob, conv) = contacts(&s).await;
    let set = |after: Option<Millis>| {
        let conv = conv.clone();
        move |id| ClientFrame::SetTimer {
            id,
            conv,
            expire_after: after,
        }
    };
    let r = b.req(set(Some(5_000))).await;
    assert_eq!(
        refused(&r).0,
        ErrorCode::InvalidArgument,
        "one of the fixed timers"
    );
    // Either member of a direct conversation sets it.
    let r = b.req(set(Some(HOUR))).await;
    assert!(matches!(r, ServerFrame::Changed { seq: 2, .. }), "{r:?}");
    let notice = messages(&a.drain().await);
    assert_eq!(
        notice[0].content,
        Content::TimerChanged {
            expire_after: Some(HOUR)
        }
    );
    let r = b.req(set(Some(HOUR))).await;
    assert!(
        matches!(r, ServerFrame::Changed { seq: 0, .. }),
        "no change: {r:?}"
    );

    let sent_at = s.now();
    let (m, _) = sent(&send(&mut a, &conv, "soon", None, Vec::new(), text("gone soon")).await);
    let live = messages(&b.drain().await);
    let pushed = live.iter().find(|x| x.id == m).unwrap();
    assert_eq!(pushed.expires_at, Some(sent_at + HOUR), "told when it goes");
    assert_eq!(s.expire_due().await.unwrap(), 0);
    clock.advance(Duration::from_millis(HOUR as u64));
    assert_eq!(s.expire_due().await.unwrap(), 1);
    let (page, _) = history(&mut b, &conv, None, 10).await;
    let gone = page.iter().find(|x| x.id == m).unwrap();
    assert_eq!(
        gone.content,
        Content::Deleted {},
        "the tombstone keeps the seq"
    );
    assert_eq!(page.iter().map(|x| x.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn in_a_group_only_admins_set_the_timer() {
    let (s, _) = server();
    let (mut a, mut b, _c, _alice, bob, carol) = three(&s).await;
    let g = group(&mut a, &[&bob, &carol]).await;
    let set = |after: Option<Millis>| {
        let g = g.clone();
        move |id| ClientFrame::SetTimer {
            id,
            conv: g,
            expire_after: after,
        }
    };
    let r = b.req(set(Some(24 * HOUR))).await;
    assert_eq!(refused(&r).0, ErrorCode::Forbidden);
    let r = a.req(set(Some(24 * HOUR))).await;
    assert!(matches!(r, ServerFrame::Changed { .. }), "{r:?}");
    let info = a
        .req(|id| ClientFrame::GetConversation {
            id,
            conv: g.clone(),
        })
        .await;
    let ServerFrame::Conversation { conversation, .. } = info else {
        panic!("{info:?}")
    };
    assert_eq!(conversation.expire_after, Some(24 * HOUR));
    let r = a.req(set(None)).await;
    assert!(matches!(r, ServerFrame::Changed { .. }), "{r:?}");
    let _ = PW;
}

#[tokio::test]
async fn a_version_6_client_sees_replies_as_messages_and_the_rest_as_void() {
    let (s, _) = server();
    let (mut a, mut b, _alice, _bob, conv) = contacts(&s).await;
    let hello = hello_id(&mut a, &conv).await;
    let mut old = Client::connect_version(&s, 6).await;
    assert!(matches!(
        old.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    sent(&rel(&mut b, &conv, "r1", RelKind::Reply, &hello, text("hi!")).await);
    sent(&rel(&mut b, &conv, "x1", RelKind::Reaction, &hello, text("👍")).await);
    let live = messages(&old.drain().await);
    assert_eq!(live.len(), 2);
    assert_eq!(
        (live[0].rel.as_ref(), &live[0].content),
        (None, &text("hi!"))
    );
    assert_eq!(
        (live[1].rel.as_ref(), &live[1].content),
        (None, &Content::Void {})
    );
    let (page, related) = history(&mut old, &conv, None, 10).await;
    assert_eq!(related, [], "an old client is given no related entries");
    assert_eq!(page.last().unwrap().content, Content::Void {});
    // The newer client sees them as they are.
    let (page, _) = history(&mut a, &conv, None, 10).await;
    assert_eq!(page.last().unwrap().content, text("👍"));
}
