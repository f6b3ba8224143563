//! The wire: everything about RESP that does not need a socket.
//!
//! ```text
//!  read buffer ──► Decoder ──► Vec<Bytes> args ──► Cmd::lookup ──► (node or proxy)
//!                                                     │
//!  output buffer ◄── ReplyBuf (RESP2 / RESP3) ◄───────┘
//! ```
//!
//! No I/O and no tokio: the decoder works on a `&mut BytesMut` and returns `Ok(None)` when a
//! request is incomplete, remembering what it still needs. The command table in [`command`] is
//! the single source of names, arities, flags and key positions for both binaries.

pub mod admit;
pub mod command;
pub mod decode;
pub mod glob;
pub mod reply;
pub mod scan;

pub use command::{Cmd, CommandSpec, COMMANDS};
pub use decode::{parse_i64, Decoder, Limits, ProtocolError};
pub use reply::{format_double, format_score, Protocol, ReplyBuf};
pub use scan::ReplyScanner;
