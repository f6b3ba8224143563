//! A parameter's description and how its text is checked and normalized.

use crate::ConfigError;

/// How a parameter's text is parsed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer within bounds.
    Int { min: i64, max: i64 },
    /// A byte size with Redis's units (`100mb`, `1gb`, `512k`), shown in bytes.
    Memory,
    /// `yes` or `no`.
    Bool,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Free text (a value of several words is kept as given, joined by spaces).
    Text,
    /// A directive given any number of times (`user`): collected in order, never shown by
    /// CONFIG GET (the lines hold passwords) and not settable by CONFIG SET.
    Lines,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>` groups, each merged
    /// into the current value; shown as all three classes.
    ClassLimits,
}

/// What a parameter does in this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It does what it says.
    Applies,
    /// Accepted, shown and settable, but it does not apply to our representation (an
    /// encoding threshold, `activerehashing`, `io-threads`…): logged once at start when set.
    NoEffect,
    /// Only the default is accepted until the feature exists; anything else is refused,
    /// with this reason.
    OnlyDefault(&'static str),
}

/// One parameter of a binary's table.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    /// Redis's other name for it (`hash-max-ziplist-entries`), shown and settable too.
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    /// Settable with CONFIG SET (else only at start-up).
    pub mutable: bool,
    pub effect: Effect,
    /// What it does, for `--help`.
    pub help: &'static str,
    /// Smallest value a [`Kind::Memory`] parameter takes (Redis's bounds: a zero
    /// `proto-max-bulk-len` would refuse every argument, CONFIG SET included).
    pub memory_min: u64,
}

impl Param {
    /// A parameter that applies and can be changed at runtime.
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        help: &'static str,
    ) -> Param {
        Param {
            name,
            alias: None,
            kind,
            default,
            mutable: true,
            effect: Effect::Applies,
            help,
            memory_min: 0,
        }
    }

    /// A memory parameter's lower bound, in bytes.
    pub const fn at_least(mut self, bytes: u64) -> Param {
        self.memory_min = bytes;
        self
    }

    /// Only settable at start.
    pub const fn fixed(mut self) -> Param {
        self.mutable = false;
        self
    }

    pub const fn alias(mut self, alias: &'static str) -> Param {
        self.alias = Some(alias);
        self
    }

    pub const fn no_effect(mut self) -> Param {
        self.effect = Effect::NoEffect;
        self
    }

    pub const fn only_default(mut self, why: &'static str) -> Param {
        self.effect = Effect::OnlyDefault(why);
        self
    }

    /// Whether `name` is this parameter's name or alias (case-insensitively).
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    }

    /// Checks `value` and returns it as CONFIG GET shows it. `current` is the value now (for
    /// kinds that merge into it).
    ///
    /// # Errors
    /// A value the kind refuses, or one [`Effect::OnlyDefault`] does not allow, with the
    /// message Redis gives where it has one.
    pub fn normalize(&self, value: &str, current: &str) -> Result<String, ConfigError> {
        let value = match self.kind {
            Kind::Int { min, max } => match value.trim().parse::<i64>() {
                Ok(v) if v >= min && v <= max => v.to_string(),
                Ok(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "argument must be between {min} and {max} inclusive"
                    )))
                }
                Err(_) => {
                    return Err(ConfigError::Invalid(
                        "argument couldn't be parsed into an integer".into(),
                    ))
                }
            },
            Kind::Memory => match parse_memory(value.trim()) {
                Some(v) if v >= self.memory_min => v.to_string(),
                Some(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "argument must be between {} and {} inclusive",
                        self.memory_min,
                        i64::MAX
                    )))
                }
                None => {
                    return Err(ConfigError::Invalid(
                        "argument must be a memory value".into(),
                    ))
                }
            },
            Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
                "yes" => "yes".to_string(),
                "no" => "no".to_string(),
                _ => {
                    return Err(ConfigError::Invalid(
                        "argument must be 'yes' or 'no'".into(),
                    ))
                }
            },
            Kind::Text | Kind::Lines => value.to_string(),
            Kind::Enum(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(value.trim()))
                .map(|w| w.to_string())
                .ok_or_else(|| {
                    ConfigError::Invalid(
                        "argument(s) must be one of the following: ".to_string()
                            + &words.join(", "),
                    )
                })?,
            Kind::ClassLimits => class_limits(value, current)?,
        };
        if let Effect::OnlyDefault(why) = self.effect {
            let default = self.normalize_default();
            if value != default {
                return Err(ConfigError::Unsupported {
                    name: self.name.to_string(),
                    value,
                    default,
                    why,
                });
            }
        }
        Ok(value)
    }

    /// The default as CONFIG GET shows it.
    pub fn normalize_default(&self) -> String {
        let plain = Param {
            effect: Effect::Applies,
            ..*self
        };
        let empty_limits = "normal 0 0 0 slave 0 0 0 pubsub 0 0 0";
        plain
            .normalize(self.default, empty_limits)
            .unwrap_or_else(|_| self.default.to_string())
    }
}

/// Parses a size with Redis's units: `1k` = 1000, `1kb` = 1024, likewise m/mb, g/gb.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, u64); 7] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
        ("b", 1),
    ];
    let (digits, mult) = units
        .iter()
        .find_map(|(u, m)| lower.strip_suffix(u).map(|d| (d, *m)))
        .unwrap_or((lower.as_str(), 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Merges `<class> <hard> <soft> <seconds>` groups into `current` (Redis's
/// `client-output-buffer-limit`; `replica` is `slave`).
/// A `ClassLimits` value as stored (`normal H S SECS slave H S SECS pubsub H S SECS`, bytes):
/// `[hard, soft, soft seconds]` for the normal, replica and pub/sub classes, in that order.
pub fn class_limits_of(canonical: &str) -> [[u64; 3]; 3] {
    let mut limits = [[0; 3]; 3];
    let words: Vec<&str> = canonical.split_whitespace().collect();
    for group in words.chunks(4) {
        if let [class, hard, soft, secs] = group {
            if let Some(i) = CLASSES.iter().position(|c| c == class) {
                limits[i] = [
                    hard.parse().unwrap_or(0),
                    soft.parse().unwrap_or(0),
                    secs.parse().unwrap_or(0),
                ];
            }
        }
    }
    limits
}

fn class_limits(value: &str, current: &str) -> Result<String, ConfigError> {
    let bad =
        || ConfigError::Invalid("Wrong number of arguments in buffer limit configuration.".into());
    let mut limits = class_limits_of(current);
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(bad());
    }
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "replica" | "slave" => 1,
            "normal" => 0,
            "pubsub" => 2,
            _ => {
                return Err(ConfigError::Invalid(
                    "Invalid client class specified in buffer limit configuration.".into(),
                ))
            }
        };
        let hard = parse_memory(group[1]).ok_or_else(|| {
            ConfigError::Invalid(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            )
        })?;
        let soft = parse_memory(group[2]).ok_or_else(|| {
            ConfigError::Invalid(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            )
        })?;
        let secs: u64 = group[3].parse().map_err(|_| {
            ConfigError::Invalid(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            )
        })?;
        limits[class] = [hard, soft, secs];
    }
    Ok(CLASSES
        .iter()
        .zip(&limits)
        .map(|(c, [h, s, t])| format!("{c} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn kinds_normalize_as_config_get_shows() {
        let p = Param::new("x", Kind::Bool, "no", "");
        assert_eq!(p.normalize("YES", "").unwrap(), "yes");
        assert!(p.normalize("1", "").is_err());
        let p = Param::new("x", Kind::Memory, "0", "");
        assert_eq!(p.normalize("1gb", "").unwrap(), "1073741824");
        let p = Param::new("x", Kind::Int { min: -5, max: 5 }, "0", "");
        assert_eq!(p.normalize("-2", "").unwrap(), "-2");
        assert!(p.normalize("6", "").is_err());
    }

    #[test]
    fn output_buffer_limits_merge_per_class() {
        let p = Param::new(
            "client-output-buffer-limit",
            Kind::ClassLimits,
            "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60",
            "",
        );
        let default = p.normalize_default();
        assert_eq!(
            default,
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(
            p.normalize("replica 1mb 1mb 10", &default).unwrap(),
            "normal 0 0 0 slave 1048576 1048576 10 pubsub 33554432 8388608 60"
        );
        assert!(p.normalize("bogus 1 1 1", &default).is_err());
        assert!(p.normalize("normal 1 1", &default).is_err());
    }

    #[test]
    fn only_default_refuses_the_rest() {
        let p = Param::new("appendonly", Kind::Bool, "no", "").only_default("no append-only file");
        assert_eq!(p.normalize("no", "").unwrap(), "no");
        let e = p.normalize("yes", "").unwrap_err().to_string();
        assert!(e.contains("'appendonly yes' is not supported"), "{e}");
    }
}
