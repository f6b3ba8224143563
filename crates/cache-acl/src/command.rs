//! The ACL command (CAT, DELUSER, DRYRUN, GETUSER, LIST, SETUSER, USERS, WHOAMI, HELP), with
//! Redis 7.0's replies, written into a `ReplyBuf` so node and proxy answer alike.

use std::sync::Arc;

use cache_protocol::command::{all_specs, categories, resolve};
use cache_protocol::ReplyBuf;

use crate::{Acl, UserCell};

/// What the caller must do after the reply.
#[derive(Debug)]
pub enum Effect {
    None,
    /// ACL DELUSER removed these users: close their connections.
    Deleted(Vec<Arc<UserCell>>),
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "LIST",
    "    Show users details in config file format.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// Runs `ACL <sub> ...` (arity already checked against the table) for a connection
/// authenticated as `me`.
///
/// # Errors
/// The error reply's text (code included).
pub fn run(
    acl: &Acl,
    me: &UserCell,
    args: &[impl AsRef<[u8]>],
    out: &mut ReplyBuf,
) -> Result<Effect, String> {
    let arg = |i: usize| args[i].as_ref();
    let sub = arg(1);
    let is = |w: &str| sub.eq_ignore_ascii_case(w.as_bytes());
    if is("setuser") {
        acl.set_user(arg(2), &args[3..]).map_err(|e| e.0)?;
        out.ok();
    } else if is("getuser") {
        let name = String::from_utf8_lossy(arg(2));
        let Some(cell) = acl.get(&name) else {
            out.null();
            return Ok(Effect::None);
        };
        let user = cell.read();
        out.map(6);
        out.bulk(b"flags");
        let flags = user.flag_names();
        out.set(flags.len());
        for f in flags {
            out.bulk(f.as_bytes());
        }
        out.bulk(b"passwords");
        let hashes = user.password_hashes();
        out.array(hashes.len());
        for h in hashes {
            out.bulk(h.as_bytes());
        }
        out.bulk(b"commands");
        out.bulk(user.describe_commands().as_bytes());
        out.bulk(b"keys");
        out.bulk(user.describe_keys().as_bytes());
        out.bulk(b"channels");
        out.bulk(user.describe_channels().as_bytes());
        out.bulk(b"selectors");
        out.array(0);
    } else if is("deluser") {
        let removed = acl.delete(&args[2..]).map_err(|e| e.0)?;
        out.int(removed.len() as i64);
        return Ok(Effect::Deleted(removed));
    } else if is("list") {
        let users = acl.all();
        out.array(users.len());
        for cell in users {
            let line = format!("user {} {}", cell.name, cell.read().describe());
            out.bulk(line.as_bytes());
        }
    } else if is("users") {
        let users = acl.all();
        out.array(users.len());
        for cell in users {
            out.bulk(cell.name.as_bytes());
        }
    } else if is("whoami") {
        out.bulk(me.name.as_bytes());
    } else if is("cat") {
        match args.get(2) {
            None => {
                out.array(categories::NAMES.len());
                for (_, name) in categories::NAMES {
                    out.bulk(name.as_bytes());
                }
            }
            Some(name) => {
                let Some(bit) = categories::by_name(name.as_ref()) else {
                    return Err(format!(
                        "ERR Unknown category '{}'",
                        String::from_utf8_lossy(name.as_ref())
                    ));
                };
                let names: Vec<&str> = all_specs()
                    .filter(|s| s.categories() & bit != 0 && s.subcommands.is_empty())
                    .map(|s| s.name)
                    .collect();
                out.array(names.len());
                for n in names {
                    out.bulk(n.as_bytes());
                }
            }
        }
    } else if is("dryrun") {
        let name = String::from_utf8_lossy(arg(2));
        let Some(cell) = acl.get(&name) else {
            return Err(format!("ERR User '{name}' not found"));
        };
        let request = &args[3..];
        if cache_protocol::Cmd::lookup(request[0].as_ref()).is_none() {
            return Err(format!(
                "ERR Command '{}' not found",
                String::from_utf8_lossy(request[0].as_ref())
            ));
        }
        let (cmd, sub) = resolve(request)?;
        match cell.check(cmd, sub, request) {
            Ok(()) => out.ok(),
            Err(denied) => {
                let full = sub.unwrap_or(cmd.spec()).name;
                out.bulk(denied.dryrun(full, request).as_bytes());
            }
        }
    } else {
        out.array(HELP.len());
        for line in HELP {
            out.simple(line);
        }
    }
    Ok(Effect::None)
}
