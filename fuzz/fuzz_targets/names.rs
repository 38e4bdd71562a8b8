//! Names and texts as senders fit them (obs_model::limits) and receivers check them (the
//! curator's and the watcher's `validate`). Properties: no panic; a fitted value is always
//! accepted; what is accepted as it is stays unchanged by fitting; fitting is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obs_model::limits::{fit_name, fit_text, MAX_NAME_CHARS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let name = fit_name(value);
    assert!(curator::validate::name(&name).is_ok(), "{name:?}");
    assert!(watcher::validate::name(&name).is_ok(), "{name:?}");
    assert_eq!(fit_name(&name), name, "fitting twice changes {value:?}");
    if curator::validate::name(value).is_ok() {
        assert_eq!(name, value);
    }
    for max in [MAX_NAME_CHARS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS, 16] {
        let text = fit_text(value, max);
        assert!(
            curator::validate::text(&text, (max, "MAX")).is_ok(),
            "{max}: {text:?}"
        );
        if curator::validate::text(value, (max, "MAX")).is_ok() {
            assert_eq!(text, value);
        }
    }
});
