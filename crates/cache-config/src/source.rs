//! Where values come from: the command line, TOML files and redis.conf files, and CONFIG
//! REWRITE writing them back.

use crate::{ConfigError, Values};

/// The format of a configuration file: TOML by extension, else Redis's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    RedisConf,
}

impl Format {
    pub fn of(path: &str) -> Format {
        if path.ends_with(".toml") {
            Format::Toml
        } else {
            Format::RedisConf
        }
    }
}

/// Where a directive came from, for errors that name the file, the line and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: String,
    pub line: usize,
    pub text: String,
}

impl Origin {
    /// redis-server's message for a refused directive.
    pub fn error(&self, reason: &str) -> ConfigError {
        if self.line == 0 {
            // TOML: the parser keeps no line numbers; the text is `name = value`.
            return ConfigError::File(format!(
                "config file {}: '{}': {reason}",
                self.path, self.text
            ));
        }
        ConfigError::File(format!(
            "\n*** FATAL CONFIG FILE ERROR (ferrocache, Redis 7.0.15 compatible) ***\n\
             Reading the configuration file {}, at line {}\n>>> '{}'\n{reason}",
            self.path, self.line, self.text
        ))
    }
}

/// One `name value` from a file or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    /// The file line, or `None` for the command line.
    pub origin: Option<Origin>,
}

impl Directive {
    /// Applies this directive at start-up.
    ///
    /// # Errors
    /// A refused name or value, with the file, line and text where it came from a file.
    pub fn apply(&self, values: &Values) -> Result<(), ConfigError> {
        values
            .set_initial(&self.name, &self.value)
            .map(|_| ())
            .map_err(|e| match &self.origin {
                Some(origin) => origin.error(&match e {
                    ConfigError::Unknown(_) => {
                        "Bad directive or wrong number of arguments".to_string()
                    }
                    other => other.to_string(),
                }),
                None => ConfigError::Invalid(format!("--{}: {e}", self.name)),
            })
    }
}

/// What the command line says: `[FILE] [--config FILE] [--NAME VALUE...]...`, as
/// redis-server reads it (a first argument that is not an option is a config file; an option
/// takes every following word up to the next `--`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    pub file: Option<String>,
    pub pairs: Vec<Directive>,
    pub help: bool,
    pub version: bool,
}

impl CommandLine {
    /// Parses `args` (without the program name).
    ///
    /// # Errors
    /// A stray word, an option without a value, or two config files.
    pub fn parse(args: &[String]) -> Result<CommandLine, ConfigError> {
        let mut line = CommandLine::default();
        let mut i = 0;
        if let Some(first) = args.first() {
            if !first.starts_with('-') {
                line.file = Some(first.clone());
                i = 1;
            }
        }
        while i < args.len() {
            let arg = &args[i];
            match arg.as_str() {
                "--help" | "-h" => {
                    line.help = true;
                    i += 1;
                    continue;
                }
                "--version" | "-v" => {
                    line.version = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let Some(name) = arg.strip_prefix("--") else {
                return Err(ConfigError::Invalid(format!(
                    "expected --NAME VALUE, got '{arg}'"
                )));
            };
            let mut words = Vec::new();
            i += 1;
            while i < args.len() && !(args[i].starts_with("--") && args[i].len() > 2) {
                words.push(args[i].as_str());
                i += 1;
            }
            if words.is_empty() {
                return Err(ConfigError::Invalid(format!("--{name} needs a value")));
            }
            let value = words.join(" ");
            if name == "config" {
                if line.file.is_some() {
                    return Err(ConfigError::Invalid(
                        "a config file is given more than once".into(),
                    ));
                }
                line.file = Some(value);
                continue;
            }
            line.pairs.push(Directive {
                name: name.to_string(),
                value,
                origin: None,
            });
        }
        Ok(line)
    }

    /// Applies the file (if any) and then the command line to `values`: the command line
    /// wins, as with redis-server.
    ///
    /// # Errors
    /// The first refused directive, or a file that cannot be read.
    pub fn apply(&self, values: &Values) -> Result<(), ConfigError> {
        if let Some(path) = &self.file {
            for directive in load_file(path)? {
                directive.apply(values)?;
            }
        }
        for directive in &self.pairs {
            directive.apply(values)?;
        }
        Ok(())
    }
}

/// Reads a configuration file in its [`Format`].
///
/// # Errors
/// A file that cannot be read, or a line that does not split (unbalanced quotes), or TOML
/// that does not parse.
pub fn load_file(path: &str) -> Result<Vec<Directive>, ConfigError> {
    match Format::of(path) {
        Format::Toml => Ok(load_toml_pairs(path)?
            .into_iter()
            .map(|(name, value)| Directive {
                origin: Some(Origin {
                    path: path.to_string(),
                    line: 0,
                    text: format!("{name} = {value}"),
                }),
                name,
                value,
            })
            .collect()),
        Format::RedisConf => load_redis_conf(path, 0),
    }
}

fn read(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File(format!("cannot read config file {path}: {e}")))
}

fn load_redis_conf(path: &str, depth: usize) -> Result<Vec<Directive>, ConfigError> {
    if depth > 8 {
        return Err(ConfigError::File(format!(
            "{path}: include nested too deeply"
        )));
    }
    let text = read(path)?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let origin = Origin {
            path: path.to_string(),
            line: n + 1,
            text: trimmed.to_string(),
        };
        let words = split_args(trimmed)
            .ok_or_else(|| origin.error("Unbalanced quotes in configuration line"))?;
        let Some((name, rest)) = words.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if name == "include" {
            for file in rest {
                out.extend(load_redis_conf(file, depth + 1)?);
            }
            continue;
        }
        if rest.is_empty() {
            return Err(origin.error("Bad directive or wrong number of arguments"));
        }
        out.push(Directive {
            name,
            value: rest.join(" "),
            origin: Some(origin),
        });
    }
    Ok(out)
}

/// Splits a line as Redis's `sdssplitargs`: words separated by blanks, `"..."` with C
/// escapes (`\n`, `\xHH`…), `'...'` with only `\'`. `None` on unbalanced quotes or a closing
/// quote not followed by a blank.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return Some(words);
        }
        let mut word = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let Some(&c) = bytes.get(i) else {
                if in_double || in_single {
                    return None;
                }
                break;
            };
            if in_double {
                if c == b'\\' && i + 3 < bytes.len() && bytes[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).ok();
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        word.push(v);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < bytes.len() {
                    word.push(match bytes[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                word.push(c);
            } else if in_single {
                if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                    word.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                word.push(c);
            } else if c.is_ascii_whitespace() {
                break;
            } else if c == b'"' && word.is_empty() {
                in_double = true;
            } else if c == b'\'' && word.is_empty() {
                in_single = true;
            } else {
                word.push(c);
            }
            i += 1;
        }
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
}

/// A value as redis.conf needs it written: bare when it is one plain word, else quoted.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads a flat TOML file (`port = 7001`, `maxmemory = "100mb"`) as `(name, value)` pairs in
/// the file's order, values as text, so the same checks handle file and command line. An
/// array gives one pair per element.
///
/// # Errors
/// When the file cannot be read or parsed, or a value is a table.
pub fn load_toml_pairs(path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let text = read(path)?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::File(format!(
            "config file {path} is not valid TOML: {}",
            e.message()
        ))
    })?;
    let mut pairs = Vec::new();
    for (name, value) in table {
        let values = match value {
            toml::Value::Array(items) => items,
            other => vec![other],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => if b { "yes" } else { "no" }.to_string(),
                _ => {
                    return Err(ConfigError::File(format!(
                        "config file {path}: '{name}' must be a string, number or boolean"
                    )))
                }
            };
            pairs.push((name.clone(), text));
        }
    }
    Ok(pairs)
}

impl Values {
    /// CONFIG REWRITE: writes every parameter given at start or set since back into `path`,
    /// in its format. In a redis.conf the first line of each such directive is replaced and
    /// its later lines dropped, comments and everything else kept; the rest is appended.
    ///
    /// # Errors
    /// The file cannot be read or replaced.
    pub fn rewrite(&self, path: &str) -> Result<(), ConfigError> {
        let changed = self.changed();
        let text = match Format::of(path) {
            Format::Toml => {
                let mut out = String::from("# Written by CONFIG REWRITE\n");
                let mut i = 0;
                while i < changed.len() {
                    let name = changed[i].0;
                    let same: Vec<&String> = changed[i..]
                        .iter()
                        .take_while(|(n, _)| *n == name)
                        .map(|(_, v)| v)
                        .collect();
                    let shown: Vec<String> = same.iter().map(|v| toml_string(v)).collect();
                    if shown.len() == 1 {
                        out.push_str(&format!("{name} = {}\n", shown[0]));
                    } else {
                        out.push_str(&format!("{name} = [{}]\n", shown.join(", ")));
                    }
                    i += same.len();
                }
                out
            }
            Format::RedisConf => {
                let old = std::fs::read_to_string(path).unwrap_or_default();
                let mut written: Vec<&str> = Vec::new();
                let mut out = String::new();
                let render = |name: &str| -> String {
                    changed
                        .iter()
                        .filter(|(n, _)| *n == name)
                        .map(|(n, v)| format!("{n} {}\n", quote(v)))
                        .collect()
                };
                for line in old.lines() {
                    let directive = split_args(line.trim())
                        .and_then(|w| w.into_iter().next())
                        .filter(|_| !line.trim_start().starts_with('#'))
                        .and_then(|name| self.find(&name).map(|(_, p)| p.name));
                    match directive {
                        Some(name) if changed.iter().any(|(n, _)| *n == name) => {
                            if !written.contains(&name) {
                                out.push_str(&render(name));
                                written.push(name);
                            }
                        }
                        _ => {
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                }
                let rest: Vec<&str> = changed
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| !written.contains(n))
                    .collect();
                if !rest.is_empty() {
                    out.push_str("# Generated by CONFIG REWRITE\n");
                    let mut done: Vec<&str> = Vec::new();
                    for name in rest {
                        if !done.contains(&name) {
                            out.push_str(&render(name));
                            done.push(name);
                        }
                    }
                }
                out
            }
        };
        let temp = format!("{path}.rewrite-{}", std::process::id());
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, path))
            .map_err(|e| ConfigError::File(format!("Rewriting config file: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Param};

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(
            split_args("save 900 1").unwrap(),
            strings(&["save", "900", "1"])
        );
        assert_eq!(
            split_args(r#"proc-title-template "{title} {listen-addr}""#).unwrap(),
            strings(&["proc-title-template", "{title} {listen-addr}"])
        );
        assert_eq!(
            split_args(r#"notify-keyspace-events """#).unwrap(),
            strings(&["notify-keyspace-events", ""])
        );
        assert_eq!(
            split_args(r#"a "x\x41\n""#).unwrap(),
            strings(&["a", "xA\n"])
        );
        assert_eq!(split_args(r"a 'it\'s'").unwrap(), strings(&["a", "it's"]));
        assert!(split_args(r#"a "open"#).is_none());
        assert!(split_args(r#"a "x"y"#).is_none());
    }

    #[test]
    fn command_line_as_redis_server() {
        let line = CommandLine::parse(&strings(&[
            "redis.conf",
            "--port",
            "7001",
            "--save",
            "900",
            "1",
            "--list-max-listpack-size",
            "-2",
            "--notify-keyspace-events",
            "",
        ]))
        .unwrap();
        assert_eq!(line.file.as_deref(), Some("redis.conf"));
        let pairs: Vec<(&str, &str)> = line
            .pairs
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("port", "7001"),
                ("save", "900 1"),
                ("list-max-listpack-size", "-2"),
                ("notify-keyspace-events", "")
            ]
        );
        assert!(CommandLine::parse(&strings(&["--port"])).is_err());
        assert!(CommandLine::parse(&strings(&["--port", "1", "stray"])).is_ok());
        assert!(CommandLine::parse(&strings(&["a.conf", "--config", "b.toml"])).is_err());
        assert!(CommandLine::parse(&strings(&["--help"])).unwrap().help);
    }

    static TABLE: &[Param] = &[
        Param::new("port", Kind::Int { min: 0, max: 65535 }, "6379", "").fixed(),
        Param::new(
            "tcp-keepalive",
            Kind::Int {
                min: 0,
                max: i32::MAX as i64,
            },
            "300",
            "",
        ),
        Param::new("maxmemory", Kind::Memory, "0", ""),
        Param::new("user", Kind::Lines, "", ""),
    ];

    #[test]
    fn redis_conf_errors_name_file_line_and_directive() {
        let dir = std::env::temp_dir().join(format!("cache-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.conf");
        std::fs::write(&path, "# comment\nport 7001\ntcp-keepalivee 300\n").unwrap();
        let values = Values::new(TABLE);
        let line = CommandLine::parse(&[path.to_string_lossy().into_owned()]).unwrap();
        let e = line.apply(&values).unwrap_err().to_string();
        assert!(
            e.contains("at line 3")
                && e.contains(">>> 'tcp-keepalivee 300'")
                && e.contains("Bad directive"),
            "{e}"
        );
        std::fs::write(&path, "maxmemory lots\n").unwrap();
        let e = line.apply(&values).unwrap_err().to_string();
        assert!(e.contains("at line 1") && e.contains("memory value"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rewrite_keeps_comments_and_replaces_directives() {
        let dir = std::env::temp_dir().join(format!("cache-config-rw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.conf");
        let path_text = path.to_string_lossy().into_owned();
        std::fs::write(
            &path,
            "# my node\nport 7001\nmaxmemory 1mb\nmaxmemory 2mb\nuser a on nopass\n",
        )
        .unwrap();
        let values = Values::new(TABLE);
        CommandLine::parse(std::slice::from_ref(&path_text))
            .unwrap()
            .apply(&values)
            .unwrap();
        values.set("maxmemory", "3mb").unwrap();
        values.set("tcp-keepalive", "60").unwrap();
        values.rewrite(&path_text).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# my node\nport 7001\nmaxmemory 3145728\nuser \"a on nopass\"\n# Generated by CONFIG REWRITE\ntcp-keepalive 60\n"
        );
        let again = Values::new(TABLE);
        CommandLine::parse(&[path_text])
            .unwrap()
            .apply(&again)
            .unwrap();
        assert_eq!(again.get("maxmemory").unwrap(), "3145728");
        assert_eq!(again.lines("user"), vec!["a on nopass"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
