//! Eviction: Redis's policies by sampling, and TinyLFU.
//!
//! ```text
//!  write over maxmemory ─► Store::evict_one ─► sample `samples` keys of a random shard
//!                            ─► best candidates kept in a pool (as Redis's eviction pool)
//!                            ─► pop the best, re-check it under its shard lock, delete
//! ```
//!
//! Per-entry state is one `u32` (`Entry::access`), read according to the policy as Redis does:
//! an LRU clock in milliseconds, or for LFU a 16-bit minute stamp and an 8-bit log counter.
//!
//! `allkeys-tinylfu` / `volatile-tinylfu` add a per-shard count-min sketch of 4-bit counters
//! that sees every lookup, hits and misses alike, and is halved periodically so it forgets,
//! and a count per resident key that ages with it (see [`crate::tinylfu`]). Victims are the
//! sampled keys with the lowest count (LRU breaks ties), and a new key is only admitted when
//! the sketch thinks it more frequent than the victim it would displace: a one-off scan
//! cannot flush the hot set.

/// An eviction policy, with Redis's names plus ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    AllKeysTinyLfu,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    VolatileTinyLfu,
}

const NAMES: &[(Policy, &str)] = &[
    (Policy::NoEviction, "noeviction"),
    (Policy::AllKeysLru, "allkeys-lru"),
    (Policy::AllKeysLfu, "allkeys-lfu"),
    (Policy::AllKeysRandom, "allkeys-random"),
    (Policy::AllKeysTinyLfu, "allkeys-tinylfu"),
    (Policy::VolatileLru, "volatile-lru"),
    (Policy::VolatileLfu, "volatile-lfu"),
    (Policy::VolatileRandom, "volatile-random"),
    (Policy::VolatileTtl, "volatile-ttl"),
    (Policy::VolatileTinyLfu, "volatile-tinylfu"),
];

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
    }

    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("noeviction", |(_, n)| n)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(_, n)| *n)
    }

    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
                | Policy::VolatileTinyLfu
        )
    }

    /// Whether `Entry::access` holds an LFU counter (else an LRU clock).
    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    pub fn tinylfu(self) -> bool {
        matches!(self, Policy::AllKeysTinyLfu | Policy::VolatileTinyLfu)
    }

    fn code(self) -> u8 {
        NAMES.iter().position(|(p, _)| *p == self).unwrap_or(0) as u8
    }

    fn from_code(code: u8) -> Policy {
        NAMES
            .get(code as usize)
            .map_or(Policy::NoEviction, |(p, _)| *p)
    }
}

/// Runtime eviction settings, readable without a lock on the hot path.
#[derive(Debug)]
pub struct Settings {
    policy: std::sync::atomic::AtomicU8,
    pub samples: std::sync::atomic::AtomicUsize,
    pub lfu_log_factor: std::sync::atomic::AtomicU32,
    pub lfu_decay_time: std::sync::atomic::AtomicU32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: std::sync::atomic::AtomicU8::new(Policy::NoEviction.code()),
            samples: std::sync::atomic::AtomicUsize::new(5),
            lfu_log_factor: std::sync::atomic::AtomicU32::new(10),
            lfu_decay_time: std::sync::atomic::AtomicU32::new(1),
        }
    }
}

impl Settings {
    pub fn policy(&self) -> Policy {
        Policy::from_code(self.policy.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn set_policy(&self, policy: Policy) {
        self.policy
            .store(policy.code(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// The LFU counter new keys start with (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT: u32 = 5;

fn minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The LFU counter after decay: one step per `decay_time` minutes since the last access.
pub fn lfu_decayed(access: u32, now_ms: u64, decay_time: u32) -> u32 {
    // Masked: after a switch from an LRU policy the word still holds an LRU clock, which
    // reads as some stamp and counter (Redis has the same transition) but must not overflow.
    let stamp = (access >> 8) & 0xFFFF;
    let counter = access & 0xFF;
    if decay_time == 0 {
        return counter;
    }
    let now = minutes(now_ms);
    let elapsed = now.wrapping_sub(stamp) & 0xFFFF;
    counter.saturating_sub(elapsed / decay_time)
}

/// A new `access` word for an LFU access: decay, then a logarithmic increment.
pub fn lfu_touch(access: u32, now_ms: u64, log_factor: u32, decay_time: u32, random: u64) -> u32 {
    let mut counter = lfu_decayed(access, now_ms, decay_time);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT) as f64;
        let p = 1.0 / (base * f64::from(log_factor) + 1.0);
        let r = (random >> 11) as f64 / (1u64 << 53) as f64;
        if r < p {
            counter += 1;
        }
    }
    (minutes(now_ms) << 8) | counter
}

/// The `access` word of a new key under an LFU policy.
pub fn lfu_new(now_ms: u64) -> u32 {
    (minutes(now_ms) << 8) | LFU_INIT
}

/// An LFU word with `counter`, stamped now (RESTORE ... FREQ).
pub fn lfu_with_counter(now_ms: u64, counter: u8) -> u32 {
    (minutes(now_ms) << 8) | u32::from(counter)
}

/// The LRU clock: milliseconds, wrapping every 49 days (idle times are compared wrapping).
pub fn lru_clock(now_ms: u64) -> u32 {
    now_ms as u32
}

/// Milliseconds since an LRU access stamp.
pub fn lru_idle_ms(access: u32, now_ms: u64) -> u32 {
    lru_clock(now_ms).wrapping_sub(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for name in Policy::names() {
            assert_eq!(Policy::parse(name).unwrap().name(), name);
        }
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
        assert_eq!(Policy::parse("nope"), None);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let now = 10 * 60_000;
        let mut access = lfu_new(now);
        let mut x = 1u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            access = lfu_touch(access, now, 10, 1, x);
        }
        let counter = access & 0xFF;
        assert!((15..60).contains(&counter), "{counter}");
        // Ten minutes later, ten decay steps.
        assert_eq!(lfu_decayed(access, now + 10 * 60_000, 1), counter - 10);
    }
}
