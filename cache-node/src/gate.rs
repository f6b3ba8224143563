//! The transaction gate: EXEC runs alone, every other batch of commands runs alongside others.
//!
//! Connections hold a read lock on one stripe while they run a batch of requests (never across
//! an `.await`); EXEC takes the write lock of every stripe. Readers on different cores use
//! different stripes, so the common case never bounces a shared cache line between cores.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(RwLock<()>);

#[derive(Default)]
pub struct Gate {
    stripes: [Stripe; STRIPES],
}

pub type GateRead<'a> = RwLockReadGuard<'a, ()>;

impl Gate {
    /// Shared access for one batch of commands.
    pub fn read(&self) -> GateRead<'_> {
        let i = crate::stats::stripe_index() % STRIPES;
        self.stripes[i].0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access: no other command runs until the guards drop. The caller must not
    /// hold a read guard.
    pub fn write(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.stripes
            .iter()
            .map(|s| s.0.write().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}
