//! RDB files: `REDIS0010`, aux fields, function libraries, then per database a SELECTDB and
//! RESIZEDB record and its keys (each optionally preceded by its expiry, idle time or LFU
//! counter), then EOF and a CRC-64 of everything before it (0 when checksums are off).

use std::borrow::Cow;

use cache_store::Value;

use crate::crc64::{crc64, digest};
use crate::encoding::{read_len, read_string, write_len, write_string};
use crate::input::Input;
use crate::object::{is_object_type, read_value, value_type, write_value};
use crate::{Error, RDB_VERSION};

pub const OPCODE_FUNCTION2: u8 = 245;
pub const OPCODE_FUNCTION: u8 = 246;
pub const OPCODE_MODULE_AUX: u8 = 247;
pub const OPCODE_IDLE: u8 = 248;
pub const OPCODE_FREQ: u8 = 249;
pub const OPCODE_AUX: u8 = 250;
pub const OPCODE_RESIZEDB: u8 = 251;
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
pub const OPCODE_EXPIRETIME: u8 = 253;
pub const OPCODE_SELECTDB: u8 = 254;
pub const OPCODE_EOF: u8 = 255;

/// One record of a file, in file order.
#[derive(Debug)]
pub enum Record<'a> {
    /// An aux field (`redis-ver`, `ctime`, ...).
    Aux(Cow<'a, [u8]>, Cow<'a, [u8]>),
    /// The code of a function library (FUNCTION LOAD's argument).
    Function(Cow<'a, [u8]>),
    /// The database the following keys belong to.
    SelectDb(u64),
    /// How many keys (and keys with an expiry) the database holds: a sizing hint.
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    Key(KeyRecord<'a>),
}

/// A key and its value with what precedes it in the file.
#[derive(Debug)]
pub struct KeyRecord<'a> {
    pub db: u64,
    pub key: Cow<'a, [u8]>,
    pub value: Value,
    /// Unix milliseconds; 0 for none.
    pub expires_at: u64,
    pub idle_secs: Option<u64>,
    pub freq: Option<u8>,
}

/// Reads a whole file held in memory, record by record.
pub struct Reader<'a> {
    data: &'a [u8],
    input: Input<'a>,
    version: u32,
    db: u64,
    done: bool,
}

impl<'a> Reader<'a> {
    /// Checks the header.
    ///
    /// # Errors
    /// [`Error::BadFormat`] without the `REDIS` signature, [`Error::Version`] for a version
    /// newer than 10.
    pub fn new(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < 9 || &data[..5] != b"REDIS" {
            return Err(Error::BadFormat(
                "wrong signature trying to load DB from file",
            ));
        }
        let version = std::str::from_utf8(&data[5..9])
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(Error::BadFormat("bad RDB version"))?;
        if !(1..=u32::from(RDB_VERSION)).contains(&version) {
            return Err(Error::Version(version));
        }
        let mut input = Input::new(data);
        input.take(9)?;
        Ok(Reader {
            data,
            input,
            version,
            db: 0,
            done: false,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes read so far (for progress reports).
    pub fn position(&self) -> usize {
        self.input.position()
    }

    /// The next record; None after EOF (whose checksum has then been verified).
    ///
    /// # Errors
    /// Whatever is wrong with the bytes; [`Error::Checksum`] when the trailer does not match.
    /// Empty collections are skipped, as Redis skips them.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, Error> {
        let input = &mut self.input;
        let mut expires_at = 0;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            if self.done {
                return Ok(None);
            }
            let op = input.u8()?;
            match op {
                OPCODE_EXPIRETIME_MS => {
                    expires_at = crate::encoding::read_ms(input)?;
                    // Redis reads a negative expiry as "expired": keep it in the past.
                    if (expires_at as i64) <= 0 {
                        expires_at = 1;
                    }
                }
                OPCODE_EXPIRETIME => {
                    let secs = i32::from_le_bytes(input.array()?);
                    expires_at = (i64::from(secs).max(0) as u64).saturating_mul(1000).max(1);
                }
                OPCODE_IDLE => idle_secs = Some(read_len(input)?),
                OPCODE_FREQ => freq = Some(input.u8()?),
                OPCODE_SELECTDB => {
                    self.db = read_len(input)?;
                    return Ok(Some(Record::SelectDb(self.db)));
                }
                OPCODE_RESIZEDB => {
                    let keys = read_len(input)?;
                    let expires = read_len(input)?;
                    return Ok(Some(Record::ResizeDb { keys, expires }));
                }
                OPCODE_AUX => {
                    let k = read_string(input)?;
                    let v = read_string(input)?;
                    return Ok(Some(Record::Aux(k, v)));
                }
                OPCODE_FUNCTION2 => return Ok(Some(Record::Function(read_string(input)?))),
                OPCODE_FUNCTION => {
                    return Err(Error::Unsupported("pre-GA function format"));
                }
                OPCODE_MODULE_AUX => {
                    let _module_id = read_len(input)?;
                    let _when_opcode = read_len(input)?;
                    let _when = read_len(input)?;
                    skip_module_value(input)?;
                }
                OPCODE_EOF => {
                    self.done = true;
                    if self.version >= 5 {
                        let end = input.position();
                        let stored = u64::from_le_bytes(input.array()?);
                        if stored != 0 && stored != crc64(&self.data[..end]) {
                            return Err(Error::Checksum);
                        }
                    }
                    return Ok(None);
                }
                t if is_object_type(t) => {
                    let key = read_string(input)?;
                    match read_value(t, input) {
                        Ok(value) => {
                            return Ok(Some(Record::Key(KeyRecord {
                                db: self.db,
                                key,
                                value,
                                expires_at,
                                idle_secs,
                                freq,
                            })))
                        }
                        Err(Error::EmptyKey) => {
                            expires_at = 0;
                            idle_secs = None;
                            freq = None;
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ => return Err(Error::BadFormat("unknown RDB opcode")),
            }
        }
    }
}

/// Skips a module's serialized data (the opcode-tagged form of RDB version 9+), as
/// redis-check-rdb does when the module is not there.
fn skip_module_value(input: &mut Input<'_>) -> Result<(), Error> {
    loop {
        match read_len(input)? {
            0 => return Ok(()),
            1 | 2 => {
                read_len(input)?;
            }
            3 => {
                input.take(4)?;
            }
            4 => {
                input.take(8)?;
            }
            5 => {
                read_string(input)?;
            }
            _ => return Err(Error::BadFormat("unknown module opcode")),
        }
    }
}

/// Writes a file into memory in pieces: the caller takes what is written with
/// [`Writer::take`] and sends it to disk, so a big snapshot never sits whole in memory.
pub struct Writer {
    buf: Vec<u8>,
    crc: crc::Digest<'static, u64>,
    compress: bool,
    checksum: bool,
}

impl Writer {
    /// A file with Redis 7.0.15's header and these aux fields.
    pub fn new(compress: bool, checksum: bool, aux: &[(&str, &[u8])]) -> Self {
        let mut w = Writer {
            buf: Vec::with_capacity(64 * 1024),
            crc: digest(),
            compress,
            checksum,
        };
        w.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        for (k, v) in aux {
            w.buf.push(OPCODE_AUX);
            write_string(&mut w.buf, k.as_bytes(), false);
            write_string(&mut w.buf, v, false);
        }
        w
    }

    pub fn function(&mut self, code: &[u8]) {
        self.buf.push(OPCODE_FUNCTION2);
        write_string(&mut self.buf, code, self.compress);
    }

    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) {
        self.buf.push(OPCODE_SELECTDB);
        write_len(&mut self.buf, db);
        self.buf.push(OPCODE_RESIZEDB);
        write_len(&mut self.buf, keys);
        write_len(&mut self.buf, expires);
    }

    /// One key; `expires_at` in Unix milliseconds, 0 for none.
    pub fn key(&mut self, key: &[u8], value: &Value, expires_at: u64) {
        if expires_at != 0 {
            self.buf.push(OPCODE_EXPIRETIME_MS);
            self.buf.extend_from_slice(&expires_at.to_le_bytes());
        }
        self.buf.push(value_type(value));
        write_string(&mut self.buf, key, self.compress);
        write_value(&mut self.buf, value, self.compress);
    }

    /// Bytes written and not yet taken.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Hands over what is written so far.
    pub fn take(&mut self) -> Vec<u8> {
        self.crc.update(&self.buf);
        std::mem::replace(&mut self.buf, Vec::with_capacity(64 * 1024))
    }

    /// The last bytes: EOF and the checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(OPCODE_EOF);
        self.crc.update(&self.buf);
        let crc = if self.checksum {
            self.crc.finalize()
        } else {
            0
        };
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_store::{Key, SetValue};

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(
            true,
            true,
            &[("redis-ver", b"7.0.15"), ("redis-bits", b"64")],
        );
        w.select_db(0, 2, 1);
        w.key(b"a", &Value::string(&b"hello"[..]), 0);
        let mut set = SetValue::default();
        set.insert(Key::new(b"x"));
        w.key(b"s", &Value::from_set(set), 1_900_000_000_000);
        let mut out = w.take();
        w.select_db(3, 1, 0);
        w.key(b"n", &Value::string(&b"12"[..]), 0);
        out.extend_from_slice(&w.finish());
        out
    }

    #[test]
    fn a_file_reads_back_record_by_record() {
        let file = sample();
        let mut r = Reader::new(&file).unwrap();
        let mut keys = Vec::new();
        let mut aux = 0;
        while let Some(rec) = r.next_record().unwrap() {
            match rec {
                Record::Key(k) => keys.push((k.db, k.key.into_owned(), k.expires_at)),
                Record::Aux(..) => aux += 1,
                _ => {}
            }
        }
        assert_eq!(aux, 2);
        assert_eq!(
            keys,
            [
                (0, b"a".to_vec(), 0),
                (0, b"s".to_vec(), 1_900_000_000_000),
                (3, b"n".to_vec(), 0)
            ]
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut file = sample();
        let i = file.len() - 20;
        file[i] ^= 1;
        let mut r = Reader::new(&file).unwrap();
        let mut result = Ok(None);
        for _ in 0..20 {
            result = r.next_record().map(|r| r.map(|_| ()));
            if !matches!(result, Ok(Some(_))) {
                break;
            }
        }
        assert!(result.is_err());
    }

    #[test]
    fn newer_versions_are_refused() {
        assert!(matches!(
            Reader::new(b"REDIS0011\xff"),
            Err(Error::Version(11))
        ));
        assert!(Reader::new(b"RADIS0010").is_err());
    }
}
