//! `POST /v1/silences` (curator): the body, its matchers and their regular expressions.
//! Properties: no panic; an accepted silence keeps within MAX_MATCHERS and the regex budget
//! (MAX_SILENCE_REGEX_BYTES); a refusal names a field.
#![no_main]

use chrono::TimeZone as _;
use curator::silences::{Compiled, MAX_MATCHERS, MAX_SILENCE_REGEX_BYTES};
use libfuzzer_sys::fuzz_target;
use obs_model::SilenceIn;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = obs_core::json::from_slice::<SilenceIn>(data) else {
        return;
    };
    let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    match Compiled::from_input(input, now) {
        Ok(compiled) => {
            assert!(compiled.silence.matchers.len() <= MAX_MATCHERS);
            assert!(compiled.regex_bytes() <= MAX_SILENCE_REGEX_BYTES);
        }
        Err(error) => assert!(!error.field.is_empty(), "unnamed refusal: {error:?}"),
    }
});
