//! The rules of groups, as pure functions of a conversation's state.
//!
//! Each change a member asks for ([`Action`]) is checked against who asks
//! and the state it was read at, and becomes the state to store and the
//! notice to append ([`apply`]). The store then writes both only if the
//! conversation did not change meanwhile ([`crate::store::MessageStore::change`]),
//! so two admins removing each other cannot both succeed: the second finds
//! the state stale, reads it again, and is no longer an admin.

use crate::error::CoreError;
use crate::model::{Content, ConversationKind, Millis, Role, UserId};
use crate::store::{ConversationState, GroupInfo, Member, Pending};

/// A change of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Settings (admins). Each field already normalised; `None` stays.
    Update {
        /// New title.
        title: Option<String>,
        /// New description (empty: none).
        description: Option<String>,
        /// New avatar (`Some(None)`: remove it).
        avatar: Option<Option<String>>,
        /// New history visibility for members added from now on.
        history_visible: Option<bool>,
    },
    /// Adds users (admins); each exists. Those in `invite` (whose
    /// settings admit only their contacts' adds) are invited instead:
    /// [`ConversationState::pending`] until they accept or decline.
    Add {
        /// Users to make members now.
        users: Vec<UserId>,
        /// Users to invite.
        invite: Vec<UserId>,
    },
    /// Removes a member, or withdraws an invitation (admins).
    Remove(UserId),
    /// The actor accepts its invitation: it joins.
    Accept,
    /// The actor declines its invitation.
    Decline,
    /// The actor leaves.
    Leave,
    /// Gives a member a role (the owner).
    SetRole(UserId, Role),
    /// Sets or revokes the invite token's hash (admins); no notice.
    SetInvite(Option<String>),
    /// The actor joins by invite link.
    Join,
    /// Turns end-to-end encryption on (any member of a direct
    /// conversation, an admin of a group).
    Encrypt,
    /// Sets the disappearing-message timer (any member of a direct
    /// conversation, an admin of a group): one of
    /// [`DISAPPEARING_TIMERS`](crate::model::DISAPPEARING_TIMERS), or off.
    SetTimer(Option<Millis>),
}

/// Applies `action` by `actor` to `state` at time `now`: the state to store
/// (its `version` and, with a notice, `last_seq` one higher) and the
/// notice's content, if the change writes one. `max_members` caps a
/// group's current members.
pub fn apply(
    state: &ConversationState,
    actor: &UserId,
    action: Action,
    now: Millis,
    max_members: usize,
) -> Result<(ConversationState, Option<Content>), CoreError> {
    if state.kind != ConversationKind::Group
        && !matches!(action, Action::Encrypt | Action::SetTimer(_))
    {
        return Err(CoreError::InvalidArgument {
            field: "conv".into(),
            message: "a direct conversation has no members or settings to change".into(),
        });
    }
    let mut next = state.clone();
    next.version += 1;
    let seq = state.last_seq + 1;
    let current = state.member(actor).filter(|m| m.is_active());
    let me = || current.ok_or_else(not_a_member);
    let notice = match action {
        Action::Join => {
            if current.is_some() {
                return Err(CoreError::Conflict {
                    field: "token".into(),
                });
            }
            check_room(state, 1, max_members)?;
            // Joining by link ends an invitation too.
            next.pending.retain(|p| p.user != *actor);
            admit(&mut next, actor, seq, now);
            Content::MemberJoined {}
        }
        Action::Update {
            title,
            description,
            avatar,
            history_visible,
        } => {
            at_least(me()?, Role::Admin)?;
            if title.is_none()
                && description.is_none()
                && avatar.is_none()
                && history_visible.is_none()
            {
                return Err(CoreError::InvalidArgument {
                    field: "title".into(),
                    message: "nothing to change".into(),
                });
            }
            let info = &mut next.info;
            if let Some(t) = &title {
                info.title.clone_from(t);
            }
            if let Some(d) = &description {
                info.description.clone_from(d);
            }
            if let Some(a) = &avatar {
                info.avatar.clone_from(a);
            }
            if let Some(v) = history_visible {
                info.history_visible = v;
            }
            Content::GroupUpdated {
                title,
                description,
                avatar: avatar.map(Option::unwrap_or_default),
                history_visible,
            }
        }
        Action::Add { users, invite } => {
            at_least(me()?, Role::Admin)?;
            let mut new: Vec<UserId> = Vec::with_capacity(users.len());
            for u in users {
                if !state.has_member(&u) && !new.contains(&u) {
                    new.push(u);
                }
            }
            let mut invited = 0;
            for u in invite {
                if !state.has_member(&u) && state.pending_for(&u).is_none() && !new.contains(&u) {
                    next.pending.push(Pending::new(u, actor.clone(), now));
                    invited += 1;
                }
            }
            if new.is_empty() && invited == 0 {
                return Err(CoreError::Conflict {
                    field: "users".into(),
                });
            }
            check_room(state, new.len(), max_members)?;
            if next.pending.len() > max_members {
                return Err(CoreError::LimitReached(format!(
                    "a group has at most {max_members} invitations open"
                )));
            }
            // An invited user added meanwhile by someone they accept adds
            // from is a member now, invited no longer.
            next.pending.retain(|p| !new.contains(&p.user));
            if new.is_empty() {
                return Ok((next, None));
            }
            for u in &new {
                admit(&mut next, u, seq, now);
            }
            Content::MembersAdded { users: new }
        }
        Action::Accept => {
            if state.pending_for(actor).is_none() {
                return Err(no_invitation());
            }
            check_room(state, 1, max_members)?;
            next.pending.retain(|p| p.user != *actor);
            admit(&mut next, actor, seq, now);
            Content::MemberJoined {}
        }
        Action::Decline => {
            if state.pending_for(actor).is_none() {
                return Err(no_invitation());
            }
            next.pending.retain(|p| p.user != *actor);
            return Ok((next, None));
        }
        Action::Remove(user) => {
            at_least(me()?, Role::Admin)?;
            if user == *actor {
                return Err(CoreError::InvalidArgument {
                    field: "user".into(),
                    message: "to leave a group, use leave".into(),
                });
            }
            if state.pending_for(&user).is_some() {
                next.pending.retain(|p| p.user != user);
                return Ok((next, None));
            }
            let target = state
                .member(&user)
                .filter(|m| m.is_active())
                .ok_or_else(|| CoreError::NotFound("no such member".into()))?;
            if target.role >= me()?.role {
                return Err(CoreError::Forbidden(match target.role {
                    Role::Owner => "the owner cannot be removed".into(),
                    _ => "only the owner removes an admin".into(),
                }));
            }
            end(&mut next, &user, seq);
            Content::MemberRemoved { user }
        }
        Action::Leave => {
            let was_owner = me()?.role == Role::Owner;
            end(&mut next, actor, seq);
            let new_owner = if was_owner {
                let heir = longest_serving(&next);
                if let Some(h) = &heir {
                    set_role(&mut next, h, Role::Owner);
                }
                heir
            } else {
                None
            };
            Content::MemberLeft { new_owner }
        }
        Action::SetRole(user, role) => {
            at_least(me()?, Role::Owner)?;
            if user == *actor {
                return Err(CoreError::InvalidArgument {
                    field: "user".into(),
                    message: "the owner hands ownership to another member".into(),
                });
            }
            let target = state
                .member(&user)
                .filter(|m| m.is_active())
                .ok_or_else(|| CoreError::NotFound("no such member".into()))?;
            if target.role == role {
                return Err(CoreError::InvalidArgument {
                    field: "role".into(),
                    message: "the member has this role already".into(),
                });
            }
            if role == Role::Owner {
                set_role(&mut next, actor, Role::Admin);
            }
            set_role(&mut next, &user, role);
            Content::RoleChanged { user, role }
        }
        Action::SetInvite(hash) => {
            at_least(me()?, Role::Admin)?;
            next.invite = hash;
            return Ok((next, None));
        }
        Action::Encrypt => return encrypt(state, actor),
        Action::SetTimer(after) => return set_timer(state, actor, after),
    };
    next.last_seq = seq;
    Ok((next, Some(notice)))
}

/// [`Action::Encrypt`], in a conversation of either kind.
fn encrypt(
    state: &ConversationState,
    actor: &UserId,
) -> Result<(ConversationState, Option<Content>), CoreError> {
    let me = state
        .member(actor)
        .filter(|m| m.is_active())
        .ok_or_else(not_a_member)?;
    if state.kind == ConversationKind::Group {
        at_least(me, Role::Admin)?;
    }
    if state.encrypted {
        return Err(CoreError::Conflict {
            field: "encrypted".into(),
        });
    }
    let mut next = state.clone();
    next.version += 1;
    next.last_seq += 1;
    next.encrypted = true;
    Ok((next, Some(Content::EncryptionEnabled {})))
}

/// [`Action::SetTimer`], in a conversation of either kind.
fn set_timer(
    state: &ConversationState,
    actor: &UserId,
    after: Option<Millis>,
) -> Result<(ConversationState, Option<Content>), CoreError> {
    if after.is_some_and(|a| !crate::model::DISAPPEARING_TIMERS.contains(&a)) {
        return Err(CoreError::InvalidArgument {
            field: "expire_after".into(),
            message: "the timer is 1 hour, 1 day, 1 week or 90 days, in milliseconds".into(),
        });
    }
    let me = state
        .member(actor)
        .filter(|m| m.is_active())
        .ok_or_else(not_a_member)?;
    if state.kind == ConversationKind::Group {
        at_least(me, Role::Admin)?;
    }
    if state.expire_after == after {
        return Err(CoreError::Conflict {
            field: "expire_after".into(),
        });
    }
    let mut next = state.clone();
    next.version += 1;
    next.last_seq += 1;
    next.expire_after = after;
    Ok((
        next,
        Some(Content::TimerChanged {
            expire_after: after,
        }),
    ))
}

/// The error for accepting or declining an invitation that is not there.
fn no_invitation() -> CoreError {
    CoreError::NotFound("no such request".into())
}

/// The error for an actor that is not (or no longer) a member.
fn not_a_member() -> CoreError {
    CoreError::Forbidden("you are not a member of this group".into())
}

fn at_least(me: &Member, role: Role) -> Result<(), CoreError> {
    if me.role >= role {
        Ok(())
    } else {
        Err(CoreError::Forbidden(match role {
            Role::Owner => "only the group's owner may do this".into(),
            _ => "only the group's admins may do this".into(),
        }))
    }
}

fn check_room(state: &ConversationState, adding: usize, max: usize) -> Result<(), CoreError> {
    if state.member_count() + adding > max {
        Err(CoreError::LimitReached(format!(
            "a group has at most {max} members"
        )))
    } else {
        Ok(())
    }
}

/// Makes `user` a current member from `seq` on: a new record, or a former
/// member's renewed (keeping its mute).
fn admit(state: &mut ConversationState, user: &UserId, seq: u64, now: Millis) {
    match state.members.iter_mut().find(|m| m.user == *user) {
        Some(m) => {
            m.role = Role::Member;
            m.joined_seq = seq;
            m.joined_at = now;
            m.left_seq = None;
        }
        None => state
            .members
            .push(Member::new(user.clone(), Role::Member, seq, now)),
    }
}

fn end(state: &mut ConversationState, user: &UserId, seq: u64) {
    if let Some(m) = state.members.iter_mut().find(|m| m.user == *user) {
        m.left_seq = Some(seq);
        m.role = Role::Member;
    }
}

fn set_role(state: &mut ConversationState, user: &UserId, role: Role) {
    if let Some(m) = state.members.iter_mut().find(|m| m.user == *user) {
        m.role = role;
    }
}

/// Who inherits a group its owner leaves: the longest-serving admin, else
/// the longest-serving member. Served longest: joined at the earliest seq
/// (times can tie within a millisecond, seqs only for users who joined by
/// one entry: then who that entry names first).
fn longest_serving(state: &ConversationState) -> Option<UserId> {
    let best = |role: Role| {
        state
            .active()
            .filter(|m| m.role == role)
            .min_by_key(|m| m.joined_seq)
            .map(|m| m.user.clone())
    };
    best(Role::Admin).or_else(|| best(Role::Member))
}

/// A new group's settings from a `create_group` request's normalised fields.
pub fn info(title: String, description: String, avatar: Option<String>) -> GroupInfo {
    GroupInfo {
        title,
        description,
        avatar,
        history_visible: false,
    }
}
