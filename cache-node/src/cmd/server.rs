//! Server commands: INFO, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, CONFIG, TIME, SHUTDOWN,
//! COMMAND.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_protocol::command::{all_specs, flags, key_flags, Begin, Find, KeySpec, Role};
use cache_protocol::{Cmd, CommandSpec};

use super::connection::help;
use super::{is, CmdError, CmdResult, Ctx};
use crate::config::ConfigError;
use crate::stats::sum;

/// The Redis version we answer to: clients gate features on it, and we implement 7.0's
/// commands and replies.
pub const REDIS_VERSION: &str = "7.0.15";

pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let n = ctx.shared.store.dbsize(ctx.db());
    ctx.out.int(n as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL take an optional ASYNC or SYNC; both are done at once here (dropping a
/// table is a free per shard, in shard order).
fn flush_mode(args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if is(&args[1], "async") || is(&args[1], "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    let shared = ctx.shared;
    shared
        .watches
        .flushing(&shared.store, Some(ctx.db()), ctx.now);
    ctx.store().flush(Some(ctx.db()));
    ctx.out.ok();
    Ok(())
}

pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    let shared = ctx.shared;
    shared.watches.flushing(&shared.store, None, ctx.now);
    ctx.store().flush(None);
    ctx.out.ok();
    Ok(())
}

pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.enabled {
        return Err(CmdError::Msg("ERR SWAPDB is not allowed in cluster mode"));
    }
    // C ints, as Redis reads them (a value past i32 is "invalid", not "out of range").
    let int = |a: &[u8]| super::parse_i64(a).filter(|v| i32::try_from(*v).is_ok());
    let a = int(&args[1]).ok_or(CmdError::Msg("ERR invalid first DB index"))?;
    let b = int(&args[2]).ok_or(CmdError::Msg("ERR invalid second DB index"))?;
    let n = ctx.shared.store.databases() as i64;
    if !(0..n).contains(&a) || !(0..n).contains(&b) {
        return Err(CmdError::DbIndex);
    }
    if a != b {
        ctx.store().swap_db(a as usize, b as usize);
    }
    ctx.out.ok();
    Ok(())
}

pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

pub fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    for a in &args[1..] {
        if !(is(a, "nosave") || is(a, "save") || is(a, "now") || is(a, "force") || is(a, "abort")) {
            return Err(CmdError::Syntax);
        }
    }
    if args[1..].iter().any(|a| is(a, "abort")) {
        return Err(CmdError::Msg("ERR No shutdown in progress."));
    }
    let p = &ctx.shared.persist;
    let mode = if args[1..].iter().any(|a| is(a, "nosave")) {
        crate::persist::SHUTDOWN_NOSAVE
    } else if args[1..].iter().any(|a| is(a, "save")) {
        crate::persist::SHUTDOWN_SAVE
    } else {
        crate::persist::SHUTDOWN_DEFAULT
    };
    p.shutdown_mode.store(mode, Relaxed);
    // Save here, so a failure is this client's error and the node keeps running (as Redis
    // does unless FORCE).
    if !crate::persist::save_on_shutdown(ctx.shared) && !args[1..].iter().any(|a| is(a, "force")) {
        p.shutdown_mode
            .store(crate::persist::SHUTDOWN_DEFAULT, Relaxed);
        return Err(CmdError::Msg("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    tracing::info!(client = ctx.conn.info.id, "SHUTDOWN requested");
    ctx.shared.shutdown.trigger();
    // Like Redis, the client gets no reply: the connection just closes.
    ctx.conn.close = true;
    Ok(())
}

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Print this help.",
];

pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let config = &ctx.shared.config;
    if is(sub, "get") {
        // (canonical name, name as shown, value). Like Redis 7.0, a pattern without glob
        // characters is a direct lookup shown as the client spelled it (`CONFIG GET
        // MAXCLIENTS` answers `MAXCLIENTS`); a parameter already found is not repeated.
        let mut found: Vec<(&str, Vec<u8>, String)> = Vec::new();
        for pattern in &args[2..] {
            let exact = !pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?'));
            for (name, value) in config.matching(pattern) {
                if !found.iter().any(|(n, _, _)| *n == name) {
                    let shown = if exact {
                        pattern.to_vec()
                    } else {
                        name.as_bytes().to_vec()
                    };
                    found.push((name, shown, value));
                }
            }
        }
        ctx.out.map(found.len());
        for (_, shown, value) in found {
            ctx.out.bulk(&shown);
            ctx.out.bulk(value.as_bytes());
        }
    } else if is(sub, "set") {
        // An odd count (a name without its value) is Redis's plain syntax error.
        if !args.len().is_multiple_of(2) {
            return Err(CmdError::Syntax);
        }
        // All or nothing: validate every pair before applying any.
        let pairs: Vec<(String, String)> = args[2..]
            .chunks(2)
            .map(|p| {
                (
                    String::from_utf8_lossy(&p[0]).into_owned(),
                    String::from_utf8_lossy(&p[1]).into_owned(),
                )
            })
            .collect();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(CmdError::Owned(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                )));
            }
            config
                .check(name, value)
                .map_err(|e| config_error(name, e))?;
        }
        for (name, value) in &pairs {
            config.set(name, value).map_err(|e| config_error(name, e))?;
            if name.eq_ignore_ascii_case("requirepass") {
                // As Redis: requirepass is the default user's password.
                ctx.shared.acl.set_default_password(value);
            }
        }
        ctx.shared.apply_eviction_config();
        if pairs
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("maxmemory"))
        {
            crate::memory::evict_now(ctx.shared, ctx.now);
        }
        let expiries = config.notify_flags.load(Relaxed) & super::Notify::EXPIRED != 0;
        ctx.shared.store.report_expiries(expiries);
        ctx.out.ok();
    } else if is(sub, "resetstat") {
        ctx.shared.stats.reset();
        ctx.shared.admission.reset_stats();
        ctx.out.ok();
    } else if is(sub, "rewrite") {
        config
            .rewrite()
            .map_err(|e| CmdError::Owned(format!("ERR {e}")))?;
        ctx.out.ok();
    } else {
        help(ctx, CONFIG_HELP);
    }
    Ok(())
}

fn config_error(name: &str, e: ConfigError) -> CmdError {
    match e {
        ConfigError::Unknown(_) => CmdError::Owned(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
        )),
        other => CmdError::Owned(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {other}"
        )),
    }
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n}B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.2}K", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", n / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", n / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Heap bytes in use and resident bytes, from jemalloc's own statistics.
pub fn memory_stats() -> (u64, u64) {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0) as u64;
    let resident = stats::resident::read().unwrap_or(0) as u64;
    (allocated, resident)
}

/// (user, system) CPU seconds of the whole process, from /proc/self/stat (fields 14 and 15,
/// in clock ticks of 1/100 s: Linux's USER_HZ).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0.0, |ticks| ticks as f64 / 100.0)
    };
    (field(14), field(15))
}

/// MemTotal of /proc/meminfo, in bytes.
fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn rss_bytes() -> u64 {
    // Field 2 of /proc/self/statm is resident pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "backing",
    "cpu",
    "cluster",
    "keyspace",
    "commandstats",
];

pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut wanted: Vec<&str> = Vec::new();
    let mut everything = false;
    if args.len() == 1 {
        wanted.extend(SECTIONS.iter().filter(|s| **s != "commandstats"));
    }
    for a in &args[1..] {
        if is(a, "all") || is(a, "everything") {
            everything = true;
        } else if is(a, "default") {
            wanted.extend(SECTIONS.iter().filter(|s| **s != "commandstats"));
        } else if let Some(s) = SECTIONS.iter().find(|s| is(a, s)) {
            wanted.push(s);
        }
    }
    if everything {
        wanted = SECTIONS.to_vec();
    }
    let mut text = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(ctx, section, &mut text);
    }
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

fn write_section(ctx: &Ctx<'_>, section: &str, t: &mut String) {
    let shared = ctx.shared;
    let stats = &shared.stats;
    let uptime = shared.started.elapsed().as_secs();
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => write!(
            t,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nferrocache_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:{}\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
            env!("CARGO_PKG_VERSION"),
            if shared.cluster.enabled { "cluster" } else { "standalone" },
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            shared.run_id,
            shared.addr.port(),
            ctx.now * 1000,
            uptime,
            uptime / 86400,
            shared.config.hz.load(Relaxed),
            shared.config.hz.load(Relaxed),
            (ctx.now / 1000) & 0xFF_FFFF,
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            shared.config_file.clone().unwrap_or_default(),
        ),
        "clients" => write!(
            t,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
            shared.clients.len(),
            shared.config.maxclients.load(Relaxed),
            // Was a constant 0: report the clients parked in BLPOP & co., as Redis does.
            shared.blocking.blocked_clients.load(Relaxed),
            shared.tracking.clients(),
        ),
        "memory" => {
            let (used, resident) = memory_stats();
            shared.memory.record(used);
            let peak = shared.memory.peak();
            let maxmemory = shared.config.maxmemory.load(Relaxed);
            let rss = rss_bytes();
            let system = total_system_memory();
            let (scripts, scripts_mem) = (shared.scripts.len(), shared.scripts.memory());
            write!(
                t,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nallocator_resident:{resident}\r\ntotal_system_memory:{system}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_scripts_eval:{scripts_mem}\r\nnumber_of_cached_scripts:{scripts}\r\nused_memory_scripts:{scripts_mem}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_allocator:jemalloc-5.3.0\r\nlazyfree_pending_objects:0\r\nmem_not_counted_for_evict:0\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(peak),
                human_bytes(system),
                human_bytes(maxmemory),
                shared.store.eviction.policy().name(),
                if used > 0 { rss as f64 / used as f64 } else { 0.0 },
                rss as i64 - used as i64,
            )
        }
        "persistence" => {
            t.push_str(&super::persistence::info_section(ctx));
            Ok(())
        }
        "stats" => {
            let [ops, input, output] = stats
                .instantaneous
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .rates();
            let errors: u64 = (0..all_specs().count())
                .map(|i| {
                    let (_, _, rejected, failed) = stats.command(i);
                    rejected + failed
                })
                .sum();
            write!(
                t,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:0\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{errors}\r\ndump_payload_sanitizations:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\n",
                shared.admission.received(),
                stats.commands_processed(),
                ops.round() as u64,
                sum(stats, |s| &s.net_input_bytes),
                sum(stats, |s| &s.net_output_bytes),
                input / 1024.0,
                output / 1024.0,
                shared.admission.rejected(),
                shared.store.expired_keys(),
                shared.store.evicted_keys(),
                sum(stats, |s| &s.keyspace_hits),
                sum(stats, |s| &s.keyspace_misses),
                // Were constant zeros: the channels and patterns with subscribers.
                shared.pubsub.channel_count(),
                shared.pubsub.numpat(),
                shared.tracking.total_keys(),
                shared.tracking.total_items(),
                shared.tracking.total_prefixes(),
            )
        }
        "replication" => {
            t.push_str(&crate::replica::info_section(shared));
            Ok(())
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            write!(
                t,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
            )
        }
        "backing" => {
            crate::backing::info(shared, t);
            Ok(())
        }
        "cluster" => write!(
            t,
            "# Cluster\r\ncluster_enabled:{}\r\n",
            u8::from(shared.cluster.enabled)
        ),
        "keyspace" => {
            let _ = write!(t, "# Keyspace\r\n");
            for (db, (keys, expires)) in shared.store.keyspace_counts().into_iter().enumerate() {
                if keys > 0 {
                    let _ = write!(t, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                }
            }
            Ok(())
        }
        "commandstats" => {
            let _ = write!(t, "# Commandstats\r\n");
            for (i, spec) in all_specs().enumerate() {
                let (calls, usec, rejected, failed) = stats.command(i);
                if calls + rejected == 0 {
                    continue;
                }
                let per_call = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
                let _ = write!(
                    t,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    spec.name
                );
            }
            Ok(())
        }
        _ => Ok(()),
    };
}

/// ACL: the shared implementation in cache-acl; DELUSER also closes the deleted users'
/// connections, as Redis does.
pub fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let user = ctx.conn.user.clone();
    match cache_acl::command::run(&ctx.shared.acl, &user, args, ctx.out) {
        Ok(cache_acl::command::Effect::None) => Ok(()),
        Ok(cache_acl::command::Effect::Deleted(users)) => {
            let me = ctx.conn.info.id;
            for c in ctx.shared.clients.all() {
                if users.iter().any(|u| u.name == c.user()) {
                    if c.id == me {
                        ctx.conn.close = true;
                    } else {
                        c.request_kill();
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(CmdError::Owned(e)),
    }
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Print this help.",
];

fn write_command_info(ctx: &mut Ctx<'_>, spec: &CommandSpec) {
    let out = &mut *ctx.out;
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.int(i64::from(spec.arity));
    write_flag_set(out, flags::NAMES, spec.flags);
    out.int(i64::from(spec.first_key));
    out.int(i64::from(spec.last_key));
    out.int(i64::from(spec.step));
    let categories: Vec<&str> = spec.category_names().collect();
    out.set(categories.len());
    for name in categories {
        out.simple(&format!("@{name}"));
    }
    let tips = spec.tips();
    out.set(tips.len());
    for tip in tips {
        out.bulk(tip.as_bytes());
    }
    write_key_specs(out, spec.key_specs());
    out.array(spec.subcommands.len());
    for sub in spec.subcommands {
        write_command_info(ctx, sub);
    }
}

/// The names of the `bits` set in `names`, as a RESP set of simple strings.
fn write_flag_set<F: Copy + Into<u64>>(
    out: &mut cache_protocol::ReplyBuf,
    names: &[(F, &str)],
    bits: F,
) {
    let set: Vec<&str> = names
        .iter()
        .filter(|(f, _)| (*f).into() & bits.into() != 0)
        .map(|(_, n)| *n)
        .collect();
    out.set(set.len());
    for n in set {
        out.simple(n);
    }
}

/// Key specs in the shape of Redis 7's `addReplyCommandKeySpecs`.
fn write_key_specs(out: &mut cache_protocol::ReplyBuf, specs: &[KeySpec]) {
    out.set(specs.len());
    for spec in specs {
        out.map(3 + usize::from(spec.notes.is_some()));
        if let Some(notes) = spec.notes {
            out.bulk(b"notes");
            out.bulk(notes.as_bytes());
        }
        out.bulk(b"flags");
        write_flag_set(out, key_flags::NAMES, spec.flags);
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match spec.begin {
            Begin::Index(pos) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(i64::from(pos));
            }
            Begin::Keyword(keyword, startfrom) => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(i64::from(startfrom));
            }
            Begin::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        let fields: [(&[u8], i32); 3] = match spec.find {
            Find::Range(lastkey, step, limit) => {
                out.bulk(b"range");
                [(b"lastkey", lastkey), (b"keystep", step), (b"limit", limit)]
            }
            Find::Keynum(keynumidx, firstkey, step) => {
                out.bulk(b"keynum");
                [
                    (b"keynumidx", keynumidx),
                    (b"firstkey", firstkey),
                    (b"keystep", step),
                ]
            }
            Find::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
                continue;
            }
        };
        out.bulk(b"spec");
        out.map(3);
        for (name, value) in fields {
            out.bulk(name);
            out.int(i64::from(value));
        }
    }
}

fn write_command_docs(ctx: &mut Ctx<'_>, spec: &CommandSpec) {
    let out = &mut *ctx.out;
    out.bulk(spec.name.as_bytes());
    let has_subs = !spec.subcommands.is_empty();
    out.map(if has_subs { 3 } else { 2 });
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
    if has_subs {
        out.bulk(b"subcommands");
        out.map(spec.subcommands.len());
        for sub in spec.subcommands {
            write_command_docs(ctx, sub);
        }
    }
}

fn find_spec(name: &[u8]) -> Option<&'static CommandSpec> {
    let served = |cmd: &Cmd| Role::Node.serves(cmd.spec());
    if let Some(cmd) = Cmd::lookup(name).filter(served) {
        return Some(cmd.spec());
    }
    let text = std::str::from_utf8(name).ok()?;
    let (parent, _) = text.split_once('|')?;
    let parent = Cmd::lookup(parent.as_bytes()).filter(served)?;
    parent
        .spec()
        .subcommands
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(text))
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]: every command and
/// subcommand (`container|sub`), as Redis 7.0 lists them. No modules: MODULE matches nothing;
/// an unknown category matches nothing.
fn command_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let filter = match &args[2..] {
        [] => None,
        [word, kind, arg]
            if is(word, "filterby")
                && (is(kind, "module") || is(kind, "aclcat") || is(kind, "pattern")) =>
        {
            Some((kind, arg))
        }
        _ => return Err(CmdError::Syntax),
    };
    let category = filter
        .filter(|(kind, _)| is(kind, "aclcat"))
        .map(|(_, arg)| cache_protocol::command::categories::by_name(arg));
    let names: Vec<&'static str> = all_specs()
        .filter(|spec| Role::Node.serves(spec))
        .filter(|spec| match filter {
            None => true,
            Some((kind, _)) if is(kind, "module") => false,
            Some((kind, _)) if is(kind, "aclcat") => category
                .flatten()
                .is_some_and(|c| spec.categories() & c != 0),
            Some((_, pattern)) => {
                cache_protocol::glob::glob_match(pattern, spec.name.as_bytes(), true)
            }
        })
        .map(|spec| spec.name)
        .collect();
    ctx.out.array(names.len());
    for name in names {
        ctx.out.bulk(name.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS `target...`: the keys of a command as the table finds
/// them, with their key-spec flags for the second (Redis's `getKeysSubcommandImpl`).
fn get_keys(ctx: &mut Ctx<'_>, target: &[Bytes], with_flags: bool) -> CmdResult {
    let Some(cmd) = Cmd::lookup(&target[0]).filter(|c| Role::Node.serves(c.spec())) else {
        return Err(CmdError::Msg("ERR Invalid command specified"));
    };
    let mut spec = cmd.spec();
    if let Some(sub) = target.get(1).filter(|_| !spec.subcommands.is_empty()) {
        spec = spec.subcommand(sub).unwrap_or(spec);
    }
    let has_keys = spec.first_key > 0
        || spec.has(flags::MOVABLE_KEYS)
        || spec
            .key_specs()
            .iter()
            .any(|k| k.flags & key_flags::NOT_KEY == 0);
    if !has_keys {
        return Err(CmdError::Msg("ERR The command has no key arguments"));
    }
    if !spec.arity_ok(target.len()) {
        return Err(CmdError::Msg(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys = cmd.key_flags(target);
    if keys.is_empty() && !spec.has(flags::NO_MANDATORY_KEYS) {
        return Err(CmdError::Msg("ERR Invalid arguments specified for command"));
    }
    ctx.out.array(keys.len());
    for (i, bits) in keys {
        if !with_flags {
            ctx.out.bulk(&target[i]);
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(&target[i]);
        let names: Vec<&str> = key_flags::NAMES
            .iter()
            .filter(|(f, _)| bits & f != 0)
            .map(|(_, n)| *n)
            .collect();
        ctx.out.set(names.len());
        for name in names {
            ctx.out.simple(name);
        }
    }
    Ok(())
}

pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 1 {
        ctx.out.array(Role::Node.commands().count());
        for cmd in Role::Node.commands() {
            write_command_info(ctx, cmd.spec());
        }
        return Ok(());
    }
    let sub = &args[1];
    if is(sub, "count") {
        ctx.out.int(Role::Node.commands().count() as i64);
    } else if is(sub, "list") {
        command_list(ctx, args)?;
    } else if is(sub, "info") {
        if args.len() == 2 {
            ctx.out.array(Role::Node.commands().count());
            for cmd in Role::Node.commands() {
                write_command_info(ctx, cmd.spec());
            }
        } else {
            ctx.out.array(args.len() - 2);
            for name in &args[2..] {
                match find_spec(name) {
                    Some(spec) => write_command_info(ctx, spec),
                    // Redis answers an unknown name with a null bulk (`$-1`), not `*-1`.
                    None => ctx.out.null(),
                }
            }
        }
    } else if is(sub, "docs") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            Role::Node.commands().map(|c| c.spec()).collect()
        } else {
            args[2..].iter().filter_map(|n| find_spec(n)).collect()
        };
        ctx.out.map(specs.len());
        for spec in specs {
            write_command_docs(ctx, spec);
        }
    } else if is(sub, "getkeys") || is(sub, "getkeysandflags") {
        get_keys(ctx, &args[2..], is(sub, "getkeysandflags"))?;
    } else {
        help(ctx, COMMAND_HELP);
    }
    Ok(())
}
