//! The watcher's request bodies, `POST /heartbeat` and `POST /events`, through the checks its
//! handlers apply (names, texts, `timeout_seconds`). Properties: no panic; a refusal is a
//! 400 with a stable code; an accepted timeout is a real duration within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obs_core::ApiError;
use obs_model::{EventIn, HeartbeatIn};
use watcher::config::bounds::HEARTBEAT_TIMEOUT;
use watcher::validate::{self, MAX_DETAIL_CHARS, MAX_NAME_CHARS, MAX_PHASE_CHARS};

fn refused(error: ApiError) {
    assert!(
        matches!(
            error,
            ApiError::BadRequest {
                code: "invalid_field",
                ..
            }
        ),
        "{error:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(beat) = obs_core::json::from_slice::<HeartbeatIn>(data) {
        let _ = validate::name(&beat.service);
        if let Some(phase) = &beat.phase {
            let _ = validate::text(phase, (MAX_PHASE_CHARS, "MAX_PHASE_CHARS"));
        }
        if let Some(seconds) = beat.timeout_seconds {
            match HEARTBEAT_TIMEOUT.field("timeout_seconds", seconds) {
                Ok(timeout) => {
                    assert!(timeout.as_secs_f64() >= HEARTBEAT_TIMEOUT.min * 0.999);
                    assert!(timeout.as_secs_f64() <= HEARTBEAT_TIMEOUT.max);
                }
                Err(error) => refused(error),
            }
        }
    }
    if let Ok(event) = obs_core::json::from_slice::<EventIn>(data) {
        for name in [
            Some(&event.service),
            Some(&event.event_type),
            event.component.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if validate::name(name).is_ok() {
                assert!(!name.is_empty() && name.len() <= MAX_NAME_CHARS);
            }
        }
        if let Some(detail) = &event.detail {
            if validate::text(detail, (MAX_DETAIL_CHARS, "MAX_DETAIL_CHARS")).is_ok() {
                assert!(detail.chars().count() <= MAX_DETAIL_CHARS);
            }
        }
    }
});
