//! The one command table: name, arity, flags, key positions and a summary for every command.
//!
//! The node dispatches on [`Cmd`] (an exhaustive `match`, so a command in the table without a
//! handler does not compile), answers `COMMAND` from [`CommandSpec`], and the proxy finds keys
//! with [`CommandSpec::keys`]. Arity follows Redis: `n` means exactly `n` arguments including
//! the name, `-n` means at least `n`.

use std::sync::OnceLock;

use hashbrown::HashMap;

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MOVABLE_KEYS: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    /// Allowed while the connection is in RESP2 subscribed mode.
    pub const PUBSUB_OK: u32 = 1 << 13;

    /// Names as `COMMAND` reports them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MOVABLE_KEYS, "movablekeys"),
        (NO_MULTI, "no_multi"),
    ];
}

use flags::*;

/// One command's static description.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower case, as `COMMAND` reports it; subcommands are `parent|sub`.
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step. 0 0 0 for none.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether `argc` arguments (including the name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Indices of the key arguments in `argc` arguments, from the table's positions.
    /// Commands flagged `movablekeys` need the argument values; see [`Cmd::keys`].
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key, self.step);
        let last = if self.last_key < 0 {
            argc as i64 + i64::from(self.last_key)
        } else {
            i64::from(self.last_key).min(argc as i64 - 1)
        };
        let mut i = i64::from(first);
        std::iter::from_fn(move || {
            if first <= 0 || step <= 0 || i > last {
                return None;
            }
            let here = i as usize;
            i += i64::from(step);
            Some(here)
        })
    }

    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let prefix_len = self.name.len() + 1;
        self.subcommands
            .iter()
            .find(|s| s.name.as_bytes()[prefix_len..].eq_ignore_ascii_case(name))
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            group: $group,
            summary: $summary,
            subcommands: &[],
        }
    };
}

macro_rules! commands {
    ($( $variant:ident => $name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $summary:literal $(, subs = $subs:expr)? ; )*) => {
        /// Every command the node knows, in table order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Cmd { $($variant),* }

        /// The command table, indexed by `Cmd as usize`.
        pub static COMMANDS: &[CommandSpec] = &[
            $(CommandSpec {
                name: $name,
                arity: $arity,
                flags: $flags,
                first_key: $first,
                last_key: $last,
                step: $step,
                group: $group,
                summary: $summary,
                subcommands: commands!(@subs $($subs)?),
            }),*
        ];

        impl Cmd {
            pub const ALL: &'static [Cmd] = &[$(Cmd::$variant),*];
        }
    };
    (@subs) => { &[] };
    (@subs $subs:expr) => { $subs };
}

commands! {
    // connection
    Ping => "ping", -1, FAST | PUBSUB_OK, 0, 0, 0, "connection", "Returns the server's liveliness response.";
    Echo => "echo", 2, FAST, 0, 0, 0, "connection", "Returns the given string.";
    Quit => "quit", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | PUBSUB_OK, 0, 0, 0, "connection", "Closes the connection.";
    Reset => "reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | PUBSUB_OK, 0, 0, 0, "connection", "Resets the connection.";
    Select => "select", 2, LOADING | STALE | FAST, 0, 0, 0, "connection", "Changes the selected database.";
    Auth => "auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, 0, 0, 0, "connection", "Authenticates the connection.";
    Hello => "hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, 0, 0, 0, "connection", "Handshakes with the Redis server.";
    Client => "client", -2, 0, 0, 0, 0, "connection", "A container for client connection commands.", subs = CLIENT_SUBCOMMANDS;
    // server
    Info => "info", -1, LOADING | STALE, 0, 0, 0, "server", "Returns information and statistics about the server.";
    Dbsize => "dbsize", 1, READONLY | FAST, 0, 0, 0, "server", "Returns the number of keys in the database.";
    Flushdb => "flushdb", -1, WRITE, 0, 0, 0, "server", "Removes all keys from the current database.";
    Flushall => "flushall", -1, WRITE, 0, 0, 0, "server", "Removes all keys from all databases.";
    Swapdb => "swapdb", 3, WRITE | FAST, 0, 0, 0, "server", "Swaps two Redis databases.";
    Config => "config", -2, 0, 0, 0, 0, "server", "A container for server configuration commands.", subs = CONFIG_SUBCOMMANDS;
    Time => "time", 1, LOADING | STALE | FAST, 0, 0, 0, "server", "Returns the server time.";
    Lastsave => "lastsave", 1, LOADING | STALE | FAST, 0, 0, 0, "server", "Returns the Unix timestamp of the last successful save to disk.";
    Shutdown => "shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI, 0, 0, 0, "server", "Synchronously saves the database(s) to disk and shuts down the Redis server.";
    Command => "command", -1, LOADING | STALE, 0, 0, 0, "server", "Returns detailed information about all commands.", subs = COMMAND_SUBCOMMANDS;
    // generic
    Del => "del", -2, WRITE, 1, -1, 1, "generic", "Deletes one or more keys.";
    Unlink => "unlink", -2, WRITE | FAST, 1, -1, 1, "generic", "Asynchronously deletes one or more keys.";
    Exists => "exists", -2, READONLY | FAST, 1, -1, 1, "generic", "Determines whether one or more keys exist.";
    Type => "type", 2, READONLY | FAST, 1, 1, 1, "generic", "Determines the type of value stored at a key.";
    Touch => "touch", -2, READONLY | FAST, 1, -1, 1, "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.";
    Rename => "rename", 3, WRITE, 1, 2, 1, "generic", "Renames a key and overwrites the destination.";
    Renamenx => "renamenx", 3, WRITE | FAST, 1, 2, 1, "generic", "Renames a key only when the target key name doesn't exist.";
    Copy => "copy", -3, WRITE | DENYOOM, 1, 2, 1, "generic", "Copies the value of a key to a new key.";
    Move => "move", 3, WRITE | FAST, 1, 1, 1, "generic", "Moves a key to another database.";
    Keys => "keys", 2, READONLY, 0, 0, 0, "generic", "Returns all key names that match a pattern.";
    Scan => "scan", -2, READONLY, 0, 0, 0, "generic", "Iterates over the key names in the database.";
    Randomkey => "randomkey", 1, READONLY, 0, 0, 0, "generic", "Returns a random key name from the database.";
    Expire => "expire", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets the expiration time of a key in seconds.";
    Pexpire => "pexpire", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets the expiration time of a key in milliseconds.";
    Expireat => "expireat", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix timestamp.";
    Pexpireat => "pexpireat", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.";
    Ttl => "ttl", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns the expiration time in seconds of a key.";
    Pttl => "pttl", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns the expiration time in milliseconds of a key.";
    Expiretime => "expiretime", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix timestamp.";
    Pexpiretime => "pexpiretime", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.";
    Persist => "persist", 2, WRITE | FAST, 1, 1, 1, "generic", "Removes the expiration time of a key.";
    Object => "object", -2, 0, 0, 0, 0, "generic", "A container for object introspection commands.", subs = OBJECT_SUBCOMMANDS;
    // string
    Get => "get", 2, READONLY | FAST, 1, 1, 1, "string", "Returns the string value of a key.";
    Set => "set", -3, WRITE | DENYOOM, 1, 1, 1, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.";
    Setnx => "setnx", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Set the string value of a key only when the key doesn't exist.";
    Setex => "setex", 4, WRITE | DENYOOM, 1, 1, 1, "string", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.";
    Psetex => "psetex", 4, WRITE | DENYOOM, 1, 1, 1, "string", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.";
    Getset => "getset", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Returns the previous string value of a key after setting it to a new value.";
    Getdel => "getdel", 2, WRITE | FAST, 1, 1, 1, "string", "Returns the string value of a key after deleting the key.";
    Getex => "getex", -2, WRITE | FAST, 1, 1, 1, "string", "Returns the string value of a key after setting its expiration time.";
    Mget => "mget", -2, READONLY | FAST, 1, -1, 1, "string", "Atomically returns the string values of one or more keys.";
    Mset => "mset", -3, WRITE | DENYOOM, 1, -1, 2, "string", "Atomically creates or modifies the string values of one or more keys.";
    Msetnx => "msetnx", -3, WRITE | DENYOOM, 1, -1, 2, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.";
    Incr => "incr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    Decr => "decr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    Incrby => "incrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    Decrby => "decrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.";
    Incrbyfloat => "incrbyfloat", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    Append => "append", 3, WRITE | DENYOOM | FAST, 1, 1, 1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.";
    Strlen => "strlen", 2, READONLY | FAST, 1, 1, 1, "string", "Returns the length of a string value.";
    Getrange => "getrange", 4, READONLY, 1, 1, 1, "string", "Returns a substring of the string stored at a key.";
    Substr => "substr", 4, READONLY, 1, 1, 1, "string", "Returns a substring from a string value.";
    Setrange => "setrange", 4, WRITE | DENYOOM, 1, 1, 1, "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.";
    Setbit => "setbit", 4, WRITE | DENYOOM, 1, 1, 1, "bitmap", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.";
    Getbit => "getbit", 3, READONLY | FAST, 1, 1, 1, "bitmap", "Returns a bit value by offset.";
    Bitcount => "bitcount", -2, READONLY, 1, 1, 1, "bitmap", "Counts the number of set bits (population counting) in a string.";
    Bitpos => "bitpos", -3, READONLY, 1, 1, 1, "bitmap", "Finds the first set (1) or clear (0) bit in a string.";
}

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "client|id",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns the unique client ID of the connection."
    ),
    spec!(
        "client|setname",
        3,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Sets the connection name."
    ),
    spec!(
        "client|getname",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns the name of the connection."
    ),
    spec!(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Lists open connections."
    ),
    spec!(
        "client|info",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns information about the connection."
    ),
    spec!(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Terminates open connections."
    ),
    spec!(
        "client|setinfo",
        4,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Sets information specific to the client or connection."
    ),
    spec!(
        "client|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns helpful text about the different subcommands."
    ),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns the effective values of configuration parameters."
    ),
    spec!(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Sets configuration parameters in-flight."
    ),
    spec!(
        "config|resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Resets the server's statistics."
    ),
    spec!(
        "config|rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Persists the effective configuration to file."
    ),
    spec!(
        "config|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns helpful text about the different subcommands."
    ),
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "command|count",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns a count of commands."
    ),
    spec!(
        "command|info",
        -2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns information about one, multiple or all commands."
    ),
    spec!(
        "command|docs",
        -2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns documentary information about one, multiple or all commands."
    ),
    spec!(
        "command|list",
        -2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns a list of command names."
    ),
    // Redis 7.0's arity is -4 (COMMAND GETKEYS <cmd> <arg>...): `COMMAND GETKEYS PING`
    // must be a wrong-arity error, as Redis answers, not "has no key arguments".
    spec!(
        "command|getkeys",
        -4,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Extracts the key names from an arbitrary command."
    ),
    spec!(
        "command|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns helpful text about the different subcommands."
    ),
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "object|encoding",
        3,
        READONLY,
        2,
        2,
        1,
        "generic",
        "Returns the internal encoding of a Redis object."
    ),
    spec!(
        "object|refcount",
        3,
        READONLY,
        2,
        2,
        1,
        "generic",
        "Returns the reference count of a value of a key."
    ),
    spec!(
        "object|idletime",
        3,
        READONLY,
        2,
        2,
        1,
        "generic",
        "Returns the time since the last access to a Redis object."
    ),
    spec!(
        "object|freq",
        3,
        READONLY,
        2,
        2,
        1,
        "generic",
        "Returns the logarithmic access frequency counter of a Redis object."
    ),
    spec!(
        "object|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "generic",
        "Returns helpful text about the different subcommands."
    ),
];

/// The longest command name, to bound the lookup's stack buffer.
const MAX_NAME: usize = 32;

fn index() -> &'static HashMap<&'static [u8], Cmd> {
    static INDEX: OnceLock<HashMap<&'static [u8], Cmd>> = OnceLock::new();
    INDEX.get_or_init(|| {
        Cmd::ALL
            .iter()
            .map(|&cmd| (cmd.spec().name.as_bytes(), cmd))
            .collect()
    })
}

impl Cmd {
    /// Finds a command by name, case-insensitively, without allocating.
    pub fn lookup(name: &[u8]) -> Option<Cmd> {
        if name.len() > MAX_NAME {
            return None;
        }
        let mut lower = [0u8; MAX_NAME];
        let lower = &mut lower[..name.len()];
        for (dst, src) in lower.iter_mut().zip(name) {
            *dst = src.to_ascii_lowercase();
        }
        index().get(&lower[..]).copied()
    }

    pub fn spec(self) -> &'static CommandSpec {
        &COMMANDS[self as usize]
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Indices of the key arguments of this call.
    pub fn keys(self, args: &[impl AsRef<[u8]>]) -> Vec<usize> {
        let spec = self.spec();
        if spec.subcommands.is_empty() {
            return spec.key_indices(args.len()).collect();
        }
        match args.get(1).and_then(|a| spec.subcommand(a.as_ref())) {
            Some(sub) => sub.key_indices(args.len()).collect(),
            None => Vec::new(),
        }
    }
}

/// All specs, top-level commands then their subcommands (for `COMMAND COUNT` and stats).
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(Cmd::lookup(b"GeT"), Some(Cmd::Get));
        assert_eq!(Cmd::lookup(b"nope"), None);
        assert_eq!(Cmd::lookup(&[b'a'; 100]), None);
    }

    #[test]
    fn table_is_in_enum_order() {
        for &cmd in Cmd::ALL {
            assert_eq!(Cmd::lookup(cmd.spec().name.as_bytes()), Some(cmd));
        }
    }

    #[test]
    fn key_positions() {
        let args: Vec<&[u8]> = vec![b"mset", b"a", b"1", b"b", b"2"];
        assert_eq!(Cmd::Mset.keys(&args), vec![1, 3]);
        let args: Vec<&[u8]> = vec![b"del", b"a", b"b", b"c"];
        assert_eq!(Cmd::Del.keys(&args), vec![1, 2, 3]);
        let args: Vec<&[u8]> = vec![b"object", b"encoding", b"k"];
        assert_eq!(Cmd::Object.keys(&args), vec![2]);
        let args: Vec<&[u8]> = vec![b"ping"];
        assert!(Cmd::Ping.keys(&args).is_empty());
    }

    #[test]
    fn arity() {
        assert!(Cmd::Get.spec().arity_ok(2));
        assert!(!Cmd::Get.spec().arity_ok(3));
        assert!(Cmd::Set.spec().arity_ok(5));
        assert!(!Cmd::Set.spec().arity_ok(2));
    }
}
