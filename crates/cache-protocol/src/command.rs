//! The one command table: name, arity, flags, key positions and a summary for every command.
//!
//! The node dispatches on [`Cmd`] (an exhaustive `match`, so a command in the table without a
//! handler does not compile), answers `COMMAND` from [`CommandSpec`], and the proxy finds keys
//! with [`CommandSpec::keys`]. Arity follows Redis: `n` means exactly `n` arguments including
//! the name, `-n` means at least `n`.

use std::sync::OnceLock;

use hashbrown::HashMap;

pub mod keyspec;
mod redis_specs;

pub use keyspec::{key_flags, Begin, Find, KeySpec, RequestPolicy, ResponsePolicy};

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
    /// Served by cache-node only (`CACHE`, `CLUSTER DROPSLOTS`): the proxy does not know it.
    pub const NODE_ONLY: u32 = 1 << 14;
    /// Served by cache-proxy only (`PROXY`): a node does not know it.
    pub const PROXY_ONLY: u32 = 1 << 15;
    /// May be called without keys although it has key positions (EVAL with numkeys 0).
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    /// MONITOR does not show it after it ran: it shows itself first (EVAL, FCALL: so that a
    /// script's commands follow it).
    pub const SKIP_MONITOR: u32 = 1 << 17;

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
        (SKIP_MONITOR, "skip_monitor"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (MOVABLE_KEYS, "movablekeys"),
        (NO_MULTI, "no_multi"),
    ];
}

use flags::*;

/// Redis's ACL categories (`@read`, `@write`...), as bits. Most follow from a command's flags
/// and group (see [`CommandSpec::categories`]); the rest are listed by name in
/// [`EXTRA_CATEGORIES`].
pub mod categories {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    /// In Redis's order (`ACL CAT`, and the order ACL LIST tries categories in).
    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "keyspace"),
        (READ, "read"),
        (WRITE, "write"),
        (SET, "set"),
        (SORTEDSET, "sortedset"),
        (LIST, "list"),
        (HASH, "hash"),
        (STRING, "string"),
        (BITMAP, "bitmap"),
        (HYPERLOGLOG, "hyperloglog"),
        (GEO, "geo"),
        (STREAM, "stream"),
        (PUBSUB, "pubsub"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (SLOW, "slow"),
        (BLOCKING, "blocking"),
        (DANGEROUS, "dangerous"),
        (CONNECTION, "connection"),
        (TRANSACTION, "transaction"),
        (SCRIPTING, "scripting"),
    ];

    /// The category named `name` (without the `@`), case-insensitively.
    pub fn by_name(name: &[u8]) -> Option<u32> {
        NAMES
            .iter()
            .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(bit, _)| *bit)
    }
}

/// Categories Redis gives a command beyond what its flags and group imply (from Redis 7.0's
/// command JSON files).
pub const EXTRA_CATEGORIES: &[(&str, u32)] = {
    use categories::*;
    &[
        ("dbsize", KEYSPACE),
        ("flushdb", KEYSPACE | DANGEROUS),
        ("flushall", KEYSPACE | DANGEROUS),
        ("swapdb", KEYSPACE | DANGEROUS),
        ("keys", DANGEROUS),
        ("info", DANGEROUS),
        ("lastsave", ADMIN | DANGEROUS),
        ("role", ADMIN | DANGEROUS),
        ("restore", DANGEROUS),
        ("asking", CONNECTION),
        ("readonly", CONNECTION),
        ("readwrite", CONNECTION),
    ]
};

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

    /// Redis's ACL categories of this command (`categories::*` bits): implied by the flags
    /// as Redis's `setImplicitACLCategories` does, by the group for data-type commands, plus
    /// [`EXTRA_CATEGORIES`]. A container (`CONFIG`, `CLIENT`) is only `@slow`; its
    /// subcommands carry the categories.
    pub fn categories(&self) -> u32 {
        use categories::*;
        let mut c = 0;
        let implied = [
            (flags::WRITE, WRITE),
            (flags::READONLY, READ),
            (flags::ADMIN, ADMIN | DANGEROUS),
            (flags::PUBSUB, PUBSUB),
            (flags::FAST, FAST),
            (flags::BLOCKING, BLOCKING),
        ];
        for (flag, cat) in implied {
            if self.flags & flag != 0 {
                c |= cat;
            }
        }
        // As Redis's setImplicitACLCategories: a read-only script command is not @read.
        if self.group == "scripting" {
            c &= !READ;
        }
        if c & FAST == 0 {
            c |= SLOW;
        }
        if !self.subcommands.is_empty() {
            // COMMAND is the one container Redis puts in a category of its own.
            return if self.name == "command" {
                c | CONNECTION
            } else {
                c
            };
        }
        let (parent, _) = self.name.split_once('|').unwrap_or((self.name, ""));
        c |= match (self.group, parent) {
            (_, "command") => CONNECTION,
            ("string", _) => STRING,
            ("bitmap", _) => BITMAP,
            ("hyperloglog", _) => HYPERLOGLOG,
            ("geo", _) => GEO,
            ("generic", "sort" | "sort_ro") => SET | SORTEDSET | LIST | DANGEROUS,
            ("hash", _) => HASH,
            ("list", _) => LIST,
            ("set", _) => SET,
            ("sorted-set", _) => SORTEDSET,
            ("generic", _) => KEYSPACE,
            ("connection", _) => CONNECTION,
            ("transactions", _) => TRANSACTION,
            ("scripting", _) => SCRIPTING,
            ("stream", _) => STREAM,
            _ => 0,
        };
        c | EXTRA_CATEGORIES
            .iter()
            .find(|(name, _)| *name == self.name)
            .map_or(0, |(_, extra)| *extra)
    }

    /// The `@name`s of [`categories`](Self::categories), in Redis's order.
    pub fn category_names(&self) -> impl Iterator<Item = &'static str> {
        let bits = self.categories();
        categories::NAMES
            .iter()
            .filter(move |(bit, _)| bits & bit != 0)
            .map(|(_, name)| *name)
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
    Save => "save", 1, ADMIN | NOSCRIPT | NO_MULTI, 0, 0, 0, "server", "Synchronously saves the database(s) to disk.";
    Bgsave => "bgsave", -1, ADMIN | NOSCRIPT, 0, 0, 0, "server", "Asynchronously saves the database(s) to disk.";
    Lastsave => "lastsave", 1, LOADING | STALE | FAST, 0, 0, 0, "server", "Returns the Unix timestamp of the last successful save to disk.";
    Monitor => "monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE | NODE_ONLY, 0, 0, 0, "server", "Listens for all requests received by the server in real-time.";
    Shutdown => "shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI, 0, 0, 0, "server", "Synchronously saves the database(s) to disk and shuts down the Redis server.";
    Command => "command", -1, LOADING | STALE, 0, 0, 0, "server", "Returns detailed information about all commands.", subs = COMMAND_SUBCOMMANDS;
    Acl => "acl", -2, 0, 0, 0, 0, "server", "A container for Access List Control commands.", subs = ACL_SUBCOMMANDS;
    Slowlog => "slowlog", -2, 0, 0, 0, 0, "server", "A container for slow log commands.", subs = SLOWLOG_SUBCOMMANDS;
    Latency => "latency", -2, 0, 0, 0, 0, "server", "A container for latency diagnostics commands.", subs = LATENCY_SUBCOMMANDS;
    Replicaof => "replicaof", 3, ADMIN | NOSCRIPT | STALE | NODE_ONLY, 0, 0, 0, "server", "Configures a server as replica of another, or promotes it to a master.";
    Slaveof => "slaveof", 3, ADMIN | NOSCRIPT | STALE | NODE_ONLY, 0, 0, 0, "server", "Sets a Redis server as a replica of another, or promotes it to being a master.";
    Role => "role", 1, NOSCRIPT | LOADING | STALE | FAST | NODE_ONLY, 0, 0, 0, "server", "Returns the replication role.";
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
    Dump => "dump", 2, READONLY, 1, 1, 1, "generic", "Returns a serialized representation of the value stored at a key.";
    Restore => "restore", -4, WRITE | DENYOOM, 1, 1, 1, "generic", "Creates a key from the serialized representation of a value.";
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
    // hash
    Hset => "hset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "Creates or modifies the value of a field in a hash.";
    Hsetnx => "hsetnx", 4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the value of a field in a hash only when the field doesn't exist.";
    Hmset => "hmset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "Sets the values of multiple fields.";
    Hget => "hget", 3, READONLY | FAST, 1, 1, 1, "hash", "Returns the value of a field in a hash.";
    Hmget => "hmget", -3, READONLY | FAST, 1, 1, 1, "hash", "Returns the values of all fields in a hash.";
    Hdel => "hdel", -3, WRITE | FAST, 1, 1, 1, "hash", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.";
    Hexists => "hexists", 3, READONLY | FAST, 1, 1, 1, "hash", "Determines whether a field exists in a hash.";
    Hlen => "hlen", 2, READONLY | FAST, 1, 1, 1, "hash", "Returns the number of fields in a hash.";
    Hstrlen => "hstrlen", 3, READONLY | FAST, 1, 1, 1, "hash", "Returns the length of the value of a field.";
    Hkeys => "hkeys", 2, READONLY, 1, 1, 1, "hash", "Returns all fields in a hash.";
    Hvals => "hvals", 2, READONLY, 1, 1, 1, "hash", "Returns all values in a hash.";
    Hgetall => "hgetall", 2, READONLY, 1, 1, 1, "hash", "Returns all fields and values in a hash.";
    Hincrby => "hincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.";
    Hincrbyfloat => "hincrbyfloat", 4, WRITE | DENYOOM | FAST, 1, 1, 1, "hash", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.";
    Hrandfield => "hrandfield", -2, READONLY, 1, 1, 1, "hash", "Returns one or more random fields from a hash.";
    Hscan => "hscan", -3, READONLY, 1, 1, 1, "hash", "Iterates over fields and values of a hash.";
    // list
    Lpush => "lpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "Prepends one or more elements to a list. Creates the key if it doesn't exist.";
    Rpush => "rpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "Appends one or more elements to a list. Creates the key if it doesn't exist.";
    Lpushx => "lpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "Prepends one or more elements to a list only when the list exists.";
    Rpushx => "rpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "list", "Appends an element to a list only when the list exists.";
    Lpop => "lpop", -2, WRITE | FAST, 1, 1, 1, "list", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.";
    Rpop => "rpop", -2, WRITE | FAST, 1, 1, 1, "list", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.";
    Llen => "llen", 2, READONLY | FAST, 1, 1, 1, "list", "Returns the length of a list.";
    Lrange => "lrange", 4, READONLY, 1, 1, 1, "list", "Returns a range of elements from a list.";
    Lindex => "lindex", 3, READONLY, 1, 1, 1, "list", "Returns an element from a list by its index.";
    Lset => "lset", 4, WRITE | DENYOOM, 1, 1, 1, "list", "Sets the value of an element in a list by its index.";
    Lrem => "lrem", 4, WRITE, 1, 1, 1, "list", "Removes elements from a list. Deletes the list if the last element was removed.";
    Ltrim => "ltrim", 4, WRITE, 1, 1, 1, "list", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.";
    Linsert => "linsert", 5, WRITE | DENYOOM, 1, 1, 1, "list", "Inserts an element before or after another element in a list.";
    Lpos => "lpos", -3, READONLY, 1, 1, 1, "list", "Returns the index of matching elements in a list.";
    Lmove => "lmove", 5, WRITE | DENYOOM, 1, 2, 1, "list", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.";
    Rpoplpush => "rpoplpush", 3, WRITE | DENYOOM, 1, 2, 1, "list", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.";
    Lmpop => "lmpop", -4, WRITE | MOVABLE_KEYS, 0, 0, 0, "list", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.";
    Blpop => "blpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.";
    Brpop => "brpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, "list", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.";
    Blmove => "blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.";
    Blmpop => "blmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, 0, 0, 0, "list", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.";
    Brpoplpush => "brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, "list", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.";
    // set
    Sadd => "sadd", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "set", "Adds one or more members to a set. Creates the key if it doesn't exist.";
    Srem => "srem", -3, WRITE | FAST, 1, 1, 1, "set", "Removes one or more members from a set. Deletes the set if the last member was removed.";
    Smembers => "smembers", 2, READONLY, 1, 1, 1, "set", "Returns all members of a set.";
    Sismember => "sismember", 3, READONLY | FAST, 1, 1, 1, "set", "Determines whether a member belongs to a set.";
    Smismember => "smismember", -3, READONLY | FAST, 1, 1, 1, "set", "Determines whether multiple members belong to a set.";
    Scard => "scard", 2, READONLY | FAST, 1, 1, 1, "set", "Returns the number of members in a set.";
    Spop => "spop", -2, WRITE | FAST, 1, 1, 1, "set", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.";
    Srandmember => "srandmember", -2, READONLY, 1, 1, 1, "set", "Get one or multiple random members from a set";
    Smove => "smove", 4, WRITE | FAST, 1, 2, 1, "set", "Moves a member from one set to another.";
    Sinter => "sinter", -2, READONLY, 1, -1, 1, "set", "Returns the intersect of multiple sets.";
    Sunion => "sunion", -2, READONLY, 1, -1, 1, "set", "Returns the union of multiple sets.";
    Sdiff => "sdiff", -2, READONLY, 1, -1, 1, "set", "Returns the difference of multiple sets.";
    Sinterstore => "sinterstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "Stores the intersect of multiple sets in a key.";
    Sunionstore => "sunionstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "Stores the union of multiple sets in a key.";
    Sdiffstore => "sdiffstore", -3, WRITE | DENYOOM, 1, -1, 1, "set", "Stores the difference of multiple sets in a key.";
    Sintercard => "sintercard", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, "set", "Returns the number of members of the intersect of multiple sets.";
    Sscan => "sscan", -3, READONLY, 1, 1, 1, "set", "Iterates over members of a set.";
    // sorted set
    Zadd => "zadd", -4, WRITE | DENYOOM | FAST, 1, 1, 1, "sorted-set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.";
    Zincrby => "zincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, "sorted-set", "Increments the score of a member in a sorted set.";
    Zrem => "zrem", -3, WRITE | FAST, 1, 1, 1, "sorted-set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.";
    Zscore => "zscore", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the score of a member in a sorted set.";
    Zmscore => "zmscore", -3, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the score of one or more members in a sorted set.";
    Zcard => "zcard", 2, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the number of members in a sorted set.";
    Zcount => "zcount", 4, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the count of members in a sorted set that have scores within a range.";
    Zlexcount => "zlexcount", 4, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the number of members in a sorted set within a lexicographical range.";
    Zrange => "zrange", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of indexes.";
    Zrangebyscore => "zrangebyscore", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of scores.";
    Zrevrangebyscore => "zrevrangebyscore", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of scores in reverse order.";
    Zrangebylex => "zrangebylex", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a lexicographical range.";
    Zrevrangebylex => "zrevrangebylex", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a lexicographical range in reverse order.";
    Zrevrange => "zrevrange", -4, READONLY, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of indexes in reverse order.";
    Zrank => "zrank", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending scores.";
    Zrevrank => "zrevrank", 3, READONLY | FAST, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by descending scores.";
    Zrangestore => "zrangestore", -5, WRITE | DENYOOM, 1, 2, 1, "sorted-set", "Stores a range of members from sorted set in a key.";
    Zpopmin => "zpopmin", -2, WRITE | FAST, 1, 1, 1, "sorted-set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.";
    Zpopmax => "zpopmax", -2, WRITE | FAST, 1, 1, 1, "sorted-set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.";
    Bzpopmin => "bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, 1, -2, 1, "sorted-set", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.";
    Bzpopmax => "bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, 1, -2, 1, "sorted-set", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.";
    Zmpop => "zmpop", -4, WRITE | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.";
    Bzmpop => "bzmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.";
    Zremrangebyrank => "zremrangebyrank", 4, WRITE, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.";
    Zremrangebyscore => "zremrangebyscore", 4, WRITE, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.";
    Zremrangebylex => "zremrangebylex", 4, WRITE, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.";
    Zunion => "zunion", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Returns the union of multiple sorted sets.";
    Zinter => "zinter", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Returns the intersect of multiple sorted sets.";
    Zdiff => "zdiff", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Returns the difference between multiple sorted sets.";
    Zunionstore => "zunionstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "sorted-set", "Stores the union of multiple sorted sets in a key.";
    Zinterstore => "zinterstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "sorted-set", "Stores the intersect of multiple sorted sets in a key.";
    Zdiffstore => "zdiffstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "sorted-set", "Stores the difference of multiple sorted sets in a key.";
    Zintercard => "zintercard", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, "sorted-set", "Returns the number of members of the intersect of multiple sorted sets.";
    Zrandmember => "zrandmember", -2, READONLY, 1, 1, 1, "sorted-set", "Returns one or more random members from a sorted set.";
    Zscan => "zscan", -3, READONLY, 1, 1, 1, "sorted-set", "Iterates over members and scores of a sorted set.";
    // remaining types (#13): HyperLogLog, bitmaps, LCS, SORT, GEO
    Pfadd => "pfadd", -2, WRITE | DENYOOM | FAST, 1, 1, 1, "hyperloglog", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.";
    Pfcount => "pfcount", -2, READONLY, 1, -1, 1, "hyperloglog", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).";
    Pfmerge => "pfmerge", -2, WRITE | DENYOOM, 1, -1, 1, "hyperloglog", "Merges one or more HyperLogLog values into a single key.";
    Pfdebug => "pfdebug", 3, WRITE | DENYOOM | ADMIN, 2, 2, 1, "hyperloglog", "Internal commands for debugging HyperLogLog values.";
    Pfselftest => "pfselftest", 1, ADMIN, 0, 0, 0, "hyperloglog", "An internal command for testing HyperLogLog values.";
    Bitop => "bitop", -4, WRITE | DENYOOM, 2, -1, 1, "bitmap", "Performs bitwise operations on multiple strings, and stores the result.";
    Bitfield => "bitfield", -2, WRITE | DENYOOM, 1, 1, 1, "bitmap", "Performs arbitrary bitfield integer operations on strings.";
    BitfieldRo => "bitfield_ro", -2, READONLY | FAST, 1, 1, 1, "bitmap", "Performs arbitrary read-only bitfield integer operations on strings.";
    Lcs => "lcs", -3, READONLY, 1, 2, 1, "string", "Finds the longest common substring.";
    Sort => "sort", -2, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "generic", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.";
    SortRo => "sort_ro", -2, READONLY | MOVABLE_KEYS, 1, 1, 1, "generic", "Returns the sorted elements of a list, a set, or a sorted set.";
    Geoadd => "geoadd", -5, WRITE | DENYOOM, 1, 1, 1, "geo", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.";
    Geodist => "geodist", -4, READONLY, 1, 1, 1, "geo", "Returns the distance between two members of a geospatial index.";
    Geohash => "geohash", -2, READONLY, 1, 1, 1, "geo", "Returns members from a geospatial index as geohash strings.";
    Geopos => "geopos", -2, READONLY, 1, 1, 1, "geo", "Returns the longitude and latitude of members from a geospatial index.";
    Georadius => "georadius", -6, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "geo", "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.";
    GeoradiusRo => "georadius_ro", -6, READONLY, 1, 1, 1, "geo", "Returns members from a geospatial index that are within a distance from a coordinate.";
    Georadiusbymember => "georadiusbymember", -5, WRITE | DENYOOM | MOVABLE_KEYS, 1, 1, 1, "geo", "Queries a geospatial index for members within a distance from a member, optionally stores the result.";
    GeoradiusbymemberRo => "georadiusbymember_ro", -5, READONLY, 1, 1, 1, "geo", "Returns members from a geospatial index that are within a distance from a member.";
    Geosearch => "geosearch", -7, READONLY, 1, 1, 1, "geo", "Queries a geospatial index for members inside an area of a box or a circle.";
    Geosearchstore => "geosearchstore", -8, WRITE | DENYOOM, 1, 2, 1, "geo", "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.";
    Memory => "memory", -2, 0, 0, 0, 0, "server", "A container for memory diagnostics commands.", subs = MEMORY_SUBCOMMANDS;
    // scripting
    Eval => "eval", -3, NOSCRIPT | STALE | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Executes a server-side Lua script.";
    Evalsha => "evalsha", -3, NOSCRIPT | STALE | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Executes a server-side Lua script by SHA1 digest.";
    EvalRo => "eval_ro", -3, NOSCRIPT | STALE | READONLY | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Executes a read-only server-side Lua script.";
    EvalshaRo => "evalsha_ro", -3, NOSCRIPT | STALE | READONLY | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Executes a read-only server-side Lua script by SHA1 digest.";
    Script => "script", -2, 0, 0, 0, 0, "scripting", "A container for Lua scripts management commands.", subs = SCRIPT_SUBCOMMANDS;
    Fcall => "fcall", -3, NOSCRIPT | STALE | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Invokes a function.";
    FcallRo => "fcall_ro", -3, NOSCRIPT | STALE | READONLY | NO_MANDATORY_KEYS | MOVABLE_KEYS | SKIP_MONITOR, 0, 0, 0, "scripting", "Invokes a read-only function.";
    Function => "function", -2, 0, 0, 0, 0, "scripting", "A container for function commands.", subs = FUNCTION_SUBCOMMANDS;
    // streams
    Xadd => "xadd", -5, WRITE | DENYOOM | FAST, 1, 1, 1, "stream", "Appends a new message to a stream. Creates the key if it doesn't exist.";
    Xrange => "xrange", -4, READONLY, 1, 1, 1, "stream", "Returns the messages from a stream within a range of IDs.";
    Xrevrange => "xrevrange", -4, READONLY, 1, 1, 1, "stream", "Returns the messages from a stream within a range of IDs in reverse order.";
    Xlen => "xlen", 2, READONLY | FAST, 1, 1, 1, "stream", "Return the number of messages in a stream.";
    Xdel => "xdel", -3, WRITE | FAST, 1, 1, 1, "stream", "Returns the number of messages after removing them from a stream.";
    Xtrim => "xtrim", -4, WRITE, 1, 1, 1, "stream", "Deletes messages from the beginning of a stream.";
    Xread => "xread", -4, READONLY | BLOCKING | MOVABLE_KEYS, 0, 0, 0, "stream", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.";
    Xreadgroup => "xreadgroup", -7, WRITE | BLOCKING | MOVABLE_KEYS, 0, 0, 0, "stream", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.";
    Xgroup => "xgroup", -2, 0, 0, 0, 0, "stream", "A container for consumer groups commands.", subs = XGROUP_SUBCOMMANDS;
    Xack => "xack", -4, WRITE | FAST, 1, 1, 1, "stream", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.";
    Xpending => "xpending", -3, READONLY, 1, 1, 1, "stream", "Returns the information and entries from a stream consumer group's pending entries list.";
    Xclaim => "xclaim", -6, WRITE | FAST, 1, 1, 1, "stream", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.";
    Xautoclaim => "xautoclaim", -6, WRITE | FAST, 1, 1, 1, "stream", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.";
    Xinfo => "xinfo", -2, 0, 0, 0, 0, "stream", "A container for stream introspection commands.", subs = XINFO_SUBCOMMANDS;
    Xsetid => "xsetid", -3, WRITE | DENYOOM | FAST, 1, 1, 1, "stream", "An internal command for replicating stream values.";
    // transactions
    Multi => "multi", 1, NOSCRIPT | LOADING | STALE | FAST, 0, 0, 0, "transactions", "Starts a transaction.";
    Exec => "exec", 1, NOSCRIPT | LOADING | STALE, 0, 0, 0, "transactions", "Executes all commands in a transaction.";
    Discard => "discard", 1, NOSCRIPT | LOADING | STALE | FAST, 0, 0, 0, "transactions", "Discards a transaction.";
    Watch => "watch", -2, NOSCRIPT | LOADING | STALE | FAST, 1, -1, 1, "transactions", "Monitors changes to keys to determine the execution of a transaction.";
    Unwatch => "unwatch", 1, NOSCRIPT | LOADING | STALE | FAST, 0, 0, 0, "transactions", "Forgets about watched keys of a transaction.";
    // pubsub
    Subscribe => "subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_OK, 0, 0, 0, "pubsub", "Listens for messages published to channels.";
    Unsubscribe => "unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_OK, 0, 0, 0, "pubsub", "Stops listening to messages posted to channels.";
    Psubscribe => "psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_OK, 0, 0, 0, "pubsub", "Listens for messages published to channels that match one or more patterns.";
    Punsubscribe => "punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_OK, 0, 0, 0, "pubsub", "Stops listening to messages published to channels that match one or more patterns.";
    Publish => "publish", 3, PUBSUB | LOADING | STALE | FAST, 0, 0, 0, "pubsub", "Posts a message to a channel.";
    Pubsub => "pubsub", -2, 0, 0, 0, 0, "pubsub", "A container for Pub/Sub commands.", subs = PUBSUB_SUBCOMMANDS;
    // cluster: the per-slot key index (and the proxy's slot drop)
    Cluster => "cluster", -2, 0, 0, 0, 0, "cluster", "A container for Redis Cluster commands.", subs = CLUSTER_SUBCOMMANDS;
    Asking => "asking", 1, FAST, 0, 0, 0, "cluster", "Signals that a cluster client is following an -ASK redirect.";
    Readonly => "readonly", 1, FAST | LOADING | STALE, 0, 0, 0, "cluster", "Enables read-only queries for a connection to a Redis Cluster replica node.";
    Readwrite => "readwrite", 1, FAST | LOADING | STALE, 0, 0, 0, "cluster", "Enables read-write queries for a connection to a Reids Cluster replica node.";
    // ferrocache's own
    Cache => "cache", -2, NODE_ONLY, 0, 0, 0, "server", "A container for ferrocache cache-management commands.", subs = CACHE_SUBCOMMANDS;
    Proxy => "proxy", -2, PROXY_ONLY, 0, 0, 0, "server", "A container for cache-proxy's cluster-management commands.", subs = PROXY_SUBCOMMANDS;
}

#[rustfmt::skip]
static PROXY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("proxy|nodes", 2, ADMIN | PROXY_ONLY | LOADING | STALE, 0, 0, 0, "server", "Lists the proxy's nodes: address, weight, state, share of the keyspace, failures."),
    spec!("proxy|add", 3, ADMIN | PROXY_ONLY | LOADING | STALE, 0, 0, 0, "server", "Adds a node (host:port[:weight]); it takes its share of the slots."),
    spec!("proxy|remove", 3, ADMIN | PROXY_ONLY | LOADING | STALE, 0, 0, 0, "server", "Removes a node; its slots go to the others."),
    spec!("proxy|invalidate", 3, ADMIN | PROXY_ONLY | LOADING | STALE, 0, 0, 0, "server", "Forgets the keys matching a glob pattern on every node; returns how many."),
    spec!("proxy|help", 2, PROXY_ONLY | LOADING | STALE, 0, 0, 0, "server", "Returns helpful text about the different subcommands."),
];

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "acl|cat",
        -2,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Lists the ACL categories, or the commands inside a category."
    ),
    spec!(
        "acl|deluser",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Deletes ACL users, and terminates their connections."
    ),
    spec!(
        "acl|dryrun",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Simulates the execution of a command by a user, without executing the command."
    ),
    spec!(
        "acl|getuser",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Lists the ACL rules of a user."
    ),
    spec!(
        "acl|list",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Dumps the effective rules in ACL file format."
    ),
    spec!(
        "acl|setuser",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Creates and modifies an ACL user and its rules."
    ),
    spec!(
        "acl|users",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Lists all ACL users."
    ),
    spec!(
        "acl|whoami",
        2,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns the authenticated username of the current connection."
    ),
    spec!(
        "acl|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Returns helpful text about the different subcommands."
    ),
];

static CACHE_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("cache|invalidate", 3, ADMIN | NODE_ONLY | STALE, 0, 0, 0, "server", "Forgets (removes from memory, not from a backing store) every key of the current database matching a glob pattern; returns how many."),
    spec!("cache|forget", -3, ADMIN | NODE_ONLY | STALE, 0, 0, 0, "server", "Forgets (removes from memory, not from a backing store) the given keys of the current database and tells their trackers; returns how many were in memory."),
    spec!("cache|help", 2, NODE_ONLY | LOADING | STALE, 0, 0, 0, "server", "Returns helpful text about the different subcommands."),
];

#[rustfmt::skip]
static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("slowlog|get", -2, ADMIN | LOADING | STALE, 0, 0, 0, "server", "Returns the slow log's entries."),
    spec!("slowlog|len", 2, ADMIN | LOADING | STALE, 0, 0, 0, "server", "Returns the number of entries in the slow log."),
    spec!("slowlog|reset", 2, ADMIN | LOADING | STALE, 0, 0, 0, "server", "Clears all entries from the slow log."),
    spec!("slowlog|help", 2, LOADING | STALE, 0, 0, 0, "server", "Show helpful text about the different subcommands"),
];

#[rustfmt::skip]
static LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("latency|latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "Returns the latest latency samples for all events."),
    spec!("latency|history", 3, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "Returns timestamp-latency samples for an event."),
    spec!("latency|reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "Resets the latency data for one or more events."),
    spec!("latency|doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "Returns a human-readable latency analysis report."),
    spec!("latency|histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "server", "Returns the cumulative distribution of latencies of a subset or all commands."),
    spec!("latency|help", 2, LOADING | STALE, 0, 0, 0, "server", "Returns helpful text about the different subcommands."),
];

static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("cluster|keyslot", 3, STALE, 0, 0, 0, "cluster", "Returns the hash slot for a key."),
    spec!("cluster|countkeysinslot", 3, STALE, 0, 0, 0, "cluster", "Returns the number of keys in a hash slot."),
    spec!("cluster|getkeysinslot", 4, STALE, 0, 0, 0, "cluster", "Returns the key names in a hash slot."),
    spec!("cluster|dropslots", -2, ADMIN | WRITE | NODE_ONLY | STALE, 0, 0, 0, "cluster", "Removes from memory every key of the given slot ranges (start end ...); used by cache-proxy after a ring change."),
    spec!("cluster|help", 2, LOADING | STALE, 0, 0, 0, "cluster", "Returns helpful text about the different subcommands."),
    spec!("cluster|info", 2, STALE, 0, 0, 0, "cluster", "Returns information about the state of a node."),
    spec!("cluster|links", 2, STALE, 0, 0, 0, "cluster", "Returns a list of all TCP links to and from peer nodes."),
    spec!("cluster|myid", 2, STALE, 0, 0, 0, "cluster", "Returns the ID of a node."),
    spec!("cluster|nodes", 2, STALE, 0, 0, 0, "cluster", "Returns the cluster configuration for a node."),
    spec!("cluster|shards", 2, STALE, 0, 0, 0, "cluster", "Returns the mapping of cluster slots to shards."),
    spec!("cluster|slots", 2, STALE, 0, 0, 0, "cluster", "Returns the mapping of cluster slots to nodes."),
    spec!("cluster|settable", -3, ADMIN | NODE_ONLY | NOSCRIPT | LOADING | STALE, 0, 0, 0, "cluster", "Installs the cluster's slot table (epoch, then node-id ip port hostname ranges per node); an older epoch is refused. Sent by cache-proxy."),
];

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
        "client|tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Controls server-assisted client-side caching for the connection."
    ),
    spec!(
        "client|caching",
        3,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Instructs the server whether to track the keys in the next request."
    ),
    spec!(
        "client|getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns the client ID to which the connection's tracking notifications are redirected."
    ),
    spec!(
        "client|trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Returns information about server-assisted client-side caching for the connection."
    ),
    spec!(
        "client|unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Unblocks a client blocked by a blocking command from a different connection."
    ),
    spec!(
        "client|reply",
        3,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "Instructs the server whether to reply to commands."
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
        "command|getkeysandflags",
        -4,
        LOADING | STALE,
        0,
        0,
        0,
        "server",
        "Extracts the key names and access flags for an arbitrary command."
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

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "pubsub|channels",
        -2,
        PUBSUB | LOADING | STALE,
        0,
        0,
        0,
        "pubsub",
        "Returns the active channels."
    ),
    spec!(
        "pubsub|numsub",
        -2,
        PUBSUB | LOADING | STALE,
        0,
        0,
        0,
        "pubsub",
        "Returns a count of subscribers to channels."
    ),
    spec!(
        "pubsub|numpat",
        2,
        PUBSUB | LOADING | STALE,
        0,
        0,
        0,
        "pubsub",
        "Returns a count of unique pattern subscriptions."
    ),
    spec!(
        "pubsub|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "pubsub",
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

    /// Indices of the key arguments of this call, including commands whose keys are counted
    /// by a `numkeys` argument.
    pub fn keys(self, args: &[impl AsRef<[u8]>]) -> Vec<usize> {
        let spec = self.spec();
        if spec.has(MOVABLE_KEYS) {
            if let Some(keys) = option_keys(self, args) {
                return keys;
            }
            // (index of numkeys, whether a destination key precedes it)
            let (numkeys_at, dest) = match self {
                Cmd::Lmpop | Cmd::Zmpop | Cmd::Sintercard | Cmd::Zintercard => (1, false),
                Cmd::Zunion | Cmd::Zinter | Cmd::Zdiff => (1, false),
                Cmd::Blmpop | Cmd::Bzmpop => (2, false),
                Cmd::Zunionstore | Cmd::Zinterstore | Cmd::Zdiffstore => (2, true),
                Cmd::Eval | Cmd::Evalsha | Cmd::EvalRo | Cmd::EvalshaRo => (2, false),
                Cmd::Fcall | Cmd::FcallRo => (2, false),
                Cmd::Xread | Cmd::Xreadgroup => return xread_keys(args),
                _ => return Vec::new(),
            };
            let Some(n) = args
                .get(numkeys_at)
                .and_then(|a| crate::decode::parse_i64(a.as_ref()))
                .filter(|n| *n > 0)
            else {
                return Vec::new();
            };
            let first = numkeys_at + 1;
            let last = (first + n as usize).min(args.len());
            let mut keys: Vec<usize> = if dest { vec![1] } else { Vec::new() };
            keys.extend(first..last);
            return keys;
        }
        if spec.subcommands.is_empty() {
            return spec.key_indices(args.len()).collect();
        }
        match args.get(1).and_then(|a| spec.subcommand(a.as_ref())) {
            Some(sub) => sub.key_indices(args.len()).collect(),
            None => Vec::new(),
        }
    }
}

/// Keys of the commands whose extra keys follow an option word (Redis's `sortGetKeys` and
/// `georadiusGetKeys`): the key at 1, and the one after STORE (SORT's BY and GET patterns
/// name keys only at run time).
fn option_keys(cmd: Cmd, args: &[impl AsRef<[u8]>]) -> Option<Vec<usize>> {
    if matches!(cmd, Cmd::Georadius | Cmd::Georadiusbymember) {
        // Redis's `georadiusGetKeys`: the source, and the last STORE/STOREDIST from 5 on.
        let mut keys = vec![1];
        let mut i = 5;
        while i < args.len() {
            let w = args[i].as_ref();
            if (w.eq_ignore_ascii_case(b"store") || w.eq_ignore_ascii_case(b"storedist"))
                && i + 1 < args.len()
            {
                keys.truncate(1);
                keys.push(i + 1);
                i += 1;
            }
            i += 1;
        }
        return Some(keys);
    }
    if !matches!(cmd, Cmd::Sort | Cmd::SortRo) {
        return None;
    }
    let mut keys = vec![1];
    let mut i = 2;
    while i < args.len() {
        let w = args[i].as_ref();
        let skip = if w.eq_ignore_ascii_case(b"limit") {
            2
        } else if w.eq_ignore_ascii_case(b"get") || w.eq_ignore_ascii_case(b"by") {
            1
        } else if w.eq_ignore_ascii_case(b"store") && cmd == Cmd::Sort {
            // The last STORE wins, as in Redis.
            keys.truncate(1);
            if i + 1 < args.len() {
                keys.push(i + 1);
            }
            1
        } else {
            0
        };
        i += 1 + skip;
    }
    Some(keys)
}

/// Redis's reply to a name the table does not know (at most 128 characters of arguments).
pub fn unknown_command(args: &[impl AsRef<[u8]>]) -> String {
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let text = String::from_utf8_lossy(a.as_ref());
        let cut: String = text.chars().take(room).collect();
        rest.push_str(&format!("'{cut}' "));
    }
    let name = String::from_utf8_lossy(args[0].as_ref());
    let name: String = name.chars().take(128).collect();
    format!("ERR unknown command '{name}', with args beginning with: {rest}")
}

/// Which binary is asking: a command flagged [`flags::NODE_ONLY`] or [`flags::PROXY_ONLY`] is
/// unknown to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node,
    Proxy,
}

impl Role {
    /// Whether a spec with these flags is served by this role.
    pub fn serves(self, spec: &CommandSpec) -> bool {
        match self {
            Role::Node => !spec.has(PROXY_ONLY),
            Role::Proxy => !spec.has(NODE_ONLY),
        }
    }

    /// The commands this role serves, in table order (what its `COMMAND` lists).
    pub fn commands(self) -> impl Iterator<Item = Cmd> + Clone {
        Cmd::ALL
            .iter()
            .copied()
            .filter(move |c| self.serves(c.spec()))
    }
}

/// Looks a request up and checks its arity and subcommand, with Redis's error texts: what a
/// server answers before it runs anything. Commands of the other binary are unknown.
pub fn resolve_for(
    role: Role,
    args: &[impl AsRef<[u8]>],
) -> Result<(Cmd, Option<&'static CommandSpec>), String> {
    resolve_counted(role, args).map_err(|(error, _)| error)
}

/// [`resolve_for`], and on an arity error also the command it was for (Redis counts those as
/// that command's `rejected_calls`).
#[allow(clippy::type_complexity)]
pub fn resolve_counted(
    role: Role,
    args: &[impl AsRef<[u8]>],
) -> Result<
    (Cmd, Option<&'static CommandSpec>),
    (String, Option<(Cmd, Option<&'static CommandSpec>)>),
> {
    let Some(cmd) = Cmd::lookup(args[0].as_ref()).filter(|c| role.serves(c.spec())) else {
        return Err((unknown_command(args), None));
    };
    let spec = cmd.spec();
    if !spec.arity_ok(args.len()) {
        let error = format!("ERR wrong number of arguments for '{}' command", spec.name);
        return Err((error, Some((cmd, None))));
    }
    if spec.subcommands.is_empty() || args.len() < 2 {
        return Ok((cmd, None));
    }
    let unknown = || {
        let name: String = String::from_utf8_lossy(args[1].as_ref())
            .chars()
            .take(128)
            .collect();
        format!(
            "ERR unknown subcommand '{name}'. Try {} HELP.",
            spec.name.to_ascii_uppercase()
        )
    };
    match spec.subcommand(args[1].as_ref()) {
        Some(sub) if !role.serves(sub) => Err((unknown(), None)),
        Some(sub) if sub.arity_ok(args.len()) => Ok((cmd, Some(sub))),
        Some(sub) => {
            let error = format!("ERR wrong number of arguments for '{}' command", sub.name);
            Err((error, Some((cmd, Some(sub)))))
        }
        None => Err((unknown(), None)),
    }
}

/// [`resolve_for`] the node: for introspection (ACL DRYRUN, tests) where no server answers.
pub fn resolve(args: &[impl AsRef<[u8]>]) -> Result<(Cmd, Option<&'static CommandSpec>), String> {
    resolve_for(Role::Node, args)
}

/// Index of each top-level command in `all_specs()` order (subcommands follow their parent).
fn spec_offsets() -> &'static [usize] {
    static OFFSETS: OnceLock<Vec<usize>> = OnceLock::new();
    OFFSETS.get_or_init(|| {
        let mut offsets = Vec::new();
        let mut i = 0;
        for cmd in Cmd::ALL {
            offsets.push(i);
            i += 1 + cmd.spec().subcommands.len();
        }
        offsets
    })
}

/// The position of `cmd` (or of its subcommand `sub`) in [`all_specs`]: a dense id for
/// per-command statistics and ACL command bitmaps.
pub fn spec_id(cmd: Cmd, sub: Option<&'static CommandSpec>) -> usize {
    let base = spec_offsets()[cmd.index()];
    match sub {
        Some(s) => {
            base + 1
                + cmd
                    .spec()
                    .subcommands
                    .iter()
                    .position(|c| std::ptr::eq(c, s))
                    .unwrap_or(0)
        }
        None => base,
    }
}

/// How many specs [`all_specs`] yields.
pub fn spec_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| all_specs().count())
}

/// All specs, top-level commands then their subcommands (for `COMMAND COUNT` and stats).
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

// memory (#13)
#[rustfmt::skip]
static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("memory|doctor", 2, 0, 0, 0, 0, "server", "Outputs a memory problems report."),
    spec!("memory|malloc-stats", 2, 0, 0, 0, 0, "server", "Returns the allocator statistics."),
    spec!("memory|purge", 2, 0, 0, 0, 0, "server", "Asks the allocator to release memory."),
    spec!("memory|stats", 2, 0, 0, 0, 0, "server", "Returns details about memory usage."),
    spec!("memory|usage", -3, READONLY, 2, 2, 1, "server", "Estimates the memory usage of a key."),
    spec!("memory|help", 2, LOADING | STALE, 0, 0, 0, "server", "Returns helpful text about the different subcommands."),
];

// scripting
static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "script|load",
        3,
        NOSCRIPT | STALE,
        0,
        0,
        0,
        "scripting",
        "Loads a server-side Lua script to the script cache."
    ),
    spec!(
        "script|exists",
        -3,
        NOSCRIPT | STALE,
        0,
        0,
        0,
        "scripting",
        "Determines whether server-side Lua scripts exist in the script cache."
    ),
    spec!(
        "script|flush",
        -2,
        NOSCRIPT,
        0,
        0,
        0,
        "scripting",
        "Removes all server-side Lua scripts from the script cache."
    ),
    spec!(
        "script|kill",
        2,
        NOSCRIPT,
        0,
        0,
        0,
        "scripting",
        "Terminates a server-side Lua script during execution."
    ),
    spec!(
        "script|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "scripting",
        "Returns helpful text about the different subcommands."
    ),
];

static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "function|load",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        0,
        0,
        0,
        "scripting",
        "Creates a library."
    ),
    spec!(
        "function|delete",
        3,
        NOSCRIPT | WRITE,
        0,
        0,
        0,
        "scripting",
        "Deletes a library and its functions."
    ),
    spec!(
        "function|flush",
        -2,
        NOSCRIPT | WRITE,
        0,
        0,
        0,
        "scripting",
        "Deletes all libraries and functions."
    ),
    spec!(
        "function|kill",
        2,
        NOSCRIPT,
        0,
        0,
        0,
        "scripting",
        "Terminates a function during execution."
    ),
    spec!(
        "function|list",
        -2,
        NOSCRIPT,
        0,
        0,
        0,
        "scripting",
        "Returns information about all libraries."
    ),
    spec!(
        "function|stats",
        2,
        NOSCRIPT,
        0,
        0,
        0,
        "scripting",
        "Returns information about a function during execution."
    ),
    spec!(
        "function|help",
        2,
        LOADING | STALE,
        0,
        0,
        0,
        "scripting",
        "Returns helpful text about the different subcommands."
    ),
];
// streams
#[rustfmt::skip]
static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("xgroup|create", -5, WRITE | DENYOOM, 2, 2, 1, "stream", "Creates a consumer group."),
    spec!("xgroup|setid", -5, WRITE, 2, 2, 1, "stream", "Sets the last-delivered ID of a consumer group."),
    spec!("xgroup|destroy", 4, WRITE, 2, 2, 1, "stream", "Destroys a consumer group."),
    spec!("xgroup|createconsumer", 5, WRITE | DENYOOM, 2, 2, 1, "stream", "Creates a consumer in a consumer group."),
    spec!("xgroup|delconsumer", 5, WRITE, 2, 2, 1, "stream", "Deletes a consumer from a consumer group."),
    spec!("xgroup|help", 2, LOADING | STALE, 0, 0, 0, "stream", "Returns helpful text about the different subcommands."),
];

#[rustfmt::skip]
static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("xinfo|consumers", 4, READONLY, 2, 2, 1, "stream", "Returns a list of the consumers in a consumer group."),
    spec!("xinfo|groups", 3, READONLY, 2, 2, 1, "stream", "Returns a list of the consumer groups of a stream."),
    spec!("xinfo|stream", -3, READONLY, 2, 2, 1, "stream", "Returns information about a stream."),
    spec!("xinfo|help", 2, LOADING | STALE, 0, 0, 0, "stream", "Returns helpful text about the different subcommands."),
];

/// Key positions of XREAD and XREADGROUP: the first half of what follows `STREAMS`, found
/// by skipping options as Redis's `xreadGetKeys` does. Empty when the call is malformed.
fn xread_keys(args: &[impl AsRef<[u8]>]) -> Vec<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_ref();
        if a.eq_ignore_ascii_case(b"block") || a.eq_ignore_ascii_case(b"count") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"group") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"noack") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"streams") {
            let rest = args.len() - i - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return Vec::new();
            }
            return (i + 1..i + 1 + rest / 2).collect();
        } else {
            return Vec::new();
        }
    }
    Vec::new()
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
        let args: Vec<&[u8]> = vec![b"evalsha", b"abc", b"2", b"k1", b"k2", b"arg"];
        assert_eq!(Cmd::Evalsha.keys(&args), vec![3, 4]);
        let args: Vec<&[u8]> = vec![b"fcall", b"f", b"0", b"arg"];
        assert!(Cmd::Fcall.keys(&args).is_empty());
        // XREAD's keys follow STREAMS, after options (a group named "streams" included).
        let args: Vec<&[u8]> = vec![b"xread", b"COUNT", b"2", b"STREAMS", b"a", b"b", b"0", b"$"];
        assert_eq!(Cmd::Xread.keys(&args), vec![4, 5]);
        let args: Vec<&[u8]> = vec![
            b"xreadgroup",
            b"GROUP",
            b"streams",
            b"c",
            b"NOACK",
            b"streams",
            b"k",
            b">",
        ];
        assert_eq!(Cmd::Xreadgroup.keys(&args), vec![6]);
        let args: Vec<&[u8]> = vec![b"xread", b"STREAMS", b"a", b"b", b"0"];
        assert!(Cmd::Xread.keys(&args).is_empty());
        let args: Vec<&[u8]> = vec![b"xgroup", b"create", b"k", b"g", b"$"];
        assert_eq!(Cmd::Xgroup.keys(&args), vec![2]);
    }

    #[test]
    fn arity() {
        assert!(Cmd::Get.spec().arity_ok(2));
        assert!(!Cmd::Get.spec().arity_ok(3));
        assert!(Cmd::Set.spec().arity_ok(5));
        assert!(!Cmd::Set.spec().arity_ok(2));
    }
}
