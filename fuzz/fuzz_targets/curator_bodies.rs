//! The curator's other bodies: an acknowledge or resolve (`{"by", "comment"}`, any bytes,
//! empty allowed) and `PUT /v1/goals`. Properties: no panic; a refusal is a 400 with a stable
//! code; what is accepted keeps within its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obs_core::ApiError;
use obs_model::limits::{MAX_COMMENT_CHARS, MAX_NAME_CHARS};
use obs_model::Goals;

fn is_bad_request(error: &ApiError) -> bool {
    matches!(error, ApiError::BadRequest { code, .. } if ["invalid_json", "invalid_field"].contains(code))
}

fuzz_target!(|data: &[u8]| {
    match curator::api::by_hand(data) {
        Ok(input) => {
            assert!(input
                .by
                .is_none_or(|by| by.chars().count() <= MAX_NAME_CHARS));
            assert!(input
                .comment
                .is_none_or(|comment| comment.chars().count() <= MAX_COMMENT_CHARS));
        }
        Err(error) => assert!(is_bad_request(&error), "{error:?}"),
    }
    if let Ok(goals) = obs_core::json::from_slice::<Goals>(data) {
        if let Ok(services) = curator::goals::check(goals) {
            for goal in services {
                assert!(curator::validate::name(&goal.service).is_ok());
            }
        }
    }
});
