//! Redis 7's key specs and command tips, kept beside the table: for every key position what
//! the command does with it (RO/RW/OW/RM, access/update/insert/delete), and how a cluster
//! client spreads the command and merges its replies (`request_policy`, `response_policy`).
//!
//! The data is Redis 7.0.15's own ([`super::redis_specs`], generated from its JSON files), so
//! `COMMAND INFO` reports what Redis reports, and the rules that used to be hand-kept lists are
//! derived from it: the ACL's read/write permission per key ([`acl_needs`]), the backing
//! store's "this write does not need the old value" ([`overwrites`]) and the proxy's split,
//! fan-out and merge ([`CommandSpec::request_policy`], [`CommandSpec::response_policy`]).

use std::sync::OnceLock;

use hashbrown::HashMap;

use super::redis_specs::REDIS_SPECS;
use super::{Cmd, CommandSpec};

/// Key-spec flags (Redis's `CMD_KEY_*`), in the order `COMMAND INFO` lists them.
pub mod key_flags {
    /// Read-only: the value is read, not modified.
    pub const RO: u16 = 1 << 0;
    /// Read-write: the value is modified, possibly after reading it.
    pub const RW: u16 = 1 << 1;
    /// Overwrite: the old value is replaced without being read.
    pub const OW: u16 = 1 << 2;
    /// Remove: the key is deleted (or may be).
    pub const RM: u16 = 1 << 3;
    /// The user's data is returned, copied or otherwise observed.
    pub const ACCESS: u16 = 1 << 4;
    /// Data is updated (replaced or changed in place).
    pub const UPDATE: u16 = 1 << 5;
    /// Data is only added: nothing existing is changed.
    pub const INSERT: u16 = 1 << 6;
    /// Data is deleted.
    pub const DELETE: u16 = 1 << 7;
    /// Not a key (a channel, an index): skipped when keys are listed.
    pub const NOT_KEY: u16 = 1 << 8;
    /// The spec may not find every key; a command-specific parser finds the rest.
    pub const INCOMPLETE: u16 = 1 << 9;
    /// The flags depend on the arguments (SET ... GET, BITFIELD ... SET).
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    /// Names as `COMMAND INFO` reports them.
    pub const NAMES: &[(u16, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

use key_flags::*;

/// Where the search for a key spec's keys starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At this argument index.
    Index(i32),
    /// After this keyword, searched from `startfrom` (negative: backwards from the end).
    Keyword(&'static str, i32),
    /// Only a command-specific parser knows.
    Unknown,
}

/// How the keys continue from where the search began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// `lastkey` (relative to the first; negative counts from the end), `keystep`, `limit`.
    Range(i32, i32, i32),
    /// `keynumidx` (relative to the first), `firstkey` (relative to the first), `keystep`.
    Keynum(i32, i32, i32),
    Unknown,
}

/// One key spec, as Redis 7 declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: u16,
    pub begin: Begin,
    pub find: Find,
    pub notes: Option<&'static str>,
}

/// Who a cluster client sends a command to (`request_policy:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPolicy {
    /// Every primary (shard).
    AllShards,
    /// Every node, replicas included (for the proxy: every node).
    AllNodes,
    /// Split by key: each shard gets the keys it owns.
    MultiShard,
    /// The command needs its own handling (SCAN's cursor).
    Special,
}

/// How the replies of a spread command become one (`response_policy:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsePolicy {
    /// Succeeds when one node succeeded (SCRIPT KILL).
    OneSucceeded,
    /// Succeeds when every node did; the first error otherwise.
    AllSucceeded,
    /// Logical AND of integer replies, element by element (SCRIPT EXISTS).
    AggLogicalAnd,
    AggLogicalOr,
    AggMin,
    AggMax,
    /// Sum of integer replies (DBSIZE, DEL).
    AggSum,
    /// Command-specific (INFO, FUNCTION STATS).
    Special,
}

/// A command's specs and tips, by the name `COMMAND` reports.
struct Meta {
    key_specs: &'static [KeySpec],
    tips: &'static [&'static str],
}

fn metas() -> &'static HashMap<&'static str, Meta> {
    static METAS: OnceLock<HashMap<&'static str, Meta>> = OnceLock::new();
    METAS.get_or_init(|| {
        REDIS_SPECS
            .iter()
            .map(|&(name, key_specs, tips)| (name, Meta { key_specs, tips }))
            .collect()
    })
}

impl CommandSpec {
    /// Redis 7.0.15's key specs of this command (empty for keyless ones and ours).
    pub fn key_specs(&self) -> &'static [KeySpec] {
        metas().get(self.name).map_or(&[], |m| m.key_specs)
    }

    /// Redis 7.0.15's command tips, in its order (`nondeterministic_output`, policies).
    pub fn tips(&self) -> &'static [&'static str] {
        metas().get(self.name).map_or(&[], |m| m.tips)
    }

    pub fn request_policy(&self) -> Option<RequestPolicy> {
        let policy = self.tip("request_policy:")?;
        Some(match policy {
            "all_shards" => RequestPolicy::AllShards,
            "all_nodes" => RequestPolicy::AllNodes,
            "multi_shard" => RequestPolicy::MultiShard,
            _ => RequestPolicy::Special,
        })
    }

    pub fn response_policy(&self) -> Option<ResponsePolicy> {
        let policy = self.tip("response_policy:")?;
        Some(match policy {
            "one_succeeded" => ResponsePolicy::OneSucceeded,
            "all_succeeded" => ResponsePolicy::AllSucceeded,
            "agg_logical_and" => ResponsePolicy::AggLogicalAnd,
            "agg_logical_or" => ResponsePolicy::AggLogicalOr,
            "agg_min" => ResponsePolicy::AggMin,
            "agg_max" => ResponsePolicy::AggMax,
            "agg_sum" => ResponsePolicy::AggSum,
            _ => ResponsePolicy::Special,
        })
    }

    fn tip(&self, prefix: &str) -> Option<&'static str> {
        self.tips().iter().find_map(|t| t.strip_prefix(prefix))
    }
}

/// What Redis assumes of a key it cannot place in a spec (a script's keys say so in its notes).
const WORST: u16 = RW | ACCESS | UPDATE;

impl Cmd {
    /// The key arguments of this call ([`Cmd::keys`]) with each one's key-spec flags. Flags
    /// that depend on the arguments are resolved as Redis's key-extraction procs do (SET with
    /// GET reads, without it overwrites; BITFIELD with SET/INCRBY writes).
    pub fn key_flags(self, args: &[impl AsRef<[u8]>]) -> Vec<(usize, u16)> {
        let indices = self.keys(args);
        if indices.is_empty() {
            return Vec::new();
        }
        let spec = self.spec();
        let spec = match args.get(1).filter(|_| !spec.subcommands.is_empty()) {
            Some(sub) => spec.subcommand(sub.as_ref()).unwrap_or(spec),
            None => spec,
        };
        let variable = |flags| indices.iter().map(|&i| (i, flags)).collect();
        let rest = |from: usize| args[from.min(args.len())..].iter().map(|a| a.as_ref());
        match self {
            Cmd::Set => {
                let get = rest(3).any(|a| a.eq_ignore_ascii_case(b"get"));
                return variable(if get { WORST } else { OW | UPDATE });
            }
            Cmd::Bitfield => {
                let writes = rest(2)
                    .any(|a| a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby"));
                return variable(if writes { WORST } else { RO | ACCESS });
            }
            _ => {}
        }
        let specs = spec.key_specs();
        let placed = spec_positions(specs, args);
        let unknown = specs
            .iter()
            .rev()
            .find(|s| s.begin == Begin::Unknown)
            .map_or(WORST, |s| s.flags);
        indices
            .into_iter()
            .map(|i| {
                let flags = placed
                    .iter()
                    .find(|(at, _)| *at == i)
                    .map_or(unknown, |(_, f)| *f);
                (i, flags & !(INCOMPLETE | VARIABLE_FLAGS))
            })
            .collect()
    }
}

/// The positions the specs find in `args`, as Redis's `getKeysUsingKeySpecs` in partial mode:
/// a spec that cannot be followed (unknown, or out of bounds) contributes nothing.
fn spec_positions(specs: &[KeySpec], args: &[impl AsRef<[u8]>]) -> Vec<(usize, u16)> {
    let argc = args.len() as i64;
    let mut found = Vec::new();
    for spec in specs {
        if spec.flags & NOT_KEY != 0 {
            continue;
        }
        let first = match spec.begin {
            Begin::Index(pos) => i64::from(pos),
            Begin::Keyword(keyword, from) => {
                let from = i64::from(from);
                let start = if from > 0 { from } else { argc + from };
                let hit = if from > 0 {
                    (start..argc).find(|&i| is_word(args, i, keyword))
                } else {
                    (1..=start).rev().find(|&i| is_word(args, i, keyword))
                };
                match hit {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            Begin::Unknown => continue,
        };
        let (first, last, step) = match spec.find {
            Find::Range(lastkey, step, limit) => {
                let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, i64::from(step))
            }
            Find::Keynum(keynumidx, firstkey, step) => {
                let at = first + i64::from(keynumidx);
                let Some(n) = usize::try_from(at)
                    .ok()
                    .and_then(|at| args.get(at))
                    .and_then(|a| crate::decode::parse_i64(a.as_ref()))
                    .filter(|n| *n >= 0)
                else {
                    continue;
                };
                let first = first + i64::from(firstkey);
                (first, first + n - 1, i64::from(step))
            }
            Find::Unknown => continue,
        };
        if first < 1 || last >= argc || last < first || step < 1 {
            continue;
        }
        let mut i = first;
        while i <= last {
            found.push((i as usize, spec.flags));
            i += step;
        }
    }
    found
}

fn is_word(args: &[impl AsRef<[u8]>], i: i64, word: &str) -> bool {
    usize::try_from(i)
        .ok()
        .and_then(|i| args.get(i))
        .is_some_and(|a| a.as_ref().eq_ignore_ascii_case(word.as_bytes()))
}

/// The ACL permissions a key with these flags needs, as Redis's `ACLSelectorCheckKey`:
/// `(read, write)`: read when the data is accessed, write when it is inserted, updated or
/// deleted. A key needing neither (EXISTS, TYPE) passes any key pattern.
pub fn acl_needs(flags: u16) -> (bool, bool) {
    (flags & ACCESS != 0, flags & (INSERT | UPDATE | DELETE) != 0)
}

/// Whether a write with these key flags replaces the key without looking at what was there
/// (OW and not INSERT: SETEX, MSET, a STORE destination). INSERT writes (SETNX, MSETNX) depend
/// on whether the key exists.
pub fn overwrites(flags: u16) -> bool {
    flags & OW != 0 && flags & (INSERT | ACCESS) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(cmd: Cmd, args: &[&str]) -> Vec<(usize, u16)> {
        cmd.key_flags(args)
    }

    #[test]
    fn every_redis_command_of_the_table_has_its_specs() {
        // Commands with keys in our table have specs from Redis (ours have none).
        for spec in super::super::all_specs() {
            if spec.first_key > 0 {
                assert!(
                    !spec.key_specs().is_empty(),
                    "{} has no key specs",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn per_key_flags() {
        assert_eq!(flags(Cmd::Get, &["get", "k"]), vec![(1, RO | ACCESS)]);
        assert_eq!(flags(Cmd::Set, &["set", "k", "v"]), vec![(1, OW | UPDATE)]);
        assert_eq!(
            flags(Cmd::Set, &["set", "k", "v", "GET"]),
            vec![(1, RW | ACCESS | UPDATE)]
        );
        assert_eq!(
            flags(Cmd::Rename, &["rename", "a", "b"]),
            vec![(1, RW | ACCESS | DELETE), (2, OW | UPDATE)]
        );
        assert_eq!(
            flags(Cmd::Zunionstore, &["zunionstore", "d", "2", "a", "b"]),
            vec![(1, OW | UPDATE), (3, RO | ACCESS), (4, RO | ACCESS)]
        );
        assert_eq!(
            flags(Cmd::Sort, &["sort", "s", "STORE", "d"]),
            vec![(1, RO | ACCESS), (3, OW | UPDATE)]
        );
        assert_eq!(
            flags(Cmd::Xread, &["xread", "STREAMS", "a", "b", "0", "0"]),
            vec![(2, RO | ACCESS), (3, RO | ACCESS)]
        );
        assert_eq!(
            flags(Cmd::Evalsha, &["evalsha", "x", "1", "k", "arg"]),
            vec![(3, RW | ACCESS | UPDATE)]
        );
        assert_eq!(flags(Cmd::Del, &["del", "a"]), vec![(1, RM | DELETE)]);
        assert_eq!(
            flags(Cmd::Object, &["object", "encoding", "k"]),
            vec![(2, RO)]
        );
    }

    #[test]
    fn tips_and_policies() {
        let spec = Cmd::Dbsize.spec();
        assert_eq!(spec.request_policy(), Some(RequestPolicy::AllShards));
        assert_eq!(spec.response_policy(), Some(ResponsePolicy::AggSum));
        assert_eq!(
            Cmd::Mget.spec().request_policy(),
            Some(RequestPolicy::MultiShard)
        );
        assert_eq!(Cmd::Mget.spec().response_policy(), None);
        let exists = Cmd::Script.spec().subcommand(b"exists").unwrap();
        assert_eq!(
            exists.response_policy(),
            Some(ResponsePolicy::AggLogicalAnd)
        );
        assert_eq!(
            Cmd::Scan.spec().request_policy(),
            Some(RequestPolicy::Special)
        );
        assert_eq!(Cmd::Get.spec().tips(), &[] as &[&str]);
    }

    #[test]
    fn derived_rules() {
        // EXISTS needs neither permission; GET reads; SET overwrites (write only).
        assert_eq!(acl_needs(RO), (false, false));
        assert_eq!(acl_needs(RO | ACCESS), (true, false));
        assert_eq!(acl_needs(OW | UPDATE), (false, true));
        assert!(overwrites(OW | UPDATE));
        assert!(!overwrites(OW | INSERT));
        assert!(!overwrites(RW | ACCESS | UPDATE));
    }
}
