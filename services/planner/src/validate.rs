//! What `POST /v1/incidents` accepts: each item an `obs_model::Incident`, read with the path
//! of any field that does not fit (`[3].kind`), then bounded, all before anything changes.

use obs_core::ApiError;
use obs_model::Incident;
use serde_json::value::RawValue;

const MAX_NAME_CHARS: usize = 128;
const MAX_SUBJECT_CHARS: usize = 256;
const MAX_TEXT_CHARS: usize = 4096;
const MAX_ENTRIES: usize = 64;

/// Every item, or the first error naming its field.
pub fn incidents(items: &[Box<RawValue>]) -> Result<Vec<Incident>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let incident = parse(raw.get()).map_err(|(field, why)| {
                let field = if field.is_empty() {
                    format!("[{index}]")
                } else {
                    format!("[{index}].{field}")
                };
                ApiError::invalid_field(&field, why)
            })?;
            bounded(&incident).map_err(|(field, why)| {
                ApiError::invalid_field(&format!("[{index}].{field}"), why)
            })?;
            Ok(incident)
        })
        .collect()
}

fn parse(json: &str) -> Result<Incident, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let why = error.into_inner().to_string();
        // serde_json appends "at line 1 column 80": the path says where, more usefully.
        let why = match why.rfind(" at line ") {
            Some(at) => why[..at].to_string(),
            None => why,
        };
        (field, why)
    })
}

fn bounded(incident: &Incident) -> Result<(), (&'static str, String)> {
    text("service", &incident.service, MAX_NAME_CHARS)?;
    if incident.service.is_empty() {
        return Err(("service", "must not be empty".into()));
    }
    text("subject", &incident.subject, MAX_SUBJECT_CHARS)?;
    text("title", &incident.title, MAX_TEXT_CHARS)?;
    text("message", &incident.message, MAX_TEXT_CHARS)?;
    text("recommendation", &incident.recommendation, MAX_TEXT_CHARS)?;
    for (field, count) in [
        ("facts", incident.facts.len()),
        ("labels", incident.labels.len()),
        ("annotations", incident.annotations.len()),
    ] {
        if count > MAX_ENTRIES {
            return Err((
                field,
                format!("has {count} entries; at most {MAX_ENTRIES} are allowed"),
            ));
        }
    }
    Ok(())
}

fn text(field: &'static str, value: &str, max: usize) -> Result<(), (&'static str, String)> {
    let length = value.chars().count();
    if length > max {
        return Err((
            field,
            format!("is {length} characters long; at most {max} are allowed"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err((field, "contains control characters".into()));
    }
    Ok(())
}
