//! The scripts and function libraries the proxy has seen go by (EVAL, SCRIPT LOAD, FUNCTION
//! LOAD), so a node that lacks them (it joined later, or came back empty) gets them when it
//! answers `-NOSCRIPT` or "Function not found", and the client never sees the difference.
//!
//! Bounded: at most [`MAX_ENTRIES`] scripts and as many libraries, [`MAX_BYTES`] in all; the
//! oldest go first (a client whose script was forgotten gets the node's NOSCRIPT and reloads,
//! as it would from Redis).

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use hashbrown::HashMap;

pub const MAX_ENTRIES: usize = 10_000;
pub const MAX_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct Scripts {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Script bodies by lower-case hex SHA1, and their arrival order.
    bodies: HashMap<Bytes, Bytes>,
    order: VecDeque<Bytes>,
    /// Library code by library name, in load order.
    libraries: Vec<(Bytes, Bytes)>,
    bytes: usize,
}

/// Redis's script id: the SHA1 of the body in lower-case hex.
pub fn sha1_hex(body: &[u8]) -> Bytes {
    Bytes::from(sha1_smol::Sha1::from(body).digest().to_string())
}

/// The library name of `FUNCTION LOAD` code (`#!lua name=mylib ...`), if it has one.
pub fn library_name(code: &[u8]) -> Option<Bytes> {
    let first = code.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    let rest = first.strip_prefix("#!")?;
    rest.split_whitespace()
        .find_map(|w| w.strip_prefix("name="))
        .map(|n| Bytes::copy_from_slice(n.as_bytes()))
}

impl Scripts {
    pub fn add_script(&self, body: &Bytes) {
        let sha = sha1_hex(body);
        let mut inner = self.inner.lock().unwrap();
        if inner.bodies.contains_key(&sha) || body.len() > MAX_BYTES {
            return;
        }
        inner.bytes += body.len();
        inner.bodies.insert(sha.clone(), body.clone());
        inner.order.push_back(sha);
        inner.trim();
    }

    pub fn script(&self, sha: &[u8]) -> Option<Bytes> {
        let lower = sha.to_ascii_lowercase();
        self.inner.lock().unwrap().bodies.get(&lower[..]).cloned()
    }

    pub fn flush_scripts(&self) {
        let mut inner = self.inner.lock().unwrap();
        let freed: usize = inner.bodies.values().map(Bytes::len).sum();
        inner.bytes -= freed;
        inner.bodies.clear();
        inner.order.clear();
    }

    /// FUNCTION LOAD [REPLACE] code: the latest code of its library.
    pub fn add_library(&self, code: &Bytes) {
        let Some(name) = library_name(code) else {
            return;
        };
        if code.len() > MAX_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        inner.remove_library(&name);
        inner.bytes += code.len();
        inner.libraries.push((name, code.clone()));
        inner.trim();
    }

    pub fn delete_library(&self, name: &[u8]) {
        self.inner.lock().unwrap().remove_library(name);
    }

    pub fn flush_libraries(&self) {
        let mut inner = self.inner.lock().unwrap();
        let freed: usize = inner.libraries.iter().map(|(_, c)| c.len()).sum();
        inner.bytes -= freed;
        inner.libraries.clear();
    }

    /// Every library's code, in load order.
    pub fn libraries(&self) -> Vec<Bytes> {
        let inner = self.inner.lock().unwrap();
        inner.libraries.iter().map(|(_, c)| c.clone()).collect()
    }
}

impl Inner {
    fn remove_library(&mut self, name: &[u8]) {
        if let Some(i) = self.libraries.iter().position(|(n, _)| &n[..] == name) {
            let (_, code) = self.libraries.remove(i);
            self.bytes -= code.len();
        }
    }

    fn trim(&mut self) {
        while self.bytes > MAX_BYTES || self.order.len() > MAX_ENTRIES {
            let Some(sha) = self.order.pop_front() else {
                break;
            };
            if let Some(body) = self.bodies.remove(&sha) {
                self.bytes -= body.len();
            }
        }
        while self.bytes > MAX_BYTES || self.libraries.len() > MAX_ENTRIES {
            let (_, code) = self.libraries.remove(0);
            self.bytes -= code.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_scripts_and_libraries() {
        let s = Scripts::default();
        let body = Bytes::from_static(b"return 1");
        s.add_script(&body);
        // Redis's SHA of "return 1".
        let sha = b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
        assert_eq!(&sha1_hex(&body)[..], sha);
        assert_eq!(
            s.script(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"),
            Some(body)
        );
        s.flush_scripts();
        assert_eq!(s.script(sha), None);

        let v1 = Bytes::from_static(
            b"#!lua name=lib\nredis.register_function('f', function() return 1 end)",
        );
        let v2 = Bytes::from_static(
            b"#!lua name=lib\nredis.register_function('f', function() return 2 end)",
        );
        s.add_library(&v1);
        s.add_library(&v2);
        assert_eq!(s.libraries(), vec![v2]);
        s.delete_library(b"lib");
        assert!(s.libraries().is_empty());
        assert_eq!(library_name(b"no shebang"), None);
    }

    #[test]
    fn bounded() {
        let s = Scripts::default();
        for i in 0..MAX_ENTRIES + 10 {
            s.add_script(&Bytes::from(format!("return {i}")));
        }
        assert_eq!(
            s.script(&sha1_hex(b"return 0")),
            None,
            "the oldest went first"
        );
        assert!(s
            .script(&sha1_hex(format!("return {}", MAX_ENTRIES + 9).as_bytes()))
            .is_some());
        assert_eq!(s.inner.lock().unwrap().order.len(), MAX_ENTRIES);
    }
}
