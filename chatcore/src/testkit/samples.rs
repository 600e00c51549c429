//! One deterministic example of every frame type: the source of
//! `tests/vectors/frames.json` and of the examples in `docs/PROTOCOL.md`.

use crate::model::{
    Audience, CallEnd, CallMedia, Content, ConversationId, ConversationKind, DeviceId, MediaId,
    Message, MessageId, Presence, Privacy, Profile, Rel, RelKind, Role, UserId,
};
use crate::protocol::{
    BackupInfo, BackupKeyInfo, BackupKeyRef, CallInfo, CallSignal, CallSignalPush, CallStatus,
    ClaimedKey, ClientFrame, ContactAction, ContactInfo, ContactList, ContactState,
    ConversationInfo, ConversationList, ConversationSummary, DeviceInfo, DeviceKeysInfo, DeviceRef,
    DeviceSignature, DirectoryEntry, ErrorCode, HangupReason, IceCandidate, IceServer,
    IdentityKeys, KeyCountsInfo, LastEntry, MasterKeyInfo, MemberInfo, OutgoingToDevice,
    ReceiptInfo, RequestInfo, SealedSignal, ServerFrame, SignedKey, ToDeviceAck, ToDeviceMessage,
    Undelivered, UndeliveredReason, UserMasterKey,
};

fn alice() -> UserId {
    UserId::from("0190f7a2-6c1e-7b3a-9f00-00000000a11c")
}

fn bob() -> UserId {
    UserId::from("0190f7a2-6c1e-7b3a-9f00-000000000b0b")
}

fn carol() -> UserId {
    UserId::from("0190f7a2-6c1e-7b3a-9f00-00000000ca01")
}

fn identity_keys() -> IdentityKeys {
    IdentityKeys {
        algorithm: "olm.v1".into(),
        signing_key: "d2hhdCB0aGUgc2lnbmluZyBrZXkgbG9va3MgbGlrZSE".into(),
        agreement_key: "YW5kIHRoZSBhZ3JlZW1lbnQga2V5LCAzMiBieXRlcyE".into(),
        signature: "c2lnbmVkIGJ5IHRoZSBkZXZpY2UncyBFZDI1NTE5IGtleSBvdmVyIGl0cyBrZXlzLCA2NCBieXRlcyBsb25nISE"
            .into(),
    }
}

fn signed_key(id: &str) -> SignedKey {
    SignedKey {
        id: id.into(),
        key: "b25lLXRpbWUga2V5LCBoYW5kZWQgb3V0IG9uY2UhISE".into(),
        signature:
            "dGhlIGRldmljZSdzIHNpZ25hdHVyZSBvdmVyIHRoaXMgb25lLXRpbWUga2V5LCA2NCBieXRlcyBsb25nISEh"
                .into(),
    }
}

fn conv() -> ConversationId {
    ConversationId::direct(&alice(), &bob())
}

fn group() -> ConversationId {
    ConversationId::from("g:0190f7a4-1111-7000-8000-0000000009a0")
}

/// A `message` push of a notice at `seq` of the group, by Alice.
fn notice_frame(seq: u64, content: Content) -> ServerFrame {
    let id = format!("0190f7a3-0000-7000-8000-0000000000{seq:02}");
    ServerFrame::Message {
        message: Message {
            media: Vec::new(),
            expires_at: None,
            mentions: Vec::new(),
            rel: None,
            id: MessageId::from(id.as_str()),
            conv: group(),
            seq,
            from: alice(),
            client_id: id,
            ts: 1_732_540_900_000 + seq as i64,
            content,
        }
        .into(),
    }
}

/// A notice: Alice added Carol to the group.
fn notice() -> Message {
    Message {
        media: Vec::new(),
        expires_at: None,
        mentions: Vec::new(),
        rel: None,
        id: MessageId::from("0190f7a3-0000-7000-8000-00000000000b"),
        conv: group(),
        seq: 7,
        from: alice(),
        client_id: "0190f7a3-0000-7000-8000-00000000000b".into(),
        ts: 1_732_540_900_000,
        content: Content::MembersAdded {
            users: vec![carol()],
        },
    }
}

fn message() -> Message {
    Message {
        media: Vec::new(),
        expires_at: None,
        mentions: Vec::new(),
        rel: None,
        id: MessageId::from("0190f7a3-0000-7000-8000-00000000000a"),
        conv: conv(),
        seq: 42,
        from: alice(),
        client_id: "c-7f3e".into(),
        ts: 1_732_540_800_000,
        content: Content::Text {
            text: "Hello, Bob! 👋".into(),
        },
    }
}

fn master_key() -> MasterKeyInfo {
    MasterKeyInfo {
        key: "dGhlIHVzZXIncyBtYXN0ZXIgc2lnbmluZyBrZXksIDMyIQ".into(),
        signature:
            "c2lnbmVkIGJ5IGl0c2VsZiwgbmFtaW5nIGl0cyB1c2VyLCA2NCBieXRlcyBsb25nISEhISEhISEhISEhISE"
                .into(),
    }
}

fn encrypted() -> Content {
    Content::Encrypted {
        algorithm: "megolm.v1".into(),
        device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
        session: "mJ2Qm3lBv0b3uKkQ0vCq7yGZ8vXo1pD4l9mC3bL1s6E".into(),
        ciphertext: "AwgAEhAx8mWzQ2d8c3F5cGhlcnRleHQ".into(),
    }
}

fn profile() -> Profile {
    Profile {
        user: bob(),
        username: "bob".into(),
        display_name: "Bob Builder".into(),
        about: "Can we fix it?".into(),
        avatar: Some("0190f7a2b0b0avatar000000000b0b0".into()),
    }
}

fn entry() -> DirectoryEntry {
    DirectoryEntry {
        profile: profile(),
        presence: Presence {
            user: bob(),
            online: false,
            last_seen: Some(1_732_540_000_000),
        },
    }
}

/// One example of every client frame type. A test checks that the types
/// named here are exactly those `docs/PROTOCOL.md` specifies.
pub fn client_frames() -> Vec<ClientFrame> {
    vec![
        ClientFrame::Hello {
            id: 1,
            version: 4,
            client: Some("chatcore-rs/0.1".into()),
        },
        ClientFrame::Register {
            id: 2,
            username: "alice".into(),
            email: "alice@example.com".into(),
            phone: "+44 20 7946 0000".into(),
            display_name: "Alice Liddell".into(),
            password: "correct horse battery staple".into(),
            device: "Firefox on Linux".into(),
        },
        ClientFrame::Login {
            id: 3,
            login: "alice".into(),
            password: "correct horse battery staple".into(),
            device: "Phone".into(),
        },
        ClientFrame::Resume {
            id: 4,
            token: "q5Jm3oZ0m1bq0b7m3S3m0y4Yc0p8Jv0h3H7o2aQ9x1A".into(),
        },
        ClientFrame::Logout { id: 5 },
        ClientFrame::ChangePassword {
            id: 6,
            old_password: "correct horse battery staple".into(),
            new_password: "purple monkey dishwasher 42".into(),
        },
        ClientFrame::Devices { id: 45 },
        ClientFrame::RenameDevice {
            id: 46,
            device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
            name: "Work laptop".into(),
        },
        ClientFrame::RevokeDevice {
            id: 47,
            device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de7a2"),
        },
        ClientFrame::ResetRequest {
            id: 7,
            email: "alice@example.com".into(),
        },
        ClientFrame::ResetConfirm {
            id: 8,
            token: "Zk1Qm0b7m3S3m0y4Yc0p8Jv0h3H7o2aQ9x1Aq5Jm3oZ".into(),
            new_password: "purple monkey dishwasher 42".into(),
        },
        ClientFrame::SearchUsers {
            id: 9,
            query: "bo".into(),
            after: None,
            limit: Some(20),
        },
        ClientFrame::GetProfile {
            id: 10,
            user: bob(),
        },
        ClientFrame::UpdateProfile {
            id: 11,
            display_name: None,
            about: Some("Curiouser and curiouser".into()),
            avatar: Some("0190f7a2a11cavatar00000000a11c0".into()),
        },
        ClientFrame::Send { media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id: 12,
            conv: None,
            to: Some(bob()),
            client_id: "c-7f3e".into(),
            content: Content::Text {
                text: "Hello, Bob! 👋".into(),
            },
        },
        ClientFrame::History {
            id: 13,
            conv: conv(),
            before: Some(42),
            limit: Some(50),
        },
        ClientFrame::Sync {
            id: 14,
            limit: Some(100),
        },
        ClientFrame::Ack {
            id: 15,
            conv: conv(),
            seq: 42,
        },
        ClientFrame::Read {
            id: 16,
            conv: conv(),
            seq: 42,
        },
        ClientFrame::Focus {
            id: 17,
            conv: Some(conv()),
        },
        ClientFrame::Conversations {
            id: 18,
            list: None,
            after: Some("1732540800000:g:0190f7a4-1111-7000-8000-0000000009a0".into()),
            limit: Some(50),
        },
        ClientFrame::Ping { id: 19 },
        ClientFrame::OpenDirect {
            id: 20,
            user: bob(),
            encrypted: true,
        },
        ClientFrame::CreateGroup {
            id: 21,
            title: "Tea party".into(),
            description: Some("Mad hatters only".into()),
            avatar: None,
            members: vec![bob(), carol()],
            encrypted: false,
        },
        ClientFrame::GetConversation {
            id: 22,
            conv: group(),
        },
        ClientFrame::UpdateGroup {
            id: 23,
            conv: group(),
            title: Some("Unbirthday party".into()),
            description: None,
            avatar: None,
            history_visible: Some(true),
        },
        ClientFrame::AddMembers {
            id: 24,
            conv: group(),
            users: vec![carol()],
        },
        ClientFrame::RemoveMember {
            id: 25,
            conv: group(),
            user: carol(),
        },
        ClientFrame::Leave {
            id: 26,
            conv: group(),
        },
        ClientFrame::SetRole {
            id: 27,
            conv: group(),
            user: bob(),
            role: Role::Admin,
        },
        ClientFrame::CreateInvite {
            id: 28,
            conv: group(),
        },
        ClientFrame::RevokeInvite {
            id: 29,
            conv: group(),
        },
        ClientFrame::Join {
            id: 30,
            token: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".into(),
        },
        ClientFrame::Mute {
            id: 31,
            conv: group(),
            until: Some(1_732_627_200_000),
        },
        ClientFrame::Unmute {
            id: 32,
            conv: group(),
        },
        ClientFrame::Contact {
            id: 33,
            user: bob(),
            action: ContactAction::Request,
        },
        ClientFrame::Block {
            id: 34,
            user: bob(),
        },
        ClientFrame::Unblock {
            id: 35,
            user: bob(),
        },
        ClientFrame::Contacts {
            id: 36,
            list: ContactList::Contacts,
            after: None,
            limit: Some(50),
        },
        ClientFrame::SetPrivacy {
            id: 37,
            direct: Some(Audience::Contacts),
            groups: Some(Audience::Contacts),
            presence: None,
            read_receipts: None,
        },
        ClientFrame::Conversations {
            id: 38,
            list: Some(ConversationList::Requests),
            after: None,
            limit: None,
        },
        ClientFrame::Accept {
            id: 39,
            conv: group(),
        },
        ClientFrame::Decline {
            id: 40,
            conv: conv(),
        },
        ClientFrame::Report {
            id: 41,
            user: bob(),
            conv: Some(conv()),
            reason: Some("Sells miracle tea".into()),
        },
        ClientFrame::UploadKeys {
            id: 42,
            device_keys: Some(identity_keys()),
            one_time_keys: vec![signed_key("AAAAAQ")],
            fallback_key: Some(signed_key("AAAAAg")),
            master_key: Some(master_key()),
            signatures: vec![DeviceSignature {
                device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
                signature: "bWFzdGVyIGtleSdzIHNpZ25hdHVyZSBvZiB0aGlzIGRldmljZSwgNjQgYnl0ZXMgbG9uZyEhISEhISEhISE".into(),
            }],
        },
        ClientFrame::QueryKeys {
            id: 43,
            users: vec![bob()],
            conv: None,
        },
        ClientFrame::ClaimKeys {
            id: 44,
            devices: vec![DeviceRef {
                user: bob(),
                device: DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b01"),
            }],
            conv: Some(conv()),
        },
        ClientFrame::Send { media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id: 45,
            conv: Some(conv()),
            to: None,
            client_id: "c-8a01".into(),
            content: encrypted(),
        },
        ClientFrame::SendToDevice {
            id: 46,
            kind: "olm.v1".into(),
            messages: vec![
                OutgoingToDevice {
                    user: bob(),
                    device: Some(DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b01")),
                    id: "td-1".into(),
                    payload: "AwogU2Vzc2lvbiBrZXk".into(),
                },
                OutgoingToDevice {
                    user: alice(),
                    device: None,
                    id: "td-2".into(),
                    payload: "AwogT3duIGRldmljZXM".into(),
                },
            ],
            conv: None,
        },
        ClientFrame::AckToDevice {
            id: 47,
            messages: vec![ToDeviceAck {
                from_device: DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b01"),
                id: "td-9".into(),
            }],
        },
        ClientFrame::Encrypt {
            id: 48,
            conv: group(),
        },
        ClientFrame::CreateBackup {
            id: 49,
            algorithm: "chatcore.backup.v1".into(),
            auth_data: "eyJwdWJsaWNfa2V5IjoiLi4uIn0".into(),
        },
        ClientFrame::GetBackup { id: 50 },
        ClientFrame::UpdateBackup {
            id: 51,
            version: backup_version().into(),
            auth_data: "eyJwdWJsaWNfa2V5IjoiLi4uIiwic2VhbGVkIjoiLi4uIn0".into(),
        },
        ClientFrame::DeleteBackup {
            id: 52,
            version: backup_version().into(),
        },
        ClientFrame::PutBackupKeys {
            id: 53,
            version: backup_version().into(),
            keys: vec![backup_key()],
        },
        ClientFrame::GetBackupKeys {
            id: 54,
            version: backup_version().into(),
            after: Some(BackupKeyRef {
                conv: group(),
                session: "mJ2Qm3lBv0b3uKkQ0vCq7yGZ8vXo1pD4l9mC3bL1s6E".into(),
            }),
            limit: Some(100),
        },
        ClientFrame::Typing {
            id: 55,
            conv: group(),
            typing: true,
        },
        ClientFrame::Receipts {
            id: 56,
            conv: group(),
            since: Some(1_732_540_960_000),
        },
        ClientFrame::SetPrivacy {
            id: 57,
            direct: None,
            groups: None,
            presence: None,
            read_receipts: Some(false),
        },
        ClientFrame::Send { media: Vec::new(),
            id: 58,
            conv: Some(group()),
            to: None,
            client_id: "c-8a01".into(),
            rel: Some(Rel::new(RelKind::Reply, message().id)),
            mentions: vec![bob()],
            content: Content::Text {
                text: "@Bob see above".into(),
            },
        },
        ClientFrame::Send { media: Vec::new(),
            id: 59,
            conv: Some(conv()),
            to: None,
            client_id: "c-8a02".into(),
            rel: Some(Rel::new(RelKind::Reaction, message().id)),
            mentions: Vec::new(),
            content: Content::Text { text: "👍".into() },
        },
        ClientFrame::Send { media: Vec::new(),
            id: 60,
            conv: Some(conv()),
            to: None,
            client_id: "c-8a03".into(),
            rel: Some(Rel::new(RelKind::Delete, message().id)),
            mentions: Vec::new(),
            content: Content::Deleted {},
        },
        ClientFrame::SetTimer {
            id: 61,
            conv: conv(),
            expire_after: Some(86_400_000),
        },
        ClientFrame::Send {
            id: 64,
            conv: Some(conv()),
            to: None,
            client_id: "c-8a05".into(),
            rel: None,
            mentions: Vec::new(),
            media: vec![photo()],
            content: Content::Image { encryption: None,
                media: photo(),
                mime: "image/jpeg".into(),
                width: 1280,
                height: 960,
                size: 183_412,
                thumbnail: Some("/9j/4AAQSkZJRgABAQ".into()),
                caption: Some("Sunset".into()),
            },
        },
        ClientFrame::IceServers { id: 70 },
        ClientFrame::CallInvite {
            id: 71,
            call: call_id().into(),
            conv: conv(),
            media: CallMedia::Video,
            signal: CallSignal {
                sdp: Some(OFFER.into()),
                ..CallSignal::default()
            },
        },
        ClientFrame::CallRinging {
            id: 72,
            call: call_id().into(),
        },
        ClientFrame::CallAnswer {
            id: 73,
            call: call_id().into(),
            signal: CallSignal {
                sealed: vec![SealedSignal {
                    device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
                    payload: "AwogU2VhbGVkIGZvciBvbmUgZGV2aWNl".into(),
                }],
                ..CallSignal::default()
            },
        },
        ClientFrame::CallCandidates {
            id: 74,
            call: call_id().into(),
            signal: CallSignal {
                candidates: vec![candidate()],
                ..CallSignal::default()
            },
        },
        ClientFrame::CallHangup {
            id: 75,
            call: call_id().into(),
            reason: HangupReason::Hangup,
        },
    ]
}

/// An uploaded photo's media id.
fn photo() -> MediaId {
    MediaId::from("5b0e6c1f9a8d4e2b7c3f1a0d9e8b7c6a")
}

/// Bob's edit of Alice's [`message`], in a conversation with a timer.
fn edit() -> Message {
    Message {
        media: Vec::new(),
        id: MessageId::from("0190f7a3-0000-7000-8000-00000000002c"),
        conv: conv(),
        seq: 44,
        from: alice(),
        client_id: "c-8a04".into(),
        ts: 1_732_540_860_000,
        rel: Some(Rel::new(RelKind::Edit, message().id)),
        mentions: Vec::new(),
        expires_at: Some(1_732_627_260_000),
        content: Content::Text {
            text: "Hello, Bob! 👋 (edited)".into(),
        },
    }
}

fn call_id() -> &'static str {
    "6f1c2a9e-4d3b-4e8a-9c71-5b2d8e0f3a47"
}

/// A short SDP offer (a real one is a few kilobytes).
const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
a=fingerprint:sha-256 3B:5C:0E:8F:91:3D:4A:2B:77:10:C8:E2:5A:64:9F:01:DE:AD:BE:EF:00:11:22:33:44:55:66:77:88:99:AA:BB\r\n\
a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n";

fn candidate() -> IceCandidate {
    IceCandidate {
        candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.168.1.20 rport 46154 generation 0".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

fn backup_version() -> &'static str {
    "0190f7a5-0000-7000-8000-00000000bac0"
}

fn backup_key() -> BackupKeyInfo {
    BackupKeyInfo {
        conv: group(),
        session: "mJ2Qm3lBv0b3uKkQ0vCq7yGZ8vXo1pD4l9mC3bL1s6E".into(),
        first_index: 0,
        forwarded: 1,
        verified: true,
        data: "c2VhbGVkIGZvciB0aGUgYmFja3VwIGtleQ".into(),
    }
}

/// Every server frame type.
pub fn server_frames() -> Vec<ServerFrame> {
    vec![
        ServerFrame::Welcome {
            id: 1,
            version: 4,
            server: "chatcore/0.1.0".into(),
            time: 1_732_540_800_000,
        },
        ServerFrame::Session {
            id: 3,
            user: alice(),
            device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
            token: Some("q5Jm3oZ0m1bq0b7m3S3m0y4Yc0p8Jv0h3H7o2aQ9x1A".into()),
            expires_at: 1_735_132_800_000,
            profile: Box::new(Profile {
                user: alice(),
                username: "alice".into(),
                display_name: "Alice Liddell".into(),
                about: String::new(),
                avatar: None,
            }),
            privacy: Privacy::default(),
            keys: KeyCountsInfo {
                one_time: 37,
                fallback_unused: true,
            },
        },
        ServerFrame::Ok { id: 15 },
        ServerFrame::DeviceList {
            id: 45,
            devices: vec![
                DeviceInfo {
                    device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
                    name: "Firefox on Linux".into(),
                    created_at: 1_732_540_800_000,
                    last_active: 1_732_627_200_000,
                    keys: true,
                    current: true,
                },
                DeviceInfo {
                    device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de7a2"),
                    name: "Phone".into(),
                    created_at: 1_732_541_000_000,
                    last_active: 1_732_541_000_000,
                    keys: false,
                    current: false,
                },
            ],
        },
        ServerFrame::DevicesChanged { user: bob() },
        ServerFrame::Users {
            id: 9,
            users: vec![entry()],
            next: Some("bob".into()),
        },
        ServerFrame::Profile {
            id: 10,
            entry: Box::new(entry()),
        },
        ServerFrame::Sent {
            expires_at: None,
            id: 12,
            message_id: message().id,
            conv: conv(),
            seq: 42,
            ts: 1_732_540_800_000,
            duplicate: false,
        },
        ServerFrame::Messages {
            related: Vec::new(),
            id: 13,
            conv: conv(),
            messages: vec![message()],
            more: true,
        },
        ServerFrame::Synced {
            id: 14,
            messages: vec![message()],
            more: false,
        },
        ServerFrame::Conversations {
            id: 18,
            conversations: vec![
                ConversationSummary {
                    expire_after: None,
                    mentions: 0,
                    conv: conv(),
                    kind: ConversationKind::Direct,
                    title: None,
                    avatar: None,
                    peer: Some(profile()),
                    members: 2,
                    role: None,
                    left: false,
                    last_seq: 42,
                    unread: 3,
                    last: Some(LastEntry {
                        rel: None,
                        seq: 42,
                        ts: 1_732_540_800_000,
                        from: alice(),
                        kind: "text".into(),
                        preview: Some("Hello, Bob! 👋".into()),
                    }),
                    encrypted: true,
                    muted: false,
                    muted_until: None,
                    request: None,
                },
                ConversationSummary {
                    expire_after: None,
                    mentions: 0,
                    conv: group(),
                    kind: ConversationKind::Group,
                    title: Some("Tea party".into()),
                    avatar: None,
                    peer: None,
                    members: 3,
                    role: Some(Role::Owner),
                    left: false,
                    last_seq: 7,
                    unread: 0,
                    last: Some(LastEntry {
                        rel: None,
                        seq: 7,
                        ts: 1_732_540_900_000,
                        from: alice(),
                        kind: "members_added".into(),
                        preview: None,
                    }),
                    encrypted: false,
                    muted: true,
                    muted_until: Some(1_732_627_200_000),
                    request: None,
                },
                ConversationSummary {
                    expire_after: None,
                    mentions: 0,
                    conv: ConversationId::from("g:0190f7a4-2222-7000-8000-0000000009a1"),
                    kind: ConversationKind::Group,
                    title: Some("Croquet".into()),
                    avatar: Some("0190f7a4group0avatar00000009a1".into()),
                    peer: None,
                    members: 12,
                    role: None,
                    left: true,
                    last_seq: 30,
                    unread: 0,
                    last: None,
                    encrypted: false,
                    muted: true,
                    muted_until: None,
                    request: None,
                },
            ],
            next: Some("1732540800000:g:0190f7a4-1111-7000-8000-0000000009a0".into()),
        },
        ServerFrame::Conversation {
            id: 21,
            conversation: Box::new(ConversationInfo {
                expire_after: None,
                conv: group(),
                kind: ConversationKind::Group,
                title: Some("Tea party".into()),
                description: Some("Mad hatters only".into()),
                avatar: None,
                history_visible: false,
                encrypted: true,
                created_at: 1_732_540_850_000,
                members: vec![
                    MemberInfo {
                        user: alice(),
                        role: Role::Owner,
                        joined_at: 1_732_540_850_000,
                    },
                    MemberInfo {
                        user: bob(),
                        role: Role::Member,
                        joined_at: 1_732_540_850_000,
                    },
                ],
                role: Some(Role::Owner),
                last_seq: 1,
                first_seq: 1,
                invited: vec![carol()],
                request: None,
            }),
        },
        ServerFrame::Changed {
            id: 24,
            conv: group(),
            seq: 7,
            invited: vec![carol()],
        },
        ServerFrame::Invite {
            id: 28,
            conv: group(),
            token: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".into(),
        },
        ServerFrame::Pong { id: 19 },
        ServerFrame::Error {
            id: Some(2),
            code: ErrorCode::WeakPassword,
            message: "password too weak: use at least 10 characters".into(),
            field: Some("password".into()),
            violations: vec!["too_short".into(), "common".into()],
            retry_after_ms: None,
        },
        ServerFrame::Message {
            message: message().into(),
        },
        ServerFrame::Message {
            message: notice().into(),
        },
        notice_frame(
            1,
            Content::GroupCreated {
                title: "Tea party".into(),
                members: vec![bob(), carol()],
            },
        ),
        notice_frame(8, Content::MemberJoined {}),
        notice_frame(9, Content::MemberRemoved { user: carol() }),
        notice_frame(
            10,
            Content::MemberLeft {
                new_owner: Some(bob()),
            },
        ),
        notice_frame(
            11,
            Content::RoleChanged {
                user: bob(),
                role: Role::Admin,
            },
        ),
        notice_frame(
            12,
            Content::GroupUpdated {
                title: Some("Unbirthday party".into()),
                description: Some(String::new()),
                avatar: Some("0190f7a4group0avatar00000009a0".into()),
                history_visible: Some(true),
            },
        ),
        notice_frame(13, Content::Void {}),
        ServerFrame::Presence {
            presence: Presence {
                user: bob(),
                online: true,
                last_seen: None,
            },
        },
        ServerFrame::Alert {
            conv: conv(),
            from: alice(),
            message_id: message().id,
            seq: 42,
        },
        ServerFrame::Read {
            conv: conv(),
            seq: 42,
        },
        ServerFrame::ProfileChanged {
            profile: Box::new(Profile {
                user: bob(),
                username: "bob".into(),
                display_name: "Bob B.".into(),
                about: "Gone fishing".into(),
                avatar: Some("0190f7a4bob0avatar000000000b0b".into()),
            }),
        },
        ServerFrame::NewUser {
            entry: Box::new(DirectoryEntry {
                profile: Profile {
                    user: carol(),
                    username: "carol".into(),
                    display_name: "Carol".into(),
                    about: String::new(),
                    avatar: None,
                },
                presence: Presence {
                    user: carol(),
                    online: true,
                    last_seen: None,
                },
            }),
        },
        ServerFrame::Contact {
            id: Some(33),
            contact: Box::new(ContactInfo {
                profile: profile(),
                state: ContactState::Outgoing,
                blocked: false,
                since: Some(1_732_540_900_000),
                presence: None,
            }),
        },
        ServerFrame::Contacts {
            id: 36,
            contacts: vec![ContactInfo {
                profile: profile(),
                state: ContactState::Contact,
                blocked: false,
                since: Some(1_732_541_000_000),
                presence: Some(Presence {
                    user: bob(),
                    online: true,
                    last_seen: None,
                }),
            }],
            next: None,
        },
        ServerFrame::Privacy {
            id: Some(37),
            privacy: Privacy {
                direct: Audience::Contacts,
                groups: Audience::Contacts,
                presence: Audience::Everyone,
                read_receipts: true,
            },
        },
        ServerFrame::Conversations {
            id: 38,
            conversations: vec![ConversationSummary {
                expire_after: None,
                mentions: 0,
                conv: conv(),
                kind: ConversationKind::Direct,
                title: None,
                avatar: None,
                peer: Some(profile()),
                members: 2,
                role: None,
                left: false,
                last_seq: 1,
                unread: 1,
                last: Some(LastEntry {
                    rel: None,
                    seq: 1,
                    ts: 1_732_541_100_000,
                    from: bob(),
                    kind: "text".into(),
                    preview: Some("Hi, we met at the fair".into()),
                }),
                encrypted: false,
                muted: false,
                muted_until: None,
                request: Some(RequestInfo {
                    by: profile(),
                    at: 1_732_541_100_000,
                }),
            }],
            next: None,
        },
        ServerFrame::Invited {
            conversation: Box::new(ConversationSummary {
                expire_after: None,
                mentions: 0,
                conv: group(),
                kind: ConversationKind::Group,
                title: Some("Tea party".into()),
                avatar: None,
                peer: None,
                members: 3,
                role: None,
                left: false,
                last_seq: 0,
                unread: 0,
                last: None,
                encrypted: false,
                muted: false,
                muted_until: None,
                request: Some(RequestInfo {
                    by: profile(),
                    at: 1_732_541_200_000,
                }),
            }),
        },
        ServerFrame::Answered {
            conv: group(),
            accepted: true,
        },
        ServerFrame::KeyCounts {
            id: Some(42),
            one_time: 1,
            fallback_unused: true,
        },
        ServerFrame::DeviceKeys {
            id: 43,
            devices: vec![DeviceKeysInfo {
                user: bob(),
                device: DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b01"),
                keys: identity_keys(),
                master_signature: Some(
                    "Ym9iJ3MgbWFzdGVyIGtleSB2b3VjaGVzIGZvciB0aGlzIGRldmljZSwgNjQgYnl0ZXMgbG9uZyEhISEhISE".into(),
                ),
            }],
            master_keys: vec![UserMasterKey {
                user: bob(),
                master_key: master_key(),
            }],
        },
        ServerFrame::ClaimedKeys {
            id: 44,
            keys: vec![ClaimedKey {
                user: bob(),
                device: DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b01"),
                key: signed_key("AAAAAQ"),
                fallback: false,
            }],
        },
        ServerFrame::KeyCounts {
            id: None,
            one_time: 49,
            fallback_unused: true,
        },
        ServerFrame::ToDeviceSent {
            id: 46,
            queued: 2,
            undelivered: vec![Undelivered {
                user: bob(),
                device: Some(DeviceId::from("0190f7a2-6c1e-7b3a-9f00-0000000d0b02")),
                reason: UndeliveredReason::Full,
            }],
        },
        ServerFrame::ToDevice {
            messages: vec![ToDeviceMessage {
                id: "td-1".into(),
                from_user: alice(),
                from_device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
                kind: "olm.v1".into(),
                payload: "AwogU2Vzc2lvbiBrZXk".into(),
                ts: 1_732_541_300_000,
            }],
        },
        ServerFrame::Message {
            message: Message {
                content: encrypted(),
                ..message()
            }
            .into(),
        },
        notice_frame(14, Content::EncryptionEnabled {}),
        ServerFrame::Backup {
            id: 49,
            backup: BackupInfo {
                version: backup_version().into(),
                algorithm: "chatcore.backup.v1".into(),
                auth_data: "eyJwdWJsaWNfa2V5IjoiLi4uIn0".into(),
                count: 1,
                etag: 3,
                created_at: 1_732_541_400_000,
            },
        },
        ServerFrame::BackupKeys {
            id: 54,
            keys: vec![backup_key()],
            more: false,
        },
        ServerFrame::Typing {
            conv: group(),
            user: bob(),
            typing: true,
            ttl_ms: 6000,
        },
        ServerFrame::Receipts {
            id: 56,
            conv: group(),
            receipts: vec![
                ReceiptInfo {
                    user: bob(),
                    delivered: 42,
                    read: 40,
                },
                ReceiptInfo {
                    user: carol(),
                    delivered: 41,
                    read: 0,
                },
            ],
            until: 1_732_540_990_000,
        },
        ServerFrame::Privacy {
            id: Some(57),
            privacy: Privacy {
                direct: Audience::Everyone,
                groups: Audience::Everyone,
                presence: Audience::Everyone,
                read_receipts: false,
            },
        },
        ServerFrame::Receipt {
            conv: group(),
            user: bob(),
            delivered: 43,
            read: 43,
        },
        ServerFrame::Sent {
            id: 58,
            message_id: MessageId::from("0190f7a3-0000-7000-8000-00000000002e"),
            conv: group(),
            seq: 12,
            ts: 1_732_540_860_000,
            duplicate: false,
            expires_at: Some(1_732_627_260_000),
        },
        ServerFrame::Messages {
            id: 62,
            conv: conv(),
            messages: vec![message()],
            more: true,
            related: vec![
                edit(),
                Message {
                    id: MessageId::from("0190f7a3-0000-7000-8000-00000000002d"),
                    seq: 45,
                    from: bob(),
                    client_id: "c-9b01".into(),
                    rel: Some(Rel::new(RelKind::Reaction, message().id)),
                    expires_at: None,
                    content: Content::Deleted {},
                    ..edit()
                },
            ],
        },
        ServerFrame::Message {
            message: Message {
                id: MessageId::from("0190f7a3-0000-7000-8000-00000000002e"),
                conv: group(),
                seq: 12,
                client_id: "c-8a01".into(),
                rel: Some(Rel::new(RelKind::Reply, message().id)),
                mentions: vec![bob()],
                expires_at: None,
                content: Content::Text {
                    text: "@Bob see above".into(),
                },
                ..edit()
            }
            .into(),
        },
        notice_frame(
            13,
            Content::TimerChanged {
                expire_after: Some(86_400_000),
            },
        ),
        ServerFrame::Message {
            message: Message {
                id: MessageId::from("0190f7a3-0000-7000-8000-00000000002f"),
                seq: 46,
                client_id: "c-8a06".into(),
                rel: None,
                expires_at: None,
                media: vec![MediaId::from("9c2d7e4a1b3f5a6c8d0e2f4a6b8c0d1e")],
                content: Content::File { encryption: None,
                    media: MediaId::from("9c2d7e4a1b3f5a6c8d0e2f4a6b8c0d1e"),
                    name: "minutes.pdf".into(),
                    mime: "application/pdf".into(),
                    size: 48_213,
                },
                ..edit()
            }
            .into(),
        },
        ServerFrame::Message {
            message: Message {
                id: MessageId::from("0190f7a3-0000-7000-8000-000000000030"),
                seq: 47,
                client_id: "c-9b02".into(),
                from: bob(),
                rel: None,
                expires_at: None,
                media: vec![MediaId::from("0a1b2c3d4e5f60718293a4b5c6d7e8f9")],
                content: Content::Voice { encryption: None,
                    media: MediaId::from("0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
                    mime: "audio/webm".into(),
                    duration_ms: 4_250,
                    waveform: vec![3, 40, 120, 200, 90, 12],
                    size: 21_004,
                },
                ..edit()
            }
            .into(),
        },
        ServerFrame::Conversations {
            id: 63,
            conversations: vec![ConversationSummary {
                conv: group(),
                kind: ConversationKind::Group,
                title: Some("Tea party".into()),
                avatar: None,
                peer: None,
                members: 3,
                role: Some(Role::Member),
                left: false,
                last_seq: 14,
                unread: 2,
                mentions: 1,
                expire_after: Some(86_400_000),
                last: Some(LastEntry {
                    seq: 14,
                    ts: 1_732_540_960_000,
                    from: carol(),
                    kind: "text".into(),
                    rel: Some(RelKind::Reaction),
                    preview: Some("🎉".into()),
                }),
                encrypted: false,
                muted: true,
                muted_until: None,
                request: None,
            }],
            next: None,
        },
        ServerFrame::CallState {
            id: Some(71),
            call: Box::new(CallInfo {
                call: call_id().into(),
                conv: conv(),
                caller: alice(),
                caller_device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
                callee: bob(),
                media: CallMedia::Video,
                state: CallStatus::Active,
                ringing: true,
                answered_by: Some(DeviceId::from("0190f7a2-7000-7000-8000-0000000de7b0")),
                reason: None,
                started_at: 1_732_540_990_000,
                answered_at: Some(1_732_540_994_500),
                ended_at: None,
            }),
        },
        ServerFrame::CallSignal(Box::new(CallSignalPush {
            call: call_id().into(),
            device: DeviceId::from("0190f7a2-7000-7000-8000-0000000de71c"),
            sdp: None,
            candidates: vec![candidate()],
            sealed: None,
        })),
        ServerFrame::Message {
            message: Message {
                media: Vec::new(),
                expires_at: None,
                mentions: Vec::new(),
                rel: None,
                id: MessageId::from("0190f7a3-0000-7000-8000-0000000000c1"),
                conv: conv(),
                seq: 48,
                from: alice(),
                client_id: "0190f7a3-0000-7000-8000-0000000000c1".into(),
                ts: 1_732_541_120_000,
                content: Content::Call {
                    call: call_id().into(),
                    media: CallMedia::Video,
                    outcome: CallEnd::Hangup,
                    duration_ms: Some(125_500),
                },
            }
            .into(),
        },
        ServerFrame::IceServers {
            id: 70,
            servers: vec![
                IceServer {
                    urls: vec!["stun:turn.example.org:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec![
                        "turn:turn.example.org:3478?transport=udp".into(),
                        "turns:turn.example.org:5349?transport=tcp".into(),
                    ],
                    username: Some("1732627360:0190f7a2-6c1e-7b3a-9f00-00000000a11c".into()),
                    credential: Some("6tq8z0wrnQ+takia4nJlj0GnX8A=".into()),
                },
            ],
            expires_at: Some(1_732_627_360_000),
        },
    ]
}

/// The `type` of every client frame variant, in declaration order.
pub fn client_type_names() -> Vec<&'static str> {
    client_frames().iter().map(ClientFrame::type_name).collect()
}

/// The `type` of a server frame (exhaustive: a new variant must be named here).
pub fn server_type_name(f: &ServerFrame) -> &'static str {
    match f {
        ServerFrame::Welcome { .. } => "welcome",
        ServerFrame::Session { .. } => "session",
        ServerFrame::Ok { .. } => "ok",
        ServerFrame::DeviceList { .. } => "device_list",
        ServerFrame::DevicesChanged { .. } => "devices_changed",
        ServerFrame::Users { .. } => "users",
        ServerFrame::Profile { .. } => "profile",
        ServerFrame::Sent { .. } => "sent",
        ServerFrame::Messages { .. } => "messages",
        ServerFrame::Synced { .. } => "synced",
        ServerFrame::Conversations { .. } => "conversations",
        ServerFrame::Pong { .. } => "pong",
        ServerFrame::Error { .. } => "error",
        ServerFrame::Message { .. } => "message",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Alert { .. } => "alert",
        ServerFrame::Read { .. } => "read",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Receipts { .. } => "receipts",
        ServerFrame::Receipt { .. } => "receipt",
        ServerFrame::ProfileChanged { .. } => "profile_changed",
        ServerFrame::NewUser { .. } => "new_user",
        ServerFrame::Conversation { .. } => "conversation",
        ServerFrame::Changed { .. } => "changed",
        ServerFrame::Invite { .. } => "invite",
        ServerFrame::Contact { .. } => "contact",
        ServerFrame::Contacts { .. } => "contacts",
        ServerFrame::Privacy { .. } => "privacy",
        ServerFrame::Invited { .. } => "invited",
        ServerFrame::Answered { .. } => "answered",
        ServerFrame::KeyCounts { .. } => "key_counts",
        ServerFrame::DeviceKeys { .. } => "device_keys",
        ServerFrame::ClaimedKeys { .. } => "claimed_keys",
        ServerFrame::ToDeviceSent { .. } => "to_device_sent",
        ServerFrame::ToDevice { .. } => "to_device",
        ServerFrame::Backup { .. } => "backup",
        ServerFrame::BackupKeys { .. } => "backup_keys",
        ServerFrame::IceServers { .. } => "ice_servers",
        ServerFrame::CallState { .. } => "call_state",
        ServerFrame::CallSignal(_) => "call_signal",
    }
}
