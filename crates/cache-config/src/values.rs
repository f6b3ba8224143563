//! The running values of one binary's table.

use std::sync::{Mutex, MutexGuard};

use crate::{ConfigError, Effect, Kind, Param};

/// The current value of every parameter of a table, plus the repeatable lines (`user`).
pub struct Values {
    table: &'static [Param],
    current: Mutex<Vec<String>>,
    /// `(parameter index, line)` of every [`Kind::Lines`] directive, in order.
    lines: Mutex<Vec<(usize, String)>>,
    /// Which parameters were given at start or set since (for "accepted, no effect" and
    /// CONFIG REWRITE).
    touched: Mutex<Vec<bool>>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Values {
    /// Every parameter at its default.
    ///
    /// # Panics
    /// When a default does not pass its own kind (a bug in the table, caught by any test).
    pub fn new(table: &'static [Param]) -> Values {
        let current = table.iter().map(Param::normalize_default).collect();
        Values {
            table,
            current: Mutex::new(current),
            lines: Mutex::new(Vec::new()),
            touched: Mutex::new(vec![false; table.len()]),
        }
    }

    pub fn table(&self) -> &'static [Param] {
        self.table
    }

    /// The parameter called `name` (or aliased so) and its index.
    pub fn find(&self, name: &str) -> Option<(usize, &'static Param)> {
        self.table
            .iter()
            .enumerate()
            .find(|(_, p)| p.is_named(name))
    }

    /// Sets a parameter at start-up (command line or file): immutable ones allowed, and
    /// [`Kind::Lines`] collected. Returns the parameter and its normalized value.
    ///
    /// # Errors
    /// Unknown name or a value that does not parse.
    pub fn set_initial(
        &self,
        name: &str,
        value: &str,
    ) -> Result<(&'static Param, String), ConfigError> {
        self.set_inner(name, value, true)
    }

    /// Sets a parameter at runtime (`CONFIG SET`).
    ///
    /// # Errors
    /// Unknown name, an immutable parameter, or a value that does not parse.
    pub fn set(&self, name: &str, value: &str) -> Result<(&'static Param, String), ConfigError> {
        self.set_inner(name, value, false)
    }

    fn set_inner(
        &self,
        name: &str,
        value: &str,
        initial: bool,
    ) -> Result<(&'static Param, String), ConfigError> {
        let (i, param) = self
            .find(name)
            .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if param.kind == Kind::Lines {
            if !initial {
                return Err(ConfigError::Unknown(name.to_string()));
            }
            if let Effect::OnlyDefault(why) = param.effect {
                return Err(ConfigError::Unsupported {
                    name: param.name.to_string(),
                    value: value.to_string(),
                    default: "(none)".to_string(),
                    why,
                });
            }
            lock(&self.lines).push((i, value.to_string()));
            lock(&self.touched)[i] = true;
            return Ok((param, value.to_string()));
        }
        if !initial && !param.mutable {
            return Err(ConfigError::Immutable);
        }
        let mut current = lock(&self.current);
        let value = param.normalize(value, &current[i])?;
        current[i] = value.clone();
        lock(&self.touched)[i] = true;
        Ok((param, value))
    }

    /// Validates a CONFIG SET without applying it (CONFIG SET is all or nothing): the
    /// parameter and the value it would take.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn check(&self, name: &str, value: &str) -> Result<(&'static Param, String), ConfigError> {
        let (i, param) = self
            .find(name)
            .filter(|(_, p)| p.kind != Kind::Lines)
            .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if !param.mutable {
            return Err(ConfigError::Immutable);
        }
        let value = param.normalize(value, &lock(&self.current)[i])?;
        Ok((param, value))
    }

    /// The current value of a parameter (not of [`Kind::Lines`]).
    pub fn get(&self, name: &str) -> Option<String> {
        let (i, _) = self.find(name).filter(|(_, p)| p.kind != Kind::Lines)?;
        Some(lock(&self.current)[i].clone())
    }

    /// The lines given for a [`Kind::Lines`] parameter, in order.
    pub fn lines(&self, name: &str) -> Vec<String> {
        let Some((index, _)) = self.find(name) else {
            return Vec::new();
        };
        lock(&self.lines)
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// `(name, value)` of every parameter whose name or alias `matches` (CONFIG GET), each
    /// name Redis knows listed once.
    pub fn matching(&self, matches: impl Fn(&str) -> bool) -> Vec<(&'static str, String)> {
        let current = lock(&self.current);
        let mut out = Vec::new();
        for (p, v) in self.table.iter().zip(current.iter()) {
            if p.kind == Kind::Lines {
                continue;
            }
            for name in std::iter::once(p.name).chain(p.alias) {
                if matches(name) {
                    out.push((name, v.clone()));
                }
            }
        }
        out
    }

    /// Parameters set (at start or since) that have no effect here, for the start-up log.
    pub fn no_effect_set(&self) -> Vec<&'static str> {
        let touched = lock(&self.touched);
        self.table
            .iter()
            .zip(touched.iter())
            .filter(|(p, t)| **t && p.effect == Effect::NoEffect)
            .map(|(p, _)| p.name)
            .collect()
    }

    /// `(name, value)` of every parameter given at start or set since, in table order, for
    /// CONFIG REWRITE ([`Kind::Lines`] as one pair per line).
    pub fn changed(&self) -> Vec<(&'static str, String)> {
        let touched = lock(&self.touched);
        let current = lock(&self.current);
        let lines = lock(&self.lines);
        let mut out = Vec::new();
        for (i, p) in self.table.iter().enumerate() {
            if !touched[i] {
                continue;
            }
            if p.kind == Kind::Lines {
                out.extend(
                    lines
                        .iter()
                        .filter(|(j, _)| *j == i)
                        .map(|(_, l)| (p.name, l.clone())),
                );
            } else {
                out.push((p.name, current[i].clone()));
            }
        }
        out
    }

    /// `--help` text: every parameter, its default and what it does (no-effect ones last,
    /// by name only).
    pub fn help(table: &[Param]) -> String {
        let mut text = String::new();
        for p in table.iter().filter(|p| p.effect != Effect::NoEffect) {
            let default = if p.default.is_empty() {
                "\"\""
            } else {
                p.default
            };
            text.push_str(&format!(
                "  --{:<28} {} (default {})\n",
                p.name, p.help, default
            ));
        }
        let quiet: Vec<&str> = table
            .iter()
            .filter(|p| p.effect == Effect::NoEffect)
            .map(|p| p.name)
            .collect();
        if !quiet.is_empty() {
            text.push_str("\n  Accepted for redis.conf compatibility, with no effect here:\n");
            for chunk in quiet.chunks(4) {
                text.push_str(&format!("    {}\n", chunk.join(", ")));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: &[Param] = &[
        Param::new(
            "timeout",
            Kind::Int { min: 0, max: 100 },
            "0",
            "idle seconds",
        ),
        Param::new("port", Kind::Int { min: 0, max: 65535 }, "6379", "port").fixed(),
        Param::new(
            "hash-max-listpack-entries",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
            "512",
            "",
        )
        .alias("hash-max-ziplist-entries")
        .no_effect(),
        Param::new("user", Kind::Lines, "", "users"),
    ];

    #[test]
    fn set_get_and_aliases() {
        let v = Values::new(TABLE);
        v.set("timeout", "5").unwrap();
        assert_eq!(v.get("timeout").unwrap(), "5");
        assert_eq!(v.set("port", "1").unwrap_err(), ConfigError::Immutable);
        assert!(matches!(v.set("nope", "1"), Err(ConfigError::Unknown(_))));
        v.set_initial("port", "0").unwrap();
        v.set("hash-max-ziplist-entries", "7").unwrap();
        assert_eq!(v.get("hash-max-listpack-entries").unwrap(), "7");
        let got = v.matching(|n| n.starts_with("hash-"));
        assert_eq!(
            got,
            vec![
                ("hash-max-listpack-entries", "7".into()),
                ("hash-max-ziplist-entries", "7".into())
            ]
        );
        assert_eq!(v.no_effect_set(), vec!["hash-max-listpack-entries"]);
        v.set_initial("user", "a on").unwrap();
        v.set_initial("user", "b on").unwrap();
        assert_eq!(v.lines("user"), vec!["a on", "b on"]);
        assert!(v.get("user").is_none());
        assert!(v.set("user", "c").is_err());
    }
}
