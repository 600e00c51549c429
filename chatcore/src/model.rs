//! The domain model: identifiers, users, messages, presence.
//!
//! Identifiers are strings on the wire so that every language (JavaScript
//! numbers stop at 2^53) can carry them unchanged; in Rust they are newtypes so
//! a user id can never be passed where a conversation id is expected.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A user's permanent id, assigned at registration (a UUIDv7: time-ordered).
    UserId
);
string_id!(
    /// One logged-in device of a user. Each login creates a device; resuming a
    /// session keeps it, so its delivery cursors survive reconnects.
    DeviceId
);
string_id!(
    /// A server-assigned message id (UUIDv7).
    MessageId
);
string_id!(
    /// A conversation, direct or group. Opaque: clients get it from the
    /// server (`open_direct`, `create_group`, `sent`, `conversations`) and
    /// never build or parse one; nothing reads members out of it.
    ConversationId
);

string_id!(
    /// A stored blob (an image, a file, a voice note, a profile picture):
    /// 128 random bits as 32 lowercase hex characters. Unguessable, and of
    /// one fixed shape that [`MediaId::parse`] checks, so that an id from a
    /// request can never name a path or anything but a blob.
    MediaId
);

/// A fresh time-ordered UUID (v7), hyphenated, lower case. Written into an
/// exact-size buffer: `to_string` goes through the formatting machinery,
/// which cost more than the rest of creating a message id.
fn new_uuid() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

impl UserId {
    /// A fresh, time-ordered user id.
    pub fn generate() -> Self {
        Self(new_uuid())
    }
}

impl DeviceId {
    /// A fresh device id.
    pub fn generate() -> Self {
        Self(new_uuid())
    }
}

impl MessageId {
    /// A fresh, time-ordered message id.
    pub fn generate() -> Self {
        Self(new_uuid())
    }
}

impl MediaId {
    /// Characters in an id: 128 bits, 4 per hex digit.
    pub const LEN: usize = 32;

    /// A fresh id: 128 bits from the operating system's generator, so that
    /// knowing other ids tells nothing about the next one.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bits = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bits);
        let mut id = String::with_capacity(Self::LEN);
        for b in bits {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self(id)
    }

    /// `s` as a media id if it has the shape [`MediaId::generate`] makes
    /// (exactly 32 lowercase hex characters), `None` otherwise: no slash,
    /// dot, upper case or other length gets through, so a parsed id is safe
    /// to use as a file name.
    pub fn parse(s: &str) -> Option<Self> {
        well_formed_media_id(s).then(|| Self(s.to_owned()))
    }

    /// Whether this id has the shape [`MediaId::parse`] accepts (the
    /// `From<&str>` of every id type does not check it).
    pub fn is_well_formed(&self) -> bool {
        well_formed_media_id(&self.0)
    }
}

fn well_formed_media_id(s: &str) -> bool {
    s.len() == MediaId::LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ConversationId {
    /// A fresh group conversation id.
    pub fn generate_group() -> Self {
        let mut id = String::with_capacity(2 + uuid::fmt::Hyphenated::LENGTH);
        id.push_str("g:");
        id.push_str(&new_uuid());
        Self(id)
    }

    /// The key of the direct conversation between two users: the same
    /// whichever side asks, so that the store's uniqueness on it makes two
    /// users opening their conversation at once get the same one. Only the
    /// server computes it, to find that conversation; it is never parsed.
    pub fn direct(a: &UserId, b: &UserId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        // Built by hand: `format!` costs several times as much, once per message.
        let mut id = String::with_capacity(4 + lo.0.len() + hi.0.len());
        id.push_str("dm:");
        id.push_str(&lo.0);
        id.push(':');
        id.push_str(&hi.0);
        Self(id)
    }
}

/// Milliseconds since the Unix epoch, UTC. The one time type of the model.
pub type Millis = i64;

/// The most members one message mentions.
pub const MAX_MENTIONS: usize = 50;

/// The most uploaded files one message carries (an album).
pub const MAX_MEDIA: usize = 10;

/// The largest inline thumbnail of an image, in bytes once decoded.
pub const MAX_THUMBNAIL_BYTES: usize = 8 * 1024;

/// The most samples of a voice message's waveform.
pub const MAX_WAVEFORM: usize = 128;

/// The most reactions one member keeps on one message (live ones: a
/// reaction taken back no longer counts).
pub const MAX_REACTIONS: usize = 20;

/// The disappearing-message timers a conversation may have, in
/// milliseconds: 1 hour, 1 day, 1 week, 90 days (or none: off). A fixed
/// set, as Signal and WhatsApp offer, so that every client can name it.
pub const DISAPPEARING_TIMERS: [Millis; 4] =
    [3_600_000, 86_400_000, 7 * 86_400_000, 90 * 86_400_000];

/// How a client encrypted a file before uploading it (docs/E2E.md, *Files*):
/// AES-256-GCM under a random key used for this file only. It travels only
/// inside an encrypted content, where the receiving devices read it; the
/// server refuses it in a plain one (it would hand the key to the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEncryption {
    /// The 32-byte key, unpadded standard base64.
    pub key: String,
    /// The 12-byte nonce, unpadded standard base64.
    pub iv: String,
    /// The SHA-256 of the uploaded bytes (the ciphertext and its tag),
    /// lowercase hex: what `POST /media` answered, checked before decrypting.
    pub sha256: String,
}

/// Whether a conversation is between two users or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// Two users, one conversation per pair; no roles.
    Direct,
    /// A group with a title, roles and invites.
    Group,
}

/// A member's role in a group. Ordered by power: `Member < Admin < Owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads and writes.
    Member,
    /// Also adds and removes members and edits the group.
    Admin,
    /// Also promotes and demotes admins and hands ownership over. One per group.
    Owner,
}

/// What an entry of a conversation's log carries, tagged by `kind`. Clients
/// send only the message kinds ([`Content::is_message`]); the notice kinds
/// record a change of the conversation, written by the server in the same
/// log so every device sees them in order with the messages. New kinds
/// (media, ciphertext) can be added without breaking old decoders' framing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    /// Plain UTF-8 text.
    Text {
        /// The text, at most `Limits::max_text_bytes` bytes.
        text: String,
    },
    /// A photo, uploaded with `POST /media` (in an encrypted conversation
    /// the same fields travel inside the ciphertext, with the file's key).
    Image {
        /// The uploaded file.
        media: MediaId,
        /// Its type as the client read it (`image/jpeg`); the server only
        /// passes it on.
        mime: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The file's size in bytes.
        size: u64,
        /// A small preview the client made (unpadded base64, at most
        /// [`MAX_THUMBNAIL_BYTES`] decoded), shown until the file loads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thumbnail: Option<String>,
        /// A caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// How the file was encrypted, inside an encrypted content only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encryption: Option<FileEncryption>,
    },
    /// A file of any type.
    File {
        /// The uploaded file.
        media: MediaId,
        /// Its name as the sender's device had it.
        name: String,
        /// Its type as the client read it.
        mime: String,
        /// Its size in bytes.
        size: u64,
        /// How the file was encrypted, inside an encrypted content only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encryption: Option<FileEncryption>,
    },
    /// A voice message.
    Voice {
        /// The uploaded recording.
        media: MediaId,
        /// Its type (`audio/webm`, `audio/ogg`).
        mime: String,
        /// Its length in milliseconds.
        duration_ms: u32,
        /// Its loudness over time: at most [`MAX_WAVEFORM`] samples, 0 to 255.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waveform: Vec<u8>,
        /// Its size in bytes.
        size: u64,
        /// How the file was encrypted, inside an encrypted content only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encryption: Option<FileEncryption>,
    },
    /// End-to-end encrypted content: what the sender's device encrypted
    /// (a text, and later a reply, a reaction, media) for the members'
    /// devices. The server routes it and cannot read it; see docs/E2E.md.
    Encrypted {
        /// How it is encrypted ([`crate::e2e::MEGOLM_V1`]). Borrowed when it
        /// is a name the server knows, so that relaying a message does not
        /// allocate a copy of the same few bytes each time.
        algorithm: Cow<'static, str>,
        /// The sending device.
        device: DeviceId,
        /// The id of the sender's session whose key decrypts it.
        session: String,
        /// The ciphertext, unpadded standard base64.
        ciphertext: String,
    },
    /// Notice: the sender created the group with these other members.
    GroupCreated {
        /// The title it was created with.
        title: String,
        /// The members it was created with, besides its creator.
        members: Vec<UserId>,
    },
    /// Notice: the sender (an admin) added these users.
    MembersAdded {
        /// The new members.
        users: Vec<UserId>,
    },
    /// Notice: the sender joined with an invite link.
    MemberJoined {},
    /// Notice: the sender (an admin) removed `user`.
    MemberRemoved {
        /// Who was removed.
        user: UserId,
    },
    /// Notice: the sender left. If the sender owned the group, `new_owner`
    /// owns it now.
    MemberLeft {
        /// The member ownership passed to, when the owner left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_owner: Option<UserId>,
    },
    /// Notice: the sender (the owner) gave `user` the role `role`. When the
    /// role is `owner`, the sender handed ownership over and is an admin now.
    RoleChanged {
        /// Whose role changed.
        user: UserId,
        /// The new role.
        role: Role,
    },
    /// Notice: the sender (an admin) changed the group's settings; only the
    /// changed ones are present. An empty description or avatar removes it.
    GroupUpdated {
        /// The new title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The new description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// The new avatar (a media id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
        /// Whether members added from now on see the history before they joined.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history_visible: Option<bool>,
    },
    /// Notice: the sender turned end-to-end encryption on. From this entry
    /// on, the conversation takes only [`Content::Encrypted`] messages; it
    /// is never turned off.
    EncryptionEnabled {},
    /// A seq the store had to leave without content (a writer claimed it and
    /// never wrote it). Keeps the log gap-free; clients show nothing.
    Void {},
    /// No content: what a deletion leaves. The entry of a `delete` (its
    /// [`Rel`] names the target) carries it, and so does every entry
    /// whose content a deletion or the conversation's timer removed (the
    /// tombstone keeps its seq, sender, time and relation).
    Deleted {},
    /// Notice: the sender set the conversation's disappearing-message
    /// timer: messages sent from now on lose their content this long after
    /// they were sent (`None`: off). See
    /// [`DISAPPEARING_TIMERS`].
    TimerChanged {
        /// The timer in milliseconds; absent when turned off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_after: Option<Millis>,
    },
    /// Notice: a call of the sender (the caller) ended. Written by the
    /// server when the call ends, in the direct conversation it was made in.
    Call {
        /// The call's id.
        call: String,
        /// Voice or video.
        media: CallMedia,
        /// How it ended.
        outcome: CallEnd,
        /// How long it lasted from the answer, for a call that was answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
}

/// What a call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMedia {
    /// Sound only.
    Voice,
    /// Sound and video.
    Video,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// One side hung up a call that was answered.
    Hangup,
    /// The caller hung up before an answer.
    Cancelled,
    /// The callee declined it (on any device).
    Declined,
    /// The callee was in another call.
    Busy,
    /// Nobody answered in time.
    Missed,
    /// A device could not set the call up or keep it (media, network).
    Failed,
    /// A device in the call lost its connection and did not come back in
    /// time.
    Gone,
}

impl CallEnd {
    /// The `outcome` as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEnd::Hangup => "hangup",
            CallEnd::Cancelled => "cancelled",
            CallEnd::Declined => "declined",
            CallEnd::Busy => "busy",
            CallEnd::Missed => "missed",
            CallEnd::Failed => "failed",
            CallEnd::Gone => "gone",
        }
    }
}

impl Content {
    /// Whether it counts as unread and raises an alert: a message, or a
    /// call the recipient missed (nobody answered, or they were busy).
    pub fn alerts(&self) -> bool {
        self.is_message()
            || matches!(
                self,
                Content::Call {
                    outcome: CallEnd::Missed | CallEnd::Busy,
                    ..
                }
            )
    }

    /// Whether this is a message a client sends, rather than a notice the
    /// server writes.
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Content::Text { .. }
                | Content::Encrypted { .. }
                | Content::Image { .. }
                | Content::File { .. }
                | Content::Voice { .. }
        )
    }

    /// The uploaded file a plain media message carries, if it is one.
    pub fn media(&self) -> Option<&MediaId> {
        match self {
            Content::Image { media, .. }
            | Content::File { media, .. }
            | Content::Voice { media, .. } => Some(media),
            _ => None,
        }
    }

    /// How the file of an image, file or voice content was encrypted, if
    /// it says ([`FileEncryption`]: inside an encrypted content only).
    pub fn encryption(&self) -> Option<&FileEncryption> {
        match self {
            Content::Image { encryption, .. }
            | Content::File { encryption, .. }
            | Content::Voice { encryption, .. } => encryption.as_ref(),
            _ => None,
        }
    }

    /// Whether the server can read what a client sent: a message that an
    /// encrypted conversation refuses.
    pub fn is_plaintext(&self) -> bool {
        matches!(
            self,
            Content::Text { .. }
                | Content::Image { .. }
                | Content::File { .. }
                | Content::Voice { .. }
        )
    }

    /// The `kind` tag, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Image { .. } => "image",
            Content::File { .. } => "file",
            Content::Voice { .. } => "voice",
            Content::Encrypted { .. } => "encrypted",
            Content::GroupCreated { .. } => "group_created",
            Content::MembersAdded { .. } => "members_added",
            Content::MemberJoined {} => "member_joined",
            Content::MemberRemoved { .. } => "member_removed",
            Content::MemberLeft { .. } => "member_left",
            Content::RoleChanged { .. } => "role_changed",
            Content::GroupUpdated { .. } => "group_updated",
            Content::EncryptionEnabled {} => "encryption_enabled",
            Content::Void {} => "void",
            Content::Deleted {} => "deleted",
            Content::TimerChanged { .. } => "timer_changed",
            Content::Call { .. } => "call",
        }
    }
}

/// How an entry relates to the message it points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelKind {
    /// A message that quotes the target.
    Reply,
    /// A new content for the target, which the same sender sent.
    Edit,
    /// A reaction (one emoji) to the target.
    Reaction,
    /// The target's deletion for everyone (and with it, its edits and
    /// reactions); the entry's content is [`Content::Deleted`].
    Delete,
}

impl RelKind {
    /// The `kind` tag, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RelKind::Reply => "reply",
            RelKind::Edit => "edit",
            RelKind::Reaction => "reaction",
            RelKind::Delete => "delete",
        }
    }

    /// Whether an entry of this kind (`None`: no relation) is a message in
    /// its own right, one that counts as unread and that others can point
    /// at, rather than a change to another one.
    pub fn stands_alone(kind: Option<RelKind>) -> bool {
        matches!(kind, None | Some(RelKind::Reply))
    }
}

/// What an entry points at: part of its envelope, which the server reads
/// to route, authorise and store it, while its content may be ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rel {
    /// How it relates.
    pub kind: RelKind,
    /// The id of the message it points at, in the same conversation.
    pub target: MessageId,
}

impl Rel {
    /// A relation of `kind` to `target`.
    pub fn new(kind: RelKind, target: MessageId) -> Self {
        Self { kind, target }
    }
}

/// An entry of a conversation's log (a message or a notice), as every
/// device receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Server-assigned id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conv: ConversationId,
    /// Position in the conversation: 1, 2, 3, ... with no gap, assigned when
    /// the store durably appended it.
    pub seq: u64,
    /// Who sent it.
    pub from: UserId,
    /// The sender's id for it, unique per sender; a retried send with the same
    /// `client_id` returns this message instead of storing a second one.
    /// For notices the server writes, their own id.
    pub client_id: String,
    /// Server time of the append.
    pub ts: Millis,
    /// The message this entry replies to, edits, reacts to or deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<Rel>,
    /// The members a group message mentions (they are alerted even where
    /// they muted the group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// The uploaded files (`POST /media`) the message carries, whatever its
    /// content says (which may be ciphertext): what the server knows of
    /// them, for keeping and collecting the files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaId>,
    /// When the conversation's disappearing-message timer removes its
    /// content (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// The payload.
    pub content: Content,
}

impl Message {
    /// Whether this is an entry in its own right ([`Content::alerts`] and
    /// [`RelKind::stands_alone`]): it counts as unread and raises an alert.
    pub fn stands_alone(&self) -> bool {
        self.content.alerts() && RelKind::stands_alone(self.rel.as_ref().map(|r| r.kind))
    }

    /// The relation's kind, if any.
    pub fn rel_kind(&self) -> Option<RelKind> {
        self.rel.as_ref().map(|r| r.kind)
    }
}

/// A user as the directory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The user's id.
    pub user: UserId,
    /// The username as the user typed it (uniqueness is on its normalised form).
    pub username: String,
    /// Free-form display name.
    pub display_name: String,
    /// "About" text of the contact card.
    pub about: String,
    /// The profile picture's media id, if any (absent, not `null`, when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// Whether a user is reachable now, or when they last were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// The user it describes.
    pub user: UserId,
    /// True while any device of the user is connected.
    pub online: bool,
    /// When the last device disconnected; absent while online or if never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
}

impl Presence {
    /// A user's presence from what a store keeps: `last_seen` is shown only
    /// while offline (an online user's last departure means nothing).
    pub fn of(user: UserId, online: bool, last_seen: Option<Millis>) -> Self {
        Self {
            user,
            online,
            last_seen: if online { None } else { last_seen },
        }
    }
}

impl Presence {
    /// What a user whose presence is hidden from the viewer looks like:
    /// offline, never seen. The same whether the cause is a privacy
    /// setting or a block, so the viewer cannot tell which.
    pub fn hidden(user: UserId) -> Self {
        Self {
            user,
            online: false,
            last_seen: None,
        }
    }
}

/// Who a privacy setting lets in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every user.
    #[default]
    Everyone,
    /// The user's contacts.
    Contacts,
    /// Nobody.
    Nobody,
}

impl Audience {
    /// Whether someone who is (`contact`) or is not a contact is let in.
    pub fn admits(self, contact: bool) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Contacts => contact,
            Audience::Nobody => false,
        }
    }
}

/// A user's privacy settings; the same on all the user's devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Privacy {
    /// Who may start a direct conversation with the user: `everyone` or
    /// `contacts`.
    pub direct: Audience,
    /// Who may add the user to a group: `everyone`, or `contacts` (anyone
    /// else's add becomes an invitation the user accepts or declines).
    /// Absent in settings stored before it existed: everyone.
    #[serde(default)]
    pub groups: Audience,
    /// Who sees the user's online state and last seen. Reciprocal: a user
    /// sees another's only if their own setting would show theirs to them.
    pub presence: Audience,
    /// Whether the user's fellow members see how far the user has read
    /// (read receipts; delivery is shown either way). Reciprocal: whoever
    /// turns them off sees nobody's. On unless turned off: absent on the
    /// wire and in settings stored before it existed.
    #[serde(default = "on", skip_serializing_if = "is_on")]
    pub read_receipts: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            direct: Audience::Everyone,
            groups: Audience::Everyone,
            presence: Audience::Everyone,
            read_receipts: true,
        }
    }
}

fn on() -> bool {
    true
}

fn is_on(b: &bool) -> bool {
    *b
}

/// How far a member has received and read a conversation, as its fellow
/// members see it (receipts). Not an entry of the log: one per member and
/// conversation, whose marks only rise, each covering every earlier seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The conversation.
    pub conv: ConversationId,
    /// The member.
    pub user: UserId,
    /// The highest seq one of the member's devices acknowledged, or the
    /// member read (a message read was delivered).
    pub delivered: u64,
    /// The highest seq the member read while sharing read receipts; never
    /// above `delivered`.
    pub read: u64,
    /// When either mark last rose (server time).
    pub at: Millis,
}

/// The current wall-clock time in milliseconds.
pub fn now_millis() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_random_hex_and_parse_refuses_other_shapes() {
        let a = MediaId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, MediaId::generate());
        assert_eq!(MediaId::parse(a.as_str()), Some(a.clone()));
        assert!(a.is_well_formed());
        for bad in [
            "",
            "../../etc/passwd",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef/123456789abcdef",
            "0123456789abcdef.123456789abcdef",
            "0123456789abcdeg0123456789abcdef",
            "é123456789abcdef0123456789abcde",
        ] {
            assert_eq!(MediaId::parse(bad), None, "{bad}");
            assert!(!MediaId::from(bad).is_well_formed(), "{bad}");
        }
    }

    #[test]
    fn direct_conversation_ids_are_the_same_whichever_side_asks() {
        let a = UserId::from("alice-id");
        let b = UserId::from("bob-id");
        let c = ConversationId::direct(&a, &b);
        assert_eq!(c, ConversationId::direct(&b, &a));
        assert_ne!(c, ConversationId::direct(&a, &UserId::from("carol-id")));
    }
}
