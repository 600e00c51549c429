/**
 * MessagePack, without a dependency: the codec of `chatcore.v1.msgpack` (the
 * protocol's default) and of the end-to-end payloads (e2e/formats.ts), small
 * enough for browsers to load without a bundler.
 *
 * Byte-compatibility with rmp-serde (`to_vec_named`): maps with string keys
 * in the order the object has them (the canonical field order); integers in
 * their smallest format, non-negative ones unsigned as rmp's `write_sint`
 * does; strings as fixstr/str8/str16/str32 by length; `null` as nil;
 * `Uint8Array` as bin; `undefined` fields left out. Numbers are integers
 * below 2^53 throughout the protocol; any other number is written as a
 * float64 so that nothing is lost silently.
 *
 * Decoding reads every format but ext (refused) and checks each length
 * against the bytes left before it allocates; maps become plain objects
 * (a `__proto__` key is refused), bin becomes a `Uint8Array` of its own, 64-bit
 * integers beyond 2^53 are refused rather than rounded, and nesting deeper
 * than {@link MAX_DEPTH} is refused, so no input can exhaust the stack.
 *
 * @module
 */
import { SUBPROTOCOL_MSGPACK } from "./protocol.js";
/** The deepest nesting of maps and arrays that {@link decodeMsgpack} reads. */
export const MAX_DEPTH = 64;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
class Writer {
    buf = new Uint8Array(256);
    view = new DataView(this.buf.buffer);
    pos = 0;
    room(n) {
        if (this.pos + n <= this.buf.length)
            return;
        let size = this.buf.length * 2;
        while (size < this.pos + n)
            size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(0, this.pos));
        this.buf = next;
        this.view = new DataView(next.buffer);
    }
    u8(b) {
        this.room(1);
        this.buf[this.pos++] = b;
    }
    head(tag, size, n) {
        this.room(1 + size);
        this.buf[this.pos++] = tag;
        if (size === 1)
            this.view.setUint8(this.pos, n);
        else if (size === 2)
            this.view.setUint16(this.pos, n);
        else
            this.view.setUint32(this.pos, n);
        this.pos += size;
    }
    bytes(b) {
        this.room(b.length);
        this.buf.set(b, this.pos);
        this.pos += b.length;
    }
    int(n) {
        if (n >= 0) {
            if (n < 0x80)
                this.u8(n);
            else if (n < 0x100)
                this.head(0xcc, 1, n);
            else if (n < 0x10000)
                this.head(0xcd, 2, n);
            else if (n < 0x100000000)
                this.head(0xce, 4, n);
            else {
                this.room(9);
                this.buf[this.pos++] = 0xcf;
                this.view.setBigUint64(this.pos, BigInt(n));
                this.pos += 8;
            }
        }
        else if (n >= -32)
            this.u8(n & 0xff);
        else if (n >= -0x80) {
            this.room(2);
            this.buf[this.pos++] = 0xd0;
            this.view.setInt8(this.pos++, n);
        }
        else if (n >= -0x8000) {
            this.room(3);
            this.buf[this.pos++] = 0xd1;
            this.view.setInt16(this.pos, n);
            this.pos += 2;
        }
        else if (n >= -0x80000000) {
            this.room(5);
            this.buf[this.pos++] = 0xd2;
            this.view.setInt32(this.pos, n);
            this.pos += 4;
        }
        else {
            this.room(9);
            this.buf[this.pos++] = 0xd3;
            this.view.setBigInt64(this.pos, BigInt(n));
            this.pos += 8;
        }
    }
    float(n) {
        this.room(9);
        this.buf[this.pos++] = 0xcb;
        this.view.setFloat64(this.pos, n);
        this.pos += 8;
    }
    str(s) {
        const b = utf8Encoder.encode(s);
        const n = b.length;
        if (n < 32)
            this.u8(0xa0 | n);
        else if (n < 0x100)
            this.head(0xd9, 1, n);
        else if (n < 0x10000)
            this.head(0xda, 2, n);
        else
            this.head(0xdb, 4, n);
        this.bytes(b);
    }
    bin(b) {
        const n = b.length;
        if (n < 0x100)
            this.head(0xc4, 1, n);
        else if (n < 0x10000)
            this.head(0xc5, 2, n);
        else
            this.head(0xc6, 4, n);
        this.bytes(b);
    }
    /** The head of an array (`fix` 0x90) or a map (`fix` 0x80) of `n` entries. */
    container(fix, n) {
        const wide = fix === 0x90 ? 0xdc : 0xde;
        if (n < 16)
            this.u8(fix | n);
        else if (n < 0x10000)
            this.head(wide, 2, n);
        else
            this.head(wide + 1, 4, n);
    }
    value(v, depth) {
        if (depth > MAX_DEPTH)
            throw new TypeError(`nested deeper than ${MAX_DEPTH}`);
        if (v === null || v === undefined)
            this.u8(0xc0);
        else if (v === false)
            this.u8(0xc2);
        else if (v === true)
            this.u8(0xc3);
        else if (typeof v === "number") {
            if (Number.isSafeInteger(v))
                this.int(v);
            else
                this.float(v);
        }
        else if (typeof v === "string")
            this.str(v);
        else if (v instanceof Uint8Array)
            this.bin(v);
        else if (Array.isArray(v)) {
            this.container(0x90, v.length);
            for (const item of v)
                this.value(item, depth + 1);
        }
        else if (typeof v === "object") {
            const entries = Object.entries(v).filter(([, x]) => x !== undefined);
            this.container(0x80, entries.length);
            for (const [k, x] of entries) {
                this.str(k);
                this.value(x, depth + 1);
            }
        }
        else
            throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
    }
    done() {
        return this.buf.slice(0, this.pos);
    }
}
/** MessagePack of `value` (see the module documentation for the formats chosen). Throws a `TypeError` on what has none (functions, symbols, bigints). */
export function encodeMsgpack(value) {
    const w = new Writer();
    w.value(value, 0);
    return w.done();
}
class Reader {
    buf;
    pos = 0;
    view;
    constructor(buf) {
        this.buf = buf;
        this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    need(n) {
        if (n > this.buf.length - this.pos)
            throw new RangeError(`truncated at byte ${this.pos}: ${n} more wanted`);
        const at = this.pos;
        this.pos += n;
        return at;
    }
    uint(size) {
        const at = this.need(size);
        return size === 1 ? this.view.getUint8(at) : size === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
    }
    big(signed) {
        const at = this.need(8);
        const n = signed ? this.view.getBigInt64(at) : this.view.getBigUint64(at);
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
            throw new RangeError(`a 64-bit integer beyond 2^53 at byte ${at}`);
        }
        return Number(n);
    }
    str(n) {
        const at = this.need(n);
        return utf8Decoder.decode(this.buf.subarray(at, at + n));
    }
    bin(n) {
        const at = this.need(n);
        // A copy, and a plain Uint8Array even when the input is a Node Buffer (whose `slice` is a view).
        return new Uint8Array(this.buf.subarray(at, at + n));
    }
    array(n, depth) {
        // Each entry takes at least one byte: a length beyond what is left is a lie.
        if (n > this.buf.length - this.pos)
            throw new RangeError(`an array of ${n} in ${this.buf.length - this.pos} bytes`);
        const out = new Array(n);
        for (let i = 0; i < n; i++)
            out[i] = this.value(depth + 1);
        return out;
    }
    map(n, depth) {
        if (n * 2 > this.buf.length - this.pos)
            throw new RangeError(`a map of ${n} in ${this.buf.length - this.pos} bytes`);
        const out = {};
        for (let i = 0; i < n; i++) {
            const key = this.value(depth + 1);
            if (typeof key !== "string" && typeof key !== "number")
                throw new TypeError("a map key that is not a string or number");
            const name = String(key);
            if (name === "__proto__")
                throw new TypeError("a map key __proto__");
            out[name] = this.value(depth + 1);
        }
        return out;
    }
    value(depth) {
        if (depth > MAX_DEPTH)
            throw new RangeError(`nested deeper than ${MAX_DEPTH}`);
        const b = this.buf[this.need(1)];
        if (b < 0x80)
            return b;
        if (b < 0x90)
            return this.map(b & 0x0f, depth);
        if (b < 0xa0)
            return this.array(b & 0x0f, depth);
        if (b < 0xc0)
            return this.str(b & 0x1f);
        if (b >= 0xe0)
            return b - 0x100;
        switch (b) {
            case 0xc0:
                return null;
            case 0xc2:
                return false;
            case 0xc3:
                return true;
            case 0xc4:
                return this.bin(this.uint(1));
            case 0xc5:
                return this.bin(this.uint(2));
            case 0xc6:
                return this.bin(this.uint(4));
            case 0xca:
                return this.view.getFloat32(this.need(4));
            case 0xcb:
                return this.view.getFloat64(this.need(8));
            case 0xcc:
                return this.uint(1);
            case 0xcd:
                return this.uint(2);
            case 0xce:
                return this.uint(4);
            case 0xcf:
                return this.big(false);
            case 0xd0:
                return this.view.getInt8(this.need(1));
            case 0xd1:
                return this.view.getInt16(this.need(2));
            case 0xd2:
                return this.view.getInt32(this.need(4));
            case 0xd3:
                return this.big(true);
            case 0xd9:
                return this.str(this.uint(1));
            case 0xda:
                return this.str(this.uint(2));
            case 0xdb:
                return this.str(this.uint(4));
            case 0xdc:
                return this.array(this.uint(2), depth);
            case 0xdd:
                return this.array(this.uint(4), depth);
            case 0xde:
                return this.map(this.uint(2), depth);
            case 0xdf:
                return this.map(this.uint(4), depth);
            default:
                // 0xc1 (never used), ext and fixext (0xc7-0xc9, 0xd4-0xd8): nothing of ours uses them.
                throw new TypeError(`unsupported MessagePack type 0x${b.toString(16)} at byte ${this.pos - 1}`);
        }
    }
    end() {
        if (this.pos !== this.buf.length)
            throw new RangeError(`${this.buf.length - this.pos} bytes after the value`);
    }
}
/** Decodes one MessagePack value that fills `bytes` exactly; throws (`TypeError` or `RangeError`) on anything else. */
export function decodeMsgpack(bytes) {
    const r = new Reader(bytes);
    const value = r.value(0);
    r.end();
    return value;
}
/** MessagePack, sent as binary messages. */
export const msgpackCodec = {
    name: "msgpack",
    subprotocol: SUBPROTOCOL_MSGPACK,
    binary: true,
    write(value) {
        return encodeMsgpack(value);
    },
    read(data) {
        if (typeof data === "string")
            throw new TypeError("a MessagePack frame must be a binary message");
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        return decodeMsgpack(bytes);
    },
};
