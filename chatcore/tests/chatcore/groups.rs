//! Groups and direct conversations through the request layer: the rules a
//! user meets, each with the error a client gets.

use chatcore::error::CoreError;
use chatcore::model::{Content, ConversationId, Role, UserId};
use chatcore::protocol::ConversationSummary;
use chatcore::protocol::{ClientFrame, ConversationInfo, ErrorCode, ServerFrame};
use chatcore::request::{dispatch, Caller, Out, Who};
use chatcore::server::ManualClock;
use chatcore::store::{Event, Topic};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Config, Server};
use std::sync::Arc;

const PW: &str = "tangerine submarine orchestra 77";
const T0: i64 = 1_800_000_000_000;

struct World {
    s: Arc<Server>,
    next: u32,
}

impl World {
    fn new() -> Self {
        Self::with(fast_config())
    }

    fn with(config: Config) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        Self {
            s: Server::with_clock(Backends::memory(), config, clock).unwrap(),
            next: 0,
        }
    }

    async fn user(&mut self, name: &str) -> Caller {
        self.next += 1;
        let mut out = Out::default();
        dispatch(
            &self.s,
            Who::new(None, None),
            ClientFrame::Register {
                id: 1,
                username: name.into(),
                email: format!("{name}@example.com"),
                phone: format!("+4420000000{:02}", self.next),
                display_name: name.into(),
                password: PW.into(),
                device: "test".into(),
            },
            &mut out,
        )
        .await
        .expect("registered");
        let s = out.sign_in.expect("signed in");
        Caller::new(
            s.user,
            s.device,
            s.token_hash,
            Arc::from(format!("conn-{name}")),
        )
    }

    async fn req(&self, who: &Caller, frame: ClientFrame) -> (Result<ServerFrame, CoreError>, Out) {
        let mut out = Out::default();
        let r = dispatch(&self.s, Who::new(None, Some(who)), frame, &mut out).await;
        (r, out)
    }

    async fn ok(&self, who: &Caller, frame: ClientFrame) -> ServerFrame {
        let (r, _) = self.req(who, frame).await;
        r.expect("request succeeds")
    }

    async fn err(&self, who: &Caller, frame: ClientFrame) -> (ErrorCode, Option<String>) {
        let (r, out) = self.req(who, frame).await;
        let e = r.expect_err("request fails");
        assert!(out.events.is_empty(), "a refusal publishes nothing");
        let field = match e.to_frame(Some(1)) {
            ServerFrame::Error { field, .. } => field,
            _ => None,
        };
        (e.code(), field)
    }

    async fn group(&self, owner: &Caller, members: &[&Caller]) -> ConversationInfo {
        let reply = self
            .ok(
                owner,
                ClientFrame::CreateGroup {
                    id: 1,
                    title: "Tea party".into(),
                    description: None,
                    avatar: None,
                    members: members.iter().map(|c| c.user.clone()).collect(),
                    encrypted: false,
                },
            )
            .await;
        match reply {
            ServerFrame::Conversation { conversation, .. } => *conversation,
            other => panic!("{other:?}"),
        }
    }

    async fn send(
        &self,
        who: &Caller,
        conv: &ConversationId,
        text: &str,
    ) -> Result<u64, ErrorCode> {
        let (r, _) = self
            .req(
                who,
                ClientFrame::Send {
                    media: Vec::new(),
                    mentions: Vec::new(),
                    rel: None,
                    id: 1,
                    conv: Some(conv.clone()),
                    to: None,
                    client_id: format!("{}-{text}", who.user),
                    content: Content::Text { text: text.into() },
                },
            )
            .await;
        match r {
            Ok(ServerFrame::Sent { seq, .. }) => Ok(seq),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.code()),
        }
    }

    async fn history(&self, who: &Caller, conv: &ConversationId) -> Result<Vec<u64>, ErrorCode> {
        let (r, _) = self
            .req(
                who,
                ClientFrame::History {
                    id: 1,
                    conv: conv.clone(),
                    before: None,
                    limit: None,
                },
            )
            .await;
        match r {
            Ok(ServerFrame::Messages { messages, .. }) => {
                Ok(messages.iter().map(|m| m.seq).collect())
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.code()),
        }
    }
}

fn topics(out: &Out) -> Vec<UserId> {
    let mut users: Vec<UserId> = out
        .events
        .iter()
        .filter_map(|(t, e)| match (t, e) {
            (Topic::User(u), Event::Message { .. }) => Some(u.clone()),
            _ => None,
        })
        .collect();
    users.sort();
    users
}

fn sorted(users: &[&Caller]) -> Vec<UserId> {
    let mut v: Vec<UserId> = users.iter().map(|c| c.user.clone()).collect();
    v.sort();
    v
}

fn remove(conv: &ConversationId, user: &Caller) -> ClientFrame {
    ClientFrame::RemoveMember {
        id: 1,
        conv: conv.clone(),
        user: user.user.clone(),
    }
}

fn set_role(conv: &ConversationId, user: &Caller, role: Role) -> ClientFrame {
    ClientFrame::SetRole {
        id: 1,
        conv: conv.clone(),
        user: user.user.clone(),
        role,
    }
}

#[tokio::test]
async fn a_group_is_created_with_its_notice_and_validated_on_each_field() {
    let mut w = World::new();
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    let (r, out) = w
        .req(
            &alice,
            ClientFrame::CreateGroup {
                id: 1,
                title: "  Tea party ".into(),
                description: Some("Mad hatters only".into()),
                avatar: None,
                members: vec![bob.user.clone(), bob.user.clone(), alice.user.clone()],
                encrypted: false,
            },
        )
        .await;
    let ServerFrame::Conversation {
        conversation: g, ..
    } = r.unwrap()
    else {
        panic!()
    };
    assert_eq!(g.title.as_deref(), Some("Tea party"), "normalised");
    assert_eq!(g.members.len(), 2, "repeats and the creator count once");
    assert_eq!(g.role, Some(Role::Owner));
    assert_eq!((g.first_seq, g.last_seq), (1, 1));
    assert_eq!(
        topics(&out),
        sorted(&[&alice, &bob]),
        "the notice goes to both"
    );
    let create = |title: &str, members: Vec<UserId>| ClientFrame::CreateGroup {
        id: 1,
        title: title.into(),
        description: None,
        avatar: None,
        members,
        encrypted: false,
    };
    assert_eq!(
        w.err(&alice, create("", vec![])).await,
        (ErrorCode::InvalidArgument, Some("title".into()))
    );
    assert_eq!(
        w.err(&alice, create(&"x".repeat(101), vec![])).await,
        (ErrorCode::InvalidArgument, Some("title".into()))
    );
    assert_eq!(
        w.err(&alice, create("ok\u{202e}", vec![])).await,
        (ErrorCode::InvalidArgument, Some("title".into()))
    );
    assert_eq!(
        w.err(&alice, create("ok", vec![UserId::from("nobody")]))
            .await,
        (ErrorCode::InvalidArgument, Some("members".into()))
    );
}

#[tokio::test]
async fn strangers_learn_nothing_and_former_members_read_up_to_their_removal() {
    let mut w = World::new();
    let (alice, bob, eve) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("eve").await,
    );
    let g = w.group(&alice, &[&bob]).await;
    assert_eq!(w.send(&bob, &g.conv, "one").await, Ok(2));
    // A stranger gets the same answer as for a group that does not exist.
    let nowhere = ConversationId::from("g:nowhere");
    for conv in [&g.conv, &nowhere] {
        assert_eq!(w.send(&eve, conv, "x").await, Err(ErrorCode::NotFound));
        assert_eq!(w.history(&eve, conv).await, Err(ErrorCode::NotFound));
        assert_eq!(w.err(&eve, remove(conv, &bob)).await.0, ErrorCode::NotFound);
        assert_eq!(
            w.err(
                &eve,
                ClientFrame::GetConversation {
                    id: 1,
                    conv: conv.clone()
                }
            )
            .await
            .0,
            ErrorCode::NotFound
        );
    }
    let (r, out) = w.req(&alice, remove(&g.conv, &bob)).await;
    assert!(matches!(r, Ok(ServerFrame::Changed { seq: 3, .. })));
    assert_eq!(
        topics(&out),
        sorted(&[&alice, &bob]),
        "bob gets his removal"
    );
    assert_eq!(w.send(&alice, &g.conv, "two").await, Ok(4));
    assert_eq!(
        w.send(&bob, &g.conv, "late").await,
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(w.history(&bob, &g.conv).await, Ok(vec![1, 2, 3]));
    assert_eq!(w.history(&alice, &g.conv).await, Ok(vec![1, 2, 3, 4]));
    let (r, out) = w.req(&alice, remove(&g.conv, &bob)).await;
    assert_eq!(r.unwrap_err().code(), ErrorCode::NotFound, "no such member");
    assert!(out.events.is_empty());
    let ServerFrame::Conversation { conversation, .. } = w
        .ok(
            &bob,
            ClientFrame::GetConversation {
                id: 1,
                conv: g.conv.clone(),
            },
        )
        .await
    else {
        panic!()
    };
    assert_eq!(conversation.role, None, "bob left");
    assert_eq!(conversation.last_seq, 3, "bob reads up to his removal");
}

#[tokio::test]
async fn roles_decide_who_changes_what() {
    let mut w = World::new();
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    let dave = w.user("dave").await;
    let g = w.group(&alice, &[&bob, &carol]).await;
    let c = &g.conv;
    let update = |title: &str| ClientFrame::UpdateGroup {
        id: 1,
        conv: c.clone(),
        title: Some(title.into()),
        description: None,
        avatar: None,
        history_visible: None,
    };
    let add = |u: &Caller| ClientFrame::AddMembers {
        id: 1,
        conv: c.clone(),
        users: vec![u.user.clone()],
    };
    // Members change nothing.
    assert_eq!(w.err(&bob, update("Bob's")).await.0, ErrorCode::Forbidden);
    assert_eq!(w.err(&bob, add(&dave)).await.0, ErrorCode::Forbidden);
    assert_eq!(w.err(&bob, remove(c, &carol)).await.0, ErrorCode::Forbidden);
    assert_eq!(
        w.err(&bob, set_role(c, &carol, Role::Admin)).await.0,
        ErrorCode::Forbidden
    );
    // The owner makes Bob and Carol admins; admins add and edit.
    w.ok(&alice, set_role(c, &bob, Role::Admin)).await;
    w.ok(&alice, set_role(c, &carol, Role::Admin)).await;
    assert_eq!(
        w.err(&alice, set_role(c, &carol, Role::Admin)).await,
        (ErrorCode::InvalidArgument, Some("role".into()))
    );
    w.ok(&bob, add(&dave)).await;
    assert_eq!(
        w.err(&bob, add(&dave)).await,
        (ErrorCode::Conflict, Some("users".into())),
        "already a member"
    );
    w.ok(&bob, update("Bob's party")).await;
    // An admin does not remove an admin, nor the owner; the owner does.
    assert_eq!(w.err(&bob, remove(c, &carol)).await.0, ErrorCode::Forbidden);
    assert_eq!(w.err(&bob, remove(c, &alice)).await.0, ErrorCode::Forbidden);
    assert_eq!(
        w.err(&alice, remove(c, &alice)).await,
        (ErrorCode::InvalidArgument, Some("user".into()))
    );
    w.ok(&alice, remove(c, &carol)).await;
    // Hand-over: Bob owns it, Alice is an admin.
    w.ok(&alice, set_role(c, &bob, Role::Owner)).await;
    let ServerFrame::Conversation { conversation, .. } = w
        .ok(
            &alice,
            ClientFrame::GetConversation {
                id: 1,
                conv: c.clone(),
            },
        )
        .await
    else {
        panic!()
    };
    let role_of = |u: &Caller| {
        conversation
            .members
            .iter()
            .find(|m| m.user == u.user)
            .map(|m| m.role)
    };
    assert_eq!(role_of(&bob), Some(Role::Owner));
    assert_eq!(role_of(&alice), Some(Role::Admin));
    assert_eq!(role_of(&carol), None);
    assert_eq!(conversation.title.as_deref(), Some("Bob's party"));
    // The owner leaves: the longest-serving admin (Alice) inherits.
    let (r, _) = w
        .req(
            &bob,
            ClientFrame::Leave {
                id: 1,
                conv: c.clone(),
            },
        )
        .await;
    let ServerFrame::Changed { seq, .. } = r.unwrap() else {
        panic!()
    };
    let entries = w.s.backends().messages.history(c, None, 100).await.unwrap();
    let left = entries.iter().find(|m| m.seq == seq).unwrap();
    assert_eq!(
        left.content,
        Content::MemberLeft {
            new_owner: Some(alice.user.clone())
        }
    );
    // A direct conversation has no members to change.
    let ServerFrame::Conversation {
        conversation: d, ..
    } = w
        .ok(
            &alice,
            ClientFrame::OpenDirect {
                id: 1,
                user: dave.user.clone(),
                encrypted: false,
            },
        )
        .await
    else {
        panic!()
    };
    assert_eq!(
        w.err(&alice, remove(&d.conv, &dave)).await,
        (ErrorCode::InvalidArgument, Some("conv".into()))
    );
}

#[tokio::test]
async fn the_member_limit_holds() {
    let mut config = fast_config();
    config.max_group_members = 3;
    let mut w = World::with(config);
    let a = w.user("ann").await;
    let b = w.user("ben").await;
    let c = w.user("cat").await;
    let d = w.user("dan").await;
    let (r, _) = w
        .req(
            &a,
            ClientFrame::CreateGroup {
                id: 1,
                title: "Full".into(),
                description: None,
                avatar: None,
                members: vec![b.user.clone(), c.user.clone(), d.user.clone()],
                encrypted: false,
            },
        )
        .await;
    assert_eq!(r.unwrap_err().code(), ErrorCode::LimitReached);
    let g = w.group(&a, &[&b, &c]).await;
    let add = ClientFrame::AddMembers {
        id: 1,
        conv: g.conv.clone(),
        users: vec![d.user.clone()],
    };
    assert_eq!(w.err(&a, add.clone()).await.0, ErrorCode::LimitReached);
    w.ok(&a, remove(&g.conv, &c)).await;
    w.ok(&a, add).await;
}

#[tokio::test]
async fn invite_links_join_and_a_revoked_or_unknown_token_looks_the_same() {
    let mut w = World::new();
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    let g = w.group(&alice, &[&bob]).await;
    let invite = ClientFrame::CreateInvite {
        id: 1,
        conv: g.conv.clone(),
    };
    assert_eq!(w.err(&bob, invite.clone()).await.0, ErrorCode::Forbidden);
    let ServerFrame::Invite { token, .. } = w.ok(&alice, invite.clone()).await else {
        panic!()
    };
    let join = |token: &str| ClientFrame::Join {
        id: 1,
        token: token.into(),
    };
    let (r, out) = w.req(&carol, join(&token)).await;
    let ServerFrame::Conversation { conversation, .. } = r.unwrap() else {
        panic!()
    };
    assert_eq!(conversation.role, Some(Role::Member));
    assert_eq!(conversation.first_seq, 2, "carol reads from her joining");
    assert_eq!(topics(&out), sorted(&[&alice, &bob, &carol]));
    let (r, out) = w.req(&carol, join(&token)).await;
    assert!(
        r.is_ok() && out.events.is_empty(),
        "joining again writes nothing"
    );
    // A new token replaces the old; a revoked one ends.
    let ServerFrame::Invite { token: second, .. } = w.ok(&alice, invite).await else {
        panic!()
    };
    let dave = w.user("dave").await;
    let stale = w.err(&dave, join(&token)).await;
    w.ok(
        &alice,
        ClientFrame::RevokeInvite {
            id: 1,
            conv: g.conv.clone(),
        },
    )
    .await;
    let revoked = w.err(&dave, join(&second)).await;
    let unknown = w.err(&dave, join("no-such-token")).await;
    assert_eq!(stale, (ErrorCode::NotFound, None));
    assert_eq!(revoked, stale);
    assert_eq!(unknown, stale);
}

#[tokio::test]
async fn joining_is_rate_limited() {
    let mut w = World::new();
    let eve = w.user("eve").await;
    let mut codes = Vec::new();
    for i in 0..31 {
        codes.push(
            w.err(
                &eve,
                ClientFrame::Join {
                    id: 1,
                    token: format!("guess-{i}"),
                },
            )
            .await
            .0,
        );
    }
    assert!(codes[..30].iter().all(|c| *c == ErrorCode::NotFound));
    assert_eq!(codes[30], ErrorCode::RateLimited);
}

#[tokio::test]
async fn history_visibility_lets_new_members_read_from_the_start() {
    let mut w = World::new();
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    let g = w.group(&alice, &[]).await;
    w.send(&alice, &g.conv, "before").await.unwrap();
    let add = |u: &Caller| ClientFrame::AddMembers {
        id: 1,
        conv: g.conv.clone(),
        users: vec![u.user.clone()],
    };
    w.ok(&alice, add(&bob)).await;
    assert_eq!(
        w.history(&bob, &g.conv).await,
        Ok(vec![3]),
        "from his joining"
    );
    w.ok(
        &alice,
        ClientFrame::UpdateGroup {
            id: 1,
            conv: g.conv.clone(),
            title: None,
            description: None,
            avatar: None,
            history_visible: Some(true),
        },
    )
    .await;
    w.ok(&alice, add(&carol)).await;
    assert_eq!(w.history(&carol, &g.conv).await, Ok(vec![1, 2, 3, 4, 5]));
}

#[tokio::test]
async fn direct_conversations_open_once_and_a_send_names_one_target() {
    let mut w = World::new();
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    let open = |c: &Caller, u: &Caller| {
        let frame = ClientFrame::OpenDirect {
            id: 1,
            user: u.user.clone(),
            encrypted: false,
        };
        let (c, w) = (c.clone(), &w);
        async move {
            match w.ok(&c, frame).await {
                ServerFrame::Conversation { conversation, .. } => conversation,
                other => panic!("{other:?}"),
            }
        }
    };
    let (x, y) = tokio::join!(open(&alice, &bob), open(&bob, &alice));
    assert_eq!(x.conv, y.conv, "both get the one conversation");
    assert_eq!(w.send(&bob, &x.conv, "hi").await, Ok(1));
    let (r, _) = w
        .req(
            &alice,
            ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id: 1,
                conv: None,
                to: Some(bob.user.clone()),
                client_id: "c2".into(),
                content: Content::Text { text: "yo".into() },
            },
        )
        .await;
    let ServerFrame::Sent { conv, seq, .. } = r.unwrap() else {
        panic!()
    };
    assert_eq!(
        (conv, seq),
        (x.conv.clone(), 2),
        "`to` is the same conversation"
    );
    let both = ClientFrame::Send {
        media: Vec::new(),
        mentions: Vec::new(),
        rel: None,
        id: 1,
        conv: Some(x.conv.clone()),
        to: Some(bob.user.clone()),
        client_id: "c3".into(),
        content: Content::Text { text: "?".into() },
    };
    assert_eq!(
        w.err(&alice, both).await,
        (ErrorCode::InvalidArgument, Some("conv".into()))
    );
    let notice = ClientFrame::Send {
        media: Vec::new(),
        mentions: Vec::new(),
        rel: None,
        id: 1,
        conv: Some(x.conv.clone()),
        to: None,
        client_id: "c4".into(),
        content: Content::MemberJoined {},
    };
    assert_eq!(
        w.err(&alice, notice).await,
        (ErrorCode::InvalidArgument, Some("content".into())),
        "clients do not write notices"
    );
    assert_eq!(
        w.err(
            &alice,
            ClientFrame::OpenDirect {
                id: 1,
                user: alice.user.clone(),
                encrypted: false,
            }
        )
        .await,
        (ErrorCode::InvalidArgument, Some("user".into()))
    );
}

#[tokio::test]
async fn the_conversation_list_pages_and_previews_only_text() {
    let mut w = World::new();
    let alice = w.user("alice").await;
    let mut peers = Vec::new();
    for i in 0..3 {
        let p = w.user(&format!("peer{i}")).await;
        let (r, _) = w
            .req(
                &alice,
                ClientFrame::Send {
                    media: Vec::new(),
                    mentions: Vec::new(),
                    rel: None,
                    id: 1,
                    conv: None,
                    to: Some(p.user.clone()),
                    client_id: format!("c{i}"),
                    content: Content::Text {
                        text: "é".repeat(150),
                    },
                },
            )
            .await;
        r.unwrap();
        peers.push(p);
    }
    let g = w.group(&alice, &[&peers[0]]).await;
    let page = |after: Option<String>| ClientFrame::Conversations {
        id: 1,
        list: None,
        after,
        limit: Some(2),
    };
    let ServerFrame::Conversations {
        conversations: first,
        next,
        ..
    } = w.ok(&alice, page(None)).await
    else {
        panic!()
    };
    assert_eq!(first.len(), 2);
    let ServerFrame::Conversations {
        conversations: second,
        next: end,
        ..
    } = w.ok(&alice, page(next)).await
    else {
        panic!()
    };
    assert_eq!(second.len(), 2);
    assert_eq!(end, None, "the last page has no next");
    let all: Vec<_> = first.iter().chain(&second).collect();
    let group = all.iter().find(|c| c.conv == g.conv).expect("listed");
    assert_eq!(group.title.as_deref(), Some("Tea party"));
    assert_eq!(group.members, 2);
    assert_eq!(group.role, Some(Role::Owner));
    let last = group.last.as_ref().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.preview.as_ref()),
        ("group_created", None)
    );
    let direct = all.iter().find(|c| c.peer.is_some()).unwrap();
    let preview = direct.last.as_ref().unwrap().preview.as_ref().unwrap();
    assert_eq!(
        preview.chars().count(),
        100,
        "a preview is the start of the text"
    );
    assert_eq!(
        w.err(&alice, page(Some("garbage".into()))).await,
        (ErrorCode::InvalidArgument, Some("after".into()))
    );
}

#[tokio::test]
async fn a_read_tells_the_users_other_devices_and_mute_is_listed() {
    let mut w = World::new();
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    let g = w.group(&alice, &[&bob]).await;
    w.send(&alice, &g.conv, "hi").await.unwrap();
    let (r, out) = w
        .req(
            &bob,
            ClientFrame::Read {
                id: 1,
                conv: g.conv.clone(),
                seq: 2,
            },
        )
        .await;
    r.unwrap();
    // Alice, the other member, is told of Bob's receipt; Bob's other devices of his read marker.
    assert!(matches!(
        out.events.as_slice(),
        [
            (Topic::User(a), Event::Receipt(receipt)),
            (Topic::User(u), Event::Read { seq: 2, origin, .. }),
        ] if *a == alice.user && receipt.user == bob.user && (receipt.delivered, receipt.read) == (2, 2)
            && *u == bob.user && &**origin == "conn-bob"
    ));
    let mute = |until| ClientFrame::Mute {
        id: 1,
        conv: g.conv.clone(),
        until,
    };
    assert_eq!(
        w.err(&bob, mute(Some(T0 - 1))).await,
        (ErrorCode::InvalidArgument, Some("until".into()))
    );
    w.ok(&bob, mute(Some(T0 + 3_600_000))).await;
    async fn list(w: &World, who: &Caller) -> Vec<ConversationSummary> {
        let frame = ClientFrame::Conversations {
            id: 1,
            list: None,
            after: None,
            limit: None,
        };
        match w.ok(who, frame).await {
            ServerFrame::Conversations { conversations, .. } => conversations,
            other => panic!("{other:?}"),
        }
    }
    let l = list(&w, &bob).await;
    assert!(l[0].muted && l[0].muted_until == Some(T0 + 3_600_000));
    w.ok(&bob, mute(None)).await;
    let l = list(&w, &bob).await;
    assert!(l[0].muted && l[0].muted_until.is_none(), "until unmuted");
    // The event of a message to a muted member says so: no alert.
    let (_, out) = w
        .req(
            &alice,
            ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id: 1,
                conv: Some(g.conv.clone()),
                to: None,
                client_id: "m2".into(),
                content: Content::Text { text: "?".into() },
            },
        )
        .await;
    let muted: Vec<(UserId, bool)> = out
        .events
        .iter()
        .filter_map(|(t, e)| match (t, e) {
            (Topic::User(u), Event::Message { muted, .. }) => Some((u.clone(), *muted)),
            _ => None,
        })
        .collect();
    assert!(muted.contains(&(bob.user.clone(), true)));
    assert!(muted.contains(&(alice.user.clone(), false)));
    w.ok(
        &bob,
        ClientFrame::Unmute {
            id: 1,
            conv: g.conv.clone(),
        },
    )
    .await;
    assert!(!list(&w, &bob).await[0].muted);
}
