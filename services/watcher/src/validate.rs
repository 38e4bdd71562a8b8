//! Bounds on what clients send. Everything kept in memory or put in a metric label passes
//! through here first, so neither memory nor the series count can be blown up by one client.

/// Service, component, event type and probe names.
pub const MAX_NAME_CHARS: usize = 128;
/// Free text: an event's detail, a heartbeat's phase.
pub const MAX_DETAIL_CHARS: usize = 4096;
pub const MAX_PHASE_CHARS: usize = 128;

/// A name: 1 to 128 characters from letters, digits and `-_.:@`. No spaces, no `/` (it
/// separates the parts of an issue's fingerprint and cannot travel in `/ping/{service}`).
pub fn name(value: &str) -> Result<(), String> {
    // Every valid name is ASCII, so bytes are characters: the common case in one pass.
    if !value.is_empty() && value.len() <= MAX_NAME_CHARS && value.bytes().all(is_name_byte) {
        return Ok(());
    }
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let length = value.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(format!(
            "is {length} characters long; at most {MAX_NAME_CHARS} are allowed (MAX_NAME_CHARS)"
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !u8::try_from(*c).is_ok_and(is_name_byte))
    {
        return Err(format!(
            "contains {bad:?}; only letters, digits and - _ . : @ are allowed"
        ));
    }
    Ok(())
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':' | b'@')
}

/// Free text of at most `max` characters (the limit a refusal names: `limit`), without
/// control characters other than newline and tab.
pub fn text(value: &str, (max, limit): (usize, &str)) -> Result<(), String> {
    // ASCII text, the common case, in one pass over bytes (no character decoding).
    if value.len() <= max
        && value
            .bytes()
            .all(|byte| (0x20..0x7f).contains(&byte) || byte == b'\n' || byte == b'\t')
    {
        return Ok(());
    }
    let length = value.chars().count();
    if length > max {
        return Err(format!(
            "is {length} characters long; at most {max} are allowed ({limit})"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_plain() {
        assert!(name("edge-cam01").is_ok());
        assert!(name("svc_1.prod:eu@x").is_ok());
        assert!(name("").is_err());
        assert!(name("a b").is_err());
        assert!(name("a/b").is_err());
        assert!(name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(name("café").is_err(), "letters are ASCII letters");
    }

    #[test]
    fn text_is_bounded() {
        let max = |n| (n, "MAX");
        assert!(text("model timeout\nat step 3", max(100)).is_ok());
        assert!(text("bell\u{7}", max(100)).is_err());
        assert_eq!(
            text(&"é".repeat(11), max(10)),
            Err("is 11 characters long; at most 10 are allowed (MAX)".into())
        );
        assert!(
            text(&"é".repeat(10), max(10)).is_ok(),
            "characters, not bytes"
        );
        assert!(text("del\u{7f}", max(100)).is_err());
        assert!(text("c1 control\u{85}", max(100)).is_err());
        assert!(text("tab\tand newline\n", max(100)).is_ok());
    }
}
