//! Values and entries.

/// A key as stored: a boxed slice, 16 bytes in the table plus the bytes themselves.
pub type Key = Box<[u8]>;

/// The value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name `OBJECT ENCODING` reports, following Redis's thresholds.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && cache_int(s) {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }
}

fn cache_int(s: &[u8]) -> bool {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|v| v.to_string().as_bytes() == s)
}

/// One key's value and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 means none.
    pub expires_at: u64,
    /// Last access, in seconds of the store's clock (for OBJECT IDLETIME and LRU).
    pub access: u32,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expires_at: 0,
            access: 0,
        }
    }

    pub fn with_expiry(value: Value, expires_at: u64) -> Self {
        Entry {
            value,
            expires_at,
            access: 0,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now_ms
    }
}
