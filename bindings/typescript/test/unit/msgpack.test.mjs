// The in-house MessagePack codec (src/msgpack.ts) against @msgpack/msgpack,
// an independent implementation configured as rmp-serde writes: the same
// bytes for every value the protocol can hold, and a clear error, never a
// hang or a crash, for bytes that are not one value.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode as theirEncode, decode as theirDecode } from "@msgpack/msgpack";
import { decodeMsgpack, encodeMsgpack, MAX_DEPTH, msgpackCodec } from "../../dist/index.js";

const theirs = (v) => theirEncode(v, { ignoreUndefined: true, forceIntegerToFloat: false, sortKeys: false });
const hex = (b) => Buffer.from(b).toString("hex");

// A seeded generator, so a failure repeats.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// Lengths and magnitudes at every format boundary.
const EDGES = [0, 1, 15, 16, 31, 32, 127, 128, 255, 256, 65535, 65536];
const INTS = [
  0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
  -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER,
];

function value(r, depth) {
  const pick = Math.floor(r() * (depth > 3 ? 6 : 9));
  const len = () => (r() < 0.2 ? EDGES[Math.floor(r() * EDGES.length)] : Math.floor(r() * 40));
  switch (pick) {
    case 0:
      return INTS[Math.floor(r() * INTS.length)];
    case 1:
      return Math.floor((r() - 0.5) * 2 ** (r() * 53));
    case 2:
      return Array.from("é€😀ab".repeat(len())).slice(0, len()).join("");
    case 3:
      return Uint8Array.from({ length: len() }, () => Math.floor(r() * 256));
    case 4:
      return [null, true, false][Math.floor(r() * 3)];
    case 5:
      return "x".repeat(len());
    case 6:
      return Array.from({ length: Math.floor(r() * 18) }, () => value(r, depth + 1));
    default: {
      const o = {};
      for (let i = Math.floor(r() * 18); i > 0; i--) o[`k${i}_${Math.floor(r() * 1000)}`] = value(r, depth + 1);
      return o;
    }
  }
}

test("every value is written byte for byte as @msgpack/msgpack writes it, and read back equal", () => {
  const r = rng(20261205);
  for (let i = 0; i < 3000; i++) {
    const v = value(r, 0);
    const ours = encodeMsgpack(v);
    assert.equal(hex(ours), hex(theirs(v)), `value ${i}: ${JSON.stringify(v)?.slice(0, 200)}`);
    assert.deepEqual(decodeMsgpack(ours), theirDecode(ours));
    assert.deepEqual(decodeMsgpack(ours), v);
  }
});

test("every length and integer format boundary is the one rmp-serde picks", () => {
  for (const n of INTS) assert.equal(hex(encodeMsgpack(n)), hex(theirs(n)), `integer ${n}`);
  for (const n of [...EDGES, 2 ** 16 + 1]) {
    assert.equal(hex(encodeMsgpack("a".repeat(n))), hex(theirs("a".repeat(n))), `string of ${n}`);
    assert.equal(hex(encodeMsgpack(new Uint8Array(n))), hex(theirs(new Uint8Array(n))), `bin of ${n}`);
    const arr = new Array(n).fill(0);
    assert.equal(hex(encodeMsgpack(arr)), hex(theirs(arr)), `array of ${n}`);
    const map = Object.fromEntries(arr.map((_, i) => [`k${i}`, i]));
    assert.equal(hex(encodeMsgpack(map)), hex(theirs(map)), `map of ${n}`);
  }
  // A lone surrogate (no Rust string has one) is written as U+FFFD, so what leaves is valid UTF-8.
  assert.equal(hex(encodeMsgpack("\ud800")), "a3efbfbd");
  // undefined fields are left out, as the canonical frames need.
  assert.equal(hex(encodeMsgpack({ a: 1, b: undefined })), "81a16101");
  // A number that is not a safe integer is kept as a float64, not rounded to an integer.
  assert.equal(hex(encodeMsgpack(0.5)), "cb3fe0000000000000");
  assert.throws(() => encodeMsgpack(() => 1), TypeError);
  assert.throws(() => encodeMsgpack(1n), TypeError);
});

test("what is not exactly one value is refused with an error, not read in part", () => {
  const bad = {
    "truncated str": "a5616263",
    "truncated bin": "c40a0102",
    "trailing bytes": "0101",
    "never used 0xc1": "c1",
    "ext": "d40100",
    "an array32 of 2^32-1 entries in 3 bytes": "ddffffffff000000",
    "a map16 longer than the bytes left": "de0100a161",
    "a key that is a map": "81800",
    "a __proto__ key": "81a95f5f70726f746f5f5f01",
    "a uint64 beyond 2^53": "cf0020000000000001",
    "an int64 below -2^53": "d3ffdfffffffffffff",
    "invalid UTF-8": "a2c328",
    "empty": "",
  };
  for (const [what, h] of Object.entries(bad)) {
    assert.throws(() => decodeMsgpack(Buffer.from(h, "hex")), (e) => e instanceof TypeError || e instanceof RangeError, what);
  }
  const deep = Buffer.concat([Buffer.alloc(MAX_DEPTH + 1, 0x91), Buffer.of(0x01)]);
  assert.throws(() => decodeMsgpack(deep), RangeError);
  const ok = Buffer.concat([Buffer.alloc(MAX_DEPTH, 0x91), Buffer.of(0x01)]);
  assert.equal(hex(encodeMsgpack(decodeMsgpack(ok))), hex(ok));
  // Floats come back as numbers; bin comes back as bytes of its own (not a view of the frame).
  assert.equal(decodeMsgpack(Buffer.from("ca3f800000", "hex")), 1);
  const frame = Buffer.from("c403010203", "hex");
  const bin = decodeMsgpack(frame);
  frame[2] = 9;
  assert.deepEqual([...bin], [1, 2, 3]);
  assert.throws(() => msgpackCodec.read("text"), TypeError);
});
