//! JSON request bodies that say which field was wrong.
//!
//! actix's `web::Json` reports a wrong type as "invalid type: integer `5`, expected a string at
//! line 1 column 12": no field. [`Json`] deserializes through `serde_path_to_error`, so the
//! client reads `service: invalid type: integer `5`, expected a string`, the path reaching into
//! arrays and nested objects (`[3].labels.alertname`). Every role takes JSON bodies with it.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// MAX_BODY_BYTES when no [`BodyLimit`] is registered (the DESIGN default).
const DEFAULT_LIMIT: usize = 1024 * 1024;

/// The largest body [`Json`] reads, registered by [`crate::error::extractor_configs`].
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON request body deserialized into `T`. Requires `Content-Type: application/json` (or
/// `…+json`); errors are [`ApiError`]s: 400 naming the field, 413 over the limit, 415 for
/// another content type.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(request);
        let checked = check_headers(request, limit);
        let encoding = content_encoding(request);
        let payload = payload.take();
        Box::pin(async move {
            checked?;
            let body = read_body(payload, encoding?, limit).await?;
            Ok(Json(from_slice(&body)?))
        })
    }
}

/// A request body as bytes, of any content type and possibly empty, for handlers that parse
/// it themselves: read as [`Json`] reads (MAX_BODY_BYTES, decompressed, within
/// CLIENT_BODY_TIMEOUT), its errors [`ApiError`]s rather than actix's plain-text ones.
#[derive(Debug)]
pub struct Body(pub web::Bytes);

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(request);
        let declared = check_declared_length(request, limit);
        let encoding = content_encoding(request);
        let payload = payload.take();
        Box::pin(async move {
            declared?;
            Ok(Body(read_body(payload, encoding?, limit).await?.into()))
        })
    }
}

fn body_limit(request: &HttpRequest) -> usize {
    request
        .app_data::<web::Data<BodyLimit>>()
        .map(|limit| limit.0)
        .or_else(|| request.app_data::<BodyLimit>().map(|limit| limit.0))
        .unwrap_or(DEFAULT_LIMIT)
}

/// What can be refused before reading a byte: the content type and a declared length.
fn check_headers(request: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let is_json = is_plain_json(request)
        || matches!(request.mime_type(), Ok(Some(mime))
            if mime.subtype().as_str() == "json"
                || mime.suffix().is_some_and(|s| s.as_str() == "json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "expected a JSON body with Content-Type: application/json".into(),
        ));
    }
    check_declared_length(request, limit)
}

/// A Content-Length over the limit is refused before reading a byte.
fn check_declared_length(request: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err(ApiError::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

/// `Content-Type: application/json` exactly, as nearly every client sends it: known without
/// parsing the media type.
fn is_plain_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"application/json"))
}

/// How a request body is compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

/// The body's coding; one the kit cannot decode is 415 (RFC 7694), before a byte is read.
fn content_encoding(request: &HttpRequest) -> Result<Encoding, ApiError> {
    let Some(value) = request.headers().get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let coding = value.to_str().unwrap_or("").trim();
    if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if coding.eq_ignore_ascii_case("deflate") {
        Ok(Encoding::Deflate)
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding '{}' is not supported: send the body as is, gzip or deflate",
            String::from_utf8_lossy(value.as_bytes())
        )))
    }
}

/// The whole body, decoded, or 413 as soon as it grows past `limit` — on the wire (a body
/// may lie about its length or be chunked) and decoded (a compressed body may inflate a
/// thousandfold); 408 when it is still incomplete at CLIENT_BODY_TIMEOUT.
async fn read_body(
    mut payload: Payload,
    encoding: Encoding,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|cause| crate::error::payload_error(cause, limit))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if encoding == Encoding::Identity {
        return Ok(body);
    }
    // Inflating up to `limit` is milliseconds of CPU, kept off the worker's thread.
    actix_web::rt::task::spawn_blocking(move || decode(encoding, &body, limit))
        .await
        .map_err(|cause| ApiError::Internal(anyhow::anyhow!("decoding a request body: {cause}")))?
}

/// `compressed` inflated, reading at most one byte past `limit`: a bomb costs `limit` bytes
/// of memory, not what it would inflate to. (actix's own decoder inflates each chunk off
/// the wire whole before anything can count it: a 250 KB chunk of a gzip bomb is 256 MB.)
fn decode(encoding: Encoding, compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    use std::io::Read as _;
    let decoder: Box<dyn std::io::Read + '_> = match encoding {
        Encoding::Identity => return Ok(compressed.to_vec()),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(compressed)),
    };
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut body = Vec::new();
    decoder
        .take(cap)
        .read_to_end(&mut body)
        .map_err(|cause| ApiError::BadRequest {
            code: "invalid_encoding",
            message: format!("request body does not decode as its Content-Encoding says: {cause}"),
        })?;
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(body)
}

/// Why a JSON document did not fit: where (`path`, empty for the document as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// `service`, `[3].labels.alertname`; empty when the document itself is wrong.
    pub path: String,
    pub why: String,
    /// Not JSON at all (or cut short), as opposed to JSON of the wrong shape.
    pub syntax: bool,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "request body"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.why)
    }
}

impl std::error::Error for JsonError {}

impl From<JsonError> for ApiError {
    fn from(error: JsonError) -> Self {
        ApiError::BadRequest {
            code: if error.syntax {
                "invalid_json"
            } else {
                "invalid_field"
            },
            message: error.to_string(),
        }
    }
}

/// Deserialize a JSON document into `T`, naming the field that did not fit.
///
/// Tracking the path costs about as much as the parse itself, and almost every document
/// fits, so a document is parsed plainly first and only one that fails is parsed again with
/// the path tracked, to say where.
pub fn from_slice<T: DeserializeOwned>(json: &[u8]) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    match T::deserialize(ObjectsOnly(&mut deserializer)).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    }) {
        Ok(value) => Ok(value),
        Err(_) => from_slice_tracking_path(json),
    }
}

fn from_slice_tracking_path<T: DeserializeOwned>(json: &[u8]) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value =
        serde_path_to_error::deserialize(ObjectsOnly(&mut deserializer)).map_err(|error| {
            let path = error.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let cause = error.into_inner();
            json_error(path, &cause)
        })?;
    deserializer
        .end()
        .map_err(|cause| json_error(String::new(), &cause))?;
    Ok(value)
}

/// A document whose type is a struct must be a JSON object. serde's derived structs also
/// take an array of their fields in order, so `["api"]` was a heartbeat and `[]` a replay of
/// every dead letter (`{}`'s meaning) — shapes no client means. Only the document itself is
/// held to this (what the hostile suite sends): nested structs keep serde's leniency.
struct ObjectsOnly<D>(D);

macro_rules! forward {
    ($($method:ident),* $(,)?) => {
        $(fn $method<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(visitor)
        })*
    };
}

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_unit_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: serde::de::Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );
}

/// As [`from_slice`], from text.
pub fn from_str<T: DeserializeOwned>(json: &str) -> Result<T, JsonError> {
    from_slice(json.as_bytes())
}

fn json_error(path: String, cause: &serde_json::Error) -> JsonError {
    let syntax = cause.is_syntax() || cause.is_eof();
    // Broken JSON has no field, only a position: where the parser was ("[0].?") is no help.
    let path = if syntax { String::new() } else { path };
    let message = cause.to_string();
    // For a wrong shape the path says where, better than serde_json's "at line 1 column 80";
    // for broken JSON the position is all there is.
    let why = match message.rfind(" at line ") {
        Some(at) if !syntax => message[..at].to_string(),
        _ => message,
    };
    JsonError { path, why, syntax }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Beat {
        service: String,
        labels: Option<std::collections::BTreeMap<String, String>>,
    }

    #[test]
    fn a_struct_is_an_object_not_an_array_of_its_fields() {
        for array in [r#"["api"]"#, r#"["api", {}]"#, "[]"] {
            let error = from_str::<Beat>(array).unwrap_err();
            assert!(
                error.to_string().contains("expected struct Beat"),
                "{array}: {error}"
            );
            assert!(!error.syntax);
        }
        // Arrays of structs and nested values are as they were.
        assert_eq!(
            from_str::<Vec<Beat>>(r#"[{"service": "a"}]"#)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            from_str::<Beat>(r#"{"service": "a"}"#).unwrap().service,
            "a"
        );
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let error = from_str::<Beat>(r#"{"service": 5}"#).unwrap_err();
        assert_eq!(error.path, "service");
        assert_eq!(
            error.to_string(),
            "service: invalid type: integer `5`, expected a string"
        );
        assert!(!error.syntax);
    }

    #[test]
    fn paths_reach_into_arrays_and_maps() {
        let error =
            from_str::<Vec<Beat>>(r#"[{"service": "a"}, {"service": "b", "labels": {"x": 1}}]"#)
                .unwrap_err();
        assert_eq!(error.path, "[1].labels.x");
    }

    #[test]
    fn a_missing_field_is_named_at_the_document() {
        let error = from_str::<Beat>("{}").unwrap_err();
        assert_eq!(error.path, "");
        assert_eq!(error.to_string(), "request body: missing field `service`");
    }

    #[test]
    fn documents_that_fit_parse_without_tracking_and_the_same_errors_come_back() {
        let beat: Beat = from_str(r#"{"service": "a", "labels": {"x": "1"}}"#).unwrap();
        assert_eq!(beat.service, "a");
        // The failing document goes through the tracking parse: the field is named.
        let error = from_str::<Beat>(r#"{"service": "a", "labels": {"x": 1}}"#).unwrap_err();
        assert_eq!(error.path, "labels.x");
    }

    #[test]
    fn broken_json_is_a_syntax_error_with_its_position() {
        let error = from_str::<Beat>(r#"{"service": "#).unwrap_err();
        assert!(error.syntax, "{error:?}");
        assert_eq!(error.path, "", "{error:?}");
        assert!(error.why.contains("line 1"), "{error:?}");
        let trailing = from_str::<Beat>(r#"{"service": "a"} x"#).unwrap_err();
        assert!(trailing.syntax, "{trailing:?}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use serde::Deserialize;

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Body {
            service: String,
            timeout_seconds: Option<f64>,
            labels: Option<std::collections::BTreeMap<String, String>>,
            items: Option<Vec<Body>>,
        }

        /// Bytes near JSON: fragments of valid documents cut, spliced and mixed with junk.
        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop::sample::select(vec![
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"service\"",
                "\"labels\"",
                "\"items\"",
                "\"timeout_seconds\"",
                "\"a\"",
                "1e400",
                "-0",
                "null",
                "true",
                "\"\\ud800\"",
                "\"\\u0000\"",
                " ",
                "\u{feff}",
                "\"é\"",
            ]);
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec(piece, 0..40)
                    .prop_map(|parts| parts.concat().into_bytes()),
                (0usize..200).prop_map(|depth| "[".repeat(depth).into_bytes()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any bytes decode or are refused with the documented kind: broken JSON is
            /// `invalid_json` without a field, a wrong shape `invalid_field` naming where.
            #[test]
            fn any_bytes_decode_or_are_refused_by_kind(data in bytes()) {
                if let Err(error) = from_slice::<Body>(&data) {
                    if error.syntax {
                        prop_assert!(error.path.is_empty(), "{error:?}");
                    }
                    let code = ApiError::from(error.clone()).code();
                    prop_assert_eq!(code, if error.syntax { "invalid_json" } else { "invalid_field" });
                    prop_assert!(!error.to_string().is_empty());
                }
            }
        }
    }
}
