//! Model-based property test of groups, through [`crate::request::dispatch`]
//! (no connection needed: a request's meaning is apart from the socket).
//!
//! Random sequences of create, add, remove, leave, role changes, sends and
//! reads by four users in up to two groups run against a real
//! [`Server`] on the backends of a [`Factory`], and are checked against a
//! simple model of the rules (the spec, written again independently of
//! [`crate::groups`]):
//!
//! - every request succeeds exactly when the model's rules allow it;
//! - every entry (message or notice) gets the group's next seq: gap-free,
//!   with notices interleaved;
//! - an entry is published to exactly the users who are members after it
//!   (and, for a removal or leave, the user who went): a non-member never
//!   receives anything past its removal;
//! - `history` shows each user exactly the seqs of its membership window,
//!   and a former member none past its leaving;
//! - each member's unread count (`conversations`) equals the model's;
//! - users 2 and 3 admit only their contacts' adds (and nobody here is a
//!   contact): adding them invites them instead, which writes no entry and
//!   reaches only them (`invited`); until they accept they receive and read
//!   nothing of the group; accepting writes `member_joined` and starts their
//!   window there; declining, or an admin's withdrawal, ends the invitation.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::model::fast_config;
use super::{check_scenarios, ensure, Check, Factory};
use crate::error::CoreError;
use crate::model::{Content, ConversationId, Role, UserId};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::request::{dispatch, Caller, Out, Who};
use crate::store::{Event, Topic};
use crate::Server;

const USERS: usize = 4;
/// Users from this index on admit only their contacts' adds.
const PICKY: usize = 2;
const GROUPS: usize = 2;
const PASSWORD: &str = "tangerine submarine orchestra 77";

/// One step.
#[derive(Clone, Debug)]
pub enum Op {
    /// `owner` creates a group with the users in the bit mask `members`.
    Create {
        /// Creator.
        owner: usize,
        /// Bit i: user i is an initial member.
        members: u8,
    },
    /// `by` adds `user` to group `g`.
    Add {
        /// Who asks.
        by: usize,
        /// Group (modulo those created).
        g: usize,
        /// Whom.
        user: usize,
    },
    /// `by` removes `user` from group `g`.
    Remove {
        /// Who asks.
        by: usize,
        /// Group.
        g: usize,
        /// Whom (as `by` names a user).
        user: usize,
    },
    /// `user` leaves group `g`.
    Leave {
        /// Who.
        user: usize,
        /// Group.
        g: usize,
    },
    /// `by` makes `user` an admin (`admin`) or a member of group `g`.
    SetRole {
        /// Who asks.
        by: usize,
        /// Group.
        g: usize,
        /// Whom.
        user: usize,
        /// Admin or member.
        admin: bool,
    },
    /// `user` sends a message to group `g`.
    Send {
        /// Sender.
        user: usize,
        /// Group.
        g: usize,
    },
    /// `user` answers its invitation to group `g`.
    Answer {
        /// Who.
        user: usize,
        /// Group.
        g: usize,
        /// Accept, or decline.
        accept: bool,
    },
    /// `user` reads group `g` up to what it may read, and checks history and unread.
    Read {
        /// Reader.
        user: usize,
        /// Group.
        g: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    // Who asks: below USERS a user; from USERS on, the (n - USERS)-th
    // current member by rank (owner first), so that allowed changes are frequent.
    let by = 0..2 * USERS;
    let g = 0..GROUPS;
    prop_oneof![
        1 => (u.clone(), any::<u8>()).prop_map(|(owner, members)| Op::Create { owner, members }),
        3 => (by.clone(), g.clone(), u.clone()).prop_map(|(by, g, user)| Op::Add { by, g, user }),
        3 => (by.clone(), g.clone(), by.clone()).prop_map(|(by, g, user)| Op::Remove { by, g, user }),
        1 => (u.clone(), g.clone()).prop_map(|(user, g)| Op::Leave { user, g }),
        6 => (by.clone(), g.clone(), by, prop::bool::weighted(0.8))
            .prop_map(|(by, g, user, admin)| Op::SetRole { by, g, user, admin }),
        5 => (u.clone(), g.clone()).prop_map(|(user, g)| Op::Send { user, g }),
        2 => (u.clone(), g.clone(), prop::bool::weighted(0.7))
            .prop_map(|(user, g, accept)| Op::Answer { user, g, accept }),
        3 => (u, g).prop_map(|(user, g)| Op::Read { user, g }),
    ]
}

/// Runs `cases` random scenarios against fresh backends from `factory`;
/// panics with the smallest failing scenario.
pub fn check(factory: Arc<dyn Factory>, cases: u32) {
    check_scenarios(
        "group model check",
        cases,
        proptest::collection::vec(op(), 1..80),
        |ops| run(factory.clone(), ops),
    );
}

/// One member's record in the model.
#[derive(Clone, Debug)]
struct Membership {
    role: Role,
    joined: u64,
    left: Option<u64>,
    /// Joined at this step (orders who served longest).
    since: usize,
}

#[derive(Debug, Default)]
struct Group {
    conv: Option<ConversationId>,
    members: BTreeMap<usize, Membership>,
    /// Each entry: its sender and whether it is a message (not a notice).
    log: Vec<(usize, bool)>,
    /// Read markers.
    read: BTreeMap<usize, u64>,
    /// Open invitations.
    invited: BTreeSet<usize>,
}

impl Group {
    fn active(&self, u: usize) -> Option<&Membership> {
        self.members.get(&u).filter(|m| m.left.is_none())
    }

    fn active_users(&self) -> BTreeSet<usize> {
        self.members
            .iter()
            .filter(|(_, m)| m.left.is_none())
            .map(|(&u, _)| u)
            .collect()
    }

    fn window(&self, u: usize) -> Option<(u64, u64)> {
        let m = self.members.get(&u)?;
        Some((m.joined.max(1), m.left.unwrap_or(self.log.len() as u64)))
    }

    fn unread(&self, u: usize) -> u64 {
        let Some((first, last)) = self.window(u) else {
            return 0;
        };
        let read = self.read.get(&u).copied().unwrap_or(0).max(first);
        (read + 1..=last)
            .filter(|&seq| {
                let (from, message) = self.log[(seq - 1) as usize];
                message && from != u
            })
            .count() as u64
    }
}

struct World {
    server: Arc<Server>,
    callers: Vec<Caller>,
    groups: Vec<Group>,
    step: usize,
    next_id: u32,
}

async fn run(factory: Arc<dyn Factory>, ops: Vec<Op>) -> Check<()> {
    let server = Server::new(factory.backends().await, fast_config()).map_err(|e| e.to_string())?;
    let mut world = World {
        server,
        callers: Vec::new(),
        groups: Vec::new(),
        step: 0,
        next_id: 1,
    };
    for i in 0..USERS {
        let caller = world.register(i).await?;
        world.callers.push(caller);
    }
    for i in PICKY..USERS {
        let (reply, _) = world
            .req(i, |id| ClientFrame::SetPrivacy {
                id,
                direct: None,
                groups: Some(crate::model::Audience::Contacts),
                presence: None,
                read_receipts: None,
            })
            .await;
        ensure(matches!(reply, Ok(ServerFrame::Privacy { .. })), || {
            format!("set_privacy: {reply:?}")
        })?;
    }
    for op in ops {
        world.step += 1;
        world.apply(op).await?;
    }
    for g in 0..world.groups.len() {
        for u in 0..USERS {
            world.check_reads(u, g).await?;
        }
    }
    Ok(())
}

impl World {
    async fn register(&mut self, i: usize) -> Check<Caller> {
        let mut out = Out::default();
        let frame = ClientFrame::Register {
            id: 1,
            username: format!("user{i}"),
            email: format!("user{i}@example.com"),
            phone: format!("+4477000000{i:02}"),
            display_name: format!("User {i}"),
            password: PASSWORD.into(),
            device: "model".into(),
        };
        dispatch(&self.server, Who::new(None, None), frame, &mut out)
            .await
            .map_err(|e| format!("register: {e}"))?;
        let s = out.sign_in.ok_or("register signed nobody in")?;
        Ok(Caller::new(
            s.user,
            s.device,
            s.token_hash,
            Arc::from(format!("conn-{i}")),
        ))
    }

    fn uid(&self, u: usize) -> UserId {
        self.callers[u].user.clone()
    }

    fn user_of(&self, id: &UserId) -> Option<usize> {
        self.callers.iter().position(|c| c.user == *id)
    }

    async fn req(
        &mut self,
        u: usize,
        make: impl FnOnce(u32) -> ClientFrame,
    ) -> (Result<ServerFrame, CoreError>, Out) {
        self.next_id += 1;
        let frame = make(self.next_id);
        let mut out = Out::default();
        let who = Who::new(None, Some(&self.callers[u]));
        let reply = dispatch(&self.server, who, frame, &mut out).await;
        (reply, out)
    }

    /// The users a request's events went to, for the entry it wrote.
    fn recipients(&self, out: &Out) -> Check<BTreeSet<usize>> {
        out.events
            .iter()
            .filter_map(|(topic, event)| match (topic, event) {
                (Topic::User(u), Event::Message { .. }) => Some(u),
                _ => None,
            })
            .map(|u| {
                self.user_of(u)
                    .ok_or_else(|| format!("event for a stranger {u}"))
            })
            .collect()
    }

    /// Checks a request that writes an entry: it succeeded exactly when
    /// `allowed`, got the next seq, and went to `to`.
    fn check_entry(
        &self,
        what: &str,
        g: usize,
        allowed: bool,
        reply: &Result<ServerFrame, CoreError>,
        out: &Out,
        to: &BTreeSet<usize>,
    ) -> Check<()> {
        let expected_seq = self.groups[g].log.len() as u64 + 1;
        match (allowed, reply) {
            (true, Ok(ServerFrame::Changed { seq, .. }))
            | (true, Ok(ServerFrame::Sent { seq, .. })) => {
                ensure(*seq == expected_seq, || {
                    format!("{what}: seq {seq}, expected {expected_seq}")
                })?;
                let got = self.recipients(out)?;
                ensure(got == *to, || {
                    format!("{what}: published to {got:?}, expected {to:?}")
                })
            }
            (false, Err(_)) => ensure(out.events.is_empty(), || {
                format!("{what}: refused but published {:?}", out.events)
            }),
            (true, other) => Err(format!("{what}: expected success, got {other:?}")),
            (false, Ok(other)) => Err(format!("{what}: expected a refusal, got {other:?}")),
        }
    }

    async fn apply(&mut self, op: Op) -> Check<()> {
        match op {
            Op::Create { owner, members } => {
                if self.groups.len() == GROUPS {
                    return Ok(());
                }
                let named: Vec<usize> = (0..USERS)
                    .filter(|&i| i != owner && members & (1 << i) != 0)
                    .collect();
                let ids: Vec<UserId> = named.iter().map(|&i| self.uid(i)).collect();
                let (invited, others): (Vec<usize>, Vec<usize>) =
                    named.into_iter().partition(|&i| i >= PICKY);
                let (reply, out) = self
                    .req(owner, |id| ClientFrame::CreateGroup {
                        id,
                        title: format!("Group {}", id),
                        description: None,
                        avatar: None,
                        members: ids,
                        encrypted: false,
                    })
                    .await;
                let conv = match reply {
                    Ok(ServerFrame::Conversation { conversation, .. }) => {
                        let listed: BTreeSet<UserId> = conversation.invited.into_iter().collect();
                        let expected: BTreeSet<UserId> =
                            invited.iter().map(|&i| self.uid(i)).collect();
                        ensure(listed == expected, || {
                            format!("create: invited {listed:?}, expected {expected:?}")
                        })?;
                        conversation.conv
                    }
                    other => return Err(format!("create: {other:?}")),
                };
                self.check_invited(&out, &invited.iter().copied().collect())?;
                let mut g = Group {
                    conv: Some(conv),
                    invited: invited.iter().copied().collect(),
                    ..Group::default()
                };
                let step = self.step;
                g.members.insert(
                    owner,
                    Membership {
                        role: Role::Owner,
                        joined: 1,
                        left: None,
                        since: step,
                    },
                );
                for &o in &others {
                    g.members.insert(
                        o,
                        Membership {
                            role: Role::Member,
                            joined: 1,
                            left: None,
                            since: step,
                        },
                    );
                }
                g.log.push((owner, false));
                let to = g.active_users();
                self.groups.push(g);
                let got = self.recipients(&out)?;
                ensure(got == to, || {
                    format!("create: published to {got:?}, expected {to:?}")
                })
            }
            Op::Add { by, g, user } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let by = self.asker(g, by);
                let grp = &self.groups[g];
                let allowed = grp.active(by).is_some_and(|m| m.role >= Role::Admin)
                    && grp.active(user).is_none();
                let conv = self.conv(g);
                let target = self.uid(user);
                let (reply, out) = self
                    .req(by, |id| ClientFrame::AddMembers {
                        id,
                        conv,
                        users: vec![target.clone()],
                    })
                    .await;
                if user >= PICKY {
                    // An invitation, unless one is open already.
                    let allowed = allowed && !self.groups[g].invited.contains(&user);
                    match (allowed, &reply) {
                        (
                            true,
                            Ok(ServerFrame::Changed {
                                seq: 0, invited, ..
                            }),
                        ) if *invited == [target] => {}
                        (false, Err(_)) => {}
                        other => return Err(format!("invite of {user} by {by}: {other:?}")),
                    }
                    let expected = if allowed {
                        BTreeSet::from([user])
                    } else {
                        BTreeSet::new()
                    };
                    self.check_invited(&out, &expected)?;
                    ensure(self.recipients(&out)?.is_empty(), || {
                        format!("an invitation wrote an entry: {:?}", out.events)
                    })?;
                    if allowed {
                        self.groups[g].invited.insert(user);
                    }
                    return Ok(());
                }
                let mut to = self.groups[g].active_users();
                to.insert(user);
                self.check_entry("add", g, allowed, &reply, &out, &to)?;
                if allowed {
                    let step = self.step;
                    let grp = &mut self.groups[g];
                    let seq = grp.log.len() as u64 + 1;
                    grp.members.insert(
                        user,
                        Membership {
                            role: Role::Member,
                            joined: seq,
                            left: None,
                            since: step,
                        },
                    );
                    grp.log.push((by, false));
                }
                Ok(())
            }
            Op::Remove { by, g, user } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let by = self.asker(g, by);
                let user = self.asker(g, user);
                let grp = &self.groups[g];
                let allowed = match (grp.active(by), grp.active(user)) {
                    (Some(me), Some(them)) => {
                        by != user && me.role >= Role::Admin && them.role < me.role
                    }
                    _ => false,
                };
                let withdraws = by != user
                    && grp.invited.contains(&user)
                    && grp.active(by).is_some_and(|m| m.role >= Role::Admin);
                let conv = self.conv(g);
                let target = self.uid(user);
                let (reply, out) = self
                    .req(by, |id| ClientFrame::RemoveMember {
                        id,
                        conv,
                        user: target,
                    })
                    .await;
                if withdraws {
                    ensure(
                        matches!(reply, Ok(ServerFrame::Changed { seq: 0, .. }))
                            && out.events.is_empty(),
                        || {
                            format!(
                                "withdrawing {user}'s invitation: {reply:?} {:?}",
                                out.events
                            )
                        },
                    )?;
                    self.groups[g].invited.remove(&user);
                    return Ok(());
                }
                let to = self.groups[g].active_users();
                self.check_entry("remove", g, allowed, &reply, &out, &to)?;
                if allowed {
                    let grp = &mut self.groups[g];
                    let seq = grp.log.len() as u64 + 1;
                    if let Some(m) = grp.members.get_mut(&user) {
                        m.left = Some(seq);
                        m.role = Role::Member;
                    }
                    grp.log.push((by, false));
                }
                Ok(())
            }
            Op::Leave { user, g } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let was = self.groups[g].active(user).cloned();
                let conv = self.conv(g);
                let (reply, out) = self.req(user, |id| ClientFrame::Leave { id, conv }).await;
                let to = self.groups[g].active_users();
                self.check_entry("leave", g, was.is_some(), &reply, &out, &to)?;
                let Some(was) = was else { return Ok(()) };
                let grp = &mut self.groups[g];
                let seq = grp.log.len() as u64 + 1;
                if let Some(m) = grp.members.get_mut(&user) {
                    m.left = Some(seq);
                    m.role = Role::Member;
                }
                if was.role == Role::Owner {
                    // The longest-serving admin, else member, inherits.
                    let heir = [Role::Admin, Role::Member].into_iter().find_map(|role| {
                        grp.members
                            .iter()
                            .filter(|(_, m)| m.left.is_none() && m.role == role)
                            .min_by_key(|(_, m)| m.since)
                            .map(|(&u, _)| u)
                    });
                    let expected = heir.map(|h| self.callers[h].user.clone());
                    let grp = &mut self.groups[g];
                    if let Some(h) = heir {
                        if let Some(m) = grp.members.get_mut(&h) {
                            m.role = Role::Owner;
                        }
                    }
                    self.check_heir(g, seq, expected).await?;
                }
                self.groups[g].log.push((user, false));
                Ok(())
            }
            Op::SetRole { by, g, user, admin } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let by = self.asker(g, by);
                let user = self.asker(g, user);
                let role = if admin { Role::Admin } else { Role::Member };
                let grp = &self.groups[g];
                let allowed = grp.active(by).is_some_and(|m| m.role == Role::Owner)
                    && by != user
                    && grp.active(user).is_some_and(|m| m.role != role);
                let conv = self.conv(g);
                let target = self.uid(user);
                let (reply, out) = self
                    .req(by, |id| ClientFrame::SetRole {
                        id,
                        conv,
                        user: target,
                        role,
                    })
                    .await;
                let to = self.groups[g].active_users();
                self.check_entry("set_role", g, allowed, &reply, &out, &to)?;
                if allowed {
                    let grp = &mut self.groups[g];
                    if let Some(m) = grp.members.get_mut(&user) {
                        m.role = role;
                    }
                    grp.log.push((by, false));
                }
                Ok(())
            }
            Op::Send { user, g } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let allowed = self.groups[g].active(user).is_some();
                let conv = self.conv(g);
                let client_id = format!("s{}", self.step);
                let (reply, out) = self
                    .req(user, |id| ClientFrame::Send {
                        media: Vec::new(),
                        mentions: Vec::new(),
                        rel: None,
                        id,
                        conv: Some(conv),
                        to: None,
                        client_id,
                        content: Content::Text { text: "hi".into() },
                    })
                    .await;
                let to = self.groups[g].active_users();
                self.check_entry("send", g, allowed, &reply, &out, &to)?;
                if allowed {
                    self.groups[g].log.push((user, true));
                }
                Ok(())
            }
            Op::Answer { user, g, accept } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                let invited = self.groups[g].invited.contains(&user);
                let conv = self.conv(g);
                let (reply, out) = self
                    .req(user, |id| {
                        if accept {
                            ClientFrame::Accept { id, conv }
                        } else {
                            ClientFrame::Decline { id, conv }
                        }
                    })
                    .await;
                let seq = self.groups[g].log.len() as u64 + 1;
                match (invited, accept, &reply) {
                    (false, _, Err(e)) => {
                        return ensure(
                            e.code() == crate::protocol::ErrorCode::NotFound
                                && out.events.is_empty(),
                            || format!("answer without an invitation: {e} {:?}", out.events),
                        )
                    }
                    (true, false, Ok(ServerFrame::Ok { .. })) => {
                        ensure(self.recipients(&out)?.is_empty(), || {
                            format!("a decline wrote an entry: {:?}", out.events)
                        })?;
                    }
                    (true, true, Ok(ServerFrame::Conversation { conversation, .. })) => {
                        let first = if conversation.history_visible { 1 } else { seq };
                        ensure(
                            conversation.last_seq == seq && conversation.first_seq == first,
                            || {
                                format!(
                                    "accept: reads {}..={}, expected from {first} to {seq}",
                                    conversation.first_seq, conversation.last_seq
                                )
                            },
                        )?;
                        let mut to = self.groups[g].active_users();
                        to.insert(user);
                        let got = self.recipients(&out)?;
                        ensure(got == to, || {
                            format!("accept: published to {got:?}, expected {to:?}")
                        })?;
                        let step = self.step;
                        let grp = &mut self.groups[g];
                        grp.members.insert(
                            user,
                            Membership {
                                role: Role::Member,
                                joined: seq,
                                left: None,
                                since: step,
                            },
                        );
                        grp.log.push((user, false));
                    }
                    other => {
                        return Err(format!("answer of {user} (invited: {invited}): {other:?}"))
                    }
                }
                self.groups[g].invited.remove(&user);
                Ok(())
            }
            Op::Read { user, g } => {
                let Some(g) = self.pick(g) else { return Ok(()) };
                self.check_reads(user, g).await?;
                let Some((_, last)) = self.groups[g].window(user) else {
                    return Ok(());
                };
                let conv = self.conv(g);
                let (reply, _) = self
                    .req(user, |id| ClientFrame::Read {
                        id,
                        conv,
                        seq: last,
                    })
                    .await;
                ensure(matches!(reply, Ok(ServerFrame::Ok { .. })), || {
                    format!("read up to {last}: {reply:?}")
                })?;
                let mark = self.groups[g].read.entry(user).or_insert(0);
                *mark = (*mark).max(last);
                Ok(())
            }
        }
    }

    /// A request's `invited` pushes went to exactly `to`.
    fn check_invited(&self, out: &Out, to: &BTreeSet<usize>) -> Check<()> {
        let got: BTreeSet<usize> = out
            .events
            .iter()
            .filter_map(|(topic, event)| match (topic, event) {
                (Topic::User(u), Event::Invited(_)) => self.user_of(u),
                _ => None,
            })
            .collect();
        ensure(got == *to, || {
            format!("invited pushed to {got:?}, expected {to:?}")
        })
    }

    /// The user `by` stands for in group `g` (see [`op`]).
    fn asker(&self, g: usize, by: usize) -> usize {
        if by < USERS {
            return by;
        }
        let mut ranked: Vec<(Role, usize)> = self.groups[g]
            .members
            .iter()
            .filter(|(_, m)| m.left.is_none())
            .map(|(&u, m)| (m.role, u))
            .collect();
        ranked.sort_by(|a, b| b.cmp(a));
        ranked
            .get((by - USERS) % ranked.len().max(1))
            .map_or(by % USERS, |&(_, u)| u)
    }

    /// The group `g` (modulo those created), if any.
    fn pick(&self, g: usize) -> Option<usize> {
        (!self.groups.is_empty()).then(|| g % self.groups.len())
    }

    fn conv(&self, g: usize) -> ConversationId {
        self.groups[g]
            .conv
            .clone()
            .unwrap_or_else(|| ConversationId::from(""))
    }

    /// The `member_left` notice at `seq` names the expected heir.
    async fn check_heir(&mut self, g: usize, seq: u64, expected: Option<UserId>) -> Check<()> {
        let conv = self.conv(g);
        let stored = self
            .server
            .backends()
            .messages
            .read_after(&conv, seq - 1, 1)
            .await
            .map_err(|e| e.to_string())?;
        match stored.first().map(|m| &m.content) {
            Some(Content::MemberLeft { new_owner }) => ensure(*new_owner == expected, || {
                format!("the owner left: heir {new_owner:?}, expected {expected:?}")
            }),
            other => Err(format!("expected member_left at {seq}, got {other:?}")),
        }
    }

    /// `history` shows `user` exactly its window of group `g`, and the
    /// conversation list its unread count.
    async fn check_reads(&mut self, user: usize, g: usize) -> Check<()> {
        let conv = self.conv(g);
        let window = self.groups[g].window(user);
        let c = conv.clone();
        let (reply, _) = self
            .req(user, |id| ClientFrame::History {
                id,
                conv: c,
                before: None,
                limit: Some(200),
            })
            .await;
        let invited = self.groups[g].invited.contains(&user);
        match (window, reply) {
            (None, Ok(ServerFrame::Messages { messages, .. })) if invited => {
                ensure(messages.is_empty(), || {
                    format!("user {user}, invited, reads {} entries", messages.len())
                })?
            }
            (None, Err(e)) if !invited => {
                ensure(e.code() == crate::protocol::ErrorCode::NotFound, || {
                    format!("a stranger's history: {e}")
                })?
            }
            (Some((first, last)), Ok(ServerFrame::Messages { messages, more, .. })) => {
                let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
                let expected: Vec<u64> = (first..=last).collect();
                ensure(seqs == expected && !more, || {
                    format!("user {user} reads {seqs:?} (more: {more}), expected {expected:?}")
                })?;
            }
            (w, r) => return Err(format!("history of user {user} (window {w:?}): {r:?}")),
        }
        let (reply, _) = self
            .req(user, |id| ClientFrame::Conversations {
                id,
                list: Some(crate::protocol::ConversationList::Requests),
                after: None,
                limit: Some(200),
            })
            .await;
        let Ok(ServerFrame::Conversations { conversations, .. }) = reply else {
            return Err(format!("requests: {reply:?}"));
        };
        let listed = conversations.iter().any(|c| c.conv == conv);
        ensure(listed == invited, || {
            format!("user {user}: requests list has the group: {listed}, invited: {invited}")
        })?;
        if window.is_none() || invited {
            // A former member invited back finds the group among its
            // requests, not in its main list, until it answers.
            return Ok(());
        }
        let (reply, _) = self
            .req(user, |id| ClientFrame::Conversations {
                id,
                list: None,
                after: None,
                limit: Some(200),
            })
            .await;
        let Ok(ServerFrame::Conversations { conversations, .. }) = reply else {
            return Err(format!("conversations: {reply:?}"));
        };
        let entry = conversations
            .iter()
            .find(|c| c.conv == conv)
            .ok_or_else(|| format!("user {user} does not list its group {conv}"))?;
        let expected = self.groups[g].unread(user);
        let left = self.groups[g].active(user).is_none();
        ensure(entry.unread == expected && entry.left == left, || {
            format!(
                "user {user}: unread {} left {}, expected {expected} and {left}",
                entry.unread, entry.left
            )
        })
    }
}
