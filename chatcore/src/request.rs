//! What a request means, apart from the connection that carried it.
//!
//! A request is handled by a plain async function of the server, who asks
//! ([`Who`]) and the request's fields, in one of the files under
//! `commands/`. It returns the reply and records in an [`Out`] what else
//! must happen: events to publish (to other connections, on any node,
//! through the broker) and effects on the asking connection (it signs in,
//! watches someone's presence, focuses a conversation, closes). The handler
//! never sees the socket, the outbound queue or the session's state; the
//! session ([`crate::session`]) applies the effects, and tests call
//! [`dispatch`] without any connection at all.
//!
//! [`dispatch`] is the one place that maps a frame to its handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::commands::conversations::{self, Request};
use crate::commands::{
    account, backup, calls, contacts, devices, directory, keys, messaging, requests, to_device,
};
use crate::error::CoreError;
use crate::limits::AddrKey;
use crate::model::{Content, ConversationId, DeviceId, Millis, UserId};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::Server;
use crate::session::Disconnect;
use crate::store::{Event, Topic};

/// A signed-in connection's identity: who its requests run as.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Caller {
    /// The user.
    pub user: UserId,
    /// The device (one per sign-in).
    pub device: DeviceId,
    /// Hex SHA-256 of the session token the connection signed in with.
    pub token_hash: String,
    /// The asking connection's key: an event it caused names it as
    /// `origin`, so that the connection that has the reply already does
    /// not get the event again.
    pub conn: Arc<str>,
    /// The user's key in the rate limiter's send budget, made once per
    /// sign-in rather than per message.
    pub(crate) send_budget_key: String,
    /// Whether the user shares read receipts ([`Privacy::read_receipts`]):
    /// its reads raise the read mark others see. A connection keeps it
    /// current as the setting changes; `true` from [`Caller::new`].
    ///
    /// [`Privacy::read_receipts`]: crate::model::Privacy::read_receipts
    pub read_receipts: bool,
    /// The last `typing` this connection sent out to the conversation's
    /// members, which a repeat of it within a third of the push's
    /// `ttl_ms` need not send again. A connection keeps it from
    /// [`Out::typing`]; `None` from [`Caller::new`].
    pub typing: Option<TypingSent>,
}

/// A `typing` that went out to a conversation's members (see
/// [`Caller::typing`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypingSent {
    /// Where.
    pub conv: ConversationId,
    /// Writing or stopped.
    pub typing: bool,
    /// When, by the server's clock.
    pub at: Millis,
}

impl Caller {
    /// The identity of a connection `conn` signed in as `user` on `device`.
    pub fn new(user: UserId, device: DeviceId, token_hash: String, conn: Arc<str>) -> Self {
        Self {
            send_budget_key: format!("send:{user}"),
            user,
            device,
            token_hash,
            conn,
            read_receipts: true,
            typing: None,
        }
    }
}

/// Who asks: the connection's client address (for per-address limits) and,
/// once signed in, the caller.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// What the client's address counts as; `None`: not limited by address.
    pub addr: Option<AddrKey>,
    /// The signed-in identity, if any.
    pub caller: Option<&'a Caller>,
    /// Whether the connection has sent to this user before (a cache of the
    /// connection's, so that a repeated send skips the user lookup).
    pub(crate) known_peer: bool,
    /// The asking connection's key, when a connection asks: what events a
    /// sign-in causes name as `origin` (there is no caller yet to carry it).
    pub(crate) conn: Option<&'a Arc<str>>,
}

impl<'a> Who<'a> {
    /// A connection from `addr`, signed in as `caller` or not.
    pub fn new(addr: Option<AddrKey>, caller: Option<&'a Caller>) -> Self {
        Self {
            addr,
            caller,
            known_peer: false,
            conn: None,
        }
    }

    /// The caller, or `unauthenticated`.
    pub fn caller(&self) -> Result<&'a Caller, CoreError> {
        self.caller
            .ok_or_else(|| CoreError::Unauthenticated("sign in first".into()))
    }
}

/// A sign-in a handler completed: the session record exists and the
/// account slot of the connection ([`crate::limits`]) is taken. The
/// connection listens for the user's events and goes online.
#[derive(Clone, Debug)]
pub struct SignIn {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The session's token hash.
    pub token_hash: String,
}

/// What a request caused besides its reply. Reused from request to request
/// by a connection (cleared, not reallocated).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Out {
    /// Events to publish, each to its topic, through the broker.
    pub events: Vec<(Topic, Event)>,
    /// The connection signed in.
    pub sign_in: Option<SignIn>,
    /// Users whose presence the connection now watches because it talks
    /// with them.
    pub watch: Vec<UserId>,
    /// The users the connection's directory view now shows (replacing the
    /// previous view's watches).
    pub directory: Option<Vec<UserId>>,
    /// With `directory`: the view is the unfiltered first page, which
    /// listens for users who register ([`Topic::Directory`]).
    pub new_users: bool,
    /// The conversation the device now shows (`Some(None)`: none).
    pub focus: Option<Option<ConversationId>>,
    /// Close the connection after the reply, whether the request succeeded
    /// or not.
    pub close: Option<Disconnect>,
    /// The device acknowledged to-device payloads: if more were waiting
    /// than the last delivery carried, deliver the next ones.
    pub to_device_acked: bool,
    /// The connection now holds one side of a call (it invited, or
    /// answered): when it closes, the call learns that side is gone.
    pub holds_call: bool,
    /// What [`Caller::typing`] becomes (`Some(None)`: forgotten, as after a
    /// message, which ends the typing its recipients show).
    pub typing: Option<Option<TypingSent>>,
}

impl Out {
    /// Forgets everything, keeping the room.
    pub fn clear(&mut self) {
        self.events.clear();
        self.sign_in = None;
        self.watch.clear();
        self.directory = None;
        self.new_users = false;
        self.focus = None;
        self.close = None;
        self.to_device_acked = false;
        self.holds_call = false;
        self.typing = None;
    }

    pub(crate) fn publish(&mut self, topic: Topic, event: Event) {
        self.events.push((topic, event));
    }
}

/// A request being handled: its future, on the heap. Each request's state
/// lives in its own allocation, sized by its handler alone, so that no
/// connection's future carries room for the largest handler, and the
/// frequent ones stay within the allocator's fast sizes.
pub type Handling<'a> = Pin<Box<dyn Future<Output = Result<ServerFrame, CoreError>> + Send + 'a>>;

/// A request answered without waiting.
fn done<'a>(reply: Result<ServerFrame, CoreError>) -> Handling<'a> {
    Box::pin(std::future::ready(reply))
}

/// Handles one request (after `hello`) for `who`: its reply, and in `out`
/// what else it caused. Signed-out connections may only register, log in,
/// resume, reset a password and ping.
///
/// The frame is taken apart here, before anything awaits: each handler's
/// future holds only its own arguments, not the frame and the routing
/// around it.
pub fn dispatch<'a>(
    server: &'a Arc<Server>,
    who: Who<'a>,
    frame: ClientFrame,
    out: &'a mut Out,
) -> Handling<'a> {
    if let Err(e) = check_sizes(server, &frame) {
        return done(Err(e));
    }
    let s: &'a Server = server;
    match frame {
        ClientFrame::Hello { .. } => done(Err(CoreError::InvalidFrame(
            "hello was already sent".into(),
        ))),
        ClientFrame::Ping { id } => done(Ok(ServerFrame::Pong { id })),
        ClientFrame::ResetRequest { id, email } => {
            Box::pin(account::reset_request(server, who, id, email))
        }
        ClientFrame::ResetConfirm {
            id,
            token,
            new_password,
        } => Box::pin(account::reset_confirm(s, who, out, id, token, new_password)),
        ClientFrame::Register { .. } | ClientFrame::Login { .. } | ClientFrame::Resume { .. }
            if who.caller.is_some() =>
        {
            done(Err(CoreError::Forbidden(
                "this connection is already signed in; open another for another account".into(),
            )))
        }
        ClientFrame::Register {
            id,
            username,
            email,
            phone,
            display_name,
            password,
            device,
        } => {
            let form = account::Registration {
                username,
                email,
                phone,
                display_name,
                password,
                device,
            };
            Box::pin(account::register(s, who, out, id, form))
        }
        ClientFrame::Login {
            id,
            login,
            password,
            device,
        } => Box::pin(account::login(s, who, out, id, login, password, device)),
        ClientFrame::Resume { id, token } => Box::pin(account::resume(s, who, out, id, token)),
        other => match who.caller() {
            Ok(caller) => signed_in(s, who.known_peer, caller, other, out),
            Err(e) => done(Err(e)),
        },
    }
}

/// The requests of a signed-in caller.
fn signed_in<'a>(
    s: &'a Server,
    known_peer: bool,
    caller: &'a Caller,
    frame: ClientFrame,
    out: &'a mut Out,
) -> Handling<'a> {
    use conversations as c;
    match frame {
        ClientFrame::Logout { id } => Box::pin(account::logout(s, caller, out, id)),
        ClientFrame::ChangePassword {
            id,
            old_password,
            new_password,
        } => Box::pin(account::change_password(
            s,
            caller,
            out,
            id,
            old_password,
            new_password,
        )),
        ClientFrame::Devices { id } => Box::pin(devices::devices(s, caller, id)),
        ClientFrame::RenameDevice { id, device, name } => {
            Box::pin(devices::rename_device(s, caller, out, id, device, name))
        }
        ClientFrame::RevokeDevice { id, device } => {
            Box::pin(devices::revoke_device(s, caller, out, id, device))
        }
        ClientFrame::SearchUsers {
            id,
            query,
            after,
            limit,
        } => Box::pin(directory::search_users(
            s, caller, out, id, query, after, limit,
        )),
        ClientFrame::GetProfile { id, user } => {
            Box::pin(directory::get_profile(s, caller, id, user))
        }
        ClientFrame::UpdateProfile {
            id,
            display_name,
            about,
            avatar,
        } => Box::pin(directory::update_profile(
            s,
            caller,
            out,
            id,
            display_name,
            about,
            avatar,
        )),
        ClientFrame::Send {
            id,
            conv,
            to,
            client_id,
            rel,
            mentions,
            media,
            content,
        } => Box::pin(messaging::send(
            s,
            caller,
            known_peer,
            out,
            id,
            messaging::Outgoing {
                conv,
                to,
                client_id,
                rel,
                mentions,
                media,
                content,
            },
        )),
        ClientFrame::History {
            id,
            conv,
            before,
            limit,
        } => Box::pin(messaging::history(s, caller, out, id, conv, before, limit)),
        ClientFrame::Sync { id, limit } => Box::pin(messaging::sync(s, caller, id, limit)),
        ClientFrame::Ack { id, conv, seq } => {
            Box::pin(messaging::ack(s, caller, out, id, conv, seq))
        }
        ClientFrame::Read { id, conv, seq } => {
            Box::pin(messaging::read(s, caller, out, id, conv, seq))
        }
        ClientFrame::Typing { id, conv, typing } => {
            Box::pin(messaging::typing(s, caller, id, conv, typing, out))
        }
        ClientFrame::Receipts { id, conv, since } => {
            Box::pin(messaging::receipts(s, caller, out, id, conv, since))
        }
        ClientFrame::Focus { id, conv } => done(messaging::focus(out, id, conv)),
        ClientFrame::Conversations {
            id,
            list,
            after,
            limit,
        } => Box::pin(conversations::conversations(
            s, caller, out, id, list, after, limit,
        )),
        ClientFrame::OpenDirect {
            id,
            user,
            encrypted,
        } => Box::pin(c::open_direct(s, caller, out, id, user, encrypted)),
        ClientFrame::CreateGroup {
            id,
            title,
            description,
            avatar,
            members,
            encrypted,
        } => Box::pin(c::create_group(
            s,
            caller,
            out,
            id,
            c::NewGroup {
                title,
                description,
                avatar,
                members,
                encrypted,
            },
        )),
        ClientFrame::GetConversation { id, conv } => {
            Box::pin(c::get_conversation(s, caller, out, id, conv))
        }
        ClientFrame::UpdateGroup {
            id,
            conv,
            title,
            description,
            avatar,
            history_visible,
        } => {
            let request = Request::Update {
                title,
                description,
                avatar,
                history_visible,
            };
            Box::pin(c::change_group(s, caller, out, id, conv, request))
        }
        ClientFrame::AddMembers { id, conv, users } => Box::pin(c::change_group(
            s,
            caller,
            out,
            id,
            conv,
            Request::Add(users),
        )),
        ClientFrame::RemoveMember { id, conv, user } => Box::pin(c::change_group(
            s,
            caller,
            out,
            id,
            conv,
            Request::Remove(user),
        )),
        ClientFrame::Leave { id, conv } => {
            Box::pin(c::change_group(s, caller, out, id, conv, Request::Leave))
        }
        ClientFrame::SetRole {
            id,
            conv,
            user,
            role,
        } => Box::pin(c::change_group(
            s,
            caller,
            out,
            id,
            conv,
            Request::SetRole(user, role),
        )),
        ClientFrame::CreateInvite { id, conv } => {
            Box::pin(c::create_invite(s, caller, out, id, conv))
        }
        ClientFrame::RevokeInvite { id, conv } => {
            Box::pin(c::revoke_invite(s, caller, out, id, conv))
        }
        ClientFrame::Join { id, token } => Box::pin(c::join(s, caller, out, id, token)),
        ClientFrame::Mute { id, conv, until } => {
            Box::pin(c::mute(s, caller, id, conv, Some(until)))
        }
        ClientFrame::Unmute { id, conv } => Box::pin(c::mute(s, caller, id, conv, None)),
        ClientFrame::Contact { id, user, action } => {
            Box::pin(contacts::contact(s, caller, out, id, user, action))
        }
        ClientFrame::Block { id, user } => {
            Box::pin(contacts::block(s, caller, out, id, user, true))
        }
        ClientFrame::Unblock { id, user } => {
            Box::pin(contacts::block(s, caller, out, id, user, false))
        }
        ClientFrame::Contacts {
            id,
            list,
            after,
            limit,
        } => Box::pin(contacts::contacts(s, caller, id, list, after, limit)),
        ClientFrame::SetPrivacy {
            id,
            direct,
            groups,
            presence,
            read_receipts,
        } => Box::pin(contacts::set_privacy(
            s,
            caller,
            out,
            id,
            direct,
            groups,
            presence,
            read_receipts,
        )),
        ClientFrame::Accept { id, conv } => {
            Box::pin(requests::answer(s, caller, out, id, conv, true))
        }
        ClientFrame::Decline { id, conv } => {
            Box::pin(requests::answer(s, caller, out, id, conv, false))
        }
        ClientFrame::Report {
            id,
            user,
            conv,
            reason,
        } => Box::pin(requests::report(s, caller, id, user, conv, reason)),
        ClientFrame::UploadKeys {
            id,
            device_keys,
            one_time_keys,
            fallback_key,
            master_key,
            signatures,
        } => Box::pin(keys::upload(
            s,
            caller,
            out,
            id,
            keys::Upload {
                identity: device_keys,
                one_time: one_time_keys,
                fallback: fallback_key,
                master_key,
                signatures,
            },
        )),
        ClientFrame::QueryKeys { id, users, conv } => {
            Box::pin(keys::query(s, caller, id, users, conv))
        }
        ClientFrame::ClaimKeys { id, devices, conv } => {
            Box::pin(keys::claim(s, caller, out, id, devices, conv))
        }
        ClientFrame::SendToDevice {
            id,
            kind,
            messages,
            conv,
        } => Box::pin(to_device::send(s, caller, out, id, kind, messages, conv)),
        ClientFrame::AckToDevice { id, messages } => {
            Box::pin(to_device::ack(s, caller, out, id, messages))
        }
        ClientFrame::Encrypt { id, conv } => Box::pin(c::encrypt(s, caller, out, id, conv)),
        ClientFrame::SetTimer {
            id,
            conv,
            expire_after,
        } => Box::pin(c::set_timer(s, caller, out, id, conv, expire_after)),
        ClientFrame::CreateBackup {
            id,
            algorithm,
            auth_data,
        } => Box::pin(backup::create(s, caller, id, algorithm, auth_data)),
        ClientFrame::GetBackup { id } => Box::pin(backup::get(s, caller, id)),
        ClientFrame::UpdateBackup {
            id,
            version,
            auth_data,
        } => Box::pin(backup::update(s, caller, id, version, auth_data)),
        ClientFrame::DeleteBackup { id, version } => {
            Box::pin(backup::delete(s, caller, id, version))
        }
        ClientFrame::PutBackupKeys { id, version, keys } => {
            Box::pin(backup::put_keys(s, caller, id, version, keys))
        }
        ClientFrame::GetBackupKeys {
            id,
            version,
            after,
            limit,
        } => Box::pin(backup::get_keys(s, caller, id, version, after, limit)),
        ClientFrame::CallInvite {
            id,
            call,
            conv,
            media,
            signal,
        } => Box::pin(calls::invite(s, caller, out, id, call, conv, media, signal)),
        ClientFrame::CallRinging { id, call } => Box::pin(calls::ringing(s, caller, out, id, call)),
        ClientFrame::CallAnswer { id, call, signal } => {
            Box::pin(calls::answer(s, caller, out, id, call, signal))
        }
        ClientFrame::CallCandidates { id, call, signal } => {
            Box::pin(calls::candidates(s, caller, out, id, call, signal))
        }
        ClientFrame::CallHangup { id, call, reason } => {
            Box::pin(calls::hangup(s, caller, out, id, call, reason))
        }
        ClientFrame::IceServers { id } => Box::pin(calls::ice_servers(s, caller, id)),
        ClientFrame::Hello { .. }
        | ClientFrame::Ping { .. }
        | ClientFrame::Register { .. }
        | ClientFrame::Login { .. }
        | ClientFrame::Resume { .. }
        | ClientFrame::ResetRequest { .. }
        | ClientFrame::ResetConfirm { .. } => done(Err(CoreError::Internal(
            "a request reached the wrong dispatch".into(),
        ))),
    }
}

/// Refuses oversized strings with `too_large` before any work is done.
fn check_sizes(server: &Server, frame: &ClientFrame) -> Result<(), CoreError> {
    let max = server.config.max_field_bytes;
    let check = |field: &str, value: &str, max: usize| {
        if value.len() > max {
            Err(CoreError::TooLarge {
                field: field.to_owned(),
                message: format!("{field} is longer than {max} bytes"),
            })
        } else {
            Ok(())
        }
    };
    // A list of at most `max` items (`what`: the items, to name them).
    let count = |field: &str, len: usize, max: usize, what: &str| {
        if len > max {
            Err(CoreError::TooLarge {
                field: field.to_owned(),
                message: format!("{field} holds at most {max} {what}"),
            })
        } else {
            Ok(())
        }
    };
    // Passwords are bounded by the policy in characters; 4 bytes each at most.
    let pw_max = server.config.password_policy.max_chars * 4 + 4;
    match frame {
        ClientFrame::Hello { client, .. } => check("client", client.as_deref().unwrap_or(""), max),
        ClientFrame::Register {
            username,
            email,
            phone,
            display_name,
            password,
            device,
            ..
        } => {
            check("username", username, max)?;
            check("email", email, max)?;
            check("phone", phone, max)?;
            check("display_name", display_name, max)?;
            check("device", device, max)?;
            check("password", password, pw_max)
        }
        ClientFrame::Login {
            login,
            password,
            device,
            ..
        } => {
            check("login", login, max)?;
            check("device", device, max)?;
            check("password", password, pw_max)
        }
        ClientFrame::Resume { token, .. } => check("token", token, max),
        ClientFrame::ChangePassword {
            old_password,
            new_password,
            ..
        } => {
            check("old_password", old_password, pw_max)?;
            check("new_password", new_password, pw_max)
        }
        ClientFrame::ResetRequest { email, .. } => check("email", email, max),
        ClientFrame::ResetConfirm {
            token,
            new_password,
            ..
        } => {
            check("token", token, max)?;
            check("new_password", new_password, pw_max)
        }
        ClientFrame::SearchUsers { query, after, .. } => {
            check("query", query, max)?;
            check("after", after.as_deref().unwrap_or(""), max)
        }
        ClientFrame::GetProfile { user, .. } => check("user", user.as_str(), max),
        ClientFrame::UpdateProfile {
            display_name,
            about,
            avatar,
            ..
        } => {
            check("display_name", display_name.as_deref().unwrap_or(""), max)?;
            check("about", about.as_deref().unwrap_or(""), max)?;
            check("avatar", avatar.as_deref().unwrap_or(""), max)
        }
        ClientFrame::Send {
            conv,
            to,
            client_id,
            rel,
            mentions,
            media,
            content,
            ..
        } => {
            check("conv", conv.as_ref().map_or("", |c| c.as_str()), max)?;
            check("to", to.as_ref().map_or("", |u| u.as_str()), max)?;
            check("client_id", client_id, 128)?;
            check("rel", rel.as_ref().map_or("", |r| r.target.as_str()), max)?;
            count(
                "mentions",
                mentions.len(),
                crate::model::MAX_MENTIONS,
                "members",
            )?;
            check_users("mentions", mentions, server)?;
            count("media", media.len(), crate::model::MAX_MEDIA, "files")?;
            match content {
                Content::Text { text } => check("text", text, server.config.max_text_bytes),
                Content::Image {
                    mime,
                    thumbnail,
                    caption,
                    ..
                } => {
                    check("mime", mime, 255)?;
                    // Unpadded base64 of the largest thumbnail.
                    let encoded = crate::model::MAX_THUMBNAIL_BYTES.div_ceil(3) * 4;
                    check("thumbnail", thumbnail.as_deref().unwrap_or(""), encoded)?;
                    check(
                        "caption",
                        caption.as_deref().unwrap_or(""),
                        server.config.max_text_bytes,
                    )
                }
                Content::File { name, mime, .. } => {
                    check("mime", mime, 255)?;
                    check("name", name, max)
                }
                Content::Voice { mime, waveform, .. } => {
                    check("mime", mime, 255)?;
                    count(
                        "waveform",
                        waveform.len(),
                        crate::model::MAX_WAVEFORM,
                        "samples",
                    )
                }
                Content::Encrypted {
                    algorithm,
                    device,
                    session,
                    ciphertext,
                } => {
                    check("algorithm", algorithm, max)?;
                    check("device", device.as_str(), max)?;
                    check("session", session, max)?;
                    check(
                        "ciphertext",
                        ciphertext,
                        server.config.max_ciphertext_bytes(),
                    )
                }
                // Refused by the handler; no content of a notice is longer
                // than a frame.
                _ => Ok(()),
            }
        }
        ClientFrame::History { conv, .. }
        | ClientFrame::Ack { conv, .. }
        | ClientFrame::Read { conv, .. }
        | ClientFrame::Receipts { conv, .. }
        | ClientFrame::Typing { conv, .. }
        | ClientFrame::Focus {
            conv: Some(conv), ..
        }
        | ClientFrame::GetConversation { conv, .. }
        | ClientFrame::Leave { conv, .. }
        | ClientFrame::CreateInvite { conv, .. }
        | ClientFrame::RevokeInvite { conv, .. }
        | ClientFrame::Mute { conv, .. }
        | ClientFrame::Unmute { conv, .. }
        | ClientFrame::Accept { conv, .. }
        | ClientFrame::Encrypt { conv, .. }
        | ClientFrame::SetTimer { conv, .. }
        | ClientFrame::Decline { conv, .. } => check("conv", conv.as_str(), max),
        ClientFrame::SendToDevice {
            kind,
            messages,
            conv,
            ..
        } => {
            check("kind", kind, max)?;
            check("conv", conv.as_ref().map_or("", |c| c.as_str()), max)?;
            messages.iter().try_for_each(|m| {
                check("user", m.user.as_str(), max)?;
                check("device", m.device.as_ref().map_or("", |d| d.as_str()), max)?;
                check("id", &m.id, max)?;
                check(
                    "payload",
                    &m.payload,
                    server.config.max_to_device_bytes.saturating_mul(4) / 3 + 4,
                )
            })
        }
        ClientFrame::AckToDevice { messages, .. } => messages.iter().try_for_each(|m| {
            check("from_device", m.from_device.as_str(), max)?;
            check("id", &m.id, max)
        }),
        ClientFrame::UploadKeys {
            device_keys,
            one_time_keys,
            fallback_key,
            master_key,
            signatures,
            ..
        } => {
            if let Some(k) = master_key {
                check("master_key", &k.key, max)?;
                check("signature", &k.signature, max)?;
            }
            for sig in signatures {
                check("device", sig.device.as_str(), max)?;
                check("signature", &sig.signature, max)?;
            }
            if let Some(k) = device_keys {
                check("algorithm", &k.algorithm, max)?;
                check("signing_key", &k.signing_key, max)?;
                check("agreement_key", &k.agreement_key, max)?;
                check("signature", &k.signature, max)?;
            }
            for k in one_time_keys.iter().chain(fallback_key) {
                check("id", &k.id, max)?;
                check("key", &k.key, max)?;
                check("signature", &k.signature, max)?;
            }
            Ok(())
        }
        ClientFrame::QueryKeys { users, conv, .. } => {
            check("conv", conv.as_ref().map_or("", |c| c.as_str()), max)?;
            users
                .iter()
                .try_for_each(|u| check("users", u.as_str(), max))
        }
        ClientFrame::ClaimKeys { devices, conv, .. } => {
            check("conv", conv.as_ref().map_or("", |c| c.as_str()), max)?;
            devices.iter().try_for_each(|d| {
                check("user", d.user.as_str(), max)?;
                check("device", d.device.as_str(), max)
            })
        }
        ClientFrame::Report {
            user, conv, reason, ..
        } => {
            check("user", user.as_str(), max)?;
            check("conv", conv.as_ref().map_or("", |c| c.as_str()), max)?;
            check("reason", reason.as_deref().unwrap_or(""), 4 * max)
        }
        ClientFrame::OpenDirect { user, .. }
        | ClientFrame::Contact { user, .. }
        | ClientFrame::Block { user, .. }
        | ClientFrame::Unblock { user, .. } => check("user", user.as_str(), max),
        ClientFrame::Contacts { after, .. } => check("after", after.as_deref().unwrap_or(""), max),
        ClientFrame::SetPrivacy { .. } => Ok(()),
        ClientFrame::RemoveMember { conv, user, .. } | ClientFrame::SetRole { conv, user, .. } => {
            check("conv", conv.as_str(), max)?;
            check("user", user.as_str(), max)
        }
        ClientFrame::CreateGroup {
            title,
            description,
            avatar,
            members,
            ..
        } => {
            check("title", title, max)?;
            check("description", description.as_deref().unwrap_or(""), 4 * max)?;
            check("avatar", avatar.as_deref().unwrap_or(""), max)?;
            check_users("members", members, server)
        }
        ClientFrame::UpdateGroup {
            conv,
            title,
            description,
            avatar,
            ..
        } => {
            check("conv", conv.as_str(), max)?;
            check("title", title.as_deref().unwrap_or(""), max)?;
            check("description", description.as_deref().unwrap_or(""), 4 * max)?;
            check("avatar", avatar.as_deref().unwrap_or(""), max)
        }
        ClientFrame::AddMembers { conv, users, .. } => {
            check("conv", conv.as_str(), max)?;
            check_users("users", users, server)
        }
        ClientFrame::Join { token, .. } => check("token", token, max),
        ClientFrame::Conversations { after, .. } => {
            check("after", after.as_deref().unwrap_or(""), max)
        }
        // Bounded by their handlers (a name of 64 characters, a device id
        // of 64 bytes), which refuse anything longer with `invalid_argument`.
        ClientFrame::RenameDevice { .. } | ClientFrame::RevokeDevice { .. } => Ok(()),
        ClientFrame::Logout { .. }
        | ClientFrame::Devices { .. }
        | ClientFrame::Sync { .. }
        | ClientFrame::Focus { conv: None, .. }
        | ClientFrame::GetBackup { .. }
        | ClientFrame::IceServers { .. }
        | ClientFrame::Ping { .. } => Ok(()),
        // Signals are bounded by their handlers (calls.rs), field by field.
        ClientFrame::CallInvite { call, conv, .. } => {
            check("call", call, max)?;
            check("conv", conv.as_str(), max)
        }
        ClientFrame::CallRinging { call, .. }
        | ClientFrame::CallAnswer { call, .. }
        | ClientFrame::CallCandidates { call, .. }
        | ClientFrame::CallHangup { call, .. } => check("call", call, max),
        ClientFrame::CreateBackup {
            algorithm,
            auth_data,
            ..
        } => {
            check("algorithm", algorithm, max)?;
            check("auth_data", auth_data, server.config.max_backup_key_bytes)
        }
        ClientFrame::UpdateBackup {
            version, auth_data, ..
        } => {
            check("version", version, max)?;
            check("auth_data", auth_data, server.config.max_backup_key_bytes)
        }
        ClientFrame::DeleteBackup { version, .. } => check("version", version, max),
        ClientFrame::PutBackupKeys { version, keys, .. } => {
            check("version", version, max)?;
            let data_max = server.config.max_backup_key_bytes.saturating_mul(4) / 3 + 4;
            keys.iter().try_for_each(|k| {
                check("conv", k.conv.as_str(), max)?;
                check("session", &k.session, max)?;
                check("data", &k.data, data_max)
            })
        }
        ClientFrame::GetBackupKeys { version, after, .. } => {
            check("version", version, max)?;
            if let Some(a) = after {
                check("conv", a.conv.as_str(), max)?;
                check("session", &a.session, max)?;
            }
            Ok(())
        }
    }
}

/// Refuses a list of users longer than a group or with an oversized id.
fn check_users(field: &str, users: &[UserId], server: &Server) -> Result<(), CoreError> {
    let max = server.config.max_group_members;
    if users.len() > max {
        return Err(CoreError::TooLarge {
            field: field.to_owned(),
            message: format!("{field} names more than {max} users"),
        });
    }
    match users
        .iter()
        .find(|u| u.as_str().len() > server.config.max_field_bytes)
    {
        Some(_) => Err(CoreError::TooLarge {
            field: field.to_owned(),
            message: format!("an id in {field} is too long"),
        }),
        None => Ok(()),
    }
}

/// Clamps a client's page size to `1..=max_page`, `default` if absent.
pub(crate) fn page(server: &Server, limit: Option<u32>, default: usize) -> usize {
    limit
        .map_or(default, |l| usize::try_from(l).unwrap_or(usize::MAX))
        .clamp(1, server.config.max_page)
}
