//! Circuit breaker per provider account: after `failures_to_open` consecutive unavailable
//! answers it opens for `open_ms`, failing fast (503) so a dead provider cannot tie up the hub;
//! then one probe at a time is let through (half-open) until one succeeds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The `provider_breaker_state` gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(failures_to_open: u32, open_ms: u64) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            open_for: Duration::from_millis(open_ms),
            inner: Mutex::new(Inner {
                consecutive_failures: 0,
                opened_at: None,
                probing: false,
            }),
        }
    }

    pub fn state(&self) -> BreakerState {
        let inner = self.inner.lock().expect("breaker lock");
        match inner.opened_at {
            None => BreakerState::Closed,
            Some(at) if at.elapsed() < self.open_for => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go out now (half-open: only one probe at a time).
    pub fn allow(&self) -> bool {
        let mut inner = self.inner.lock().expect("breaker lock");
        match inner.opened_at {
            None => true,
            Some(at) if at.elapsed() < self.open_for => false,
            Some(_) if inner.probing => false,
            Some(_) => {
                inner.probing = true;
                true
            }
        }
    }

    /// Gives back a permit that led to no call (a refused or replayed request): no verdict.
    pub fn release(&self) {
        self.inner.lock().expect("breaker lock").probing = false;
    }

    pub fn record_success(&self) {
        let mut inner = self.inner.lock().expect("breaker lock");
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.probing = false;
    }

    pub fn record_failure(&self) {
        let mut inner = self.inner.lock().expect("breaker lock");
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        if inner.probing || inner.consecutive_failures >= self.failures_to_open {
            inner.opened_at = Some(Instant::now());
        }
        inner.probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_recovers_after_a_probe() {
        let b = Breaker::new(3, 20);
        for _ in 0..3 {
            assert!(b.allow());
            b.record_failure();
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow());
        assert!(!b.allow(), "one probe at a time");
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
