//! One configuration layer for both binaries: a typed table of parameters per binary, and one
//! way of reading them from the command line (`--NAME VALUE...`), TOML files and Redis's own
//! `redis.conf` format, with the same units (`1gb`, `yes`/`no`) everywhere and human errors.
//!
//! ```text
//!  argv ──► CommandLine::parse ──► file? ──► load_file (redis.conf | TOML) ──┐
//!                     └──────────► --NAME VALUE pairs ───────────────────────┤
//!                                                                            ▼
//!                     Values (a table of Param) ◄── CONFIG SET / GET ── set_initial, in order
//!                        └──► rewrite(): CONFIG REWRITE back into the file it came from
//! ```
//!
//! A parameter says what it does here ([`Effect`]): it applies, it is accepted with no effect
//! (Redis tuning knobs that do not apply to our representation), or only its default is
//! accepted until the feature exists (a silently ignored `appendonly yes` would mislead).

mod param;
mod source;
mod values;

pub use param::{class_limits_of, parse_memory, Effect, Kind, Param};
pub use source::{load_file, load_toml_pairs, quote, CommandLine, Directive, Format, Origin};
pub use values::Values;

/// What refuses a parameter, a value or a file. `Display` is the message for a human (or,
/// for CONFIG SET, the part Redis puts after the parameter name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    #[error("can't set immutable config")]
    Immutable,
    #[error("{0}")]
    Invalid(String),
    /// A value the table accepts only at its default until the feature is built.
    #[error(
        "'{name} {value}' is not supported by ferrocache yet ({why}); only '{default}' is accepted"
    )]
    Unsupported {
        name: String,
        value: String,
        default: String,
        why: &'static str,
    },
    /// A file that cannot be read or parsed, or a directive in it that is refused: the
    /// message names the file, the line and the directive, as redis-server does.
    #[error("{0}")]
    File(String),
}
