//! Every decoding path of a client frame, in both codecs, agrees with the
//! derived decoder, never panics and holds heap in proportion to the input:
//! `chatcore::testkit::decoding::check`, which the stable tests also run
//! over this target's corpus (chatcore/tests/chatcore/codec.rs).

#![no_main]

use chatcore::testkit::decoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Err(e) = decoding::check(bytes, Some(peak_heap)) {
        panic!("{e}");
    }
});

fn peak_heap(f: &mut dyn FnMut()) -> u64 {
    allocation_counter::measure(f).bytes_max
}
