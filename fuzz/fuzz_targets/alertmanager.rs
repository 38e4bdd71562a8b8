//! `POST /v1/alertmanager` (curator): Alertmanager's webhook payload. Properties: no panic;
//! an accepted alert's signal keeps within the limits the curator promises (labels and
//! annotations counted, subject and service bounded).
#![no_main]

use chrono::TimeZone as _;
use curator::alertmanager::{signals, Payload};
use libfuzzer_sys::fuzz_target;
use obs_model::limits::{
    MAX_ALERT_ANNOTATIONS, MAX_ALERT_LABELS, MAX_NAME_CHARS, MAX_SUBJECT_CHARS,
};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = obs_core::json::from_slice::<Payload>(data) else {
        return;
    };
    let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    if let Ok(signals) = signals(payload, now) {
        for signal in signals {
            assert!(signal.labels.len() <= MAX_ALERT_LABELS);
            assert!(signal.annotations.len() <= MAX_ALERT_ANNOTATIONS);
            assert!(signal.subject.chars().count() <= MAX_SUBJECT_CHARS);
            assert!(signal.service.chars().count() <= MAX_NAME_CHARS);
        }
    }
});
