//! Lock-out after repeated failures, per user and per client (device or relying
//! party), with exponential back-off.
//!
//! Each failed attempt counts against its subjects (`user:<id>` when a user was claimed
//! or identified, `client:<id>` when the attempt names its client). At
//! `max_failures` consecutive failures the subject is locked for `lockout_secs`, doubled
//! for each further lock-out without a success in between, up to `max_lockout_secs`.
//! A success or an operator's unlock clears the subject. An attempt against a locked
//! subject is refused (`LOCKED`) without comparing a face, and does not extend the lock.

use honnin_storage::LockoutRow;

use crate::config::login::LoginConfig;

/// Until when `row` locks its subject at `now_ms`, if it does.
pub fn locked_until(row: Option<&LockoutRow>, now_ms: i64) -> Option<i64> {
    row.and_then(|r| r.locked_until_ms).filter(|&u| u > now_ms)
}

/// The state after one more failure, and whether this failure locked the subject.
pub fn after_failure(
    row: Option<LockoutRow>,
    collection: &str,
    subject: &str,
    now_ms: i64,
    cfg: &LoginConfig,
) -> (LockoutRow, bool) {
    let mut r = row.unwrap_or(LockoutRow {
        collection_id: collection.into(),
        subject: subject.into(),
        failures: 0,
        lockouts: 0,
        locked_until_ms: None,
        updated_ms: now_ms,
    });
    r.failures += 1;
    r.updated_ms = now_ms;
    let mut locked = false;
    if r.failures >= cfg.max_failures.max(1) as i64 {
        r.lockouts += 1;
        r.failures = 0;
        r.locked_until_ms = Some(now_ms + lockout_ms(r.lockouts, cfg));
        locked = true;
    }
    (r, locked)
}

/// The length of the `n`-th lock-out (1-based), milliseconds.
pub fn lockout_ms(n: i64, cfg: &LoginConfig) -> i64 {
    let doublings = (n.max(1) - 1).min(30) as u32;
    let secs = cfg
        .lockout_secs
        .saturating_mul(1u64 << doublings)
        .min(cfg.max_lockout_secs.max(cfg.lockout_secs));
    secs as i64 * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LoginConfig {
        LoginConfig {
            max_failures: 3,
            lockout_secs: 60,
            max_lockout_secs: 200,
            ..LoginConfig::default()
        }
    }

    #[test]
    fn the_third_failure_locks_and_back_off_doubles_up_to_the_cap() {
        let c = cfg();
        let (r, l) = after_failure(None, "c", "user:a", 0, &c);
        assert!(!l && r.failures == 1);
        let (r, l) = after_failure(Some(r), "c", "user:a", 1, &c);
        assert!(!l && locked_until(Some(&r), 1).is_none());
        let (r, l) = after_failure(Some(r), "c", "user:a", 2, &c);
        assert!(l);
        assert_eq!(locked_until(Some(&r), 2), Some(60_002));
        assert_eq!(locked_until(Some(&r), 60_002), None, "over at its end");
        let mut r = r;
        for _ in 0..3 {
            r = after_failure(Some(r), "c", "user:a", 70_000, &c).0;
        }
        assert_eq!(r.locked_until_ms, Some(70_000 + 120_000), "doubled");
        for _ in 0..3 {
            r = after_failure(Some(r), "c", "user:a", 300_000, &c).0;
        }
        assert_eq!(r.locked_until_ms, Some(300_000 + 200_000), "capped");
        assert_eq!(lockout_ms(1_000, &c), 200_000);
    }
}
