/**
 * The frames of the chatcore protocol, version 4 (docs/PROTOCOL.md), as
 * TypeScript types, and the schema that puts any frame into its canonical
 * form: fields in the order the Rust types serialize them, absent optional
 * fields omitted, `null` only where Rust writes `None` as nil. Both codecs
 * encode the canonical form, which is what makes their bytes identical to
 * Rust's (tests/vectors/frames.json checks it).
 *
 * Field names are the wire names (`display_name`, `client_id`, ...) so that
 * an error's `field` names the very property a caller passed.
 *
 * @module
 */
/** The protocol version this binding speaks (5: `typing`; 6: receipts). */
export const PROTOCOL_VERSION = 9;
/** WebSocket subprotocol names; the codec is chosen by subprotocol. */
export const SUBPROTOCOL_MSGPACK = "chatcore.v1.msgpack";
/** See {@link SUBPROTOCOL_MSGPACK}. */
export const SUBPROTOCOL_JSON = "chatcore.v1.json";
/** Every {@link ErrorCode}, in the order of PROTOCOL.md. */
export const ERROR_CODES = [
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "weak_password",
    "rate_limited",
    "limit_reached",
    "too_large",
    "invalid_frame",
    "invalid_argument",
    "unsupported_version",
    "unavailable",
    "internal",
];
/** Every {@link Role}, from least to most power. */
export const ROLES = ["member", "admin", "owner"];
/** The most uploaded files one message carries. */
export const MAX_MEDIA = 10;
/** Every {@link RelKind}. */
export const REL_KINDS = ["reply", "edit", "reaction", "delete"];
/** The disappearing-message timers a conversation may have, in milliseconds: 1 hour, 1 day, 1 week, 90 days. */
export const DISAPPEARING_TIMERS = [3_600_000, 86_400_000, 7 * 86_400_000, 90 * 86_400_000];
/** The most reactions one member keeps on one message. */
export const MAX_REACTIONS = 20;
/** The most members one message mentions. */
export const MAX_MENTIONS = 50;
/** Every notice `kind`. */
export const NOTICE_KINDS = [
    "group_created",
    "members_added",
    "member_joined",
    "member_removed",
    "member_left",
    "role_changed",
    "group_updated",
    "encryption_enabled",
    "timer_changed",
    "call",
    "void",
];
/** Whether `content` is a notice the server wrote rather than a message someone sent. */
export function isNotice(content) {
    return !["text", "encrypted", "deleted", "image", "file", "voice"].includes(content.kind);
}
/**
 * Whether `message` is a message in its own right (text or encrypted, no `rel` or a reply): it counts as unread and
 * can be replied to, edited, reacted to and deleted. Edits, reactions and deletions point at one instead.
 */
export function standsAlone(message) {
    const c = message.content.kind;
    const isMessage = c === "text" || c === "encrypted" || c === "image" || c === "file" || c === "voice";
    return isMessage && (message.rel === undefined || message.rel.kind === "reply");
}
/** Whether `message` counts as unread and alerts: a message in its own right, or a call missed (or refused as busy). */
export function alerts(message) {
    const c = message.content;
    return standsAlone(message) || (c.kind === "call" && (c.outcome === "missed" || c.outcome === "busy"));
}
export const CALL_MEDIA = ["voice", "video"];
export const CALL_ENDS = ["hangup", "cancelled", "declined", "busy", "missed", "failed", "gone"];
export const HANGUP_REASONS = ["hangup", "declined", "failed"];
/** Every {@link Audience}, from widest to narrowest. */
export const AUDIENCES = ["everyone", "contacts", "nobody"];
/** Every {@link ContactAction}. */
export const CONTACT_ACTIONS = ["request", "accept", "decline", "cancel", "remove"];
/** Every {@link ContactList}. */
export const CONTACT_LISTS = ["contacts", "incoming", "outgoing", "blocked"];
/** Every {@link ConversationList}. */
export const CONVERSATION_LISTS = ["main", "requests"];
/** Every {@link ContactState}. */
export const CONTACT_STATES = ["none", "incoming", "outgoing", "contact"];
/** A frame that does not follow the schema (or bytes that are not a frame). */
export class ProtocolError extends Error {
    name = "ProtocolError";
}
const req = (name, kind) => ({ name, kind, mode: "required" });
const opt = (name, kind) => ({ name, kind, mode: "optional" });
const vec = (name, kind) => ({ name, kind, mode: "nonempty" });
const flag = (name) => ({ name, kind: "bool", mode: "flag" });
const always = (name, kind) => ({ name, kind, mode: "defaulted" });
const on = (name) => ({ name, kind: "bool", mode: "on" });
const id = req("id", "u32");
/** Millis is an i64 in Rust. */
const millis = "i64";
const ROLE = { oneOf: ROLES };
const AUDIENCE = { oneOf: AUDIENCES };
const CONVERSATION_KIND = { oneOf: ["direct", "group"] };
const FILE_ENCRYPTION = { struct: [req("key", "string"), req("iv", "string"), req("sha256", "string")] };
const CALL_MEDIA_KIND = { oneOf: CALL_MEDIA };
const CALL_END_KIND = { oneOf: CALL_ENDS };
const CONTENT = {
    tagged: "kind",
    variants: {
        text: [req("text", "string")],
        encrypted: [req("algorithm", "string"), req("device", "string"), req("session", "string"), req("ciphertext", "string")],
        group_created: [req("title", "string"), req("members", { list: "string" })],
        members_added: [req("users", { list: "string" })],
        member_joined: [],
        member_removed: [req("user", "string")],
        member_left: [opt("new_owner", "string")],
        role_changed: [req("user", "string"), req("role", ROLE)],
        group_updated: [
            opt("title", "string"),
            opt("description", "string"),
            opt("avatar", "string"),
            opt("history_visible", "bool"),
        ],
        encryption_enabled: [],
        void: [],
        deleted: [],
        timer_changed: [opt("expire_after", millis)],
        call: [req("call", "string"), req("media", CALL_MEDIA_KIND), req("outcome", CALL_END_KIND), opt("duration_ms", "u64")],
        image: [
            req("media", "string"),
            req("mime", "string"),
            req("width", "u32"),
            req("height", "u32"),
            req("size", "u64"),
            opt("thumbnail", "string"),
            opt("caption", "string"),
            opt("encryption", FILE_ENCRYPTION),
        ],
        file: [
            req("media", "string"),
            req("name", "string"),
            req("mime", "string"),
            req("size", "u64"),
            opt("encryption", FILE_ENCRYPTION),
        ],
        voice: [
            req("media", "string"),
            req("mime", "string"),
            req("duration_ms", "u32"),
            vec("waveform", { list: "u32" }),
            req("size", "u64"),
            opt("encryption", FILE_ENCRYPTION),
        ],
    },
};
const REL = { struct: [req("kind", { oneOf: REL_KINDS }), req("target", "string")] };
const MESSAGE = {
    struct: [
        req("id", "string"),
        req("conv", "string"),
        req("seq", "u64"),
        req("from", "string"),
        req("client_id", "string"),
        req("ts", millis),
        opt("rel", REL),
        vec("mentions", { list: "string" }),
        vec("media", { list: "string" }),
        opt("expires_at", millis),
        req("content", CONTENT),
    ],
};
const PROFILE = {
    struct: [
        req("user", "string"),
        req("username", "string"),
        req("display_name", "string"),
        req("about", "string"),
        opt("avatar", "string"),
    ],
};
const PRESENCE = {
    struct: [req("user", "string"), req("online", "bool"), opt("last_seen", millis)],
};
const DIRECTORY_ENTRY = { struct: [req("profile", PROFILE), req("presence", PRESENCE)] };
const PRIVACY = {
    struct: [req("direct", AUDIENCE), req("groups", AUDIENCE), req("presence", AUDIENCE), on("read_receipts")],
};
const RECEIPT_INFO = { struct: [req("user", "string"), req("delivered", "u64"), req("read", "u64")] };
const REQUEST_INFO = { struct: [req("by", PROFILE), req("at", millis)] };
const CONTACT_INFO = {
    struct: [
        req("profile", PROFILE),
        req("state", { oneOf: CONTACT_STATES }),
        req("blocked", "bool"),
        opt("since", millis),
        opt("presence", PRESENCE),
    ],
};
const LAST_ENTRY = {
    struct: [
        req("seq", "u64"),
        req("ts", millis),
        req("from", "string"),
        req("kind", "string"),
        opt("rel", { oneOf: REL_KINDS }),
        opt("preview", "string"),
    ],
};
const CONVERSATION_SUMMARY = {
    struct: [
        req("conv", "string"),
        req("kind", CONVERSATION_KIND),
        opt("title", "string"),
        opt("avatar", "string"),
        opt("peer", PROFILE),
        req("members", "u32"),
        opt("role", ROLE),
        flag("left"),
        req("last_seq", "u64"),
        req("unread", "u64"),
        opt("mentions", "u64"),
        opt("expire_after", millis),
        opt("last", LAST_ENTRY),
        flag("encrypted"),
        flag("muted"),
        opt("muted_until", millis),
        opt("request", REQUEST_INFO),
    ],
};
const MEMBER_INFO = { struct: [req("user", "string"), req("role", ROLE), req("joined_at", millis)] };
const CONVERSATION_INFO = {
    struct: [
        req("conv", "string"),
        req("kind", CONVERSATION_KIND),
        opt("title", "string"),
        opt("description", "string"),
        opt("avatar", "string"),
        req("history_visible", "bool"),
        flag("encrypted"),
        opt("expire_after", millis),
        req("created_at", millis),
        req("members", { list: MEMBER_INFO }),
        opt("role", ROLE),
        req("last_seq", "u64"),
        req("first_seq", "u64"),
        vec("invited", { list: "string" }),
        opt("request", REQUEST_INFO),
    ],
};
const IDENTITY_KEYS = {
    struct: [req("algorithm", "string"), req("signing_key", "string"), req("agreement_key", "string"), req("signature", "string")],
};
const SIGNED_KEY = { struct: [req("id", "string"), req("key", "string"), req("signature", "string")] };
const DEVICE_REF = { struct: [req("user", "string"), req("device", "string")] };
const DEVICE_KEYS_INFO = {
    struct: [req("user", "string"), req("device", "string"), req("keys", IDENTITY_KEYS), opt("master_signature", "string")],
};
const MASTER_KEY_INFO = { struct: [req("key", "string"), req("signature", "string")] };
const DEVICE_SIGNATURE = { struct: [req("device", "string"), req("signature", "string")] };
const USER_MASTER_KEY = { struct: [req("user", "string"), req("master_key", MASTER_KEY_INFO)] };
const CLAIMED_KEY = {
    struct: [req("user", "string"), req("device", "string"), req("key", SIGNED_KEY), flag("fallback")],
};
const BACKUP_INFO = {
    struct: [
        req("version", "string"),
        req("algorithm", "string"),
        req("auth_data", "string"),
        req("count", "u64"),
        req("etag", "u64"),
        req("created_at", millis),
    ],
};
const ICE_SERVER = {
    struct: [req("urls", { list: "string" }), opt("username", "string"), opt("credential", "string")],
};
const ICE_CANDIDATE = {
    struct: [req("candidate", "string"), opt("sdp_mid", "string"), opt("sdp_m_line_index", "u32")],
};
const CALL_SIGNAL = {
    struct: [
        opt("sdp", "string"),
        vec("candidates", { list: ICE_CANDIDATE }),
        vec("sealed", { list: { struct: [req("device", "string"), req("payload", "string")] } }),
    ],
};
const CALL_INFO = {
    struct: [
        req("call", "string"),
        req("conv", "string"),
        req("caller", "string"),
        req("caller_device", "string"),
        req("callee", "string"),
        req("media", CALL_MEDIA_KIND),
        req("state", { oneOf: ["ringing", "active", "ended"] }),
        flag("ringing"),
        opt("answered_by", "string"),
        opt("reason", CALL_END_KIND),
        req("started_at", millis),
        opt("answered_at", millis),
        opt("ended_at", millis),
    ],
};
const BACKUP_KEY_INFO = {
    struct: [
        req("conv", "string"),
        req("session", "string"),
        req("first_index", "u32"),
        req("forwarded", "u32"),
        req("verified", "bool"),
        req("data", "string"),
    ],
};
const BACKUP_KEY_REF = { struct: [req("conv", "string"), req("session", "string")] };
const KEY_COUNTS = { struct: [req("one_time", "u32"), req("fallback_unused", "bool")] };
const OUTGOING_TO_DEVICE = {
    struct: [req("user", "string"), opt("device", "string"), req("id", "string"), req("payload", "string")],
};
const TO_DEVICE_ACK = { struct: [req("from_device", "string"), req("id", "string")] };
const TO_DEVICE_MESSAGE = {
    struct: [
        req("id", "string"),
        req("from_user", "string"),
        req("from_device", "string"),
        req("kind", "string"),
        req("payload", "string"),
        req("ts", millis),
    ],
};
const UNDELIVERED = {
    struct: [req("user", "string"), opt("device", "string"), req("reason", { oneOf: ["full", "unknown"] })],
};
const DEVICE_INFO = {
    struct: [
        req("device", "string"),
        req("name", "string"),
        req("created_at", millis),
        req("last_active", millis),
        req("keys", "bool"),
        req("current", "bool"),
    ],
};
const CLIENT_FRAME = {
    tagged: "type",
    variants: {
        hello: [id, req("version", "u32"), opt("client", "string")],
        register: [
            id,
            req("username", "string"),
            req("email", "string"),
            req("phone", "string"),
            req("display_name", "string"),
            req("password", "string"),
            req("device", "string"),
        ],
        login: [id, req("login", "string"), req("password", "string"), req("device", "string")],
        resume: [id, req("token", "string")],
        logout: [id],
        change_password: [id, req("old_password", "string"), req("new_password", "string")],
        devices: [id],
        rename_device: [id, req("device", "string"), req("name", "string")],
        revoke_device: [id, req("device", "string")],
        reset_request: [id, req("email", "string")],
        reset_confirm: [id, req("token", "string"), req("new_password", "string")],
        search_users: [id, req("query", "string"), opt("after", "string"), opt("limit", "u32")],
        get_profile: [id, req("user", "string")],
        update_profile: [
            id,
            opt("display_name", "string"),
            opt("about", "string"),
            opt("avatar", "string"),
        ],
        send: [
            id,
            opt("conv", "string"),
            opt("to", "string"),
            req("client_id", "string"),
            opt("rel", REL),
            vec("mentions", { list: "string" }),
            vec("media", { list: "string" }),
            req("content", CONTENT),
        ],
        history: [id, req("conv", "string"), opt("before", "u64"), opt("limit", "u32")],
        sync: [id, opt("limit", "u32")],
        ack: [id, req("conv", "string"), req("seq", "u64")],
        read: [id, req("conv", "string"), req("seq", "u64")],
        typing: [id, req("conv", "string"), req("typing", "bool")],
        receipts: [id, req("conv", "string"), opt("since", millis)],
        focus: [id, opt("conv", "string")],
        conversations: [id, opt("list", { oneOf: CONVERSATION_LISTS }), opt("after", "string"), opt("limit", "u32")],
        ping: [id],
        open_direct: [id, req("user", "string"), flag("encrypted")],
        create_group: [
            id,
            req("title", "string"),
            opt("description", "string"),
            opt("avatar", "string"),
            always("members", { list: "string" }),
            flag("encrypted"),
        ],
        get_conversation: [id, req("conv", "string")],
        update_group: [
            id,
            req("conv", "string"),
            opt("title", "string"),
            opt("description", "string"),
            opt("avatar", "string"),
            opt("history_visible", "bool"),
        ],
        add_members: [id, req("conv", "string"), req("users", { list: "string" })],
        remove_member: [id, req("conv", "string"), req("user", "string")],
        leave: [id, req("conv", "string")],
        set_role: [id, req("conv", "string"), req("user", "string"), req("role", ROLE)],
        create_invite: [id, req("conv", "string")],
        revoke_invite: [id, req("conv", "string")],
        join: [id, req("token", "string")],
        mute: [id, req("conv", "string"), opt("until", millis)],
        unmute: [id, req("conv", "string")],
        contact: [id, req("user", "string"), req("action", { oneOf: CONTACT_ACTIONS })],
        block: [id, req("user", "string")],
        unblock: [id, req("user", "string")],
        contacts: [id, req("list", { oneOf: CONTACT_LISTS }), opt("after", "string"), opt("limit", "u32")],
        set_privacy: [
            id,
            opt("direct", AUDIENCE),
            opt("groups", AUDIENCE),
            opt("presence", AUDIENCE),
            opt("read_receipts", "bool"),
        ],
        accept: [id, req("conv", "string")],
        decline: [id, req("conv", "string")],
        report: [id, req("user", "string"), opt("conv", "string"), opt("reason", "string")],
        upload_keys: [
            id,
            opt("device_keys", IDENTITY_KEYS),
            vec("one_time_keys", { list: SIGNED_KEY }),
            opt("fallback_key", SIGNED_KEY),
            opt("master_key", MASTER_KEY_INFO),
            vec("signatures", { list: DEVICE_SIGNATURE }),
        ],
        query_keys: [id, req("users", { list: "string" }), opt("conv", "string")],
        claim_keys: [id, req("devices", { list: DEVICE_REF }), opt("conv", "string")],
        send_to_device: [id, req("kind", "string"), req("messages", { list: OUTGOING_TO_DEVICE }), opt("conv", "string")],
        ack_to_device: [id, req("messages", { list: TO_DEVICE_ACK })],
        encrypt: [id, req("conv", "string")],
        set_timer: [id, req("conv", "string"), opt("expire_after", millis)],
        create_backup: [id, req("algorithm", "string"), req("auth_data", "string")],
        get_backup: [id],
        update_backup: [id, req("version", "string"), req("auth_data", "string")],
        delete_backup: [id, req("version", "string")],
        put_backup_keys: [id, req("version", "string"), req("keys", { list: BACKUP_KEY_INFO })],
        get_backup_keys: [id, req("version", "string"), opt("after", BACKUP_KEY_REF), opt("limit", "u32")],
        call_invite: [id, req("call", "string"), req("conv", "string"), req("media", CALL_MEDIA_KIND), req("signal", CALL_SIGNAL)],
        call_ringing: [id, req("call", "string")],
        call_answer: [id, req("call", "string"), req("signal", CALL_SIGNAL)],
        call_candidates: [id, req("call", "string"), req("signal", CALL_SIGNAL)],
        call_hangup: [id, req("call", "string"), req("reason", { oneOf: HANGUP_REASONS })],
        ice_servers: [id],
    },
};
const SERVER_FRAME = {
    tagged: "type",
    variants: {
        welcome: [id, req("version", "u32"), req("server", "string"), req("time", millis)],
        session: [
            id,
            req("user", "string"),
            req("device", "string"),
            opt("token", "string"),
            req("expires_at", millis),
            req("profile", PROFILE),
            req("privacy", PRIVACY),
            req("keys", KEY_COUNTS),
        ],
        ok: [id],
        device_list: [id, req("devices", { list: DEVICE_INFO })],
        devices_changed: [req("user", "string")],
        users: [id, req("users", { list: DIRECTORY_ENTRY }), opt("next", "string")],
        profile: [id, req("entry", DIRECTORY_ENTRY)],
        sent: [
            id,
            req("message_id", "string"),
            req("conv", "string"),
            req("seq", "u64"),
            req("ts", millis),
            req("duplicate", "bool"),
            opt("expires_at", millis),
        ],
        messages: [id, req("conv", "string"), req("messages", { list: MESSAGE }), req("more", "bool"), vec("related", { list: MESSAGE })],
        synced: [id, req("messages", { list: MESSAGE }), req("more", "bool")],
        conversations: [id, req("conversations", { list: CONVERSATION_SUMMARY }), opt("next", "string")],
        conversation: [id, req("conversation", CONVERSATION_INFO)],
        changed: [id, req("conv", "string"), req("seq", "u64"), vec("invited", { list: "string" })],
        invite: [id, req("conv", "string"), req("token", "string")],
        pong: [id],
        error: [
            opt("id", "u32"),
            req("code", { oneOf: ERROR_CODES }),
            req("message", "string"),
            opt("field", "string"),
            vec("violations", { list: "string" }),
            opt("retry_after_ms", "u64"),
        ],
        message: [req("message", MESSAGE)],
        presence: [req("presence", PRESENCE)],
        alert: [
            req("conv", "string"),
            req("from", "string"),
            req("message_id", "string"),
            req("seq", "u64"),
        ],
        read: [req("conv", "string"), req("seq", "u64")],
        typing: [req("conv", "string"), req("user", "string"), req("typing", "bool"), req("ttl_ms", "u32")],
        receipts: [id, req("conv", "string"), req("receipts", { list: RECEIPT_INFO }), req("until", millis)],
        receipt: [req("conv", "string"), req("user", "string"), req("delivered", "u64"), req("read", "u64")],
        profile_changed: [req("profile", PROFILE)],
        new_user: [req("entry", DIRECTORY_ENTRY)],
        contact: [opt("id", "u32"), req("contact", CONTACT_INFO)],
        contacts: [id, req("contacts", { list: CONTACT_INFO }), opt("next", "string")],
        privacy: [opt("id", "u32"), req("privacy", PRIVACY)],
        invited: [req("conversation", CONVERSATION_SUMMARY)],
        answered: [req("conv", "string"), req("accepted", "bool")],
        key_counts: [opt("id", "u32"), req("one_time", "u32"), req("fallback_unused", "bool")],
        to_device_sent: [id, req("queued", "u32"), vec("undelivered", { list: UNDELIVERED })],
        to_device: [req("messages", { list: TO_DEVICE_MESSAGE })],
        device_keys: [id, req("devices", { list: DEVICE_KEYS_INFO }), vec("master_keys", { list: USER_MASTER_KEY })],
        claimed_keys: [id, req("keys", { list: CLAIMED_KEY })],
        backup: [id, req("backup", BACKUP_INFO)],
        backup_keys: [id, req("keys", { list: BACKUP_KEY_INFO }), req("more", "bool")],
        ice_servers: [id, req("servers", { list: ICE_SERVER }), opt("expires_at", millis)],
        call_state: [opt("id", "u32"), req("call", CALL_INFO)],
        call_signal: [
            req("call", "string"),
            req("device", "string"),
            opt("sdp", "string"),
            vec("candidates", { list: ICE_CANDIDATE }),
            opt("sealed", "string"),
        ],
    },
};
function isPlainObject(v) {
    return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function fail(path, what) {
    throw new ProtocolError(`${path || "frame"}: ${what}`);
}
function canonFields(obj, fields, out, path, skip) {
    const known = new Set(fields.map((f) => f.name));
    for (const key of Object.keys(obj)) {
        if (key !== skip && !known.has(key))
            fail(path, `unknown field \`${key}\``);
    }
    for (const f of fields) {
        const v = obj[f.name];
        const at = path ? `${path}.${f.name}` : f.name;
        if (v === undefined || v === null) {
            if (f.mode === "required" || (v === null && f.mode !== "optional"))
                fail(at, v === null ? "must not be null" : "missing");
            if (f.mode === "defaulted")
                out[f.name] = [];
            continue;
        }
        const c = canon(v, f.kind, at);
        if (f.mode === "nonempty" && Array.isArray(c) && c.length === 0)
            continue;
        if ((f.mode === "flag" && c === false) || (f.mode === "on" && c === true))
            continue;
        out[f.name] = c;
    }
}
function canon(v, kind, path) {
    switch (kind) {
        case "string":
            if (typeof v !== "string")
                fail(path, "expected a string");
            return v;
        case "bool":
            if (typeof v !== "boolean")
                fail(path, "expected a boolean");
            return v;
        case "u32":
        case "u64":
        case "i64": {
            // MessagePack decoders may hand out bigints for 64-bit values.
            const n = typeof v === "bigint" && v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
            if (typeof n !== "number" || !Number.isSafeInteger(n))
                fail(path, "expected an integer (|n| < 2^53)");
            if (kind !== "i64" && n < 0)
                fail(path, "expected an unsigned integer");
            if (kind === "u32" && n > 0xffff_ffff)
                fail(path, "expected a u32");
            return n;
        }
    }
    if ("list" in kind) {
        if (!Array.isArray(v))
            fail(path, "expected an array");
        return v.map((item, i) => canon(item, kind.list, `${path}[${i}]`));
    }
    if ("oneOf" in kind) {
        if (typeof v !== "string" || !kind.oneOf.includes(v))
            fail(path, `unknown value ${JSON.stringify(v)}`);
        return v;
    }
    if (!isPlainObject(v))
        fail(path, "expected a map");
    if ("struct" in kind) {
        const out = {};
        canonFields(v, kind.struct, out, path);
        return out;
    }
    const tag = v[kind.tagged];
    if (typeof tag !== "string")
        fail(path, `missing \`${kind.tagged}\``);
    const fields = Object.prototype.hasOwnProperty.call(kind.variants, tag) ? kind.variants[tag] : undefined;
    if (!fields)
        fail(path, `unknown ${kind.tagged} \`${tag}\``);
    const out = { [kind.tagged]: tag };
    canonFields(v, fields, out, path, kind.tagged);
    return out;
}
/**
 * The canonical form of a client frame: a new object with the fields in wire
 * order, absent optionals dropped. Throws {@link ProtocolError} when the value
 * is not a valid client frame.
 */
export function canonicalClientFrame(frame) {
    return canon(frame, CLIENT_FRAME, "");
}
/** The canonical form of a content (as a decrypted one is checked); see {@link canonicalClientFrame}. */
export function canonicalContent(content) {
    return canon(content, CONTENT, "content");
}
/** The canonical form of a server frame; see {@link canonicalClientFrame}. */
export function canonicalServerFrame(frame) {
    return canon(frame, SERVER_FRAME, "");
}
/** Every client frame type. */
export const CLIENT_FRAME_TYPES = Object.keys(CLIENT_FRAME.variants);
/** Every server frame type. */
export const SERVER_FRAME_TYPES = Object.keys(SERVER_FRAME.variants);
/** Request types allowed before signing in (PROTOCOL.md, *Lifecycle*). */
export const SIGNED_OUT_TYPES = new Set([
    "hello",
    "register",
    "login",
    "resume",
    "reset_request",
    "reset_confirm",
    "ping",
]);
