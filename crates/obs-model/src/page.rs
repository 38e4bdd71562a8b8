//! Keyset pages of services, trouble first: the one cursor the watcher's `/status` and the
//! synthesizer's page and report hand out (`services_next`) and take back (`?after=`).
//!
//! A list is ordered by (rank, name), rank 0 being the worst state; a cursor is the last
//! (rank, name) of a page, so the next page starts strictly after it. Services added while a
//! client walks the pages never make it see one twice, and a service that keeps its state is
//! seen exactly once.

/// The largest page a list of services hands out: 1,000 services are about 110 KB of JSON.
pub const MAX_PAGE: usize = 1000;

/// Where a page of services starts: after this one. Written as `<rank>.<name in hex>`:
/// opaque, and safe in a URL as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub rank: u8,
    pub name: String,
}

impl Cursor {
    pub fn new(rank: u8, name: impl Into<String>) -> Self {
        Cursor {
            rank,
            name: name.into(),
        }
    }

    /// A cursor of a list whose ranks go from 0 to `max_rank`.
    pub fn parse(text: &str, max_rank: u8) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{}' is not a cursor from a page's services_next",
                text.chars().take(64).collect::<String>()
            )
        };
        let (rank, hex) = text.split_once('.').ok_or_else(bad)?;
        let rank: u8 = rank.parse().map_err(|_| bad())?;
        if rank > max_rank || hex.len() % 2 != 0 {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|at| {
                hex.get(at..at + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let name = String::from_utf8(bytes).map_err(|_| bad())?;
        Ok(Cursor { rank, name })
    }

    /// Whether the service (`rank`, `name`) comes after this cursor, so on a later page.
    pub fn precedes(&self, rank: u8, name: &str) -> bool {
        (rank, name) > (self.rank, self.name.as_str())
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.", self.rank)?;
        for byte in self.name.bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// `limit` from a query string: a whole number from 1 to `max`, `default` when absent; the
/// error says why, for a 400 naming the field.
pub fn limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, String> {
    match text {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "'{}' is not a whole number from 1 to {max}",
                text.chars().take(32).collect::<String>()
            )),
        },
    }
}

/// The `limit` services that come first after `after` in (rank, name) order, of `items` in
/// any order; and the cursor of the next page when more remain. Linear in the items (a
/// selection, not a sort of them all): 100,000 services cost a few ms for any page.
pub fn select<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (u8, &str),
    after: Option<&Cursor>,
    limit: usize,
) -> (Vec<T>, Option<Cursor>) {
    let limit = limit.max(1);
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let (rank, name) = key(item);
            after.is_none_or(|cursor| cursor.precedes(rank, name))
        })
        .collect();
    let more = rest.len() > limit;
    if more {
        rest.select_nth_unstable_by(limit, |a, b| key(a).cmp(&key(b)));
        rest.truncate(limit);
    }
    // Names are unique within a list: an unstable sort gives one order.
    rest.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    let next = more
        .then(|| rest.last().map(&key))
        .flatten()
        .map(|(rank, name)| Cursor::new(rank, name));
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = Cursor::new(2, "a.b/é <x>");
        let text = cursor.to_string();
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        assert_eq!(Cursor::parse(&text, 3).unwrap(), cursor);
        assert!(Cursor::parse(&text, 1).is_err(), "a rank the list has not");
        for junk in ["", "x", "9.61", "1.6", "1.zz", "1.ff", "-1.61", "1"] {
            assert!(Cursor::parse(junk, 3).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn selection_pages_through_every_item_once_in_order() {
        let items: Vec<(u8, String)> = (0..2_345)
            .map(|n| ((n % 3) as u8, format!("svc-{:05}", (n * 7919) % 10_007)))
            .collect();
        let mut expected = items.clone();
        expected.sort();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = select(items.iter(), |item| (item.0, &item.1), after.as_ref(), 100);
            assert!(page.len() <= 100);
            seen.extend(page.into_iter().cloned());
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None, 100, 1000), Ok(100));
        assert_eq!(limit(Some("1000"), 100, 1000), Ok(1000));
        for bad in ["0", "1001", "-1", "x", "", "1e3"] {
            assert!(limit(Some(bad), 100, 1000).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::Cursor;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A cursor prints as URL-safe text that parses back to it.
        #[test]
        fn cursors_round_trip(rank in 0u8..=3, name in any::<String>()) {
            let cursor = Cursor::new(rank, name);
            let text = cursor.to_string();
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
            prop_assert_eq!(Cursor::parse(&text, 3), Ok(cursor));
        }

        /// Any text parses or is refused with a bounded message; what parses prints back to a
        /// cursor that parses to the same.
        #[test]
        fn any_text_parses_or_is_refused(text in prop_oneof![any::<String>(), "[0-9]{0,3}\\.[0-9a-fA-F]{0,12}"]) {
            match Cursor::parse(&text, 3) {
                Ok(cursor) => prop_assert_eq!(Cursor::parse(&cursor.to_string(), 3), Ok(cursor)),
                Err(why) => prop_assert!(why.chars().count() < 140, "{why}"),
            }
        }
    }
}
