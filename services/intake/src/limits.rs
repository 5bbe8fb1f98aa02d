//! Fixed-window counters in the cache: intake's rate limit per token or
//! API key (`intake.rate_limit_per_minute`), and the windows password
//! sign-in counts failures in (`auth::signin`).

use chrono::Utc;

use crate::error::IntakeError;
use crate::State;

/// The fixed window of `secs` seconds that `now` (Unix seconds) falls in,
/// and the seconds left in it (at least 1).
pub(crate) fn window(now: i64, secs: i64) -> (i64, u64) {
    let secs = secs.max(1);
    (now.div_euclid(secs), (secs - now.rem_euclid(secs)).max(1) as u64)
}

/// `intake.rate_limit_per_minute` for one subject (a user, an API key).
/// The cache only protects: when it is down, requests are accepted.
pub(crate) async fn rate_limit_subject(state: &State, subject: &str) -> Result<(), IntakeError> {
    if state.rate_limit == 0 {
        return Ok(());
    }
    let (minute, left) = window(Utc::now().timestamp(), 60);
    let key = format!("intake:rate:{subject}:{minute}");
    match state.cache.incr(&key, std::time::Duration::from_secs(61)).await {
        Ok(n) if n > state.rate_limit => Err(IntakeError::RateLimited(left)),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::debug!(error = %e, "rate limit not checked: cache unavailable");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(window(1000, 60), (16, 20));
        assert_eq!(window(960, 60), (16, 60));
        assert_eq!(window(1019, 60), (16, 1));
    }
}
