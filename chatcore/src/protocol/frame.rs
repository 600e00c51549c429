use serde::{Deserialize, Serialize};

use super::{ErrorCode, SharedMessage};
use crate::model::{
    Audience, CallEnd, CallMedia, Content, ConversationId, ConversationKind, DeviceId, MediaId,
    Message, MessageId, Millis, Presence, Privacy, Profile, Rel, RelKind, Role, UserId,
};

/// The protocol version this build speaks. A client announces its version in
/// its first frame (`hello`); the server answers with the version both speak.
pub const PROTOCOL_VERSION: u32 = 9;

/// The oldest protocol version this build speaks: version 2 made
/// conversations stored things (`send` names one, groups), which version 1
/// clients cannot follow; version 3 added contacts, blocks and privacy
/// (`session` carries the settings, which version 2 decoders refuse);
/// version 4 added message requests and end-to-end encryption. Version 5
/// only adds (`typing`), and so do version 6 (`receipts`, `receipt`,
/// the `read_receipts` setting), version 7 (replies, edits, reactions,
/// deletion, mentions, disappearing messages), version 8 (media) and
/// version 9 (calls): a version-4 client is served, without what came
/// after it.
pub const MIN_PROTOCOL_VERSION: u32 = 4;

/// The first version whose clients get `typing` pushes.
pub const TYPING_VERSION: u32 = 5;

/// The first version whose clients get `receipt` pushes and see the
/// `read_receipts` setting (an older client's decoder refuses the field:
/// it is left out of what they get, as if on).
pub const RECEIPTS_VERSION: u32 = 6;

/// The first version whose clients see a message's life: `rel`,
/// `mentions` and `expires_at` on entries, the `deleted` and
/// `timer_changed` contents, `related` beside a page of history, and the
/// `mentions` and `expire_after` of a conversation. An older client's
/// decoder refuses them: it gets a reply as a plain message, and an edit,
/// reaction, deletion, tombstone or timer notice as a `void` entry (which
/// it shows as nothing), so its seqs stay gap-free.
pub const LIFE_VERSION: u32 = 7;

/// The first version whose clients see media: the `image`, `file` and
/// `voice` contents and the `media` list of an entry. An older client gets
/// a media message as a `text` saying what it was ("📷 Photo", ...), and
/// never the list.
pub const MEDIA_VERSION: u32 = 8;

/// The first version whose clients take part in calls: they get the
/// `call_state` and `call_signal` pushes and see the `call` notice. An
/// older client gets the notice as a `text` saying what it was ("📞 Missed
/// voice call", ...), and no call pushes.
pub const CALLS_VERSION: u32 = 9;

/// Everything a client may send. Every request carries an `id`, chosen by the
/// client, that the server's reply (or `error`) carries back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Must be the first frame: announces the protocol version. Reply: `welcome`.
    Hello {
        /// Request id.
        id: u32,
        /// Highest protocol version the client speaks.
        version: u32,
        /// Free-form client name and version, for the server's log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Creates an account and signs this connection in as a new device. Reply: `session`.
    Register {
        /// Request id.
        id: u32,
        /// Unique (case-insensitively, after Unicode NFKC) login name.
        username: String,
        /// Unique email address; password-reset mail goes there.
        email: String,
        /// Unique phone number, normalised to E.164 (`+` and digits).
        phone: String,
        /// Name shown to others.
        display_name: String,
        /// Checked against the password rules; never stored in clear.
        password: String,
        /// Name of the device being signed in ("Firefox on Linux").
        device: String,
    },
    /// Signs in by username or email, as a new device. Reply: `session` with a token.
    Login {
        /// Request id.
        id: u32,
        /// Username or email address.
        login: String,
        /// The password.
        password: String,
        /// Name of the device being signed in.
        device: String,
    },
    /// Resumes a session by its token (after a reconnect). Reply: `session` without token.
    Resume {
        /// Request id.
        id: u32,
        /// The token a `session` reply handed out.
        token: String,
    },
    /// Revokes this connection's session. Reply: `ok`.
    Logout {
        /// Request id.
        id: u32,
    },
    /// Changes the password and revokes every other session of the user. Reply: `ok`.
    ChangePassword {
        /// Request id.
        id: u32,
        /// The current password.
        old_password: String,
        /// The new password, checked against the rules.
        new_password: String,
    },
    /// The caller's devices: each live sign-in. Reply: `device_list`.
    Devices {
        /// Request id.
        id: u32,
    },
    /// Renames one of the caller's devices. Reply: `ok`.
    RenameDevice {
        /// Request id.
        id: u32,
        /// The device, as `device_list` names it.
        device: DeviceId,
        /// Its new name, normalised like the name given at sign-in.
        name: String,
    },
    /// Signs one of the caller's devices out for good: its sessions end at
    /// once (its connections close with 4001), its keys and to-device queue
    /// are deleted. The caller's own device: a `logout`. Reply: `ok`.
    RevokeDevice {
        /// Request id.
        id: u32,
        /// The device, as `device_list` names it.
        device: DeviceId,
    },
    /// Asks for a password-reset mail. The reply is `ok` whether or not the account exists.
    ResetRequest {
        /// Request id.
        id: u32,
        /// The account's email address.
        email: String,
    },
    /// Sets a new password with a reset token from the mail; revokes all sessions. Reply: `ok`.
    ResetConfirm {
        /// Request id.
        id: u32,
        /// The single-use token from the mail.
        token: String,
        /// The new password, checked against the rules.
        new_password: String,
    },
    /// Searches the directory by username or display-name prefix. Reply: `users`.
    ///
    /// The listed users' presence changes are pushed until the next search.
    SearchUsers {
        /// Request id.
        id: u32,
        /// Prefix to match (empty lists everyone).
        query: String,
        /// Paging cursor: the `next` of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Page size (server caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// One user's contact card. Reply: `profile`.
    GetProfile {
        /// Request id.
        id: u32,
        /// The user.
        user: UserId,
    },
    /// Changes the caller's own profile; absent fields stay. Reply: `profile`.
    UpdateProfile {
        /// Request id.
        id: u32,
        /// New display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// New about text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<String>,
        /// New avatar reference; the empty string removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
    },
    /// Sends a message to a conversation (`conv`), or to a user (`to`): the
    /// direct conversation with them, opened by this first send if need
    /// be. Exactly one of the two. With `rel`, the message replies to,
    /// edits, reacts to or deletes (with the content `deleted`) another
    /// message of the same conversation. Reply: `sent`, only once the store has it.
    Send {
        /// Request id.
        id: u32,
        /// The conversation (the caller must be a member).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
        /// The recipient of a direct message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<UserId>,
        /// The client's unique id for this message; resending with the same
        /// `client_id` is answered with the first send's `sent`, never stored twice.
        client_id: String,
        /// The message it points at, and how.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rel: Option<Rel>,
        /// Members of the group it mentions (at most 50).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<UserId>,
        /// The uploaded files it carries (`POST /media`; at most 10),
        /// whatever its content (which may be ciphertext) says.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        media: Vec<MediaId>,
        /// The payload.
        content: Content,
    },
    /// A page of history, newest first from `before`. Reply: `messages`.
    History {
        /// Request id.
        id: u32,
        /// The conversation (the caller must be a member).
        conv: ConversationId,
        /// Only messages with a smaller seq; absent means from the newest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Page size (server caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Everything this device has not acknowledged, across all conversations. Reply: `synced`.
    Sync {
        /// Request id.
        id: u32,
        /// Page size (server caps it); `more` in the reply says whether to ask again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// This device has everything of `conv` up to `seq`: sync resumes after it. Reply: `ok`.
    Ack {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// Highest seq received; acknowledgements never move backwards.
        seq: u64,
    },
    /// The user has read `conv` up to `seq`: its unread count drops. Reply: `ok`.
    Read {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// Highest seq read.
        seq: u64,
    },
    /// The receipts of `conv`'s members (how far each received and read it)
    /// that rose at or after `since` (a previous reply's `until`; all of them when
    /// absent). Reply: `receipts`.
    Receipts {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// The `until` of the previous reply for this conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Millis>,
    },
    /// The user is writing in `conv` (`typing`), or stopped: the conversation's
    /// other members who are connected get a `typing` push; nothing is
    /// stored. Past the connection's budget it is dropped. Reply: `ok`.
    Typing {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// Writing (`true`) or stopped (`false`).
        typing: bool,
    },
    /// Which conversation this device shows, if any; messages there raise no `alert`. Reply: `ok`.
    Focus {
        /// Request id.
        id: u32,
        /// The open conversation, or absent for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
    },
    /// A page of the caller's conversations, newest activity first, with
    /// unread counts. Reply: `conversations`.
    Conversations {
        /// Request id.
        id: u32,
        /// Which list: the main one (absent), or what waits for the
        /// caller's answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list: Option<ConversationList>,
        /// Paging cursor: the `next` of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Page size (server caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// The direct conversation with `user`, opened if need be. Reply: `conversation`.
    OpenDirect {
        /// Request id.
        id: u32,
        /// The other user.
        user: UserId,
        /// Turn end-to-end encryption on, if it is not on yet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        encrypted: bool,
    },
    /// Creates a group owned by the caller. Reply: `conversation`.
    CreateGroup {
        /// Request id.
        id: u32,
        /// 1 to 100 characters.
        title: String,
        /// Optional description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Optional avatar (a media id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
        /// The other initial members.
        #[serde(default)]
        members: Vec<UserId>,
        /// End-to-end encrypted from the start.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        encrypted: bool,
    },
    /// One conversation with its members. Reply: `conversation`.
    GetConversation {
        /// Request id.
        id: u32,
        /// The conversation (the caller is or was a member).
        conv: ConversationId,
    },
    /// Sets the conversation's disappearing-message timer (any member of a
    /// direct conversation, admins of a group): one of 1 hour, 1 day, 1
    /// week, 90 days in milliseconds, or absent to turn it off. Reply: `changed`.
    SetTimer {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// The timer; absent: off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_after: Option<Millis>,
    },
    /// Changes a group's settings (admins); absent fields stay. Reply: `changed`.
    UpdateGroup {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// New title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// New description; empty removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// New avatar; empty removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
        /// Whether members added from now on see earlier history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history_visible: Option<bool>,
    },
    /// Adds users to a group (admins). Reply: `changed`.
    AddMembers {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// The users to add.
        users: Vec<UserId>,
    },
    /// Removes a member from a group (admins; not the owner, and an admin
    /// only by the owner). Reply: `changed`.
    RemoveMember {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// The member.
        user: UserId,
    },
    /// Leaves a group. Reply: `changed`.
    Leave {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
    },
    /// Gives a member a role (the owner): `admin` or `member`, or `owner`
    /// to hand ownership over (the caller becomes an admin). Reply: `changed`.
    SetRole {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// The member.
        user: UserId,
        /// The new role.
        role: Role,
    },
    /// Creates the group's invite link token, replacing any earlier one (admins). Reply: `invite`.
    CreateInvite {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
    },
    /// Revokes the group's invite token (admins). Reply: `ok`.
    RevokeInvite {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
    },
    /// Joins a group by its invite token. Reply: `conversation`.
    Join {
        /// Request id.
        id: u32,
        /// The token of an invite link.
        token: String,
    },
    /// No alerts for `conv` until `until`, or until unmuted when absent. Reply: `ok`.
    Mute {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// When alerts resume.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Millis>,
    },
    /// Alerts for `conv` again. Reply: `ok`.
    Unmute {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
    },
    /// Changes the caller's contact link with `user`: ask, accept,
    /// decline, cancel or remove. Reply: `contact`.
    Contact {
        /// Request id.
        id: u32,
        /// The other user.
        user: UserId,
        /// What to do.
        action: ContactAction,
    },
    /// Blocks `user`. Reply: `contact`.
    Block {
        /// Request id.
        id: u32,
        /// The user to block.
        user: UserId,
    },
    /// Stops blocking `user`. Reply: `contact`.
    Unblock {
        /// Request id.
        id: u32,
        /// The user to unblock.
        user: UserId,
    },
    /// A page of the caller's contacts, requests in or out, or blocked
    /// users. Reply: `contacts`.
    Contacts {
        /// Request id.
        id: u32,
        /// Which list.
        list: ContactList,
        /// Paging cursor: the `next` of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Page size (server caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Changes the caller's privacy settings; absent fields stay. Reply:
    /// `privacy`.
    SetPrivacy {
        /// Request id.
        id: u32,
        /// Who may start a direct conversation with the caller.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direct: Option<Audience>,
        /// Who may add the caller to groups (others invite).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<Audience>,
        /// Who sees the caller's online state and last seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presence: Option<Audience>,
        /// Whether the caller's fellow members see how far it read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_receipts: Option<bool>,
    },
    /// Accepts a message request or a group invitation. Reply:
    /// `conversation`.
    Accept {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
    },
    /// Declines a group invitation, or deletes a message request (its
    /// messages so far). Reply: `ok`.
    Decline {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
    },
    /// Reports `user` to the operator. Reply: `ok`.
    Report {
        /// Request id.
        id: u32,
        /// The user reported.
        user: UserId,
        /// The conversation it is about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
        /// The reporter's words, up to 500 characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Uploads the device's end-to-end encryption keys: its identity
    /// (once; it never changes), signed one-time keys, a signed fallback
    /// key. Reply: `key_counts`.
    UploadKeys {
        /// Request id.
        id: u32,
        /// The device's identity keys (first upload only; the same again is
        /// accepted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_keys: Option<IdentityKeys>,
        /// New one-time keys.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        one_time_keys: Vec<SignedKey>,
        /// A new fallback key, replacing the one before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_key: Option<SignedKey>,
        /// The user's master signing key (the first device creates it; a
        /// new one replaces it, and voids the old one's signatures).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        master_key: Option<MasterKeyInfo>,
        /// The master key's signatures of devices of the user.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        signatures: Vec<DeviceSignature>,
    },
    /// The identity keys of the devices of `users` the caller may reach
    /// (or, with `conv`, of those users among the conversation's members).
    /// Reply: `device_keys`.
    QueryKeys {
        /// Request id.
        id: u32,
        /// Whose devices.
        users: Vec<UserId>,
        /// A conversation the caller and they are members of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
    },
    /// One one-time key (or the fallback key) of each device named, to
    /// start an encrypted channel with it. Reply: `claimed_keys`.
    ClaimKeys {
        /// Request id.
        id: u32,
        /// Which devices.
        devices: Vec<DeviceRef>,
        /// A conversation the caller and their users are members of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
    },
    /// Queues opaque payloads for devices: each named device, or every
    /// device with keys of a user when `device` is absent, of users the
    /// caller may reach (as for `query_keys`; with `conv`, its members).
    /// Each is delivered to its device until that device acknowledges it;
    /// a retry with the same `id` is stored once. Reply: `to_device_sent`.
    SendToDevice {
        /// Request id.
        id: u32,
        /// What the payloads are (`olm.v1`: Olm-encrypted), for the receivers.
        kind: String,
        /// The payloads, each with its target.
        messages: Vec<OutgoingToDevice>,
        /// A conversation the caller and the targets' users are members of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conv: Option<ConversationId>,
    },
    /// The device processed these payloads: the server deletes them.
    /// Unknown ones are ignored. Reply: `ok`.
    AckToDevice {
        /// Request id.
        id: u32,
        /// Which, by sending device and id.
        messages: Vec<ToDeviceAck>,
    },
    /// Turns end-to-end encryption on for a conversation (any member of
    /// a direct conversation, an admin of a group); it is never turned
    /// off. From its notice on, the conversation takes only `encrypted`
    /// content. Reply: `changed` (`seq` 0 if it was on already).
    Encrypt {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
    },
    /// Creates the caller's key backup; it replaces the current one and
    /// its keys. `algorithm` and `auth_data` are the client's, never read
    /// by the server. Reply: `backup`.
    CreateBackup {
        /// Request id.
        id: u32,
        /// How the keys are encrypted (`chatcore.backup.v1`).
        algorithm: String,
        /// The client's description of the backup (e.g. its public key,
        /// and secrets sealed with the recovery key).
        auth_data: String,
    },
    /// The caller's current key backup. Reply: `backup`, or `not_found`
    /// when there is none.
    GetBackup {
        /// Request id.
        id: u32,
    },
    /// Replaces the current backup's `auth_data`. Reply: `backup`.
    UpdateBackup {
        /// Request id.
        id: u32,
        /// The current backup's version (`not_found` otherwise).
        version: String,
        /// The new description.
        auth_data: String,
    },
    /// Deletes the current backup and its keys. Reply: `ok`.
    DeleteBackup {
        /// Request id.
        id: u32,
        /// The current backup's version (`not_found` otherwise).
        version: String,
    },
    /// Adds conversation keys to the current backup: each is stored where
    /// it is new or better than the copy kept (verified first, then the
    /// lower `first_index`, then fewer forwards). All or nothing: past the
    /// server's bound on keys per backup, `limit_reached`. Reply: `backup`.
    PutBackupKeys {
        /// Request id.
        id: u32,
        /// The current backup's version (`not_found` otherwise: another
        /// device made a new backup; `get_backup` tells which).
        version: String,
        /// The keys.
        keys: Vec<BackupKeyInfo>,
    },
    /// A page of the current backup's keys, ordered by conversation and
    /// session. Reply: `backup_keys`.
    GetBackupKeys {
        /// Request id.
        id: u32,
        /// The current backup's version (`not_found` otherwise).
        version: String,
        /// The last key of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<BackupKeyRef>,
        /// Keys per page (at most the server's page size).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Calls the other member of direct conversation `conv`: every device
    /// of theirs rings. Reply: `call_state` (`ringing`, or `ended` with
    /// `busy` when the callee is in another call).
    CallInvite {
        /// Request id.
        id: u32,
        /// A fresh random id for the call (a UUID), chosen by the caller.
        call: String,
        /// The direct conversation.
        conv: ConversationId,
        /// Voice or video.
        media: CallMedia,
        /// The SDP offer: plain, or sealed for each of the callee's devices.
        signal: CallSignal,
    },
    /// A device of the callee rings: the caller's devices learn it. Reply:
    /// `ok`.
    CallRinging {
        /// Request id.
        id: u32,
        /// The call.
        call: String,
    },
    /// A device of the callee takes the call: the others stop ringing.
    /// Reply: `call_state` (`active`).
    CallAnswer {
        /// Request id.
        id: u32,
        /// The call.
        call: String,
        /// The SDP answer: plain, or sealed for the caller's device.
        signal: CallSignal,
    },
    /// ICE candidates (trickled, in batches) for the other side of a call.
    /// Reply: `ok`.
    CallCandidates {
        /// Request id.
        id: u32,
        /// The call.
        call: String,
        /// The candidates: plain, or sealed for each device they go to.
        signal: CallSignal,
    },
    /// Ends a call: hangs up, cancels, or declines it. Reply: `call_state`
    /// (`ended`).
    CallHangup {
        /// Request id.
        id: u32,
        /// The call.
        call: String,
        /// Why.
        reason: HangupReason,
    },
    /// The STUN and TURN servers a call may use, with TURN credentials
    /// made for the caller (see *Calls*). Reply: `ice_servers`.
    IceServers {
        /// Request id.
        id: u32,
    },
    /// Liveness check at the application level. Reply: `pong`.
    Ping {
        /// Request id.
        id: u32,
    },
}

/// What `call_signal` carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSignalPush {
    /// The call.
    pub call: String,
    /// The device that sent it.
    pub device: DeviceId,
    /// The SDP offer (`call_invite`) or answer (`call_answer`), plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// ICE candidates, plain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<IceCandidate>,
    /// This device's sealed payload (an `olm.v1` to-device payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// What a client says when it ends a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// Hang up (or, by the caller before an answer, cancel).
    Hangup,
    /// Decline (the callee, before answering).
    Declined,
    /// The device could not set the call up or keep it.
    Failed,
}

/// Where a call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Invited, not answered yet.
    Ringing,
    /// Answered by one of the callee's devices.
    Active,
    /// Over (see `reason`).
    Ended,
}

/// A call as `call_state` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallInfo {
    /// Its id.
    pub call: String,
    /// The direct conversation it is made in.
    pub conv: ConversationId,
    /// Who calls.
    pub caller: UserId,
    /// The caller's device in the call.
    pub caller_device: DeviceId,
    /// Who is called.
    pub callee: UserId,
    /// Voice or video.
    pub media: CallMedia,
    /// Where it stands.
    pub state: CallStatus,
    /// Whether a device of the callee said it rings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ringing: bool,
    /// The callee's device that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<DeviceId>,
    /// Why it ended, once `ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CallEnd>,
    /// When the caller invited.
    pub started_at: Millis,
    /// When it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Millis>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
}

/// An ICE candidate as WebRTC's `RTCIceCandidateInit` has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceCandidate {
    /// The candidate line (`candidate:...`); empty marks the end of
    /// candidates.
    pub candidate: String,
    /// The media stream's identification tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The index of the media description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
}

/// A payload sealed (Olm) for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSignal {
    /// The device it is for.
    pub device: DeviceId,
    /// The payload: an `olm.v1` to-device payload (unpadded standard
    /// base64), opaque to the server.
    pub payload: String,
}

/// What a signalling request carries: in the clear (`sdp`, `candidates`),
/// or sealed for each device it goes to (`sealed`), never both. An
/// end-to-end encrypted conversation takes only sealed signals, so that
/// the server can neither read nor swap the DTLS fingerprints in the SDP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSignal {
    /// The SDP offer or answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// ICE candidates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<IceCandidate>,
    /// One payload per target device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<SealedSignal>,
}

/// A STUN or TURN server as `ice_servers` lists it: the shape of WebRTC's
/// `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs of one server.
    pub urls: Vec<String>,
    /// The TURN username (`expiry:user`); absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password for `username`; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A key backup as `backup` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupInfo {
    /// Its version, made by the server.
    pub version: String,
    /// How the keys are encrypted, as the client named it.
    pub algorithm: String,
    /// The client's description of the backup.
    pub auth_data: String,
    /// Keys stored.
    pub count: u64,
    /// Changes whenever the stored keys change.
    pub etag: u64,
    /// When it was created.
    pub created_at: Millis,
}

/// One conversation key in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupKeyInfo {
    /// The conversation it decrypts.
    pub conv: ConversationId,
    /// The sender's session id.
    pub session: String,
    /// The first message index it decrypts.
    pub first_index: u32,
    /// How often it was forwarded between devices.
    pub forwarded: u32,
    /// Whether the device that backed it up trusted its sender.
    pub verified: bool,
    /// The key, encrypted by the client (unpadded standard base64).
    pub data: String,
}

/// Where a page of backup keys starts: after this key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupKeyRef {
    /// Its conversation.
    pub conv: ConversationId,
    /// Its session.
    pub session: String,
}

/// One of the caller's devices, as `device_list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// The device.
    pub device: DeviceId,
    /// The name its client gave it (at sign-in, or by `rename_device`).
    pub name: String,
    /// When it signed in.
    pub created_at: Millis,
    /// When it last signed in or resumed.
    pub last_active: Millis,
    /// Whether it uploaded its identity keys (others can encrypt to it).
    pub keys: bool,
    /// Whether it is the device asking.
    pub current: bool,
}

/// What a `contact` request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactAction {
    /// Ask `user` to become contacts (accepts their request if they asked).
    Request,
    /// Accept `user`'s request.
    Accept,
    /// Decline `user`'s request.
    Decline,
    /// Withdraw the caller's request to `user`.
    Cancel,
    /// Stop being contacts.
    Remove,
}

/// A device's identity keys as it uploads them (see [`crate::e2e`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityKeys {
    /// The algorithm (`olm.v1`).
    pub algorithm: String,
    /// Public signing key (Ed25519, unpadded base64).
    pub signing_key: String,
    /// Public key-agreement key (Curve25519, unpadded base64).
    pub agreement_key: String,
    /// The signing key's signature over the device's keys.
    pub signature: String,
}

/// A signed one-time or fallback key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedKey {
    /// The key's id, unique among the device's.
    pub id: String,
    /// The public key (unpadded base64).
    pub key: String,
    /// The device's signature over it.
    pub signature: String,
}

/// A device of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRef {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
}

/// A payload for a device, in `send_to_device`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingToDevice {
    /// The target user.
    pub user: UserId,
    /// The target device; absent: every device of the user that has keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// The sender's id for it, unique among the sending device's: a retry
    /// with the same id is stored once per target.
    pub id: String,
    /// The payload (unpadded standard base64), which the server never reads.
    pub payload: String,
}

/// A payload a device processed, in `ack_to_device`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToDeviceAck {
    /// The device that sent it.
    pub from_device: DeviceId,
    /// Its id.
    pub id: String,
}

/// A payload delivered to this device, in a `to_device` push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToDeviceMessage {
    /// The sender's id for it (with `from_device`, what `ack_to_device`
    /// names and what a client deduplicates by).
    pub id: String,
    /// The sending user.
    pub from_user: UserId,
    /// The sending device.
    pub from_device: DeviceId,
    /// What it is (`olm.v1`: Olm-encrypted).
    pub kind: String,
    /// The payload (unpadded standard base64).
    pub payload: String,
    /// When the server took it.
    pub ts: Millis,
}

/// Why a payload of `send_to_device` was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndeliveredReason {
    /// The device has too many payloads waiting; retry later.
    Full,
    /// No such device (or user) that the caller may reach.
    Unknown,
}

/// A target of `send_to_device` that got nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undelivered {
    /// The user.
    pub user: UserId,
    /// The device, when one was named or found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// Why.
    pub reason: UndeliveredReason,
}

/// What a device has left in the key directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCountsInfo {
    /// One-time keys not claimed yet.
    pub one_time: u32,
    /// Whether an unused fallback key is stored.
    pub fallback_unused: bool,
}

/// A user's master signing key, with its own signature over
/// `chatcore-master-key-v1` `\n` user `\n` key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyInfo {
    /// The public key (Ed25519, unpadded base64).
    pub key: String,
    /// Its signature.
    pub signature: String,
}

/// The master key's signature of one of the user's devices, over
/// `chatcore-device-signature-v1` `\n` user `\n` device `\n` signing
/// key `\n` agreement key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignature {
    /// The device.
    pub device: DeviceId,
    /// The signature.
    pub signature: String,
}

/// A user's master key as the directory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMasterKey {
    /// The user.
    pub user: UserId,
    /// The key and its signature.
    pub master_key: MasterKeyInfo,
}

/// A device's identity keys as the directory shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeysInfo {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// Its keys and their signature, as uploaded.
    pub keys: IdentityKeys,
    /// The user's current master key's signature of the device, if it
    /// signed it (absent: unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_signature: Option<String>,
}

/// A key handed out by `claim_keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimedKey {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The key.
    pub key: SignedKey,
    /// The device had no one-time key left: this is its fallback key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
}

/// Which list `conversations` pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationList {
    /// The conversations the caller accepted.
    Main,
    /// Message requests and group invitations waiting for the caller.
    Requests,
}

/// Which list `contacts` pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactList {
    /// Contacts.
    Contacts,
    /// Requests received, not answered.
    Incoming,
    /// Requests sent, not answered.
    Outgoing,
    /// Blocked users.
    Blocked,
}

/// The caller's contact state with a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// Nothing.
    None,
    /// The user asked the caller.
    Incoming,
    /// The caller asked the user.
    Outgoing,
    /// Contacts.
    Contact,
}

/// A user as the caller's contacts show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInfo {
    /// The user's contact card.
    pub profile: Profile,
    /// The contact state.
    pub state: ContactState,
    /// Whether the caller blocks the user.
    pub blocked: bool,
    /// Since when the state holds (absent for `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    /// The user's presence, as the caller may see it (in `contacts` pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Presence>,
}

impl ClientFrame {
    /// The request id the reply will carry.
    pub fn id(&self) -> u32 {
        match self {
            ClientFrame::Hello { id, .. }
            | ClientFrame::Register { id, .. }
            | ClientFrame::Login { id, .. }
            | ClientFrame::Resume { id, .. }
            | ClientFrame::Logout { id }
            | ClientFrame::ChangePassword { id, .. }
            | ClientFrame::Devices { id }
            | ClientFrame::RenameDevice { id, .. }
            | ClientFrame::RevokeDevice { id, .. }
            | ClientFrame::ResetRequest { id, .. }
            | ClientFrame::ResetConfirm { id, .. }
            | ClientFrame::SearchUsers { id, .. }
            | ClientFrame::GetProfile { id, .. }
            | ClientFrame::UpdateProfile { id, .. }
            | ClientFrame::Send { id, .. }
            | ClientFrame::History { id, .. }
            | ClientFrame::Sync { id, .. }
            | ClientFrame::Ack { id, .. }
            | ClientFrame::Read { id, .. }
            | ClientFrame::Receipts { id, .. }
            | ClientFrame::Typing { id, .. }
            | ClientFrame::Focus { id, .. }
            | ClientFrame::Conversations { id, .. }
            | ClientFrame::OpenDirect { id, .. }
            | ClientFrame::CreateGroup { id, .. }
            | ClientFrame::GetConversation { id, .. }
            | ClientFrame::UpdateGroup { id, .. }
            | ClientFrame::SetTimer { id, .. }
            | ClientFrame::AddMembers { id, .. }
            | ClientFrame::RemoveMember { id, .. }
            | ClientFrame::Leave { id, .. }
            | ClientFrame::SetRole { id, .. }
            | ClientFrame::CreateInvite { id, .. }
            | ClientFrame::RevokeInvite { id, .. }
            | ClientFrame::Join { id, .. }
            | ClientFrame::Mute { id, .. }
            | ClientFrame::Unmute { id, .. }
            | ClientFrame::Contact { id, .. }
            | ClientFrame::Block { id, .. }
            | ClientFrame::Unblock { id, .. }
            | ClientFrame::Contacts { id, .. }
            | ClientFrame::SetPrivacy { id, .. }
            | ClientFrame::Accept { id, .. }
            | ClientFrame::Decline { id, .. }
            | ClientFrame::Report { id, .. }
            | ClientFrame::UploadKeys { id, .. }
            | ClientFrame::QueryKeys { id, .. }
            | ClientFrame::ClaimKeys { id, .. }
            | ClientFrame::SendToDevice { id, .. }
            | ClientFrame::AckToDevice { id, .. }
            | ClientFrame::Encrypt { id, .. }
            | ClientFrame::CreateBackup { id, .. }
            | ClientFrame::GetBackup { id }
            | ClientFrame::UpdateBackup { id, .. }
            | ClientFrame::DeleteBackup { id, .. }
            | ClientFrame::PutBackupKeys { id, .. }
            | ClientFrame::GetBackupKeys { id, .. }
            | ClientFrame::CallInvite { id, .. }
            | ClientFrame::CallRinging { id, .. }
            | ClientFrame::CallAnswer { id, .. }
            | ClientFrame::CallCandidates { id, .. }
            | ClientFrame::CallHangup { id, .. }
            | ClientFrame::IceServers { id }
            | ClientFrame::Ping { id } => *id,
        }
    }

    /// The frame's `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Register { .. } => "register",
            ClientFrame::Login { .. } => "login",
            ClientFrame::Resume { .. } => "resume",
            ClientFrame::Logout { .. } => "logout",
            ClientFrame::ChangePassword { .. } => "change_password",
            ClientFrame::Devices { .. } => "devices",
            ClientFrame::RenameDevice { .. } => "rename_device",
            ClientFrame::RevokeDevice { .. } => "revoke_device",
            ClientFrame::ResetRequest { .. } => "reset_request",
            ClientFrame::ResetConfirm { .. } => "reset_confirm",
            ClientFrame::SearchUsers { .. } => "search_users",
            ClientFrame::GetProfile { .. } => "get_profile",
            ClientFrame::UpdateProfile { .. } => "update_profile",
            ClientFrame::Send { .. } => "send",
            ClientFrame::History { .. } => "history",
            ClientFrame::Sync { .. } => "sync",
            ClientFrame::Ack { .. } => "ack",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Receipts { .. } => "receipts",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Focus { .. } => "focus",
            ClientFrame::Conversations { .. } => "conversations",
            ClientFrame::OpenDirect { .. } => "open_direct",
            ClientFrame::CreateGroup { .. } => "create_group",
            ClientFrame::GetConversation { .. } => "get_conversation",
            ClientFrame::UpdateGroup { .. } => "update_group",
            ClientFrame::SetTimer { .. } => "set_timer",
            ClientFrame::AddMembers { .. } => "add_members",
            ClientFrame::RemoveMember { .. } => "remove_member",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::SetRole { .. } => "set_role",
            ClientFrame::CreateInvite { .. } => "create_invite",
            ClientFrame::RevokeInvite { .. } => "revoke_invite",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Mute { .. } => "mute",
            ClientFrame::Unmute { .. } => "unmute",
            ClientFrame::Contact { .. } => "contact",
            ClientFrame::Block { .. } => "block",
            ClientFrame::Unblock { .. } => "unblock",
            ClientFrame::Contacts { .. } => "contacts",
            ClientFrame::SetPrivacy { .. } => "set_privacy",
            ClientFrame::Accept { .. } => "accept",
            ClientFrame::Decline { .. } => "decline",
            ClientFrame::Report { .. } => "report",
            ClientFrame::UploadKeys { .. } => "upload_keys",
            ClientFrame::QueryKeys { .. } => "query_keys",
            ClientFrame::ClaimKeys { .. } => "claim_keys",
            ClientFrame::SendToDevice { .. } => "send_to_device",
            ClientFrame::AckToDevice { .. } => "ack_to_device",
            ClientFrame::Encrypt { .. } => "encrypt",
            ClientFrame::CreateBackup { .. } => "create_backup",
            ClientFrame::GetBackup { .. } => "get_backup",
            ClientFrame::UpdateBackup { .. } => "update_backup",
            ClientFrame::DeleteBackup { .. } => "delete_backup",
            ClientFrame::PutBackupKeys { .. } => "put_backup_keys",
            ClientFrame::GetBackupKeys { .. } => "get_backup_keys",
            ClientFrame::CallInvite { .. } => "call_invite",
            ClientFrame::CallRinging { .. } => "call_ringing",
            ClientFrame::CallAnswer { .. } => "call_answer",
            ClientFrame::CallCandidates { .. } => "call_candidates",
            ClientFrame::CallHangup { .. } => "call_hangup",
            ClientFrame::IceServers { .. } => "ice_servers",
            ClientFrame::Ping { .. } => "ping",
        }
    }
}

/// A user in a directory listing: the contact card and current presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    /// The contact card.
    pub profile: Profile,
    /// Online now, or when last seen.
    pub presence: Presence,
}

/// One conversation of the caller, for the chat list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSummary {
    /// The conversation.
    pub conv: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A group's avatar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// The other user of a direct conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Profile>,
    /// How many members it has now.
    pub members: u32,
    /// The caller's role in a group; absent in a direct conversation and
    /// once the caller left or was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The caller left or was removed: it reads up to that point, no further.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
    /// Seq of the newest entry the caller may read.
    pub last_seq: u64,
    /// Messages from others after the caller's read marker.
    pub unread: u64,
    /// How many of those mention the caller.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mentions: u64,
    /// The disappearing-message timer, in milliseconds; absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<Millis>,
    /// The newest entry the caller may read, for a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastEntry>,
    /// Whether it is end-to-end encrypted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// Whether alerts are muted now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// When a mute ends; absent for a mute until unmuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Millis>,
    /// What waits for the caller's answer: a message request (the sender)
    /// or a group invitation (who invited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
}

/// A message request or group invitation as the one asked sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInfo {
    /// Who wrote first, or invited.
    pub by: Profile,
    /// When.
    pub at: Millis,
}

/// The newest entry of a conversation, as the chat list previews it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastEntry {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub ts: Millis,
    /// Its sender.
    pub from: UserId,
    /// Its content's `kind` (`text`, or a notice's kind).
    pub kind: String,
    /// How it relates to an earlier message (an edit, a reaction, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<RelKind>,
    /// The start of the text, when the content is plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// How far a member received and read a conversation (`receipts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInfo {
    /// The member.
    pub user: UserId,
    /// The highest seq one of its devices acknowledged or it read.
    pub delivered: u64,
    /// The highest seq it read (0 while either side does not share read receipts).
    pub read: u64,
}

/// A member as a conversation lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberInfo {
    /// The user.
    pub user: UserId,
    /// The role (`member` in a direct conversation).
    pub role: Role,
    /// When the user became a member.
    pub joined_at: Millis,
}

/// A conversation with its current members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationInfo {
    /// The conversation.
    pub conv: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A group's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A group's avatar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Whether new members see the history from before they joined.
    pub history_visible: bool,
    /// Whether it is end-to-end encrypted (then it takes only `encrypted`
    /// content).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// The disappearing-message timer, in milliseconds; absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
    /// The current members, longest-serving first.
    pub members: Vec<MemberInfo>,
    /// The caller's role; absent once it left or was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Seq of the newest entry the caller may read.
    pub last_seq: u64,
    /// The first seq the caller may read (history before it is not shown to it).
    pub first_seq: u64,
    /// A group's open invitations: users invited who have not answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invited: Vec<UserId>,
    /// What waits for the caller's answer here, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
}

/// Everything the server sends: replies (with the request's `id`) and pushes (without).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerFrame {
    /// Reply to `hello`.
    Welcome {
        /// Request id.
        id: u32,
        /// The protocol version both sides now speak.
        version: u32,
        /// Server name and version.
        server: String,
        /// Server clock, so clients can correct timestamps.
        time: Millis,
    },
    /// Reply to `register`, `login` and `resume`: this connection is signed in.
    Session {
        /// Request id.
        id: u32,
        /// The signed-in user.
        user: UserId,
        /// This device; its delivery cursors are kept under this id.
        device: DeviceId,
        /// Secret for `resume`; only sent by `register` and `login`. Store it safely.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// When the session expires unless resumed before.
        expires_at: Millis,
        /// The user's own profile.
        profile: Box<Profile>,
        /// The user's privacy settings.
        privacy: Privacy,
        /// What this device has left in the key directory, so that it tops
        /// its one-time keys up.
        keys: KeyCountsInfo,
    },
    /// Success with nothing to report.
    Ok {
        /// Request id.
        id: u32,
    },
    /// Reply to `devices`: the caller's devices, oldest sign-in first.
    DeviceList {
        /// Request id.
        id: u32,
        /// Each live device of the caller.
        devices: Vec<DeviceInfo>,
    },
    /// Push: the devices of `user` changed (one signed in, uploaded its
    /// keys, or was removed): query them again. Sent to the user's other
    /// devices and to everyone who shares a conversation with the user.
    DevicesChanged {
        /// Whose devices.
        user: UserId,
    },
    /// Reply to `search_users`.
    Users {
        /// Request id.
        id: u32,
        /// The page.
        users: Vec<DirectoryEntry>,
        /// Cursor for the next page, absent on the last one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Reply to `get_profile` and `update_profile`.
    Profile {
        /// Request id.
        id: u32,
        /// The contact card and presence.
        entry: Box<DirectoryEntry>,
    },
    /// Reply to `send`: the message is durably stored.
    Sent {
        /// Request id.
        id: u32,
        /// The stored message's id.
        message_id: MessageId,
        /// Its conversation.
        conv: ConversationId,
        /// Its seq in the conversation.
        seq: u64,
        /// Server time of the append.
        ts: Millis,
        /// True when this `client_id` was stored before (a retry): nothing new was stored.
        duplicate: bool,
        /// When the conversation's disappearing-message timer removes it
        /// (absent: never), so that the sender drops its copy in time too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Millis>,
    },
    /// Reply to `history`: a page, oldest first.
    Messages {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// The page, ascending by seq.
        messages: Vec<Message>,
        /// Whether older messages exist before this page.
        more: bool,
        /// What the page's messages need to be shown in their latest
        /// state, from anywhere in the log the caller may read: the edits,
        /// reactions and deletions pointing at them, and the messages
        /// they reply to that are not on the page (with those messages'
        /// own edits and deletions); ascending by seq.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        related: Vec<Message>,
    },
    /// Reply to `sync`: unacknowledged messages, ascending by seq within each conversation.
    Synced {
        /// Request id.
        id: u32,
        /// The messages.
        messages: Vec<Message>,
        /// Whether more remain (ask again after acknowledging these, or with
        /// the next page being everything after the last seq returned).
        more: bool,
    },
    /// Reply to `conversations`.
    Conversations {
        /// Request id.
        id: u32,
        /// Newest activity first.
        conversations: Vec<ConversationSummary>,
        /// Cursor for the next page, absent on the last one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Reply to `open_direct`, `create_group`, `get_conversation` and `join`.
    Conversation {
        /// Request id.
        id: u32,
        /// The conversation.
        conversation: Box<ConversationInfo>,
    },
    /// Reply to a change of a group: its notice is stored at `seq`, and
    /// pushed as a `message` to every connection of every member (this one
    /// included, and a removed member, for whom it is the last entry).
    Changed {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// The notice's seq (0: the change wrote none, as when every user
        /// named was invited).
        seq: u64,
        /// Users invited rather than added: their settings admit only
        /// their contacts' adds.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        invited: Vec<UserId>,
    },
    /// Reply to `create_invite`.
    Invite {
        /// Request id.
        id: u32,
        /// The group.
        conv: ConversationId,
        /// The secret of the invite link; whoever has it may join.
        token: String,
    },
    /// Reply to `ping`.
    Pong {
        /// Request id.
        id: u32,
    },
    /// A request failed, or the connection did something wrong.
    Error {
        /// The failed request's id; absent when the frame had none readable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Stable reason.
        code: ErrorCode,
        /// Human-readable explanation (may change; do not parse).
        message: String,
        /// The request field at fault, for `conflict` and `invalid_argument`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// Each broken password rule, for `weak_password`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        violations: Vec<String>,
        /// When to retry, for `rate_limited`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Push: a new message for this device.
    Message {
        /// The message, shared: one stored message is pushed to every
        /// device of its recipients without being copied, and encoded once.
        message: SharedMessage,
    },
    /// Push: a watched user's presence changed.
    Presence {
        /// The new presence.
        presence: Presence,
    },
    /// Push: a message from someone else arrived in a conversation this
    /// device is not focused on and the user has not muted. The client
    /// counts it as unread.
    Alert {
        /// The conversation.
        conv: ConversationId,
        /// The sender.
        from: UserId,
        /// The new message.
        message_id: MessageId,
        /// Its seq.
        seq: u64,
    },
    /// Push: another device of the user read `conv` up to `seq`.
    Read {
        /// The conversation.
        conv: ConversationId,
        /// The user's read marker now.
        seq: u64,
    },
    /// Reply to `receipts`: the members' receipts that rose since the
    /// asked time, by user.
    Receipts {
        /// Request id.
        id: u32,
        /// The conversation.
        conv: ConversationId,
        /// The receipts (a member that never received anything has none).
        receipts: Vec<ReceiptInfo>,
        /// The `since` of the next `receipts` for this conversation.
        until: Millis,
    },
    /// Push: a fellow member of `conv` received (`delivered`) or read
    /// (`read`) further. Each mark covers every earlier seq; `read` is 0
    /// while either side does not share read receipts.
    Receipt {
        /// The conversation.
        conv: ConversationId,
        /// The member.
        user: UserId,
        /// The highest seq one of its devices acknowledged or it read.
        delivered: u64,
        /// The highest seq it read.
        read: u64,
    },
    /// Push: `user` is writing in `conv` (`typing`), or stopped. Shown for
    /// `ttl_ms` unless another `typing` of the user comes: a client keeps
    /// sending it while the user writes.
    Typing {
        /// The conversation.
        conv: ConversationId,
        /// Who writes.
        user: UserId,
        /// Writing, or stopped.
        typing: bool,
        /// How long the state holds without another push.
        ttl_ms: u32,
    },
    /// Push: a user changed their contact card (`update_profile`): a user
    /// whose presence this connection watches, or the user themself on
    /// another device.
    ProfileChanged {
        /// The contact card now.
        profile: Box<Profile>,
    },
    /// Push: someone registered. Only to connections whose directory view
    /// is the unfiltered first page (`search_users` with an empty query and
    /// no `after`).
    NewUser {
        /// The new user's contact card and presence.
        entry: Box<DirectoryEntry>,
    },
    /// Reply to `contact`, `block` and `unblock`: the state now.
    /// Without `id`, a push: the user's contact state with someone changed
    /// (on another device, or by the other user).
    Contact {
        /// Request id (absent in a push).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// The state now.
        contact: Box<ContactInfo>,
    },
    /// Reply to `contacts`.
    Contacts {
        /// Request id.
        id: u32,
        /// The page.
        contacts: Vec<ContactInfo>,
        /// Cursor for the next page, absent on the last one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Reply to `set_privacy`: the settings now. Without `id`, a push: they
    /// changed on another device.
    Privacy {
        /// Request id (absent in a push).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// The settings.
        privacy: Privacy,
    },
    /// Reply to `upload_keys`: what the device has left on the server;
    /// also pushed to a device when claims leave it few keys.
    KeyCounts {
        /// Request id (absent in a push).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// One-time keys not claimed yet.
        one_time: u32,
        /// Whether an unused fallback key is stored.
        fallback_unused: bool,
    },
    /// Reply to `send_to_device`.
    ToDeviceSent {
        /// Request id.
        id: u32,
        /// Payloads queued (or queued before, for a retry).
        queued: u32,
        /// Targets that got nothing, and why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        undelivered: Vec<Undelivered>,
    },
    /// Push: payloads for this device, oldest first. Each comes again
    /// (after a reconnect) until the device acknowledges it.
    ToDevice {
        /// The payloads.
        messages: Vec<ToDeviceMessage>,
    },
    /// Reply to `query_keys`.
    DeviceKeys {
        /// Request id.
        id: u32,
        /// The devices that uploaded keys.
        devices: Vec<DeviceKeysInfo>,
        /// The master keys of the users asked for that have one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        master_keys: Vec<UserMasterKey>,
    },
    /// Reply to `claim_keys`: a key per device that had one.
    ClaimedKeys {
        /// Request id.
        id: u32,
        /// The keys.
        keys: Vec<ClaimedKey>,
    },
    /// Reply to `create_backup`, `get_backup`, `update_backup` and
    /// `put_backup_keys`: the caller's current key backup.
    Backup {
        /// Request id.
        id: u32,
        /// The backup.
        backup: BackupInfo,
    },
    /// Reply to `get_backup_keys`.
    BackupKeys {
        /// Request id.
        id: u32,
        /// The page.
        keys: Vec<BackupKeyInfo>,
        /// Whether more keys follow (ask again after the last of these).
        more: bool,
    },
    /// Reply to `call_invite`, `call_answer` and `call_hangup`, and push to
    /// every device of the caller and the callee when a call changes
    /// (rings, is answered, ends).
    CallState {
        /// Request id, when a reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// The call now (boxed: every frame is as large as its largest
        /// variant).
        call: Box<CallInfo>,
    },
    /// Push: what the other side of a call sent this device: the SDP offer
    /// or answer, or ICE candidates; plain, or sealed (Olm) for this device.
    CallSignal(Box<CallSignalPush>),
    /// Reply to `ice_servers`: what to give `RTCPeerConnection` as its
    /// `iceServers`.
    IceServers {
        /// Request id.
        id: u32,
        /// The servers, in the server's order of preference; empty when
        /// none is configured (calls then work within one network only).
        servers: Vec<IceServer>,
        /// When the TURN credentials stop being accepted; absent without
        /// TURN. A client asks again before each call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Millis>,
    },
    /// Push: the user was invited to a group (it waits in the `requests`
    /// list).
    Invited {
        /// The group, as the `requests` list shows it.
        conversation: Box<ConversationSummary>,
    },
    /// Push: the user answered a message request or invitation on another
    /// device.
    Answered {
        /// The conversation.
        conv: ConversationId,
        /// Accepted (it is in the main list now), or declined.
        accepted: bool,
    },
}

impl ServerFrame {
    /// The request id of a reply; `None` for pushes.
    pub fn id(&self) -> Option<u32> {
        match self {
            ServerFrame::Welcome { id, .. }
            | ServerFrame::Session { id, .. }
            | ServerFrame::Ok { id }
            | ServerFrame::DeviceList { id, .. }
            | ServerFrame::Users { id, .. }
            | ServerFrame::Profile { id, .. }
            | ServerFrame::Sent { id, .. }
            | ServerFrame::Messages { id, .. }
            | ServerFrame::Synced { id, .. }
            | ServerFrame::Conversations { id, .. }
            | ServerFrame::Conversation { id, .. }
            | ServerFrame::Changed { id, .. }
            | ServerFrame::Invite { id, .. }
            | ServerFrame::Pong { id }
            | ServerFrame::ToDeviceSent { id, .. }
            | ServerFrame::DeviceKeys { id, .. }
            | ServerFrame::ClaimedKeys { id, .. }
            | ServerFrame::Backup { id, .. }
            | ServerFrame::BackupKeys { id, .. }
            | ServerFrame::IceServers { id, .. }
            | ServerFrame::Receipts { id, .. } => Some(*id),
            ServerFrame::Contacts { id, .. } => Some(*id),
            ServerFrame::Error { id, .. }
            | ServerFrame::CallState { id, .. }
            | ServerFrame::Contact { id, .. }
            | ServerFrame::KeyCounts { id, .. }
            | ServerFrame::Privacy { id, .. } => *id,
            ServerFrame::Message { .. }
            | ServerFrame::DevicesChanged { .. }
            | ServerFrame::Presence { .. }
            | ServerFrame::Alert { .. }
            | ServerFrame::Read { .. }
            | ServerFrame::Receipt { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::ProfileChanged { .. }
            | ServerFrame::NewUser { .. }
            | ServerFrame::Invited { .. }
            | ServerFrame::ToDevice { .. }
            | ServerFrame::CallSignal(_)
            | ServerFrame::Answered { .. } => None,
        }
    }

    /// The frame as a client of protocol `version` may decode it: what came
    /// after that version is left out (a setting it does not know shows as
    /// its default, which the wire omits).
    pub fn for_version(&mut self, version: u32) {
        if version >= CALLS_VERSION {
            return;
        }
        let life = version >= LIFE_VERSION;
        match self {
            ServerFrame::Message { message } if !message_speaks(message, version) => {
                *message = SharedMessage::from(message_for(message, version));
            }
            ServerFrame::Messages {
                messages, related, ..
            } => {
                if life {
                    for m in related.iter_mut() {
                        if !message_speaks(m, version) {
                            *m = message_for(m, version);
                        }
                    }
                } else {
                    related.clear();
                }
                for m in messages.iter_mut() {
                    if !message_speaks(m, version) {
                        *m = message_for(m, version);
                    }
                }
            }
            ServerFrame::Synced { messages, .. } => {
                for m in messages.iter_mut() {
                    if !message_speaks(m, version) {
                        *m = message_for(m, version);
                    }
                }
            }
            ServerFrame::Conversations { conversations, .. } if !life => {
                for c in conversations.iter_mut() {
                    c.mentions = 0;
                    c.expire_after = None;
                    if let Some(last) = &mut c.last {
                        last.rel = None;
                    }
                }
            }
            ServerFrame::Conversation { conversation, .. } if !life => {
                conversation.expire_after = None
            }
            ServerFrame::Sent { expires_at, .. } if !life => *expires_at = None,
            ServerFrame::Session { privacy, .. } | ServerFrame::Privacy { privacy, .. }
                if version < RECEIPTS_VERSION =>
            {
                privacy.read_receipts = true;
            }
            _ => {}
        }
    }

    /// An error frame with just a code and message.
    pub fn error(id: Option<u32>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            id,
            code,
            message: message.into(),
            field: None,
            violations: Vec::new(),
            retry_after_ms: None,
        }
    }
}

/// Whether a client of `version` decodes `m` as it is.
fn message_speaks(m: &Message, version: u32) -> bool {
    if matches!(m.content, Content::Call { .. }) {
        return version >= CALLS_VERSION;
    }
    let media = m.media.is_empty() && m.content.media().is_none();
    version >= MEDIA_VERSION
        || media && version >= LIFE_VERSION
        || media
            && (m.rel.is_none()
                && m.mentions.is_empty()
                && m.expires_at.is_none()
                && !matches!(
                    m.content,
                    Content::Deleted {} | Content::TimerChanged { .. }
                ))
}

/// `m` as a client of a version before [`CALLS_VERSION`] can decode it.
fn message_for(m: &Message, version: u32) -> Message {
    let mut old = m.clone();
    if let Some(text) = call_text(&m.content) {
        old.content = Content::Text { text };
    }
    if version >= MEDIA_VERSION {
        return old;
    }
    old.media = Vec::new();
    if let Some(text) = media_text(&m.content) {
        old.content = Content::Text { text };
    }
    if version >= LIFE_VERSION {
        return old;
    }
    old.mentions = Vec::new();
    old.expires_at = None;
    old.rel = None;
    let points_at_another = !RelKind::stands_alone(m.rel_kind());
    if points_at_another
        || matches!(
            m.content,
            Content::Deleted {} | Content::TimerChanged { .. }
        )
    {
        old.content = Content::Void {};
    }
    old
}

/// What an older client shows of a call notice: what it was.
fn call_text(content: &Content) -> Option<String> {
    let Content::Call {
        media,
        outcome,
        duration_ms,
        ..
    } = content
    else {
        return None;
    };
    let kind = match media {
        CallMedia::Voice => "voice call",
        CallMedia::Video => "video call",
    };
    Some(match (outcome, duration_ms) {
        (_, Some(ms)) => format!("📞 Call ({kind}, {}:{:02})", ms / 60_000, ms / 1000 % 60),
        (CallEnd::Missed | CallEnd::Busy, None) => format!("📞 Missed {kind}"),
        (CallEnd::Declined, None) => format!("📞 Declined {kind}"),
        (_, None) => format!("📞 Unanswered {kind}"),
    })
}

/// What an older client shows of a media message: what it was.
fn media_text(content: &Content) -> Option<String> {
    match content {
        Content::Image { caption, .. } => Some(match caption {
            Some(c) => format!("📷 Photo: {c}"),
            None => "📷 Photo".to_owned(),
        }),
        Content::File { name, .. } => Some(format!("📎 File: {name}")),
        Content::Voice { .. } => Some("🎤 Voice message".to_owned()),
        _ => None,
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
