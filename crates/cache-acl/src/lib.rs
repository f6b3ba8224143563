//! ACL users for cache-node and cache-proxy: Redis 7.0's rule syntax (`on >secret ~cache:*
//! +@read`), passwords kept as SHA-256 only, the per-command permission check, and the ACL
//! command itself (written into a `ReplyBuf`, so both binaries answer it the same way).
//!
//! ```text
//!  config `user` lines / ACL SETUSER ──► Acl { name ─► Arc<UserCell> }   (RwLock, rare writes)
//!  AUTH / HELLO AUTH ──► Acl::authenticate ──► the connection keeps its Arc<UserCell>
//!  every command: if acl.restricted() (one relaxed load) ─► UserCell::check
//! ```
//!
//! While only an unrestricted `default` user exists (the common case), `restricted()` is false
//! and the check costs that one load and branch.

pub mod command;
pub mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cache_protocol::command::{Cmd, CommandSpec};

pub use user::{Denied, RuleError, User};

/// A user as connections hold it: rules change in place (ACL SETUSER applies to connected
/// clients at once, as in Redis).
#[derive(Debug)]
pub struct UserCell {
    pub name: String,
    rules: RwLock<User>,
    /// Set by ACL DELUSER: connections still holding it are to be closed.
    deleted: AtomicBool,
}

impl UserCell {
    fn new(name: &str, user: User) -> Arc<Self> {
        Arc::new(UserCell {
            name: name.to_string(),
            rules: RwLock::new(user),
            deleted: AtomicBool::new(false),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, User> {
        self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, User> {
        self.rules.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Relaxed)
    }

    /// The permission check for one resolved request (see [`User::check`]).
    ///
    /// # Errors
    /// What is not allowed.
    pub fn check(
        &self,
        cmd: Cmd,
        sub: Option<&'static CommandSpec>,
        args: &[impl AsRef<[u8]>],
    ) -> Result<(), Denied> {
        self.read().check(cmd, sub, args)
    }
}

/// A `user` line or ACL SETUSER refused: Redis's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError(pub String);

impl std::fmt::Display for AclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AclError {}

/// Every user of one server.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<UserCell>>>,
    /// False while the only user is an unrestricted `default`: nothing to check per command.
    restricted: AtomicBool,
    /// A user was deleted: connections may still hold it, and the check is what tells them
    /// (the proxy closes them there), so checking stays on.
    deleted_any: AtomicBool,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert(
            "default".to_string(),
            UserCell::new("default", User::new_default()),
        );
        Acl {
            users: RwLock::new(users),
            restricted: AtomicBool::new(false),
            deleted_any: AtomicBool::new(false),
        }
    }
}

impl Acl {
    fn users(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<UserCell>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether commands must be checked (more than one user, or a restricted `default`).
    #[inline]
    pub fn restricted(&self) -> bool {
        self.restricted.load(Relaxed)
    }

    fn update_restricted(&self, users: &BTreeMap<String, Arc<UserCell>>) {
        let open = users.len() == 1
            && users.values().all(|u| u.read().unrestricted())
            && !self.deleted_any.load(Relaxed);
        self.restricted.store(!open, Relaxed);
    }

    pub fn default_user(&self) -> Arc<UserCell> {
        self.get("default").expect("the default user always exists")
    }

    pub fn get(&self, name: &str) -> Option<Arc<UserCell>> {
        self.users().get(name).cloned()
    }

    /// Whether a new connection starts authenticated: `default` is on with `nopass`.
    pub fn default_open(&self) -> bool {
        let user = self.default_user();
        let user = user.read();
        user.enabled && user.nopass
    }

    /// Whether `default` has `nopass` (protected mode and `AUTH <password>` ask).
    pub fn default_nopass(&self) -> bool {
        self.default_user().read().nopass
    }

    /// The user these credentials name, if it exists, is on and the password is right.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<UserCell>> {
        let name = std::str::from_utf8(name).ok()?;
        let cell = self.get(name)?;
        let ok = {
            let user = cell.read();
            user.enabled && user.password_ok(password)
        };
        ok.then_some(cell)
    }

    /// ACL SETUSER: creates the user if needed and applies `rules`, all or nothing.
    ///
    /// # Errors
    /// Redis's message for a bad name or the first bad rule.
    pub fn set_user<R: AsRef<[u8]>>(&self, name: &[u8], rules: &[R]) -> Result<(), AclError> {
        self.set_user_inner(name, rules, false)
    }

    /// As [`set_user`](Self::set_user); with `redact`, a refused password rule (`<secret`) is
    /// not repeated in the message (config lines end up in logs).
    fn set_user_inner<R: AsRef<[u8]>>(
        &self,
        name: &[u8],
        rules: &[R],
        redact: bool,
    ) -> Result<(), AclError> {
        if name.iter().any(|&b| b == b' ' || b == 0) {
            return Err(AclError(
                "ERR Usernames can't contain spaces or null characters".into(),
            ));
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let existing = users.get(&name).cloned();
        let mut user = existing
            .as_ref()
            .map_or_else(User::new, |cell| cell.read().clone());
        user.apply_all(rules).map_err(|(i, e)| {
            let rule = rules[i].as_ref();
            let shown = if redact && matches!(rule.first(), Some(b'>' | b'<')) {
                format!("{}***", rule[0] as char)
            } else {
                String::from_utf8_lossy(rule).into_owned()
            };
            AclError(format!("ERR Error in ACL SETUSER modifier '{shown}': {e}"))
        })?;
        match existing {
            Some(cell) => *cell.write() = user,
            None => {
                users.insert(name.clone(), UserCell::new(&name, user));
            }
        }
        self.update_restricted(&users);
        Ok(())
    }

    /// A `user` directive (`alice on >secret ~cache:* +@read`), as in redis.conf.
    ///
    /// # Errors
    /// An empty line, or what ACL SETUSER would answer.
    pub fn set_user_line(&self, line: &str) -> Result<(), AclError> {
        let mut words = line.split_whitespace();
        let name = words
            .next()
            .ok_or_else(|| AclError("ERR a user line needs a name".into()))?;
        let rules: Vec<&str> = words.collect();
        self.set_user_inner(name.as_bytes(), &rules, true)
    }

    /// `requirepass`: the default user's password (empty = `nopass`), as Redis applies it.
    pub fn set_default_password(&self, password: &str) {
        let result = if password.is_empty() {
            self.set_user(b"default", &["nopass"])
        } else {
            self.set_user(
                b"default",
                &["resetpass".to_string(), format!(">{password}")],
            )
        };
        debug_assert!(result.is_ok());
    }

    /// ACL DELUSER: the removed users (their connections are to be closed).
    ///
    /// # Errors
    /// `default` cannot be removed.
    pub fn delete<N: AsRef<[u8]>>(&self, names: &[N]) -> Result<Vec<Arc<UserCell>>, AclError> {
        if names.iter().any(|n| n.as_ref() == b"default") {
            return Err(AclError("ERR The 'default' user cannot be removed".into()));
        }
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let mut removed = Vec::new();
        for name in names {
            let name = String::from_utf8_lossy(name.as_ref());
            if let Some(cell) = users.remove(name.as_ref()) {
                cell.deleted.store(true, Relaxed);
                self.deleted_any.store(true, Relaxed);
                removed.push(cell);
            }
        }
        self.update_restricted(&users);
        Ok(removed)
    }

    /// Every user, by name.
    pub fn all(&self) -> Vec<Arc<UserCell>> {
        self.users().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_only_beyond_an_open_default() {
        let acl = Acl::default();
        assert!(!acl.restricted() && acl.default_open());
        acl.set_user_line("alice on >secret ~cache:* +@read")
            .unwrap();
        assert!(acl.restricted());
        assert!(acl.authenticate(b"alice", b"secret").is_some());
        assert!(acl.authenticate(b"alice", b"wrong").is_none());
        assert!(acl.authenticate(b"bob", b"secret").is_none());
        let alice = acl.get("alice").unwrap();
        acl.delete(&["alice"]).unwrap();
        // Holders of a deleted user are still checked (and find it deleted).
        assert!(acl.restricted() && alice.is_deleted());
        let acl = Acl::default();
        acl.set_default_password("pw");
        assert!(!acl.default_open() && !acl.restricted());
        assert!(acl.authenticate(b"default", b"pw").is_some());
        acl.set_default_password("");
        assert!(acl.default_open());
        assert!(acl.delete(&["default"]).is_err());
    }

    #[test]
    fn set_user_is_all_or_nothing() {
        let acl = Acl::default();
        let err = acl.set_user(b"bob", &["on", "+nosuch"]).unwrap_err();
        assert_eq!(
            err.0,
            "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        assert!(acl.get("bob").is_none());
        assert!(acl.set_user(b"a b", &["on"]).is_err());
    }
}
