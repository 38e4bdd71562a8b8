//! Durations: obs_core::config::Seconds on any f64 (the bits as given, and text as the
//! `?timeout_seconds=` query reads it). Properties: no panic; accepted means finite, within
//! the range, and a duration that adding to now cannot overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obs_core::config::{bounds, Seconds};

const RANGES: [Seconds; 4] = [
    watcher::config::bounds::HEARTBEAT_TIMEOUT,
    watcher::config::bounds::STATE_SAVE_INTERVAL,
    bounds::SHUTDOWN_GRACE,
    bounds::CLIENT_BODY_TIMEOUT,
];

fn check(value: f64) {
    for range in RANGES {
        match range.check(value) {
            Ok(duration) => {
                assert!(value.is_finite() && value >= range.min && value <= range.max);
                assert!(
                    range.min == 0.0 || !duration.is_zero(),
                    "{value:?} became zero"
                );
                assert!(std::time::Instant::now().checked_add(duration).is_some());
            }
            Err(why) => assert!(why.to_string().contains("is not a number of seconds")),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(bytes) = <[u8; 8]>::try_from(data) {
        check(f64::from_le_bytes(bytes));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(value) = text.trim().parse::<f64>() {
            check(value);
        }
    }
});
