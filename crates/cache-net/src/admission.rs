//! Connection admission, the same for node and proxy: `maxclients`, protected mode, and a
//! count of live connections that a drop guard keeps right.
//!
//! ```text
//!  accept ──► Admission::admit(peer, policy) ──Ok(Slot)──► the connection's task holds the Slot
//!                                    └──Err(Refusal)──► refuse(stream, refusal): Redis's error, close
//!  task ends, returns early or panics ──► Slot dropped ──► live count down
//! ```
//!
//! The count is taken at accept time, before the socket reaches a worker, so a burst of
//! connections cannot overshoot `maxclients` while workers are busy.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Redis 7.0.15's reply when `maxclients` connections are open.
pub const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// Redis 7.0.15's reply to a non-loopback client in protected mode (its typo included).
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// What the configuration says at the moment a connection arrives.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub maxclients: u64,
    /// `protected-mode yes` and the default user has no password: only loopback clients.
    pub loopback_only: bool,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MaxClients,
    ProtectedMode,
}

impl Refusal {
    /// The error the client reads before the connection closes.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refusal::MaxClients => MAX_CLIENTS_REACHED,
            Refusal::ProtectedMode => PROTECTED_MODE_DENIED,
        }
    }
}

/// The live-connection count and the counters INFO reports.
#[derive(Debug, Default)]
pub struct Admission {
    live: AtomicU64,
    received: AtomicU64,
    rejected: AtomicU64,
}

impl Admission {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Admits a connection from `peer` under `policy`: a slot that counts it until dropped,
    /// or why not.
    ///
    /// # Errors
    /// The refusal, counted in `rejected_connections`.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, policy: Policy) -> Result<Slot, Refusal> {
        self.received.fetch_add(1, Relaxed);
        let refusal = if policy.loopback_only && !is_loopback(peer) {
            Some(Refusal::ProtectedMode)
        } else if self
            .live
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < policy.maxclients).then_some(n + 1)
            })
            .is_err()
        {
            Some(Refusal::MaxClients)
        } else {
            None
        };
        match refusal {
            Some(r) => {
                self.rejected.fetch_add(1, Relaxed);
                Err(r)
            }
            None => Ok(Slot(self.clone())),
        }
    }

    /// Connections open now (INFO `connected_clients`).
    pub fn connected(&self) -> u64 {
        self.live.load(Relaxed)
    }

    /// Connections accepted since start or CONFIG RESETSTAT (`total_connections_received`).
    pub fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Connections turned away (`rejected_connections`).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Relaxed)
    }

    /// CONFIG RESETSTAT: the totals start again (the live count stays).
    pub fn reset_stats(&self) {
        self.received.store(0, Relaxed);
        self.rejected.store(0, Relaxed);
    }
}

/// One admitted connection; dropping it (however the task ends) frees its place.
#[derive(Debug)]
pub struct Slot(Arc<Admission>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Relaxed);
    }
}

/// Writes the refusal's error and closes the connection (errors ignored: the peer may be gone).
pub async fn refuse(mut stream: impl AsyncWrite + Unpin, refusal: Refusal) {
    let _ = stream.write_all(refusal.reply()).await;
    let _ = stream.shutdown().await;
}

/// Loopback, including IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    #[test]
    fn maxclients_counts_live_slots() {
        let a = Admission::new();
        let policy = Policy {
            maxclients: 2,
            loopback_only: false,
        };
        let one = a.admit(LOCAL, policy).expect("first");
        let two = a.admit(REMOTE, policy).expect("second");
        assert_eq!(a.admit(LOCAL, policy).unwrap_err(), Refusal::MaxClients);
        assert_eq!((a.connected(), a.received(), a.rejected()), (2, 3, 1));
        drop(one);
        let three = a.admit(LOCAL, policy).expect("a place was freed");
        drop((two, three));
        assert_eq!(a.connected(), 0);
    }

    #[test]
    fn a_panicking_task_frees_its_slot() {
        let a = Admission::new();
        let policy = Policy {
            maxclients: 1,
            loopback_only: false,
        };
        let slot = a.admit(LOCAL, policy).expect("admitted");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = slot;
            panic!("handler crashed");
        }));
        assert!(r.is_err());
        assert_eq!(a.connected(), 0);
        assert!(a.admit(LOCAL, policy).is_ok());
    }

    #[test]
    fn protected_mode_admits_loopback_only() {
        let a = Admission::new();
        let policy = Policy {
            maxclients: 10,
            loopback_only: true,
        };
        assert!(a.admit(LOCAL, policy).is_ok());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(a.admit(mapped, policy).is_ok());
        assert_eq!(a.admit(REMOTE, policy).unwrap_err(), Refusal::ProtectedMode);
        assert_eq!(a.connected(), 0, "slots of this test were dropped at once");
    }
}
