//! The wall clock as Cairn records it: milliseconds since the Unix epoch, as an `i64`
//! (the type every record's timestamp field uses). Code that must be testable against a
//! chosen time takes the time as an argument instead of calling this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now; 0 if the system clock reads before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::now_ms;

    #[test]
    fn now_ms_is_after_2020_and_does_not_run_backwards_within_a_call_pair() {
        // 2020-01-01T00:00:00Z in milliseconds.
        let a = now_ms();
        assert!(a > 1_577_836_800_000, "{a}");
        let b = now_ms();
        assert!(b >= a, "{a} then {b}");
    }
}
