//! `POST /v1/issues` (curator): a JSON array of issues or archive envelopes. Properties: no
//! panic; a refusal names an item (`[n]…`); an issue that decodes, once fitted by the
//! sender's `Issue::fit_limits`, is always accepted by the curator's checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obs_model::Issue;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(items) = obs_core::json::from_slice::<Vec<Box<RawValue>>>(data) else {
        return;
    };
    if let Err(error) = curator::issues::parse_batch(&items) {
        assert!(error.field.starts_with('['), "unnamed item: {error:?}");
    }
    for item in &items {
        if let Ok(issue) = obs_core::json::from_str::<Issue>(item.get()) {
            let fitted = issue.fit_limits();
            if let Err(error) = curator::issues::check(&fitted) {
                panic!("the curator refuses a fitted issue: {error:?}\n{fitted:?}");
            }
        }
    }
});
