//! A cursor over untrusted bytes: every read checks what remains first, so a length or count
//! from the input never reaches an allocation before it has been compared with the input.

use crate::Error;

#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes; `n` is from the input, so it is checked before anything else.
    pub fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        if n > self.remaining() as u64 {
            return Err(Error::Truncated);
        }
        let n = n as usize;
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Fails unless at least `count` items of at least `min_size` bytes each could follow:
    /// the check that comes before sizing a collection from a count in the input.
    pub fn check_count(&self, count: u64, min_size: u64) -> Result<usize, Error> {
        match count.checked_mul(min_size.max(1)) {
            Some(n) if n <= self.remaining() as u64 => Ok(count as usize),
            _ => Err(Error::Truncated),
        }
    }
}
