//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO, FUNCTION.
//!
//! Handlers check arguments and flags and hand an [`Invocation`] to the connection, which runs
//! it with the gate held exclusively (see `crate::scripting`); inside EXEC it runs in place.

use bytes::Bytes;

use super::{int_arg, is, CmdError, CmdResult, Ctx};
use crate::scripting::{self, flag, Invocation, Kind};

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// KEYS and ARGV of `cmd name numkeys key... arg...`.
fn split_keys(
    args: &[Bytes],
    numkeys_err: &'static str,
) -> Result<(Vec<Bytes>, Vec<Bytes>), CmdError> {
    let numkeys = int_arg(&args[2]).map_err(|e| {
        if numkeys_err.is_empty() {
            e
        } else {
            CmdError::Msg(numkeys_err)
        }
    })?;
    if numkeys > (args.len() - 3) as i64 {
        return Err(CmdError::Msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::Msg("ERR Number of keys can't be negative"));
    }
    let split = 3 + numkeys as usize;
    Ok((args[3..split].to_vec(), args[split..].to_vec()))
}

/// Runs now when the gate is already exclusive (inside EXEC), else after this handler.
fn start(ctx: &mut Ctx<'_>, inv: Invocation) {
    if ctx.conn.in_exec {
        scripting::run(ctx, inv);
    } else {
        ctx.conn.script = Some(Box::new(inv));
    }
}

/// `FLUSH [ASYNC|SYNC]`: both flush at once (nothing here is freed in the background).
fn flush_mode_ok(args: &[Bytes]) -> bool {
    args.len() == 2 || (args.len() == 3 && (is(&args[2], "sync") || is(&args[2], "async")))
}

fn read_only_name(name: &[u8]) -> bool {
    name.len() > 3 && name[name.len() - 3..].eq_ignore_ascii_case(b"_ro")
}

/// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO.
pub fn eval(ctx: &mut Ctx<'_>, args: &[Bytes], by_sha: bool) -> CmdResult {
    let (keys, argv) = split_keys(args, "")?;
    let ro = read_only_name(&args[0]);
    let scripts = &ctx.shared.scripts;
    let (sha, script) = if by_sha {
        if args[1].len() != 40 {
            return Err(CmdError::Msg(NOSCRIPT));
        }
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match scripts.get(&sha) {
            Some(s) => (sha, s),
            None => return Err(CmdError::Msg(NOSCRIPT)),
        }
    } else {
        let sha = scripting::sha1hex(&args[1]);
        match scripts.get(&sha) {
            Some(s) => (sha, s),
            None => {
                let flags = scripting::compile(&sha, &args[1]).map_err(CmdError::Owned)?;
                let s = scripts.insert(sha.clone(), args[1].clone(), flags);
                (sha, s)
            }
        }
    };
    let oom = scripting::admit(ctx, script.flags, ro).map_err(CmdError::Owned)?;
    let read_only =
        ro || (script.flags & flag::EVAL_COMPAT == 0 && script.flags & flag::NO_WRITES != 0);
    start(
        ctx,
        Invocation {
            kind: Kind::Eval {
                sha,
                body: script.body.clone(),
            },
            keys,
            argv,
            flags: script.flags,
            read_only,
            oom,
        },
    );
    Ok(())
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
pub fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let scripts = &ctx.shared.scripts;
    if is(sub, "load") {
        let sha = scripting::sha1hex(&args[2]);
        if !scripts.contains(&sha) {
            let flags = scripting::compile(&sha, &args[2]).map_err(CmdError::Owned)?;
            scripts.insert(sha.clone(), args[2].clone(), flags);
        }
        ctx.out.bulk(sha.as_bytes());
    } else if is(sub, "exists") {
        ctx.out.array(args.len() - 2);
        for sha in &args[2..] {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            ctx.out.int(i64::from(scripts.contains(&sha)));
        }
    } else if is(sub, "flush") {
        if !flush_mode_ok(args) {
            return Err(CmdError::Msg(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            ));
        }
        scripts.flush();
        ctx.out.ok();
    } else if is(sub, "kill") {
        // Scripts run to completion under the exclusive gate: none is ever seen running.
        return Err(CmdError::Msg("NOTBUSY No scripts in execution right now."));
    } else if is(sub, "help") {
        super::connection::help(ctx, SCRIPT_HELP);
    } else {
        return Err(CmdError::Owned(format!(
            "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

/// FCALL / FCALL_RO.
pub fn fcall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[1]).to_string();
    let Some((_, info)) = ctx.shared.scripts.functions.find(&name) else {
        return Err(CmdError::Msg("ERR Function not found"));
    };
    let (keys, argv) = split_keys(args, "ERR Bad number of keys provided")?;
    let ro = read_only_name(&args[0]);
    let oom = scripting::admit(ctx, info.flags, ro).map_err(CmdError::Owned)?;
    let read_only = ro || info.flags & flag::NO_WRITES != 0;
    start(
        ctx,
        Invocation {
            kind: Kind::Function { name },
            keys,
            argv,
            flags: info.flags,
            read_only,
            oom,
        },
    );
    Ok(())
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / KILL / HELP.
pub fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let registry = &ctx.shared.scripts.functions;
    if is(sub, "load") {
        let mut replace = false;
        let mut i = 2;
        while i < args.len() - 1 {
            if is(&args[i], "replace") {
                replace = true;
                i += 1;
                continue;
            }
            return Err(CmdError::Owned(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(&args[i])
            )));
        }
        if i >= args.len() {
            return Err(CmdError::Msg("ERR Function code is missing"));
        }
        let name = registry
            .load(args[i].clone(), replace)
            .map_err(CmdError::Owned)?;
        ctx.out.bulk(name.as_bytes());
    } else if is(sub, "delete") {
        if !registry.delete(&String::from_utf8_lossy(&args[2])) {
            return Err(CmdError::Msg("ERR Library not found"));
        }
        ctx.out.ok();
    } else if is(sub, "flush") {
        if args.len() > 3 {
            return Err(CmdError::Msg(
                "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
            ));
        }
        if !flush_mode_ok(args) {
            return Err(CmdError::Msg(
                "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
            ));
        }
        registry.flush();
        ctx.out.ok();
    } else if is(sub, "list") {
        list(ctx, args)?;
    } else if is(sub, "stats") {
        let (libraries, functions) = registry.counts();
        ctx.out.map(2);
        ctx.out.bulk(b"running_script");
        ctx.out.null();
        ctx.out.bulk(b"engines");
        ctx.out.map(1);
        ctx.out.bulk(b"LUA");
        ctx.out.map(2);
        ctx.out.bulk(b"libraries_count");
        ctx.out.int(libraries as i64);
        ctx.out.bulk(b"functions_count");
        ctx.out.int(functions as i64);
    } else if is(sub, "kill") {
        return Err(CmdError::Msg("NOTBUSY No scripts in execution right now."));
    } else if is(sub, "help") {
        super::connection::help(ctx, FUNCTION_HELP);
    } else {
        return Err(CmdError::Owned(format!(
            "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        if !with_code && is(&args[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(&args[i], "libraryname") {
            if i >= args.len() - 1 {
                return Err(CmdError::Msg("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return Err(CmdError::Owned(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&args[i])
            )));
        }
        i += 1;
    }
    let libraries: Vec<_> = ctx
        .shared
        .scripts
        .functions
        .libraries()
        .into_iter()
        .filter(|l| {
            pattern.is_none_or(|p| cache_protocol::glob::glob_match(p, l.name.as_bytes(), true))
        })
        .collect();
    ctx.out.array(libraries.len());
    for lib in &libraries {
        ctx.out.map(if with_code { 4 } else { 3 });
        ctx.out.bulk(b"library_name");
        ctx.out.bulk(lib.name.as_bytes());
        ctx.out.bulk(b"engine");
        ctx.out.bulk(b"LUA");
        ctx.out.bulk(b"functions");
        ctx.out.array(lib.functions.len());
        for f in &lib.functions {
            ctx.out.map(3);
            ctx.out.bulk(b"name");
            ctx.out.bulk(f.name.as_bytes());
            ctx.out.bulk(b"description");
            match &f.description {
                Some(d) => ctx.out.bulk(d.as_bytes()),
                None => ctx.out.null(),
            }
            ctx.out.bulk(b"flags");
            let names: Vec<&str> = scripting::functions::flag_names(f.flags).collect();
            ctx.out.set(names.len());
            for n in names {
                ctx.out.simple(n);
            }
        }
        if with_code {
            ctx.out.bulk(b"library_code");
            ctx.out.bulk(&lib.code);
        }
    }
    Ok(())
}
