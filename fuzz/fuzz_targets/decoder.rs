//! The request decoder on arbitrary bytes in arbitrary reads: it never panics, never consumes
//! more than it was given, and finds exactly the frames (and the error, if any) that one
//! decode of the whole input finds.
#![no_main]

use bytes::{Bytes, BytesMut};
use cache_protocol::decode::MAX_INLINE_LEN;
use cache_protocol::{Decoder, Limits};
use libfuzzer_sys::fuzz_target;

mod common;

/// Small limits so the fuzzer reaches them; the defaults are exercised by the unit tests.
const LIMITS: Limits = Limits {
    max_bulk_len: 1024,
    max_multibulk_len: 64,
    max_query_len: 64 * 1024,
    unauthenticated: false,
};

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Vec<Bytes>>,
    error: Option<String>,
    /// What is still buffered at the end: the unparsed tail.
    left: Vec<u8>,
}

/// Decodes what `buf` holds until it needs more or fails. Returns false after an error.
fn drain(decoder: &mut Decoder, buf: &mut BytesMut, out: &mut Outcome) -> bool {
    loop {
        let before = buf.len();
        let result = decoder.decode(buf);
        assert!(buf.len() <= before, "the decoder grew its input");
        let _ = decoder.bytes_needed(buf);
        match result {
            Ok(Some(frame)) => {
                // (Inline requests have no argument-count limit, as in Redis: only their
                // line length is bounded.)
                assert!(!frame.is_empty(), "a frame without arguments");
                out.frames.push(frame);
            }
            Ok(None) => return true,
            Err(e) => {
                out.error = Some(e.to_string());
                return false;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Past MAX_INLINE_LEN the outcome legitimately depends on the reads (Redis's too): a long
    // line is refused only if its end has not arrived yet.
    if data.len() >= MAX_INLINE_LEN {
        return;
    }
    let mut whole = Outcome {
        frames: Vec::new(),
        error: None,
        left: Vec::new(),
    };
    let mut buf = BytesMut::from(data);
    drain(&mut Decoder::new(LIMITS), &mut buf, &mut whole);
    whole.left = buf.to_vec();

    let mut pieces = Outcome {
        frames: Vec::new(),
        error: None,
        left: Vec::new(),
    };
    let mut decoder = Decoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut given = 0usize;
    let mut consumed = 0usize;
    for chunk in common::chunks(data, 512) {
        buf.extend_from_slice(chunk);
        given += chunk.len();
        let before = buf.len();
        let ok = drain(&mut decoder, &mut buf, &mut pieces);
        consumed += before - buf.len();
        assert!(consumed <= given, "consumed {consumed} of {given} bytes");
        // Every frame's arguments are bytes that were given, in order.
        let args: usize = pieces.frames.iter().flatten().map(Bytes::len).sum();
        assert!(args <= consumed);
        if !ok {
            break;
        }
    }
    pieces.left = buf.to_vec();
    if whole.error.is_some() {
        // After an error the rest of the input is never looked at: compare up to it.
        pieces.left.clear();
        whole.left.clear();
    }
    assert_eq!(
        pieces, whole,
        "reads of the input disagree with decoding it whole"
    );
});
