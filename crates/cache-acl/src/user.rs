//! One user: its rules (Redis 7.0's `ACL SETUSER` syntax), the permission check, and the
//! description `ACL LIST` prints.

use cache_protocol::command::{
    all_specs, categories, flags, spec_count, spec_id, Cmd, CommandSpec,
};
use cache_protocol::glob::glob_match;
use sha2::{Digest, Sha256};

/// A key pattern may be read (`%R~`), written (`%W~`) or both (`~`, `%RW~`).
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

/// Why `ACL SETUSER` refused a rule; `Display` is Redis's text after "modifier '...': ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    UnknownCommand,
    BadHash,
    NoSuchPassword,
    KeyAfterAll,
    ChannelAfterAll,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
        })
    }
}

impl std::error::Error for RuleError {}

/// What a permission check refused: the command, or the argument at this index (a key or a
/// channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// The error reply (Redis 7.0.15's text); `name` is the command's full name (`config|set`).
    pub fn noperm(self, name: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{name}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string()
            }
        }
    }

    /// ACL DRYRUN's answer, which names the key or channel.
    pub fn dryrun(self, name: &str, args: &[impl AsRef<[u8]>]) -> String {
        let arg = |i: usize| String::from_utf8_lossy(args[i].as_ref()).into_owned();
        match self {
            Denied::Command => format!("This user has no permissions to run the '{name}' command"),
            Denied::Key(i) => format!(
                "This user has no permissions to access the '{}' key",
                arg(i)
            ),
            Denied::Channel(i) => {
                format!(
                    "This user has no permissions to access the '{}' channel",
                    arg(i)
                )
            }
        }
    }
}

/// Command permissions: one bit per entry of `all_specs()` plus one for "commands added
/// later" (set by `+@all`, which is how ACL LIST tells `+@all -x` from `-@all +y...`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn future() -> usize {
        spec_count()
    }

    fn none() -> Self {
        Bits(vec![0; spec_count() / 64 + 1])
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn put(&mut self, i: usize, on: bool) {
        if on {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }

    fn fill(&mut self, on: bool) {
        for i in 0..=Self::future() {
            self.put(i, on);
        }
    }

    fn all(&self) -> bool {
        (0..=Self::future()).all(|i| self.get(i))
    }

    /// Redis's `ACLChangeSelectorPerm`: a command and all its subcommands.
    fn command(&mut self, cmd: Cmd, on: bool) {
        self.put(spec_id(cmd, None), on);
        for sub in cmd.spec().subcommands {
            self.put(spec_id(cmd, Some(sub)), on);
        }
    }

    /// Redis's `ACLSetSelectorCommandBitsForCategory`.
    fn category(&mut self, category: u32, on: bool) {
        for &cmd in Cmd::ALL {
            if cmd.spec().categories() & category != 0 {
                self.command(cmd, on);
            }
            for sub in cmd.spec().subcommands {
                if sub.categories() & category != 0 {
                    self.put(spec_id(cmd, Some(sub)), on);
                }
            }
        }
    }
}

/// One user's rules.
#[derive(Debug, Clone)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)) / `skip-sanitize-payload` (Some(false)): kept and shown
    /// as Redis does; this server has no RESTORE for it to apply to.
    sanitize: Option<bool>,
    /// SHA-256 of each password, in the order they were added.
    passwords: Vec<[u8; 32]>,
    commands: Bits,
    allkeys: bool,
    keys: Vec<(u8, Vec<u8>)>,
    allchannels: bool,
    channels: Vec<Vec<u8>>,
}

impl User {
    /// A user `ACL SETUSER` creates: off, no passwords, no keys, no channels, no commands.
    pub fn new() -> Self {
        User {
            enabled: false,
            nopass: false,
            sanitize: Some(true),
            passwords: Vec::new(),
            commands: Bits::none(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
        }
    }

    /// The `default` user a server starts with: `on nopass ~* &* +@all`.
    pub fn new_default() -> Self {
        let mut user = User::new();
        user.sanitize = None;
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            user.apply(rule.as_bytes()).expect("valid default rules");
        }
        user
    }

    /// Everything allowed: the permission check has nothing to do.
    pub fn unrestricted(&self) -> bool {
        self.allkeys && self.allchannels && self.commands.all()
    }

    /// Applies one rule.
    ///
    /// # Errors
    /// The rule is not understood or cannot apply; the user may be partly changed, so apply
    /// a list to a copy (as [`User::apply_all`] does).
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let word = |w: &str| rule.eq_ignore_ascii_case(w.as_bytes());
        if word("on") {
            self.enabled = true;
        } else if word("off") {
            self.enabled = false;
        } else if word("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if word("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if word("sanitize-payload") {
            self.sanitize = Some(true);
        } else if word("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if word("allkeys") {
            self.allkeys = true;
            self.keys.clear();
        } else if word("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if word("allchannels") {
            self.allchannels = true;
            self.channels.clear();
        } else if word("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if word("allcommands") {
            self.commands.fill(true);
        } else if word("nocommands") {
            self.commands.fill(false);
        } else if word("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels", "off", "-@all"] {
                self.apply(r.as_bytes())?;
            }
            self.sanitize = Some(true);
        } else {
            match rule.first() {
                Some(b'>') => {
                    self.add_password(sha256(&rule[1..]));
                }
                Some(b'#') => {
                    let hash = parse_hash(&rule[1..])?;
                    self.add_password(hash);
                }
                Some(b'<') => self.remove_password(&sha256(&rule[1..]))?,
                Some(b'!') => self.remove_password(&parse_hash(&rule[1..])?)?,
                Some(b'~') => self.add_key(READ | WRITE, &rule[1..])?,
                Some(b'%') => {
                    let tilde = rule
                        .iter()
                        .position(|&b| b == b'~')
                        .ok_or(RuleError::Syntax)?;
                    let mut access = 0;
                    for &c in &rule[1..tilde] {
                        access |= match c.to_ascii_uppercase() {
                            b'R' => READ,
                            b'W' => WRITE,
                            _ => return Err(RuleError::Syntax),
                        };
                    }
                    if access == 0 {
                        return Err(RuleError::Syntax);
                    }
                    self.add_key(access, &rule[tilde + 1..])?;
                }
                Some(b'&') => {
                    let pattern = &rule[1..];
                    if self.allchannels {
                        return Err(RuleError::ChannelAfterAll);
                    }
                    if pattern == b"*" {
                        self.allchannels = true;
                        self.channels.clear();
                    } else if !self.channels.iter().any(|c| c == pattern) {
                        self.channels.push(pattern.to_vec());
                    }
                }
                Some(&sign @ (b'+' | b'-')) => self.command_rule(sign == b'+', &rule[1..])?,
                _ => return Err(RuleError::Syntax),
            }
        }
        Ok(())
    }

    /// Applies `rules` in order, all or nothing.
    ///
    /// # Errors
    /// The first rule refused, and its index.
    pub fn apply_all<R: AsRef<[u8]>>(&mut self, rules: &[R]) -> Result<(), (usize, RuleError)> {
        let mut copy = self.clone();
        for (i, rule) in rules.iter().enumerate() {
            copy.apply(rule.as_ref()).map_err(|e| (i, e))?;
        }
        *self = copy;
        Ok(())
    }

    fn add_password(&mut self, hash: [u8; 32]) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn remove_password(&mut self, hash: &[u8; 32]) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != hash);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        self.nopass = false;
        Ok(())
    }

    fn add_key(&mut self, access: u8, pattern: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeyAfterAll);
        }
        if access == READ | WRITE && pattern == b"*" {
            self.allkeys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|(_, p)| p == pattern) {
            Some((flags, _)) => *flags |= access,
            None => self.keys.push((access, pattern.to_vec())),
        }
        Ok(())
    }

    fn command_rule(&mut self, allow: bool, what: &[u8]) -> Result<(), RuleError> {
        if let Some(category) = what.strip_prefix(b"@") {
            if category.eq_ignore_ascii_case(b"all") {
                self.commands.fill(allow);
                return Ok(());
            }
            let bit = categories::by_name(category).ok_or(RuleError::UnknownCommand)?;
            self.commands.category(bit, allow);
            return Ok(());
        }
        let (name, sub) = match what.iter().position(|&b| b == b'|') {
            Some(bar) => (&what[..bar], Some(&what[bar + 1..])),
            None => (what, None),
        };
        let cmd = Cmd::lookup(name).ok_or(RuleError::UnknownCommand)?;
        match sub {
            None => self.commands.command(cmd, allow),
            Some(sub) => {
                // Redis 7.0 also takes `+select|0` (a first argument) for commands without
                // subcommands; that deprecated form is refused here.
                let sub = cmd
                    .spec()
                    .subcommand(sub)
                    .ok_or(RuleError::UnknownCommand)?;
                self.commands.put(spec_id(cmd, Some(sub)), allow);
            }
        }
        Ok(())
    }

    /// Whether `password` is one of this user's (or the user has `nopass`).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        self.nopass || self.passwords.contains(&sha256(password))
    }

    /// Redis's ACL check for a resolved request: the command (its subcommand's bit when it has
    /// one), then the keys at the table's key positions, then pub/sub channels.
    ///
    /// # Errors
    /// What is not allowed.
    pub fn check(
        &self,
        cmd: Cmd,
        sub: Option<&'static CommandSpec>,
        args: &[impl AsRef<[u8]>],
    ) -> Result<(), Denied> {
        let spec = sub.unwrap_or(cmd.spec());
        if spec.has(flags::NO_AUTH) {
            return Ok(());
        }
        if !self.commands.get(spec_id(cmd, sub)) {
            return Err(Denied::Command);
        }
        if !self.allkeys {
            for (i, key_flags) in cmd.key_flags(args) {
                let need = key_access(key_flags);
                let key = args[i].as_ref();
                let ok = self
                    .keys
                    .iter()
                    .any(|(access, p)| access & need == need && glob_match(p, key, false));
                if !ok {
                    return Err(Denied::Key(i));
                }
            }
        }
        if !self.allchannels {
            let (from, literal) = match cmd {
                Cmd::Publish => (1..2, false),
                Cmd::Subscribe => (1..args.len(), false),
                // A pattern subscription must name an allowed pattern exactly.
                Cmd::Psubscribe => (1..args.len(), true),
                _ => (0..0, false),
            };
            for i in from {
                let channel = args[i].as_ref();
                let ok = self.channels.iter().any(|p| {
                    if literal {
                        p == channel
                    } else {
                        glob_match(p, channel, false)
                    }
                });
                if !ok {
                    return Err(Denied::Channel(i));
                }
            }
        }
        Ok(())
    }

    /// `on`/`off`, then `nopass`, `sanitize-payload`... as ACL GETUSER's `flags`.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            names.push("nopass");
        }
        match self.sanitize {
            Some(false) => names.push("skip-sanitize-payload"),
            Some(true) => names.push("sanitize-payload"),
            None => {}
        }
        names
    }

    /// Hex SHA-256 of each password.
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(|h| hex(h)).collect()
    }

    /// ACL GETUSER's `keys`: `~*`, or each pattern with its access prefix.
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".to_string();
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|(access, p)| {
                let prefix = match *access {
                    READ => "%R~",
                    WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", String::from_utf8_lossy(p))
            })
            .collect();
        parts.join(" ")
    }

    /// ACL GETUSER's `channels`: `&*`, or each pattern.
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".to_string();
        }
        let parts: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }

    /// The command rules as Redis 7.0 reconstructs them from the bitmap: `+@all` or `-@all`,
    /// then the categories that fit best (Redis's greedy choice), then the
    /// single commands that still differ (in table order; Redis's is its hash table's).
    pub fn describe_commands(&self) -> String {
        let additive = !self.commands.get(Bits::future());
        let mut fake = Bits::none();
        fake.fill(!additive);
        let mut rules = vec![if additive { "-@all" } else { "+@all" }.to_string()];
        let mut temp = self.commands.clone();
        let mut applied = [false; 32];
        loop {
            // Redis's greedy best fit: a category with more commands in common than
            // different, the fewest differences first (then the most in common).
            let mut best: Option<(usize, usize, usize)> = None;
            for (j, &(category, _)) in categories::NAMES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0, 0);
                for (id, spec) in all_specs().enumerate() {
                    if spec.categories() & category != 0 {
                        if temp.get(id) {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                let better = best.is_none_or(|(_, d, s)| diff < d || (diff == d && same > s));
                if same > diff && better {
                    best = Some((j, diff, same));
                }
            }
            let Some((j, _, _)) = best else { break };
            let (category, name) = categories::NAMES[j];
            rules.push(format!("{}@{name}", if additive { '+' } else { '-' }));
            fake.category(category, additive);
            temp.category(category, !additive);
            applied[j] = true;
        }
        for &cmd in Cmd::ALL {
            let id = spec_id(cmd, None);
            let mine = self.commands.get(id);
            if mine != fake.get(id) {
                rules.push(format!(
                    "{}{}",
                    if mine { '+' } else { '-' },
                    cmd.spec().name
                ));
                fake.command(cmd, mine);
            }
            for sub in cmd.spec().subcommands {
                let id = spec_id(cmd, Some(sub));
                let mine = self.commands.get(id);
                if mine != fake.get(id) {
                    rules.push(format!("{}{}", if mine { '+' } else { '-' }, sub.name));
                    fake.put(id, mine);
                }
            }
        }
        rules.join(" ")
    }

    /// The rules that rebuild this user, as ACL LIST prints after `user NAME`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flag_names().iter().map(|s| s.to_string()).collect();
        parts.extend(self.password_hashes().into_iter().map(|h| format!("#{h}")));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.allchannels {
            parts.push("&*".to_string());
        } else {
            parts.push("resetchannels".to_string());
            let channels = self.describe_channels();
            if !channels.is_empty() {
                parts.push(channels);
            }
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

impl Default for User {
    fn default() -> Self {
        User::new()
    }
}

/// What a key needs, from its key-spec flags as Redis's `ACLSelectorCheckKey` derives it:
/// `%R` when its data is accessed, `%W` when it is inserted, updated or deleted (so SET needs
/// only `%W`, GETSET both, EXISTS neither).
fn key_access(key_flags: u16) -> u8 {
    match cache_protocol::command::keyspec::acl_needs(key_flags) {
        (true, true) => READ | WRITE,
        (true, false) => READ,
        (false, true) => WRITE,
        (false, false) => 0,
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `#<hash>` / `!<hash>`: exactly 64 lower-case hex digits.
fn parse_hash(text: &[u8]) -> Result<[u8; 32], RuleError> {
    if text.len() != 64 || !text.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    let digit = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        out[i] = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new();
        let rules: Vec<&str> = rules.split_whitespace().collect();
        u.apply_all(&rules).expect("rules apply");
        u
    }

    fn args(words: &str) -> Vec<Vec<u8>> {
        words
            .split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    fn check(u: &User, words: &str) -> Result<(), Denied> {
        let a = args(words);
        let (cmd, sub) = cache_protocol::command::resolve(&a).expect("known command");
        u.check(cmd, sub, &a)
    }

    /// Per-key permissions follow Redis 7's key-spec flags, key by key.
    #[test]
    fn key_permissions_follow_the_key_specs() {
        let u = user("on nopass +@all %R~r:* %W~w:* ~rw:*");
        // Reads (access) need %R; writes (insert/update/delete) need %W.
        assert_eq!(check(&u, "get r:1"), Ok(()));
        assert_eq!(check(&u, "get w:1"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "set w:1 v"), Ok(()), "SET overwrites: write only");
        assert_eq!(check(&u, "set r:1 v"), Err(Denied::Key(1)));
        assert_eq!(
            check(&u, "set w:1 v get"),
            Err(Denied::Key(1)),
            "SET ... GET reads too"
        );
        assert_eq!(check(&u, "del w:1"), Ok(()));
        assert_eq!(check(&u, "getset w:1 v"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "getset rw:1 v"), Ok(()));
        // EXISTS neither reads nor writes the data: any pattern will do.
        assert_eq!(check(&u, "exists r:1 w:1"), Ok(()));
        // Each key of a command on its own: RENAME reads and deletes its source, overwrites
        // its destination.
        assert_eq!(check(&u, "rename rw:1 w:2"), Ok(()));
        assert_eq!(check(&u, "rename w:1 w:2"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "lmove rw:1 r:2 left left"), Err(Denied::Key(2)));
    }

    #[test]
    fn default_user_is_unrestricted() {
        let d = User::new_default();
        assert!(d.unrestricted());
        assert_eq!(d.describe(), "on nopass ~* &* +@all");
        assert!(!User::new().unrestricted());
        assert_eq!(
            User::new().describe(),
            "off sanitize-payload resetchannels -@all"
        );
    }

    #[test]
    fn passwords_are_hashed_and_removable() {
        let mut u = user("on >secret");
        assert!(u.password_ok(b"secret") && !u.password_ok(b"other"));
        assert_eq!(
            u.password_hashes(),
            vec!["2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"]
        );
        assert_eq!(u.apply(b"<nope"), Err(RuleError::NoSuchPassword));
        u.apply(b"<secret").unwrap();
        assert!(!u.password_ok(b"secret"));
        u.apply(b"#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b")
            .unwrap();
        assert!(u.password_ok(b"secret"));
        assert_eq!(u.apply(b"#ABC"), Err(RuleError::BadHash));
        u.apply(b"nopass").unwrap();
        assert!(u.password_ok(b"anything") && u.password_hashes().is_empty());
        u.apply(b"resetpass").unwrap();
        assert!(!u.password_ok(b"anything"));
    }

    #[test]
    fn commands_and_categories() {
        let u = user("+@read -get +set +config|get");
        assert_eq!(check(&u, "get k"), Err(Denied::Command));
        assert_eq!(check(&u, "mget k"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "config get x"), Ok(()));
        assert_eq!(check(&u, "config set x y"), Err(Denied::Command));
        // AUTH and HELLO are always allowed.
        assert_eq!(check(&u, "auth a b"), Ok(()));
        let all = user("allkeys +@all -@dangerous");
        assert_eq!(check(&all, "flushall"), Err(Denied::Command));
        assert_eq!(check(&all, "client kill 1.2.3.4:5"), Err(Denied::Command));
        assert_eq!(check(&all, "client id"), Ok(()));
        assert_eq!(all.describe_commands(), "+@all -@dangerous");
    }

    #[test]
    fn key_patterns_with_access() {
        let u = user("allcommands ~cache:* %R~ro:* %W~wo:*");
        assert_eq!(check(&u, "get cache:1"), Ok(()));
        assert_eq!(check(&u, "get other"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "get ro:1"), Ok(()));
        assert_eq!(check(&u, "set ro:1 v"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "del wo:1"), Ok(()));
        assert_eq!(check(&u, "get wo:1"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "mset cache:a 1 other 2"), Err(Denied::Key(3)));
        assert_eq!(u.describe_keys(), "~cache:* %R~ro:* %W~wo:*");
        let mut merged = user("%R~k %W~k");
        assert_eq!(merged.describe_keys(), "~k");
        assert_eq!(merged.apply(b"~*"), Ok(()));
        assert_eq!(merged.apply(b"~x"), Err(RuleError::KeyAfterAll));
        assert_eq!(merged.apply(b"%X~x"), Err(RuleError::Syntax));
    }

    #[test]
    fn channels() {
        let u = user("allcommands allkeys &news.*");
        assert_eq!(check(&u, "publish news.1 m"), Ok(()));
        assert_eq!(check(&u, "publish other m"), Err(Denied::Channel(1)));
        assert_eq!(check(&u, "subscribe news.a other"), Err(Denied::Channel(2)));
        // PSUBSCRIBE must name an allowed pattern literally.
        assert_eq!(check(&u, "psubscribe news.*"), Ok(()));
        assert_eq!(check(&u, "psubscribe news.a*"), Err(Denied::Channel(1)));
        assert_eq!(u.describe_channels(), "&news.*");
    }

    #[test]
    fn rule_errors_and_atomicity() {
        let mut u = User::new();
        assert_eq!(u.apply(b"bogus"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"+nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply(b"+@nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply(b"+config|nosuch"), Err(RuleError::UnknownCommand));
        let before = u.describe();
        assert_eq!(u.apply_all(&["on", "+get", "bad"]).unwrap_err().0, 2);
        assert_eq!(u.describe(), before);
        // Rules are case-insensitive words.
        let u = user("ON NoPass +GET");
        assert!(u.enabled && u.nopass);
    }

    #[test]
    fn subcommand_rules_describe_like_redis() {
        assert_eq!(
            user("+config|get +config").describe_commands(),
            "-@all +config"
        );
        assert_eq!(
            user("+config +config|get").describe_commands(),
            "-@all +config"
        );
        assert_eq!(user("+config|get").describe_commands(), "-@all +config|get");
        assert_eq!(
            user("+@all -config|get").describe_commands(),
            "+@all -config|get"
        );
        assert_eq!(user("+get +set").describe_commands(), "-@all +get +set");
        assert_eq!(
            user("-@all +@string +@list").describe_commands(),
            "-@all +@list +@string"
        );
    }

    #[test]
    fn reset() {
        let mut u = user("on >p ~* &* +@all");
        u.apply(b"reset").unwrap();
        assert_eq!(u.describe(), "off sanitize-payload resetchannels -@all");
    }
}
