//! `client-output-buffer-limit` and `client-output-buffer-cap`: how much a client's unsent
//! replies and messages may take before the node closes it.
//!
//! ```text
//!  bytes a client has waiting ─► over its class's hard limit (or the cap) ─► closed
//!                             └► over its soft limit for soft-seconds      ─► closed
//! ```
//!
//! Redis's classes and defaults: `normal 0 0 0` (no limit), `pubsub 32mb 8mb 60`, `replica`
//! (we serve no replicas: parsed and kept). Where Redis would let a class grow without bound,
//! the cap (1 GB by default) still closes the client: one client never takes the process down.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Redis's client classes for output limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClass {
    Normal = 0,
    Replica = 1,
    /// Subscribed to a channel or pattern.
    PubSub = 2,
}

/// The configured limits, read on every check (atomics: CONFIG SET changes them live).
#[derive(Debug, Default)]
pub struct OutputLimits {
    /// `[hard, soft, soft seconds]` per class.
    classes: [[AtomicU64; 3]; 3],
    cap: AtomicU64,
}

impl OutputLimits {
    pub(super) fn set_classes(&self, canonical: &str) {
        for (class, limits) in self
            .classes
            .iter()
            .zip(cache_config::class_limits_of(canonical))
        {
            for (slot, v) in class.iter().zip(limits) {
                slot.store(v, Relaxed);
            }
        }
    }

    pub(super) fn set_cap(&self, cap: u64) {
        self.cap.store(cap, Relaxed);
    }

    /// The most bytes a client of `class` may have waiting: its hard limit, never above the cap.
    pub fn hard(&self, class: ClientClass) -> u64 {
        let cap = self.cap.load(Relaxed);
        match self.classes[class as usize][0].load(Relaxed) {
            0 => cap,
            hard if cap == 0 => hard,
            hard => hard.min(cap),
        }
    }

    /// Whether a client of `class` with `used` bytes waiting must be closed, and why.
    /// `soft_since` keeps when it went over its soft limit (0: it is not over); the clock is
    /// read only while it is.
    pub fn exceeded(
        &self,
        class: ClientClass,
        used: u64,
        soft_since: &AtomicU64,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<&'static str> {
        if used > self.hard(class) {
            return Some("hard");
        }
        let [_, soft, secs] = &self.classes[class as usize];
        let soft = soft.load(Relaxed);
        if soft == 0 || used <= soft {
            soft_since.store(0, Relaxed);
            return None;
        }
        let now_ms = now_ms();
        let since = soft_since.load(Relaxed);
        if since == 0 {
            // `max(1)`: 0 means "not over".
            soft_since.store(now_ms.max(1), Relaxed);
            return None;
        }
        (now_ms.saturating_sub(since) >= secs.load(Relaxed) * 1000).then_some("soft")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(classes: &str, cap: u64) -> OutputLimits {
        let l = OutputLimits::default();
        l.set_classes(classes);
        l.set_cap(cap);
        l
    }

    #[test]
    fn hard_limits_and_the_cap() {
        let l = limits(
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            1 << 30,
        );
        assert_eq!(
            l.hard(ClientClass::Normal),
            1 << 30,
            "unlimited class: the cap"
        );
        assert_eq!(l.hard(ClientClass::PubSub), 32 << 20);
        let l = limits("normal 0 0 0 slave 0 0 0 pubsub 4294967296 0 0", 1 << 30);
        assert_eq!(l.hard(ClientClass::PubSub), 1 << 30, "never above the cap");
        let since = AtomicU64::new(0);
        assert_eq!(
            l.exceeded(ClientClass::Normal, (1 << 30) + 1, &since, || 5),
            Some("hard")
        );
    }

    #[test]
    fn soft_limit_needs_its_seconds_over_it() {
        let l = limits("normal 0 0 0 slave 0 0 0 pubsub 1000 100 2", 1 << 30);
        let since = AtomicU64::new(0);
        let check = |used, now| l.exceeded(ClientClass::PubSub, used, &since, || now);
        assert_eq!(check(500, 10_000), None, "over soft: the clock starts");
        assert_eq!(check(500, 11_999), None);
        assert_eq!(check(50, 12_000), None, "back under: the clock stops");
        assert_eq!(check(500, 12_500), None, "over again: a new start");
        assert_eq!(check(500, 14_499), None);
        assert_eq!(check(500, 14_500), Some("soft"));
        assert_eq!(check(1001, 14_500), Some("hard"));
    }
}
