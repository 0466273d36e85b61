//! The one retry policy: which answers are retried, how long to wait, when to stop.
//!
//! Retried: 408, 429, 500, 502, 503, 504 and connection-level failures (every request we send
//! is idempotent: create-with-overwrite, append at a position, flush at a length, delete).
//! The wait is the service's `x-ms-retry-after-ms` / `retry-after-ms` / `Retry-After`
//! (seconds or an HTTP date) when it sends one, otherwise exponential backoff with jitter
//! (backon). Attempts are bounded, and so is the total time.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff delay (grows ×2 per retry, with jitter).
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Total time one request may take across all its attempts.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A fresh backoff sequence for one request.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

/// Statuses worth another attempt.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Statuses that mean "slow down" (the executor shrinks its concurrency on these).
pub(crate) fn is_throttle_status(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// The wait the service asked for, if any.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = get(name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = get("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header map from `(name, value)` pairs (test input).
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, reqwest::header::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "5"),
                ("x-ms-retry-after-ms", "20")
            ])),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "150")])),
            Some(Duration::from_millis(150))
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(10));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[])), None);
    }

    #[test]
    fn backoff_is_bounded_and_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            deadline: Duration::from_secs(1),
        };
        let delays: Vec<_> = p.backoff().collect();
        assert_eq!(delays.len(), 4);
        // backon's jitter adds up to one more delay on top of the capped value.
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(500)),
            "{delays:?}"
        );
    }

    #[test]
    fn classification() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 401, 403, 404, 409, 412, 501, 505] {
            assert!(!is_retryable_status(s));
        }
    }
}
