//! Adaptive busy polling for a worker thread.
//!
//! A worker that sleeps in `epoll_wait` between requests must be woken by the kernel when the
//! next request arrives, and on loopback that wake-up (and, in a VM, the inter-processor
//! interrupt behind it) is paid by the *sender*: the client's `write(2)` runs our socket's
//! receive path and wakes us. For a client with one request in flight per connection that is
//! about a microsecond of its CPU per request, a tenth of all it does (measured with
//! redis-benchmark -P 1; its throughput rose 8–12%).
//!
//! So after a batch of work a worker can keep polling its sockets without blocking, for a
//! short window (`busy-poll-us`, like Linux's `net.core.busy_poll`). While requests keep
//! coming it never sleeps, and the clients' writes find no sleeper to wake. When nothing
//! arrives for the window it goes back to sleep, so an idle server costs no CPU, and a lightly
//! loaded one at most one window per request. It is off by default: next to other busy
//! processes on the same CPU, polling costs them latency.
//!
//! The poller is one task per worker: it yields in a loop, and the current-thread scheduler
//! answers a yield with a non-blocking poll of the I/O driver. Each turn it also offers the
//! CPU to other threads (`sched_yield`); when one takes it, the CPU is shared, polling would
//! steal from its neighbours, and the poller stays asleep for a while. Connections call
//! [`note_activity`] once per batch; that is what keeps the window open, and what wakes the
//! poller when it has gone to sleep.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// A `sched_yield` that took this long ran another thread: our CPU is not ours alone.
const SHARED_CPU: Duration = Duration::from_micros(20);
/// How long a poller that found its CPU shared leaves it alone before it tries again.
const SHARED_BACKOFF: Duration = Duration::from_millis(20);

thread_local! {
    /// Batches served on this worker so far.
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
    /// The sleeping poller's waker, if it sleeps.
    static SLEEPER: Cell<Option<Waker>> = const { Cell::new(None) };
}

fn activity() -> u64 {
    ACTIVITY.with(Cell::get)
}

/// Reports that this worker just served a batch. Cheap: a counter, and a wake-up only when
/// the poller is asleep.
#[inline]
pub fn note_activity() {
    ACTIVITY.with(|a| a.set(a.get().wrapping_add(1)));
    if let Some(waker) = SLEEPER.with(Cell::take) {
        waker.wake();
    }
}

/// The window to poll for: `configured`, unless `workers` threads take every CPU of the
/// machine. Then each poller would take CPU from the programs beside us, the clients on a
/// shared host first (measured: redis-benchmark -P 1 sharing two CPUs with two polling
/// workers lost 10-25% and its p99 went from 0.8 to 3.7 ms).
pub fn window_for(configured: Duration, workers: usize) -> Duration {
    match online_cpus() {
        Some(cpus) if workers < cpus => configured,
        _ => Duration::ZERO,
    }
}

/// CPUs the kernel has online (not just those this process may use).
fn online_cpus() -> Option<usize> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    count_cpu_list(list.trim())
}

/// Counts a kernel CPU list such as `0-3,5,7-8`.
fn count_cpu_list(list: &str) -> Option<usize> {
    list.split(',').try_fold(0, |total, part| {
        let n = match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?)? + 1,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
        Some(total + n)
    })
}

/// Starts the poller on the current worker (inside its runtime); a zero window disables it.
pub fn start(window: Duration) {
    if !window.is_zero() {
        tokio::spawn(poll(window));
    }
}

async fn poll(window: Duration) {
    loop {
        // Asleep until a connection serves a batch.
        let seen = activity();
        poll_fn(|cx| {
            if activity() != seen {
                Poll::Ready(())
            } else {
                SLEEPER.with(|s| s.set(Some(cx.waker().clone())));
                Poll::Pending
            }
        })
        .await;
        // Awake: poll the sockets while batches keep coming, until a quiet window passes.
        let mut seen = activity();
        let mut quiet_since = Instant::now();
        loop {
            tokio::task::yield_now().await;
            // Politely: another thread runnable on this CPU gets it first. If one did, the CPU
            // is shared, and polling would only take turns from it: stop, look again later.
            let asked = Instant::now();
            std::thread::yield_now();
            if asked.elapsed() >= SHARED_CPU {
                tokio::time::sleep(SHARED_BACKOFF).await;
                break;
            }
            let now = activity();
            if now != seen {
                seen = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= window {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_like_the_kernel_writes_them() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn workers_on_every_cpu_do_not_poll() {
        let window = Duration::from_micros(50);
        assert_eq!(window_for(window, usize::MAX), Duration::ZERO);
        if let Some(cpus) = online_cpus().filter(|&c| c > 1) {
            assert_eq!(window_for(window, cpus - 1), window);
            assert_eq!(window_for(window, cpus), Duration::ZERO);
        }
    }
}
