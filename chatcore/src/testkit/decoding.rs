//! The differential check of the client-frame decoders, one function shared
//! by the property tests, the replay of the fuzzing corpus
//! (`chatcore/tests/chatcore/codec.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/decode_client_frame.rs`), so that the three never
//! check different things.
//!
//! [`Codec::decode_client`] answers from one of three paths: the
//! hand-written MessagePack reader of `send` frames, the tag-first serde
//! path of the frequent frames, and the derived decoder of [`ClientFrame`].
//! The first two exist only for speed, so whatever the bytes they must
//! either decline or answer exactly what the derived decoder answers. And
//! since every byte of a frame comes from a peer, no decoder may panic, nor
//! hold more heap than the input can justify: a length prefix is a claim,
//! not a measure.
//!
//! ```
//! use chatcore::protocol::{ClientFrame, Codec};
//! use chatcore::testkit::decoding;
//!
//! let ping = Codec::MsgPack.encode(&ClientFrame::Ping { id: 1 }).unwrap();
//! decoding::check(&ping, None).unwrap();
//! // A map header claiming 2^32 - 1 entries, and nothing after it.
//! decoding::check(&[0xdf, 0xff, 0xff, 0xff, 0xff], None).unwrap();
//! ```

use crate::protocol::{decode_msgpack_send, ClientFrame, Codec, ServerFrame};

/// Runs the closure and returns the most heap bytes that the calling thread
/// held at once while it ran, counted from the start of the call.
///
/// Measuring needs a counting global allocator, which only a final binary
/// can install (and `unsafe_code` is forbidden in this workspace), so the
/// test binary and the fuzz target each pass their own; `allocation-counter`
/// provides one: `|f| allocation_counter::measure(f).bytes_max`.
pub type PeakHeap = fn(&mut dyn FnMut()) -> u64;

/// The most heap a decode may hold at once for an input of `len` bytes.
///
/// serde buffers an internally tagged frame (ours, and `Content`) into a
/// tree of its private `Content` values, 32 bytes each, and every value
/// takes at least one input byte. The vector of an array's values grows by
/// doubling past serde's first reservation, so while it moves it holds up
/// to three times the values' bytes: 96 bytes per input byte is what honest
/// decoding can take (measured: 63 for an array of 100,000 one-byte values).
/// A reservation made from a length prefix instead of from the bytes
/// present, 1 MiB for a 5-byte `array 32` header claiming 2^32 - 1 values,
/// is far beyond it.
pub fn heap_allowance(len: usize) -> u64 {
    const FLOOR: u64 = 64 * 1024;
    const PER_INPUT_BYTE: u64 = 96;
    FLOOR.max(PER_INPUT_BYTE.saturating_mul(len as u64))
}

/// Checks every decoding path of `bytes`, as MessagePack and as JSON:
///
/// - the hand-written `send` reader (MessagePack only) and the tag-first
///   path either decline or give the derived decoder's frame;
/// - [`Codec::decode_client`] accepts exactly what the derived decoder
///   accepts, as the same frame;
/// - a frame it accepts encodes again to bytes that decode to that frame;
/// - with `peak_heap`, neither `decode_client` nor decoding a
///   [`ServerFrame`] (what `chatcore-client` does with a server's bytes)
///   holds more than [`heap_allowance`] of heap.
///
/// Returns a description of the first disagreement. A decoder that panics
/// makes this function panic: callers report panics as failures anyway
/// (proptest, libFuzzer, the test harness).
pub fn check(bytes: &[u8], peak_heap: Option<PeakHeap>) -> Result<(), String> {
    for codec in [Codec::MsgPack, Codec::Json] {
        check_codec(codec, bytes, peak_heap)?;
    }
    Ok(())
}

fn check_codec(codec: Codec, bytes: &[u8], peak_heap: Option<PeakHeap>) -> Result<(), String> {
    let derived = codec.decode::<ClientFrame>(bytes).ok();
    if codec == Codec::MsgPack {
        if let Some(hand) = decode_msgpack_send(bytes) {
            if Some(&hand) != derived.as_ref() {
                return Err(format!(
                    "{codec:?}: the hand-written send reader gave {hand:?}, \
                     the derived decoder {derived:?}"
                ));
            }
        }
    }
    if let Some(tag_first) = codec.decode_tag_first(bytes) {
        if Some(&tag_first) != derived.as_ref() {
            return Err(format!(
                "{codec:?}: the tag-first path gave {tag_first:?}, the derived decoder {derived:?}"
            ));
        }
    }
    let client = codec.decode_client(bytes);
    if client.as_ref().ok() != derived.as_ref() {
        return Err(format!(
            "{codec:?}: decode_client gave {client:?}, the derived decoder {derived:?}"
        ));
    }
    if let Some(frame) = &derived {
        let again = codec
            .encode(frame)
            .map_err(|e| format!("{codec:?}: {frame:?} does not encode: {e}"))?;
        let back = codec.decode_client(&again).ok();
        if back.as_ref() != Some(frame) {
            return Err(format!(
                "{codec:?}: {frame:?} re-encoded decodes to {back:?}"
            ));
        }
    }
    if let Some(peak_heap) = peak_heap {
        let allowed = heap_allowance(bytes.len());
        let client = peak_heap(&mut || {
            let _ = std::hint::black_box(codec.decode_client(bytes));
        });
        let server = peak_heap(&mut || {
            let _ = std::hint::black_box(codec.decode::<ServerFrame>(bytes));
        });
        for (what, peak) in [("decode_client", client), ("decode::<ServerFrame>", server)] {
            if peak > allowed {
                return Err(format!(
                    "{codec:?}: {what} held {peak} bytes of heap for {} input bytes \
                     (allowed {allowed})",
                    bytes.len()
                ));
            }
        }
    }
    Ok(())
}
