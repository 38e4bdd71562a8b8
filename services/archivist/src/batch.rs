//! A `POST /v1/records` body → records ready to store, or a 400 that names the field.
//!
//! The body is checked whole before anything is stored: one bad record rejects the batch, so
//! a sender never has to work out which half of a batch made it.

use chrono::{DateTime, Utc};
use obs_core::ApiError;
use obs_model::Record;
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::store::NewRecord;

/// The envelope's fields (obs_model::Record); anything else is refused, not silently dropped.
const FIELDS: [&str; 5] = ["id", "kind", "service", "ts", "body"];
const KIND_MAX_BYTES: usize = 64;
const SERVICE_MAX_BYTES: usize = 255;

pub fn parse_batch(body: Value, max_batch: usize) -> Result<Vec<NewRecord>, ApiError> {
    let items = match body {
        Value::Array(items) => items,
        other => {
            return Err(ApiError::invalid_field(
                "records",
                format!(
                    "the body must be a JSON array of records, not {}",
                    describe(&other)
                ),
            ))
        }
    };
    if items.len() > max_batch {
        return Err(ApiError::BadRequest {
            code: "batch_too_large",
            message: format!(
                "records: {} records in one batch, more than the limit of {max_batch} \
                 (ARCHIVE_MAX_BATCH); send them in smaller batches",
                items.len()
            ),
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_record(index, item))
        .collect()
}

fn parse_record(index: usize, item: Value) -> Result<NewRecord, ApiError> {
    let at = |field: &str| format!("records[{index}].{field}");
    let mut fields = match item {
        Value::Object(fields) => fields,
        other => {
            return Err(ApiError::invalid_field(
                &format!("records[{index}]"),
                format!("a record must be a JSON object, not {}", describe(&other)),
            ))
        }
    };
    if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(ApiError::invalid_field(
            &at(unknown),
            "unknown field; a record has id, kind, service, ts and body",
        ));
    }

    let id_text = take_string(&mut fields, "id", &at)?;
    let id = Ulid::from_string(&id_text)
        .ok()
        // The decoder wraps values past 128 bits (a first character above 7) instead of
        // refusing them; a round trip catches that, so no two texts map to one id.
        .filter(|id| id.to_string().eq_ignore_ascii_case(&id_text))
        .ok_or_else(|| {
            ApiError::invalid_field(
                &at("id"),
                format!(
                    "'{}' is not a ULID (26 Crockford base32 characters, the first 0-7)",
                    clip(&id_text)
                ),
            )
        })?;

    let kind = take_string(&mut fields, "kind", &at)?;
    if kind.is_empty() || kind.len() > KIND_MAX_BYTES {
        return Err(ApiError::invalid_field(
            &at("kind"),
            format!("must be 1 to {KIND_MAX_BYTES} characters"),
        ));
    }
    if !kind
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(ApiError::invalid_field(
            &at("kind"),
            format!(
                "'{}' may hold only letters, digits and _ - . :",
                clip(&kind)
            ),
        ));
    }

    let service = take_string(&mut fields, "service", &at)?;
    if service.is_empty() || service.len() > SERVICE_MAX_BYTES {
        return Err(ApiError::invalid_field(
            &at("service"),
            format!("must be 1 to {SERVICE_MAX_BYTES} bytes"),
        ));
    }
    if service.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            &at("service"),
            "must not contain control characters",
        ));
    }

    let ts_text = take_string(&mut fields, "ts", &at)?;
    let ts = DateTime::parse_from_rfc3339(&ts_text)
        .map_err(|error| {
            ApiError::invalid_field(
                &at("ts"),
                format!(
                    "'{}' is not an RFC 3339 timestamp ({error}), e.g. 2024-05-01T12:00:00Z",
                    clip(&ts_text)
                ),
            )
        })?
        .with_timezone(&Utc);
    let ts_nanos = ts.timestamp_nanos_opt().ok_or_else(|| {
        ApiError::invalid_field(&at("ts"), "must be between the years 1678 and 2261")
    })?;

    // Missing or null are both "no body", as obs_model::Record reads them.
    let body = fields.remove("body").unwrap_or(Value::Null);

    let record = Record {
        id,
        kind,
        service,
        ts,
        body,
    };
    let json = serde_json::to_string(&record).map_err(|error| {
        ApiError::Internal(anyhow::Error::new(error).context("rendering a record"))
    })?;
    Ok(NewRecord {
        id: record.id.to_string(),
        kind: record.kind,
        service: record.service,
        ts: ts_nanos,
        json,
    })
}

fn take_string(
    fields: &mut Map<String, Value>,
    name: &str,
    at: &impl Fn(&str) -> String,
) -> Result<String, ApiError> {
    match fields.remove(name) {
        Some(Value::String(text)) => Ok(text),
        None => Err(ApiError::invalid_field(&at(name), "missing")),
        Some(other) => Err(ApiError::invalid_field(
            &at(name),
            format!("must be a string, not {}", describe(&other)),
        )),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Echo at most a short prefix of a bad value: enough to recognise it, never a megabyte.
fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(result: Result<Vec<NewRecord>, ApiError>) -> String {
        match result {
            Err(error) => error.to_string(),
            Ok(records) => panic!("accepted: {records:?}"),
        }
    }

    #[test]
    fn a_good_record_is_rendered_canonically() {
        let records = parse_batch(
            json!([{
                "id": "01arz3ndektsv4rrffq69g5fav",
                "kind": "incident",
                "service": "api",
                "ts": "2024-05-01T14:00:00.5+02:00",
                "body": {"state": "open"}
            }]),
            10,
        )
        .unwrap();
        assert_eq!(records[0].id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(records[0].ts, 1_714_564_800_500_000_000);
        let stored: Record = serde_json::from_str(&records[0].json).unwrap();
        assert_eq!(stored.ts.to_rfc3339(), "2024-05-01T12:00:00.500+00:00");
        assert_eq!(stored.body, json!({"state": "open"}));
    }

    #[test]
    fn errors_name_the_field() {
        let good = json!({"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "kind": "event", "service": "a",
                          "ts": "2024-05-01T12:00:00Z"});
        let with = |field: &str, value: Value| {
            let mut record = good.clone();
            record[field] = value;
            json!([good.clone(), record])
        };
        assert!(message(parse_batch(json!({"id": 1}), 10)).starts_with("records: "));
        assert!(message(parse_batch(json!([1]), 10)).starts_with("records[0]: "));
        assert!(message(parse_batch(with("id", json!("nope")), 10)).starts_with("records[1].id: "));
        assert!(message(parse_batch(with("id", json!(7)), 10)).contains("must be a string"));
        assert!(message(parse_batch(with("kind", json!("")), 10)).starts_with("records[1].kind: "));
        assert!(
            message(parse_batch(with("kind", json!("a b")), 10)).starts_with("records[1].kind: ")
        );
        assert!(message(parse_batch(with("service", json!("a\nb")), 10))
            .starts_with("records[1].service: "));
        assert!(
            message(parse_batch(with("ts", json!("yesterday")), 10)).starts_with("records[1].ts: ")
        );
        assert!(
            message(parse_batch(with("ts", json!("9999-01-01T00:00:00Z")), 10))
                .starts_with("records[1].ts: ")
        );
        assert!(message(parse_batch(with("extra", json!(1)), 10)).starts_with("records[1].extra: "));
        assert!(message(parse_batch(json!([good.clone(), good.clone()]), 1)).contains("limit of 1"));
    }

    #[test]
    fn long_bad_values_are_clipped_in_messages() {
        let id = "x".repeat(10_000);
        let error = message(parse_batch(
            json!([{"id": id, "kind": "k", "service": "s", "ts": "2024-01-01T00:00:00Z"}]),
            10,
        ));
        assert!(error.len() < 200, "{error}");
    }
}
