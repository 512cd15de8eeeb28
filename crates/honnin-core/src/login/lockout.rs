//! Lock-out after repeated failures, per user and per client (device or relying
//! party), with exponential back-off.
//!
//! Each failed attempt counts against its subjects (`user:<id>` when a user was claimed
//! and a face compared with the profile, `client:<id>` when the attempt names its
//! client), atomically in storage (`Store::count_login_failure`). At
//! `max_failures` consecutive failures the subject is locked for `lockout_secs`, doubled
//! for each further lock-out without a success in between, up to `max_lockout_secs`.
//! A success or an operator's unlock clears the subject. An attempt against a locked
//! subject is refused (`LOCKED`) without comparing a face, and does not extend the lock;
//! a 1:N attempt that identifies a locked user is refused the same way.

use honnin_storage::LockoutRow;

use crate::config::login::LoginConfig;

/// Until when `row` locks its subject at `now_ms`, if it does.
pub fn locked_until(row: Option<&LockoutRow>, now_ms: i64) -> Option<i64> {
    row.and_then(|r| r.locked_until_ms).filter(|&u| u > now_ms)
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
    fn back_off_doubles_up_to_the_cap() {
        let c = cfg();
        assert_eq!(lockout_ms(1, &c), 60_000);
        assert_eq!(lockout_ms(2, &c), 120_000);
        assert_eq!(lockout_ms(3, &c), 200_000, "capped");
        assert_eq!(lockout_ms(1_000, &c), 200_000);
        assert_eq!(lockout_ms(0, &c), 60_000, "the first at least");
    }

    #[test]
    fn a_lock_holds_until_its_end() {
        let row = LockoutRow {
            collection_id: "c".into(),
            subject: "user:a".into(),
            failures: 0,
            lockouts: 1,
            locked_until_ms: Some(1_000),
            updated_ms: 0,
        };
        assert_eq!(locked_until(Some(&row), 999), Some(1_000));
        assert_eq!(locked_until(Some(&row), 1_000), None);
        assert_eq!(locked_until(None, 0), None);
    }
}
