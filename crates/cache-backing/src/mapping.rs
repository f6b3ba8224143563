//! Mappings of key prefixes to existing tables: `user:42` ↔ the row of `users` whose `id` is
//! 42, a hash's fields ↔ the row's columns. Such keys never touch the generic table.
//!
//! Configured as `PREFIX=TABLE.KEY_COLUMN`, several separated by commas:
//! `backing-map = "user:=users.id,order:=orders.order_id"`. Mappings apply to database 0
//! (the only one an application's tables mean anything in); keys of other databases always
//! use the generic table.
//!
//! What a mapped key may hold: a hash (columns as text, NULL columns absent). Writing another
//! type, or a field that is no column, is refused by the database like any bad statement.
//! Expiry is not stored in mapped tables, and FLUSHDB/FLUSHALL do not empty them: they belong
//! to the application.

use crate::{check_identifier, BackingError};

/// One prefix → table mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub prefix: Vec<u8>,
    pub table: String,
    pub key_column: String,
}

impl Mapping {
    /// Parses `PREFIX=TABLE.COLUMN[,PREFIX=TABLE.COLUMN]...` (empty = none).
    ///
    /// # Errors
    /// An entry without `=` or `.`, an empty prefix, or names that are not plain identifiers.
    pub fn parse_list(text: &str) -> Result<Vec<Mapping>, BackingError> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                BackingError::refused(format!(
                    "backing-map entry '{entry}' is not PREFIX=TABLE.KEY_COLUMN"
                ))
            };
            let (prefix, target) = entry.split_once('=').ok_or_else(bad)?;
            let (table, column) = target.rsplit_once('.').ok_or_else(bad)?;
            if prefix.is_empty() {
                return Err(bad());
            }
            check_identifier(table)?;
            check_identifier(column)?;
            out.push(Mapping {
                prefix: prefix.as_bytes().to_vec(),
                table: table.to_string(),
                key_column: column.to_string(),
            });
        }
        Ok(out)
    }

    /// The mapping of `key` in `db` and the key column's value, if the key is mapped (the
    /// longest matching prefix wins).
    pub fn find<'a>(
        mappings: &'a [Mapping],
        db: u32,
        key: &'a [u8],
    ) -> Option<(&'a Mapping, &'a str)> {
        if db != 0 {
            return None;
        }
        mappings
            .iter()
            .filter(|m| key.starts_with(&m.prefix))
            .max_by_key(|m| m.prefix.len())
            .and_then(|m| {
                let id = std::str::from_utf8(&key[m.prefix.len()..]).ok()?;
                (!id.is_empty()).then_some((m, id))
            })
    }
}

/// Quotes an identifier that [`check_identifier`] accepted (`schema.table` → `"schema"."table"`).
/// The fields a mapped table's row gets from `row`, which must hold a hash.
pub(crate) fn mapped_fields(
    m: &Mapping,
    row: &crate::Row,
) -> Result<Vec<crate::encoding::Field>, BackingError> {
    if row.kind != crate::encoding::Kind::Hash as i16 {
        return Err(BackingError::refused(format!(
            "key of mapped table {} must hold a hash",
            m.table
        )));
    }
    crate::encoding::hash_fields(&row.value).map_err(|e| BackingError::refused(e.to_string()))
}

pub(crate) fn quote(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(".")
}

/// The name of the generic table's expiry index (for the purge of expired rows): PostgreSQL
/// wants it unqualified (it lives in the table's schema).
pub(crate) fn expiry_index(table: &str) -> String {
    let base = table.rsplit('.').next().unwrap_or(table);
    let base: String = base.chars().take(48).collect();
    format!("\"{base}_expires_at\"")
}

/// The same, schema-qualified as SQLite wants it.
pub(crate) fn expiry_index_qualified(table: &str) -> String {
    match table.rsplit_once('.') {
        Some((schema, _)) => format!("\"{schema}\".{}", expiry_index(table)),
        None => expiry_index(table),
    }
}

/// Checks a hash field before it becomes a column name in SQL text.
pub(crate) fn column_name(field: &[u8]) -> Result<&str, BackingError> {
    let name = std::str::from_utf8(field)
        .map_err(|_| BackingError::refused("a mapped hash field is not UTF-8"))?;
    if name.contains('.') {
        return Err(BackingError::refused(format!(
            "'{name}' is not a plain column name"
        )));
    }
    check_identifier(name)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_finds_the_longest_prefix() {
        let maps = Mapping::parse_list("user:=users.id, user:vip:=app.vips.user_id").unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].table, "app.vips");
        let (m, id) = Mapping::find(&maps, 0, b"user:vip:7").unwrap();
        assert_eq!((m.table.as_str(), id), ("app.vips", "7"));
        let (m, id) = Mapping::find(&maps, 0, b"user:42").unwrap();
        assert_eq!((m.table.as_str(), id), ("users", "42"));
        assert!(Mapping::find(&maps, 1, b"user:42").is_none());
        assert!(Mapping::find(&maps, 0, b"user:").is_none());
        assert!(Mapping::find(&maps, 0, b"other").is_none());
        assert!(Mapping::parse_list("nope").is_err());
        assert!(Mapping::parse_list("a=t;drop.x").is_err());
        assert!(Mapping::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn columns_are_checked() {
        assert_eq!(column_name(b"name").unwrap(), "name");
        assert!(column_name(b"a\"b").is_err());
        assert!(column_name(b"a.b").is_err());
        assert_eq!(quote("app.users"), "\"app\".\"users\"");
    }
}
