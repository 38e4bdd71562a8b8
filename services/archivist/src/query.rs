//! The query strings of `GET /v1/records` and `GET /v1/export` → a validated [`Filter`], or a
//! 400 naming the parameter. Parameters arrive as strings and are parsed here, so each error
//! says which one was wrong and why, in the one JSON error shape.

use chrono::{DateTime, Utc};
use obs_core::ApiError;
use serde::Deserialize;
use ulid::Ulid;
use utoipa::IntoParams;

use crate::store::{Cursor, Filter};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// `GET /v1/records`. Unknown parameters are refused, so a typo (`servce=`) is an error, not
/// a silently unfiltered answer.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// Only records of this kind (`event`, `issue`, `incident`, `plan`, `report`, …).
    kind: Option<String>,
    /// Only records of this service.
    service: Option<String>,
    /// RFC 3339: records with `ts` at or after this instant.
    since: Option<String>,
    /// RFC 3339: records with `ts` before this instant.
    until: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// `GET /v1/export`: the same filters, no page size (it streams everything that matches).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only records of this kind.
    kind: Option<String>,
    /// Only records of this service.
    service: Option<String>,
    /// RFC 3339: records with `ts` at or after this instant.
    since: Option<String>,
    /// RFC 3339: records with `ts` before this instant.
    until: Option<String>,
    /// Resume after this cursor (a `next` from `GET /v1/records`).
    after: Option<String>,
}

/// A validated page query.
#[derive(Debug, Clone, PartialEq)]
pub struct PageParams {
    pub filter: Filter,
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl RecordsParams {
    pub fn parse(&self) -> Result<PageParams, ApiError> {
        let limit = match present(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
                _ => {
                    return Err(ApiError::invalid_field(
                        "limit",
                        format!(
                            "'{}' is not a whole number from 1 to {MAX_LIMIT}",
                            clip(text)
                        ),
                    ))
                }
            },
        };
        Ok(PageParams {
            filter: filter(&self.kind, &self.service, &self.since, &self.until)?,
            after: present(&self.after).map(decode_cursor).transpose()?,
            limit,
        })
    }
}

impl ExportParams {
    pub fn parse(&self) -> Result<(Filter, Option<Cursor>), ApiError> {
        Ok((
            filter(&self.kind, &self.service, &self.since, &self.until)?,
            present(&self.after).map(decode_cursor).transpose()?,
        ))
    }
}

/// `kind=` with nothing after it means "any kind", as the DESIGN's URL template writes it.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

fn filter(
    kind: &Option<String>,
    service: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<Filter, ApiError> {
    let since = present(since)
        .map(|text| instant("since", text))
        .transpose()?;
    let until = present(until)
        .map(|text| instant("until", text))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            return Err(ApiError::invalid_field(
                "until",
                "is before since; nothing could match",
            ));
        }
    }
    Ok(Filter {
        kind: present(kind).map(str::to_string),
        service: present(service).map(str::to_string),
        since,
        until,
    })
}

/// An RFC 3339 instant as nanoseconds; beyond what the archive can hold, it is clamped (a
/// `since` of year 1000 simply means "from the start").
fn instant(name: &str, text: &str) -> Result<i64, ApiError> {
    let instant = DateTime::parse_from_rfc3339(text).map_err(|error| {
        ApiError::invalid_field(
            name,
            format!(
                "'{}' is not an RFC 3339 timestamp ({error}), e.g. 2024-05-01T12:00:00Z \
                 (a + in a URL must be sent as %2B)",
                clip(text)
            ),
        )
    })?;
    let instant = instant.with_timezone(&Utc);
    Ok(instant
        .timestamp_nanos_opt()
        .unwrap_or(if instant.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        }))
}

/// The cursor a page hands out in `next`: `<ts in ns>_<id>`. Clients treat it as opaque.
pub fn encode_cursor(cursor: &Cursor) -> String {
    format!("{}_{}", cursor.ts, cursor.id)
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let invalid = || {
        ApiError::invalid_field(
            "after",
            format!(
                "'{}' is not a cursor; pass the `next` value of a previous page",
                clip(text)
            ),
        )
    };
    let (ts, id) = text.rsplit_once('_').ok_or_else(invalid)?;
    let ts = ts.parse::<i64>().map_err(|_| invalid())?;
    let id = Ulid::from_string(id)
        .ok()
        .filter(|ulid| ulid.to_string().eq_ignore_ascii_case(id))
        .ok_or_else(invalid)?;
    Ok(Cursor {
        ts,
        id: id.to_string(),
    })
}

fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(query: &str) -> Result<PageParams, ApiError> {
        let params: RecordsParams = serde_urlencoded_from(query);
        params.parse()
    }

    fn serde_urlencoded_from(query: &str) -> RecordsParams {
        obs_core::actix_web::web::Query::<RecordsParams>::from_query(query)
            .expect("parses")
            .into_inner()
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            ts: -5,
            id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        assert!(decode_cursor("12").is_err());
        assert!(decode_cursor("x_01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err());
        assert!(decode_cursor("1_nope").is_err());
    }

    #[test]
    fn defaults_and_empty_values() {
        let page = records("kind=&service=&limit=").unwrap();
        assert_eq!(page.limit, DEFAULT_LIMIT);
        assert_eq!(page.filter, Filter::default());
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=99999999999999999999999", "limit"),
            ("limit=ten", "limit"),
            ("since=yesterday", "since"),
            ("until=2024-13-01T00:00:00Z", "until"),
            (
                "since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z",
                "until",
            ),
            ("after=garbage", "after"),
        ] {
            let error = records(query).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{field}: ")), "{query}: {error}");
        }
    }

    #[test]
    fn far_instants_are_clamped() {
        let page = records("since=0001-01-01T00:00:00Z&until=9999-01-01T00:00:00Z").unwrap();
        assert_eq!(page.filter.since, Some(i64::MIN));
        assert_eq!(page.filter.until, Some(i64::MAX));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn query(text: &str) -> Option<RecordsParams> {
            obs_core::actix_web::web::Query::<RecordsParams>::from_query(text)
                .ok()
                .map(|query| query.into_inner())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// The cursor a page hands out reads back as the same position.
            #[test]
            fn cursors_round_trip(ts in any::<i64>(), id in any::<u128>()) {
                let cursor = Cursor { ts, id: Ulid(id).to_string() };
                let params = query(&format!("after={}", encode_cursor(&cursor))).unwrap();
                prop_assert_eq!(params.parse().unwrap().after, Some(cursor));
            }

            /// Any query string is taken or refused with a 400 naming one of its parameters;
            /// an accepted limit is within 1..=MAX_LIMIT.
            #[test]
            fn any_query_is_taken_or_refused_by_parameter(
                text in prop_oneof![
                    any::<String>(),
                    ("(limit|after|since|until|kind)", "[-0-9_A-Za-z:.%+]{0,40}").prop_map(|(k, v)| format!("{k}={v}")),
                ],
            ) {
                let Some(params) = query(&text) else { return Ok(()) };
                match params.parse() {
                    Ok(page) => prop_assert!((1..=MAX_LIMIT).contains(&page.limit)),
                    Err(error) => {
                        prop_assert_eq!(error.code(), "invalid_field");
                        let message = error.to_string();
                        prop_assert!(
                            ["limit: ", "after: ", "since: ", "until: "].iter().any(|p| message.starts_with(p)),
                            "{message}"
                        );
                        prop_assert!(message.chars().count() < 300, "{message}");
                    }
                }
            }
        }
    }
}
