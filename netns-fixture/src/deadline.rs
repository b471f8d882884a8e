//! Deadlines from user-given durations, which may be as large as `Duration::MAX`.

use std::time::{Duration, Instant};

/// About a century: far enough to mean "never" for any test, near enough that
/// `Instant` arithmetic on it cannot overflow.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3_600);

/// `start + wait`, saturated at about a century after `start` instead of
/// panicking with "overflow when adding duration to instant".
///
/// ```ignore
/// let d = crate::deadline::after(Instant::now(), Duration::MAX);
/// assert!(d > Instant::now());
/// ```
pub(crate) fn after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait.min(NEVER))
        .unwrap_or_else(|| start + Duration::from_secs(3_600))
}

/// [`after`] from now.
pub(crate) fn from_now(wait: Duration) -> Instant {
    after(Instant::now(), wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_wait_saturates_instead_of_panicking() {
        let start = Instant::now();
        assert!(after(start, Duration::MAX) >= start + Duration::from_secs(3_600));
        assert_eq!(
            after(start, Duration::from_secs(2)),
            start + Duration::from_secs(2)
        );
        assert!(from_now(Duration::MAX) > Instant::now());
    }
}
