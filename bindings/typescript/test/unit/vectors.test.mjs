// Every frame of tests/vectors/frames.json (written by the Rust types) must
// decode, in both codecs, to the same frame, and re-encode to exactly the same
// bytes. When the Rust protocol changes and this binding does not, this fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  CLIENT_FRAME_TYPES,
  SERVER_FRAME_TYPES,
  PROTOCOL_VERSION,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  jsonCodec,
  msgpackCodec,
} from "../../dist/index.js";

const vectorsUrl = new URL("../../../../tests/vectors/frames.json", import.meta.url);
const file = JSON.parse(readFileSync(vectorsUrl, "utf8"));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const codecs = {
  client: { decode: decodeClientFrame, encode: encodeClientFrame },
  server: { decode: decodeServerFrame, encode: encodeServerFrame },
};

test("the vectors are for the protocol version this binding speaks", () => {
  assert.equal(file.protocol_version, PROTOCOL_VERSION);
});

test("there is a vector for every frame type, and a frame type for every vector", () => {
  const byDirection = { client: new Set(), server: new Set() };
  for (const v of file.vectors) byDirection[v.direction].add(v.type);
  assert.deepEqual([...byDirection.client].sort(), [...CLIENT_FRAME_TYPES].sort());
  assert.deepEqual([...byDirection.server].sort(), [...SERVER_FRAME_TYPES].sort());
});

for (const v of file.vectors) {
  test(`vector ${v.name}`, () => {
    const { decode, encode } = codecs[v.direction];
    const fromJson = decode(jsonCodec, v.json);
    const fromMsgpack = decode(msgpackCodec, Buffer.from(v.msgpack, "hex"));
    assert.equal(fromJson.type, v.type);
    assert.deepEqual(fromMsgpack, fromJson, "both encodings decode to the same frame");
    assert.equal(encode(jsonCodec, fromJson), v.json, "JSON re-encodes byte for byte");
    assert.equal(hex(encode(msgpackCodec, fromMsgpack)), v.msgpack, "MessagePack re-encodes byte for byte");
    // Cross: a frame decoded from one codec encodes to the other's bytes.
    assert.equal(hex(encode(msgpackCodec, fromJson)), v.msgpack);
    assert.equal(encode(jsonCodec, fromMsgpack), v.json);
  });
}

test("field order and omitted optionals do not depend on how the frame was built", () => {
  const vector = file.vectors.find((v) => v.name === "server/error");
  const frame = JSON.parse(vector.json);
  const shuffled = Object.fromEntries(Object.entries(frame).reverse());
  shuffled.retry_after_ms = undefined; // absent optional
  assert.equal(hex(encodeServerFrame(msgpackCodec, shuffled)), vector.msgpack);
  assert.equal(encodeServerFrame(jsonCodec, shuffled), vector.json);
  // null for an optional field is accepted on input and omitted on output.
  const send = JSON.parse(file.vectors.find((v) => v.name === "client/hello").json);
  assert.equal(encodeClientFrame(jsonCodec, { ...send, client: null }), `{"type":"hello","id":1,"version":${send.version}}`);
});

test("absent optional fields are omitted, never written as null (PROTOCOL.md)", () => {
  const presence = { type: "presence", presence: { user: "u", online: true, last_seen: null } };
  assert.equal(encodeServerFrame(jsonCodec, presence), '{"type":"presence","presence":{"user":"u","online":true}}');
  const profile = { user: "u", username: "u", display_name: "U", about: "" };
  const entry = { type: "profile", id: 1, entry: { profile, presence: presence.presence } };
  assert.ok(!encodeServerFrame(jsonCodec, entry).includes("avatar"));
});

test("`contact` and `privacy` are pushes without `id` (the vectors hold only the replies)", () => {
  for (const name of ["server/contact", "server/privacy"]) {
    const vector = file.vectors.find((v) => v.name === name);
    const { id: _id, ...push } = JSON.parse(vector.json);
    const text = encodeServerFrame(jsonCodec, push);
    assert.equal(text, vector.json.replace(/"id":\d+,/, ""));
    assert.deepEqual(decodeServerFrame(jsonCodec, text), push);
    assert.deepEqual(decodeServerFrame(msgpackCodec, encodeServerFrame(msgpackCodec, push)), push);
  }
});

test("integers take the smallest MessagePack format, like rmp-serde", () => {
  const cases = [
    [0, "00"],
    [127, "7f"],
    [128, "cc80"],
    [255, "ccff"],
    [256, "cd0100"],
    [65535, "cdffff"],
    [65536, "ce00010000"],
    [2 ** 32 - 1, "ceffffffff"],
    [2 ** 32, "cf0000000100000000"],
    [1732540800000, "cf00000193637a9c00"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
  ];
  for (const [n, want] of cases) {
    const bytes = hex(encodeClientFrame(msgpackCodec, { type: "ack", id: 1, conv: "c", seq: n }));
    assert.ok(bytes.endsWith("a3736571" + want), `${n}: ${bytes}`);
    const back = decodeClientFrame(msgpackCodec, Buffer.from(bytes, "hex"));
    assert.equal(back.seq, n);
  }
});

test("frames that break the schema are refused", () => {
  const bad = [
    '{"type":"welcome","id":1,"version":1,"server":"x","time":1,"extra":1}',
    '{"type":"nonsense","id":1}',
    '{"type":"ok"}',
    '{"type":"ok","id":-1}',
    '{"type":"ok","id":4294967296}',
    '{"type":"error","id":1,"code":"no_such_code","message":"x"}',
    '{"type":"sent","id":1,"message_id":"m","conv":"c","seq":1.5,"ts":1,"duplicate":false}',
    '{"type":"privacy","privacy":{"direct":"everyone","presence":"friends"}}',
    '{"type":"privacy","id":1,"privacy":{"direct":"everyone"}}',
    "[1,2]",
    "not json",
  ];
  for (const text of bad) assert.throws(() => decodeServerFrame(jsonCodec, text), { name: "ProtocolError" }, text);
  assert.throws(() => decodeServerFrame(msgpackCodec, Uint8Array.of(0xc1)), { name: "ProtocolError" });
  assert.throws(() => encodeClientFrame(jsonCodec, { type: "send", id: 1, to: "u" }), { name: "ProtocolError" });
});
