//! The silences' matcher compiler, fed regular expressions directly (no JSON escaping in the
//! way): one pattern per line, each a regex matcher on `service`. Properties: no panic, no
//! compiled expression past MAX_REGEX_BYTES (a one-line input), the silence within MAX_SILENCE_REGEX_BYTES.
#![no_main]

use chrono::TimeZone as _;
use curator::silences::{Compiled, MAX_REGEX_BYTES, MAX_SILENCE_REGEX_BYTES};
use libfuzzer_sys::fuzz_target;
use obs_model::{Matcher, Silence, SilenceState};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let matchers: Vec<Matcher> = text
        .split('\n')
        .enumerate()
        .map(|(index, pattern)| Matcher {
            name: "service".into(),
            value: pattern.to_string(),
            is_regex: true,
            // Every other one turned around: `!~` as well as `=~`.
            is_equal: index % 2 == 0,
        })
        .collect();
    let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let silence = Silence {
        id: ulid::Ulid::nil(),
        matchers,
        starts_at: at,
        ends_at: at + chrono::Duration::hours(1),
        comment: "fuzz".into(),
        created_by: None,
        created_at: at,
        state: SilenceState::Active,
    };
    if let Ok(compiled) = Compiled::compile(silence) {
        let total = compiled.regex_bytes();
        assert!(total <= MAX_SILENCE_REGEX_BYTES, "{total} bytes");
        if compiled.silence.matchers.len() == 1 {
            assert!(total <= MAX_REGEX_BYTES, "{total} bytes");
        }
    }
});
