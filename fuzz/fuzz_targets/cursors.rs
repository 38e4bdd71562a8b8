//! Page cursors: the services' `?after=` (obs_model::page, the watcher's and the synthesizer's) and the archivist's `GET /v1/records`
//! query string (its cursor, limit and times). Properties: no panic; a refusal is a 400
//! naming the parameter; a cursor that parses prints back to an equal one.
#![no_main]

use archivist::query::{encode_cursor, RecordsParams};
use libfuzzer_sys::fuzz_target;
use obs_core::actix_web::web::Query;
use obs_core::ApiError;
use obs_model::page::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every rank a list may use: the property holds whatever the list's number of ranks.
    if let Ok(cursor) = Cursor::parse(text, u8::MAX) {
        let printed = cursor.to_string();
        assert_eq!(Cursor::parse(&printed, u8::MAX).as_ref(), Ok(&cursor), "{printed}");
    }
    if let Ok(query) = Query::<RecordsParams>::from_query(text) {
        match query.parse() {
            Ok(page) => {
                assert!((1..=archivist::query::MAX_LIMIT).contains(&page.limit));
                if let Some(after) = page.after {
                    let again = format!("after={}", encode_cursor(&after));
                    let reparsed = Query::<RecordsParams>::from_query(&again)
                        .expect("a printed cursor is a query")
                        .parse()
                        .expect("a printed cursor parses");
                    assert_eq!(reparsed.after, Some(after));
                }
            }
            Err(error) => assert!(
                matches!(
                    error,
                    ApiError::BadRequest {
                        code: "invalid_field",
                        ..
                    }
                ),
                "{error:?}"
            ),
        }
    }
});
