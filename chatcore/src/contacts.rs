//! The rules of contacts, blocks and privacy, as pure functions of a pair's
//! [`Relation`] and the users' [`Privacy`].
//!
//! A change one user asks for ([`Action`]) becomes the next relation to
//! store ([`apply`]); the store writes it only if the pair did not change
//! meanwhile ([`crate::store::ContactStore::change`]), so a request crossing
//! a block, or two devices answering one request, never both succeed.
//!
//! What a blocked user learns is nothing: every refusal that a block
//! causes is the same [`REFUSED`] that a privacy setting causes, a request
//! to someone who blocks the asker is stored and shown to the asker as
//! pending, and the blocker's side of the pair is never pushed to them.

use crate::error::CoreError;
use crate::model::{Millis, Presence, Privacy, UserId};
use crate::store::{Link, Relation};

/// The one answer to whatever a block or a privacy setting refuses, so
/// that the refused user cannot tell which it was.
pub const REFUSED: &str = "this user does not accept this from you";

/// A change of a pair's relation, asked by one of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask the other to become contacts (accepts theirs, if they asked).
    Request,
    /// Accept the other's request.
    Accept,
    /// Decline the other's request: they may not ask again before the
    /// retry time.
    Decline,
    /// Withdraw one's own request.
    Cancel,
    /// Stop being contacts.
    Remove,
    /// Block the other (withdraws one's own request).
    Block,
    /// Stop blocking the other (drops a request they made while blocked).
    Unblock,
}

/// A pair as one of its users sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing between them that this user sees.
    None,
    /// The other asked this user.
    Incoming,
    /// This user asked the other.
    Outgoing,
    /// Contacts.
    Contact,
}

/// What `user` sees of `relation`: the link (a request from someone the
/// user blocks is not shown; a request to someone who blocks the user
/// still is), whether the user blocks the other, and since when the state
/// holds. Never shows whether the other blocks the user.
pub fn view(relation: &Relation, user: &UserId) -> (State, bool, Option<Millis>) {
    let side = relation.side(user);
    let blocks = side.is_some_and(|i| relation.blocked[i].is_some());
    match &relation.link {
        Link::Contacts { since } => (State::Contact, blocks, Some(*since)),
        Link::Requested { by, at } if by == user => (State::Outgoing, blocks, Some(*at)),
        Link::Requested { at, .. } if !blocks => (State::Incoming, blocks, Some(*at)),
        _ => (State::None, blocks, None),
    }
}

/// Applies `action` by `actor` (one of the pair) at `now`: the relation
/// to store, its version one higher. `retry_after` is how long a declined
/// asker waits before asking again.
pub fn apply(
    relation: &Relation,
    actor: &UserId,
    action: Action,
    now: Millis,
    retry_after: Millis,
) -> Result<Relation, CoreError> {
    let me = relation
        .side(actor)
        .ok_or_else(|| CoreError::Internal("a relation changed by a stranger".into()))?;
    let other = 1 - me;
    let mut next = relation.clone();
    next.version += 1;
    let incoming = matches!(&relation.link, Link::Requested { by, .. } if by != actor);
    let outgoing = matches!(&relation.link, Link::Requested { by, .. } if by == actor);
    let no_request = || CoreError::NotFound("no such contact request".into());
    match action {
        Action::Request => {
            if relation.blocked[me].is_some() {
                return Err(CoreError::InvalidArgument {
                    field: "user".into(),
                    message: "you block this user: unblock them first".into(),
                });
            }
            if relation.are_contacts() || outgoing {
                return Err(CoreError::Conflict {
                    field: "user".into(),
                });
            }
            if incoming {
                // Both asked: that is an acceptance.
                next.link = Link::Contacts { since: now };
                next.unaccepted = [false, false];
            } else {
                if let Some(at) = relation.retry_at[me].filter(|at| *at > now) {
                    return Err(CoreError::RateLimited {
                        retry_after_ms: u64::try_from(at - now).unwrap_or(u64::MAX),
                    });
                }
                next.retry_at[me] = None;
                next.link = Link::Requested {
                    by: actor.clone(),
                    at: now,
                };
            }
        }
        Action::Accept => {
            if !incoming || relation.blocked[me].is_some() {
                return Err(no_request());
            }
            next.link = Link::Contacts { since: now };
            // Contacts accept each other's messages.
            next.unaccepted = [false, false];
        }
        Action::Decline => {
            if !incoming || relation.blocked[me].is_some() {
                return Err(no_request());
            }
            next.link = Link::None;
            next.retry_at[other] = Some(now.saturating_add(retry_after));
        }
        Action::Cancel => {
            if !outgoing {
                return Err(no_request());
            }
            next.link = Link::None;
        }
        Action::Remove => {
            if !relation.are_contacts() {
                return Err(CoreError::NotFound("not a contact".into()));
            }
            next.link = Link::None;
        }
        Action::Block => {
            if relation.blocked[me].is_some() {
                return Err(CoreError::Conflict {
                    field: "user".into(),
                });
            }
            next.blocked[me] = Some(now);
            if outgoing {
                next.link = Link::None;
            }
        }
        Action::Unblock => {
            let Some(since) = relation.blocked[me] else {
                return Err(CoreError::NotFound("this user is not blocked".into()));
            };
            next.blocked[me] = None;
            // A request made while blocked was never seen: it goes.
            if matches!(&relation.link, Link::Requested { by, at } if by != actor && *at >= since) {
                next.link = Link::None;
            }
        }
    }
    Ok(next)
}

/// Whether someone may start a direct conversation with a user whose
/// settings are `privacy`, given their relation (`None`: never stored).
pub fn may_open_direct(relation: Option<&Relation>, privacy: &Privacy) -> bool {
    let contacts = relation.is_some_and(Relation::are_contacts);
    let blocked = relation.is_some_and(Relation::any_block);
    !blocked && privacy.direct.admits(contacts)
}

/// Whether `viewer` sees the online state and last seen of `subject`
/// (whose settings are `settings`): neither blocks the other, the subject
/// is not a recipient of the viewer's message request it has not
/// accepted, the subject's setting admits the viewer, and the viewer's own
/// setting would admit the subject (whoever hides theirs does not see
/// others').
pub fn sees_presence(
    relation: Option<&Relation>,
    viewer: &Privacy,
    subject: &UserId,
    settings: &Privacy,
) -> bool {
    let (contacts, hidden) = facts(relation, subject);
    shows_presence(contacts, hidden, viewer, settings)
}

/// `presence` of `subject` as `viewer` may see it: as it is, or hidden
/// ([`Presence::hidden`]).
pub fn as_seen(
    relation: Option<&Relation>,
    viewer: &Privacy,
    subject: &Privacy,
    presence: Presence,
) -> Presence {
    if sees_presence(relation, viewer, &presence.user, subject) {
        presence
    } else {
        Presence::hidden(presence.user)
    }
}

/// [`sees_presence`] from the two facts it depends on.
pub fn shows_presence(contacts: bool, hidden: bool, viewer: &Privacy, subject: &Privacy) -> bool {
    !hidden && subject.presence.admits(contacts) && viewer.presence.admits(contacts)
}

/// What the visibility of `subject`'s presence to the other of the pair
/// depends on besides settings: whether the two are contacts, and whether
/// it is hidden whatever the settings say (either blocks the other, or
/// the subject has not accepted the other's message request).
pub fn facts(relation: Option<&Relation>, subject: &UserId) -> (bool, bool) {
    (
        relation.is_some_and(Relation::are_contacts),
        relation.is_some_and(|r| r.any_block() || r.awaits(subject)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Audience;

    fn pair() -> (UserId, UserId, Relation) {
        let a = UserId::from("a");
        let b = UserId::from("b");
        let r = Relation::new(&b, &a);
        (a, b, r)
    }

    #[test]
    fn a_request_accepted_makes_contacts_and_crossed_requests_accept() {
        let (a, b, r) = pair();
        let r = apply(&r, &a, Action::Request, 10, 100).unwrap();
        assert_eq!(view(&r, &a).0, State::Outgoing);
        assert_eq!(view(&r, &b).0, State::Incoming);
        let dup = apply(&r, &a, Action::Request, 11, 100).unwrap_err();
        assert!(matches!(dup, CoreError::Conflict { .. }));
        let crossed = apply(&r, &b, Action::Request, 12, 100).unwrap();
        assert_eq!(crossed.link, Link::Contacts { since: 12 });
        let accepted = apply(&r, &b, Action::Accept, 12, 100).unwrap();
        assert_eq!(accepted, crossed);
        assert!(
            apply(&r, &a, Action::Accept, 12, 100).is_err(),
            "one's own request"
        );
    }

    #[test]
    fn a_declined_asker_waits_for_the_retry_time() {
        let (a, b, r) = pair();
        let r = apply(&r, &a, Action::Request, 10, 100).unwrap();
        let r = apply(&r, &b, Action::Decline, 20, 100).unwrap();
        assert_eq!(view(&r, &a).0, State::None);
        let early = apply(&r, &a, Action::Request, 119, 100).unwrap_err();
        assert!(matches!(
            early,
            CoreError::RateLimited { retry_after_ms: 1 }
        ));
        let later = apply(&r, &a, Action::Request, 120, 100).unwrap();
        assert_eq!(view(&later, &b).0, State::Incoming);
        // The one declined may be asked by the decliner at once.
        assert!(apply(&r, &b, Action::Request, 21, 100).is_ok());
    }

    #[test]
    fn a_block_hides_nothing_from_the_blocker_and_shows_nothing_to_the_blocked() {
        let (a, b, r) = pair();
        let blocked = apply(&r, &b, Action::Block, 5, 100).unwrap();
        assert_eq!(view(&blocked, &b), (State::None, true, None));
        assert_eq!(view(&blocked, &a), (State::None, false, None));
        // The blocked user's request is stored and looks pending to them.
        let asked = apply(&blocked, &a, Action::Request, 6, 100).unwrap();
        assert_eq!(view(&asked, &a).0, State::Outgoing);
        assert_eq!(view(&asked, &b).0, State::None, "hidden from the blocker");
        assert!(apply(&asked, &b, Action::Accept, 7, 100).is_err());
        // Unblocking drops the request made while blocked.
        let unblocked = apply(&asked, &b, Action::Unblock, 8, 100).unwrap();
        assert_eq!(unblocked.link, Link::None);
        assert!(unblocked.is_empty());
        // The blocker cannot ask the one it blocks.
        assert!(matches!(
            apply(&blocked, &b, Action::Request, 6, 100),
            Err(CoreError::InvalidArgument { .. })
        ));
        assert!(matches!(
            apply(&blocked, &b, Action::Block, 6, 100),
            Err(CoreError::Conflict { .. })
        ));
    }

    #[test]
    fn presence_needs_both_settings_and_no_block() {
        let (a, b, r) = pair();
        let everyone = Privacy::default();
        let contacts = Privacy {
            presence: Audience::Contacts,
            ..Privacy::default()
        };
        let nobody = Privacy {
            presence: Audience::Nobody,
            ..Privacy::default()
        };
        assert!(sees_presence(None, &everyone, &b, &everyone));
        assert!(!sees_presence(None, &everyone, &b, &contacts));
        assert!(!sees_presence(None, &contacts, &b, &everyone), "reciprocal");
        let r = apply(&r, &a, Action::Request, 1, 0).unwrap();
        let friends = apply(&r, &b, Action::Accept, 2, 0).unwrap();
        assert!(sees_presence(Some(&friends), &contacts, &b, &contacts));
        assert!(!sees_presence(Some(&friends), &nobody, &b, &everyone));
        let blocked = apply(&friends, &a, Action::Block, 3, 0).unwrap();
        assert!(!sees_presence(Some(&blocked), &everyone, &b, &everyone));
        assert!(!may_open_direct(Some(&blocked), &everyone));
        let direct_contacts = Privacy {
            direct: Audience::Contacts,
            ..Privacy::default()
        };
        assert!(may_open_direct(Some(&friends), &direct_contacts));
        assert!(!may_open_direct(None, &direct_contacts));
    }

    #[test]
    fn an_unaccepted_message_request_hides_the_recipient_until_contacts() {
        let (a, b, r) = pair();
        let everyone = Privacy::default();
        let mut asked = r;
        asked.unaccepted[asked.side(&b).unwrap()] = true;
        assert!(!sees_presence(Some(&asked), &everyone, &b, &everyone));
        assert!(
            sees_presence(Some(&asked), &everyone, &a, &everyone),
            "the sender's own presence is not hidden by its request"
        );
        let r = apply(&asked, &a, Action::Request, 1, 0).unwrap();
        let friends = apply(&r, &b, Action::Accept, 2, 0).unwrap();
        assert_eq!(friends.unaccepted, [false, false]);
        assert!(sees_presence(Some(&friends), &everyone, &b, &everyone));
    }
}
