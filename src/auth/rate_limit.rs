//! Per-caller request limit (`NASHUB_RATE_LIMIT_PER_USER`): a token bucket per authenticated
//! user, refilled at the configured rate with a burst of twice that; 0 turns it off. Kept per
//! node: the limit guards each node's capacity, and a caller spread over N nodes gets at most N
//! times the rate, which is still bounded. (Failed logins, which must be counted across nodes,
//! are throttled in the database instead: see `auth::throttle`.)

use std::time::{Duration, Instant};

use dashmap::DashMap;

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: DashMap<String, Bucket>,
}

impl RateLimiter {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(per_sec) * 2.0,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `caller`; `Err(wait)` when none is left.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        if self.buckets.len() > 100_000 {
            // Idle buckets are full anyway: forgetting them changes nothing.
            let horizon = Duration::from_secs_f64(self.burst / self.per_sec + 1.0);
            self.buckets
                .retain(|_, b| now.duration_since(b.last) < horizon);
        }
        let mut bucket = self
            .buckets
            .entry(caller.to_owned())
            .or_insert_with(|| Bucket {
                tokens: self.burst,
                last: now,
            });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }
}

/// Limits of the endpoints anyone may call, per client IP: they cost work before any token
/// is checked (an argon2 hash per login), so an address gets a bounded share of it.
pub struct IpLimits {
    auth: RateLimiter,
    callbacks: RateLimiter,
}

impl IpLimits {
    pub fn new(auth_per_sec: u32, callbacks_per_sec: u32) -> Self {
        Self {
            auth: RateLimiter::new(auth_per_sec),
            callbacks: RateLimiter::new(callbacks_per_sec),
        }
    }

    /// Login and refresh requests from `ip`.
    pub fn auth(&self, ip: &str) -> Result<(), Duration> {
        self.auth.check(ip)
    }

    /// Callbacks of `provider` from `ip`: one provider's burst does not starve another's.
    pub fn callback(&self, provider: &str, ip: &str) -> Result<(), Duration> {
        self.callbacks.check(&format!("{provider}@{ip}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_and_zero_is_off() {
        let limiter = RateLimiter::new(2);
        for _ in 0..4 {
            limiter.check("u").unwrap();
        }
        assert!(limiter.check("u").is_err());
        assert!(limiter.check("other").is_ok());
        let ips = IpLimits::new(1, 1);
        ips.auth("1.2.3.4").unwrap();
        ips.auth("1.2.3.4").unwrap();
        assert!(ips.auth("1.2.3.4").is_err());
        assert!(ips.auth("5.6.7.8").is_ok());
        ips.callback("jdb", "1.2.3.4").unwrap();
        ips.callback("jdb", "1.2.3.4").unwrap();
        assert!(ips.callback("jdb", "1.2.3.4").is_err());
        assert!(ips.callback("luckysports", "1.2.3.4").is_ok());
        let off = RateLimiter::new(0);
        for _ in 0..10_000 {
            off.check("u").unwrap();
        }
    }
}
