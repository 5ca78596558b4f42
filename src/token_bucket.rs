//! A token bucket: how often something costly (a request to the provider) may be caused by
//! input an attacker controls. It holds at most `burst` tokens and earns one every `every`;
//! each permitted action spends one.
//!
//! The unknown-kid JWKS refetches ([`crate::jwks`]) and the verifier's introspection requests
//! ([`crate::verifier`]) are both paced by one.

use std::time::{Duration, Instant};

/// The pace of a [`TokenBucket`]: at most `burst` actions at once, then one per `every` (a zero
/// `every`: no bound at all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Most tokens held (the largest burst).
    pub burst: f64,
    /// Time to earn one token.
    pub every: Duration,
}

impl Rate {
    /// `per_second` actions a second, in bursts of as many (at least one).
    pub(crate) fn per_second(per_second: f64) -> Self {
        Self {
            burst: per_second.max(1.0),
            every: Duration::from_secs_f64(1.0 / per_second),
        }
    }
}

/// The tokens left, and when they were counted; a new bucket is full.
#[derive(Debug, Default)]
pub(crate) struct TokenBucket {
    level: Option<(f64, Instant)>,
}

impl TokenBucket {
    /// The tokens available now (earned ones added, up to the burst).
    pub(crate) fn available(&mut self, rate: Rate) -> f64 {
        let now = Instant::now();
        let (tokens, since) = self.level.unwrap_or((rate.burst, now));
        let earned = if rate.every.is_zero() {
            rate.burst
        } else {
            now.duration_since(since).as_secs_f64() / rate.every.as_secs_f64()
        };
        let tokens = (tokens + earned).min(rate.burst);
        self.level = Some((tokens, now));
        tokens
    }

    /// Spends a token if one is available; `false` when the rate is exceeded.
    pub(crate) fn take(&mut self, rate: Rate) -> bool {
        if self.available(rate) < 1.0 {
            return false;
        }
        if let Some((tokens, _)) = &mut self.level {
            *tokens -= 1.0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let rate = Rate {
            burst: 2.0,
            every: Duration::from_secs(3600),
        };
        let mut bucket = TokenBucket::default();
        assert_eq!(
            [bucket.take(rate), bucket.take(rate), bucket.take(rate)],
            [true, true, false]
        );
        let unbounded = Rate {
            burst: 1.0,
            every: Duration::ZERO,
        };
        assert!((0..100).all(|_| bucket.take(unbounded)));
        let mut bucket = TokenBucket::default();
        let fast = Rate::per_second(1000.0);
        assert_eq!((0..2000).filter(|_| bucket.take(fast)).count() / 100, 10);
    }
}
