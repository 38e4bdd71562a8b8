//! Ids people type: a whole ULID, or the start of one that only one item has (as with
//! `docker`'s short ids), so `obsctl ack 01JC3Z8Q` works when nothing else starts so.

use anyhow::bail;
use ulid::Ulid;

/// The whole id `typed` stands for among `known`. Anything that is not a prefix of a ULID
/// (the full 26 characters, or characters no ULID has) is passed on as typed, so the role
/// answers for it in its own words (`no incident …`, `not an id`).
pub fn complete(
    typed: &str,
    what: &str,
    known: impl IntoIterator<Item = Ulid>,
) -> anyhow::Result<String> {
    if !is_partial(typed) {
        return Ok(typed.to_string());
    }
    let prefix = typed.to_ascii_uppercase();
    let matching: Vec<String> = known
        .into_iter()
        .map(|id| id.to_string())
        .filter(|id| id.starts_with(&prefix))
        .collect();
    match matching.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("no {what} id starts with {typed}"),
        many => {
            let shown: Vec<&str> = many.iter().take(3).map(String::as_str).collect();
            let more = if many.len() > 3 { ", …" } else { "" };
            bail!(
                "{typed} is ambiguous: {} {what}s start with it ({}{more}); type more of the id",
                many.len(),
                shown.join(", ")
            )
        }
    }
}

/// Whether `typed` is the start of a ULID, short of the whole of one: Crockford base32
/// (no I, L, O, U).
pub fn is_partial(typed: &str) -> bool {
    !typed.is_empty()
        && typed.len() < ulid::ULID_LEN
        && typed
            .chars()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_alphabetic() && !"IiLlOoUu".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<Ulid> {
        [
            "01JC3Z8Q2J6W7V2N5Y4M1K0P9R",
            "01JC3Z8Q2J6W7V2N5Y4M1K0P9S",
            "01JD000000000000000000000A",
        ]
        .iter()
        .map(|id| Ulid::from_string(id).unwrap())
        .collect()
    }

    #[test]
    fn a_unique_prefix_stands_for_its_id_in_any_case() {
        assert_eq!(
            complete("01jd", "incident", ids()).unwrap(),
            "01JD000000000000000000000A"
        );
    }

    #[test]
    fn no_match_and_several_matches_say_so() {
        assert_eq!(
            complete("01JE", "incident", ids()).unwrap_err().to_string(),
            "no incident id starts with 01JE"
        );
        let error = complete("01JC", "silence", ids()).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "01JC is ambiguous: 2 silences start with it (01JC3Z8Q2J6W7V2N5Y4M1K0P9R, "
            ),
            "{error}"
        );
    }

    #[test]
    fn whole_ids_and_non_ids_pass_as_typed() {
        let whole = "01JC3Z8Q2J6W7V2N5Y4M1K0P9R";
        assert_eq!(complete(whole, "incident", Vec::new()).unwrap(), whole);
        assert_eq!(
            complete("not-an-id", "incident", Vec::new()).unwrap(),
            "not-an-id"
        );
        assert_eq!(complete("", "incident", Vec::new()).unwrap(), "");
        assert!(!is_partial("01JL"), "no ULID has an L");
    }
}
