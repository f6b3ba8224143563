//! Property tests for the request decoder.
//!
//! `redis-protocol` is the oracle for RESP2 framing: commands are encoded with its encoder, and
//! its decoder must agree with ours on where every frame ends and what it holds. The remaining
//! properties check what no oracle covers: arbitrary input never panics and never makes us
//! buffer more than the limits allow, chunking never changes the outcome, and inline requests
//! split the way `sdssplitargs` does.

use bytes::{Bytes, BytesMut};
use cache_protocol::decode::{split_args, MAX_INLINE_LEN};
use cache_protocol::{Decoder, Limits, ProtocolError};
use proptest::collection::vec;
use proptest::prelude::*;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;

type Frame = Vec<Bytes>;

const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// A byte, biased towards the ones that mean something to a RESP parser.
fn wire_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => any::<u8>(),
        1 => prop::sample::select(&b"\r\n*$0123456789-\"' \\"[..]),
    ]
}

/// One command: 1..20 arguments of 0..max_len arbitrary bytes.
fn command_with(max_args: usize, max_len: usize) -> impl Strategy<Value = Frame> {
    vec(
        vec(wire_byte(), 0..max_len).prop_map(Bytes::from),
        1..max_args,
    )
}

fn command() -> impl Strategy<Value = Frame> {
    command_with(20, 300)
}

/// Chunk sizes for feeding a buffer piecemeal; cycled when the input is longer than their sum.
/// Either all 1-byte chunks, or a mix biased towards tiny ones.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1]),
        4 => vec(
            prop_oneof![4 => 1usize..=4, 3 => 1usize..=64, 2 => 1usize..=4096],
            1..16
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Encodes commands as RESP2 arrays of bulk strings with `redis-protocol`'s encoder.
fn encode(commands: &[Frame]) -> BytesMut {
    let mut buf = BytesMut::new();
    for command in commands {
        let frame = BytesFrame::Array(
            command
                .iter()
                .cloned()
                .map(BytesFrame::BulkString)
                .collect(),
        );
        extend_encode(&mut buf, &frame).expect("redis-protocol encodes any array of bulk strings");
    }
    buf
}

/// Decodes `wire` with `redis-protocol`, returning each frame and the offset where it ends.
fn oracle_decode(wire: &[u8]) -> Result<Vec<(Frame, usize)>, TestCaseError> {
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    let mut offset = 0;
    while !buf.is_empty() {
        let decoded = decode_bytes_mut(&mut buf).map_err(|e| {
            TestCaseError::fail(format!("redis-protocol rejected the input: {e:?}"))
        })?;
        let Some((frame, amt, _)) = decoded else {
            return Err(TestCaseError::fail("redis-protocol wants more input"));
        };
        offset += amt;
        let BytesFrame::Array(items) = frame else {
            return Err(TestCaseError::fail(format!("not an array: {frame:?}")));
        };
        let args = items
            .into_iter()
            .map(|item| match item {
                BytesFrame::BulkString(b) => Ok(b),
                other => Err(TestCaseError::fail(format!("not a bulk string: {other:?}"))),
            })
            .collect::<Result<Frame, _>>()?;
        out.push((args, offset));
    }
    Ok(out)
}

/// Drains every complete request from `buf`.
fn drain(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    frames: &mut Vec<Frame>,
) -> Result<(), ProtocolError> {
    while let Some(frame) = decoder.decode(buf)? {
        frames.push(frame);
    }
    Ok(())
}

/// What feeding an input in chunks produced: the frames, then either the error that stopped the
/// decoder or the bytes it left buffered.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    end: Result<BytesMut, ProtocolError>,
}

/// Feeds `input` to a fresh decoder in chunks of `sizes` (cycled), draining after each chunk.
/// `check` runs after every drain that asked for more input, with the decoder, the buffer, the
/// frames so far, how many bytes have been fed, and the size of the last chunk.
fn feed(
    limits: Limits,
    input: &[u8],
    sizes: &[usize],
    mut check: impl FnMut(&Decoder, &BytesMut, &[Frame], usize, usize) -> Result<(), TestCaseError>,
) -> Result<Outcome, TestCaseError> {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    for &size in sizes.iter().cycle() {
        if fed == input.len() {
            break;
        }
        let chunk = size.max(1).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + chunk]);
        fed += chunk;
        if let Err(e) = drain(&mut decoder, &mut buf, &mut frames) {
            return Ok(Outcome {
                frames,
                end: Err(e),
            });
        }
        check(&decoder, &buf, &frames, fed, chunk)?;
    }
    Ok(Outcome {
        frames,
        end: Ok(buf),
    })
}

fn no_check(
    _: &Decoder,
    _: &BytesMut,
    _: &[Frame],
    _: usize,
    _: usize,
) -> Result<(), TestCaseError> {
    Ok(())
}

fn words_to_frame(words: &[Vec<u8>]) -> Frame {
    words.iter().map(|w| Bytes::copy_from_slice(w)).collect()
}

// ---------------------------------------------------------------------------------------------
// 1 + 2: RESP2 multibulk round trip, whole and in chunks, against redis-protocol
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Several encoded commands in one buffer decode to exactly those commands, in order, and
    /// `redis-protocol`'s own decoder agrees.
    #[test]
    fn multibulk_round_trip(commands in vec(command(), 1..8)) {
        let wire = encode(&commands);

        let oracle: Vec<Frame> = oracle_decode(&wire)?.into_iter().map(|(f, _)| f).collect();
        prop_assert_eq!(&oracle, &commands);

        let mut decoder = Decoder::default();
        let mut buf = wire.clone();
        let mut frames = Vec::new();
        prop_assert_eq!(drain(&mut decoder, &mut buf, &mut frames), Ok(()));
        prop_assert_eq!(&frames, &commands);
        prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    }

    /// The same buffer fed in arbitrary chunks (down to one byte at a time) gives the same
    /// frames, each one exactly when its last byte arrives (no sooner, no later, per the
    /// oracle's frame boundaries), and leaves nothing buffered.
    #[test]
    fn multibulk_in_chunks(commands in vec(command(), 1..8), sizes in chunk_sizes()) {
        let wire = encode(&commands);
        let ends: Vec<usize> = oracle_decode(&wire)?.into_iter().map(|(_, end)| end).collect();

        let outcome = feed(Limits::default(), &wire, &sizes, |decoder, buf, frames, fed, _| {
            let complete = ends.iter().filter(|&&end| end <= fed).count();
            prop_assert_eq!(frames.len(), complete, "frames after {} bytes", fed);
            // All unconsumed bytes belong to the frame in progress.
            let frame_start = if complete == 0 { 0 } else { ends[complete - 1] };
            prop_assert!(buf.len() <= fed - frame_start);
            // The reservation hint never asks for more than the rest of the input.
            prop_assert!(decoder.bytes_needed(buf) <= wire.len() - fed);
            Ok(())
        })?;

        prop_assert_eq!(&outcome.frames, &commands);
        match outcome.end {
            Ok(rest) => prop_assert!(rest.is_empty(), "{} bytes left over", rest.len()),
            Err(e) => prop_assert!(false, "decoder error: {}", e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3: arbitrary input
// ---------------------------------------------------------------------------------------------

const SMALL: Limits = Limits {
    max_bulk_len: 1024,
    max_multibulk_len: 64,
    max_query_len: 64 * 1024,
    unauthenticated: false,
};

/// A `*N` or `$N` header, with or without its CRLF, `N` drawn from values around the limits
/// and from what `string2ll` rejects.
fn header(prefix: char) -> impl Strategy<Value = Vec<u8>> {
    let number = prop_oneof![
        (-3i64..70).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "1023",
            "1024",
            "1025",
            "2147483647",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-0",
            "01",
            "+1",
            " 1",
            "",
            "1a",
        ])
        .prop_map(str::to_string),
    ];
    (number, any::<bool>()).prop_map(move |(n, crlf)| {
        format!("{prefix}{n}{}", if crlf { "\r\n" } else { "" }).into_bytes()
    })
}

/// Garbage built from pieces that steer the decoder into every state: raw bytes, line ends,
/// headers, whole valid requests, inline quoting.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => vec(any::<u8>(), 0..64),
        2 => vec(wire_byte(), 0..64),
        2 => prop::sample::select(vec![
            &b"\r\n"[..], b"\r", b"\n", b"\"", b"'", b"\\x", b"\\", b"*", b"$", b"\0"
        ])
        .prop_map(<[u8]>::to_vec),
        3 => header('*'),
        3 => header('$'),
        2 => command_with(5, 64).prop_map(|c| encode(&[c]).to_vec()),
    ];
    // At most 32 * 5 * ~80 bytes, well under MAX_INLINE_LEN, so no line-length limit can make
    // the outcome depend on how the input was chunked.
    vec(token, 0..32).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Arbitrary input fed in arbitrary chunks never panics; every step yields a non-empty
    /// request, asks for more, or fails. While asking for more, the decoder never holds or asks
    /// to reserve more than a header line or one `max_bulk_len` argument. And chunking changes
    /// nothing: the frames, the error text (or the leftover bytes) are those of feeding the
    /// whole input at once.
    #[test]
    fn garbage_never_panics(input in garbage(), sizes in chunk_sizes()) {
        let chunked = feed(SMALL, &input, &sizes, |decoder, buf, frames, _, _| {
            prop_assert!(frames.iter().all(|f| !f.is_empty()), "empty request returned");
            prop_assert!(buf.len() <= MAX_INLINE_LEN.max(SMALL.max_bulk_len + 1));
            let needed = decoder.bytes_needed(buf);
            if needed > 0 {
                // Inside a bulk payload: what is buffered plus what is still needed is exactly
                // one argument and its CRLF, and that is within the limit.
                prop_assert!(buf.len() + needed <= SMALL.max_bulk_len + 2);
            }
            Ok(())
        })?;
        let whole = feed(SMALL, &input, &[input.len().max(1)], no_check)?;
        prop_assert_eq!(chunked, whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A line with no CRLF is never buffered past `MAX_INLINE_LEN`: once more than that has
    /// arrived the decoder fails with Redis's text, whether the line is an inline request, a
    /// `*` count or a `$` length inside a multibulk, and however it was chunked.
    #[test]
    fn overlong_line_is_an_error(
        kind in 0usize..3,
        pattern in vec(any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'), 1..16),
        extra in 1usize..4096,
        sizes in vec(1usize..=16384, 1..8),
    ) {
        let (prefix, text): (&[u8], &str) = match kind {
            0 => (b"x", "Protocol error: too big inline request"),
            1 => (b"*", "Protocol error: too big mbulk count string"),
            _ => (b"*3\r\n$1\r\na\r\n$", "Protocol error: too big bulk count string"),
        };
        let mut input = prefix.to_vec();
        input.extend(pattern.iter().cycle().take(MAX_INLINE_LEN + extra));
        // What the decoder buffers for this line is everything after the consumed headers.
        let line_start = prefix.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);

        let outcome = feed(SMALL, &input, &sizes, |_, buf, frames, fed, _| {
            prop_assert!(frames.is_empty());
            if fed >= line_start {
                prop_assert_eq!(buf.len(), fed - line_start);
            }
            prop_assert!(buf.len() <= MAX_INLINE_LEN, "{} bytes buffered without a CRLF", buf.len());
            Ok(())
        })?;
        prop_assert!(outcome.frames.is_empty());
        prop_assert_eq!(outcome.end.map_err(|e| e.to_string()), Err(text.to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// 4: inline requests
// ---------------------------------------------------------------------------------------------

/// A word of printable ASCII without spaces or quotes.
fn word() -> impl Strategy<Value = Vec<u8>> {
    let chars: Vec<u8> = (0x21..=0x7e).filter(|&c| c != b'"' && c != b'\'').collect();
    vec(prop::sample::select(chars), 1..16)
}

/// 1..20 words; the first must not start with `*`, which would make the line a multibulk.
fn words() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(word(), 1..20).prop_filter("a leading '*' makes a multibulk", |w| w[0][0] != b'*')
}

/// Quotes `arg` for `sdssplitargs` between double quotes, escaping what must be escaped and,
/// when `hex` is set, every byte as `\xHH`.
fn double_quote(arg: &[u8], hex: bool) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            _ if hex => out.extend(format!("\\x{b:02X}").bytes()),
            b'"' => out.extend(b"\\\""),
            b'\\' => out.extend(b"\\\\"),
            b'\n' => out.extend(b"\\n"),
            b'\r' => out.extend(b"\\r"),
            b'\t' => out.extend(b"\\t"),
            8 => out.extend(b"\\b"),
            7 => out.extend(b"\\a"),
            0x20..=0x7e => out.push(b),
            _ => out.extend(format!("\\x{b:02x}").bytes()),
        }
    }
    out.push(b'"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `words.join(" ") + "\r\n"` decodes to the words, whole or in chunks, alone or as several
    /// pipelined lines.
    #[test]
    fn inline_words(lines in vec(words(), 1..5), sizes in chunk_sizes()) {
        let mut wire = Vec::new();
        for words in &lines {
            let mut line = words.join(&b' ');
            line.extend(b"\r\n");

            let mut decoder = Decoder::default();
            let mut buf = BytesMut::from(&line[..]);
            prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(words_to_frame(words))));
            prop_assert!(buf.is_empty());

            wire.extend(line);
        }
        let expected: Vec<Frame> = lines.iter().map(|w| words_to_frame(w)).collect();
        let outcome = feed(Limits::default(), &wire, &sizes, no_check)?;
        prop_assert_eq!(outcome, Outcome { frames: expected, end: Ok(BytesMut::new()) });
    }

    /// Runs of spaces and tabs between, before and after the words, and a bare `\n` line end,
    /// change nothing.
    #[test]
    fn inline_whitespace(
        words in words(),
        gaps in vec(vec(prop::sample::select(&b" \t"[..]), 1..4), 20),
        lead in vec(prop::sample::select(&b" \t"[..]), 0..3),
        trail in vec(prop::sample::select(&b" \t\r"[..]), 0..3),
        crlf in any::<bool>(),
    ) {
        let mut line = lead;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                line.extend(&gaps[i]);
            }
            line.extend(word);
        }
        line.extend(trail);
        line.extend(if crlf { &b"\r\n"[..] } else { b"\n" });

        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&line[..]);
        prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(words_to_frame(&words))));
        prop_assert!(buf.is_empty());
    }

    /// Any bytes survive double-quoting (named escapes or `\xHH`) through `split_args` and the
    /// decoder's inline path; bytes without `'`, `\`, NUL or a newline survive single-quoting.
    #[test]
    fn inline_quoted_args(
        args in vec((vec(any::<u8>(), 0..40), 0u8..3), 1..10),
    ) {
        let mut line = Vec::new();
        let mut expected = Vec::new();
        for (i, (arg, style)) in args.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            match style {
                0 | 1 => {
                    line.extend(double_quote(arg, *style == 1));
                    expected.push(Bytes::copy_from_slice(arg));
                }
                _ => {
                    // sdssplitargs reads `\'` as a quote and stops at NUL; a newline ends the
                    // inline line before split_args ever sees it.
                    let plain: Vec<u8> = arg
                        .iter()
                        .copied()
                        .filter(|b| !matches!(b, b'\'' | b'\\' | 0 | b'\n'))
                        .collect();
                    line.push(b'\'');
                    line.extend(&plain);
                    line.push(b'\'');
                    expected.push(Bytes::from(plain));
                }
            }
        }
        prop_assert_eq!(split_args(&line), Some(expected.clone()));

        line.extend(b"\r\n");
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&line[..]);
        prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(expected)));
        prop_assert!(buf.is_empty());
    }
}
