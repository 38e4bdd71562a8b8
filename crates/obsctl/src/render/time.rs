//! Times for people: a wall-clock time in the local zone, and ages like `3s ago`.

use chrono::{DateTime, Local, Utc};

/// `14:03:07` today, `11-21 14:03` on another day.
pub fn clock(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&Local);
    if local.date_naive() == now.with_timezone(&Local).date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%m-%d %H:%M").to_string()
    }
}

/// `5s ago`, `3m ago`, `2h ago`, `4d ago`; a time ahead of our clock is `just now`.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        ..=0 => "just now".into(),
        1..=59 => format!("{seconds}s ago"),
        60..=3_599 => format!("{}m ago", seconds / 60),
        3_600..=86_399 => format!("{}h ago", seconds / 3_600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// `in 5s`, `in 3m`, `in 2h`, `in 4d`, to the nearest unit (a two-hour silence shown a
/// second after it was made still ends `in 2h`); a time already past is `now`.
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    if seconds <= 0 {
        return "now".into();
    }
    if seconds < 60 {
        return format!("in {seconds}s");
    }
    let minutes = (seconds + 30) / 60;
    if minutes < 60 {
        return format!("in {minutes}m");
    }
    let hours = (seconds + 1_800) / 3_600;
    if hours < 24 {
        return format!("in {hours}h");
    }
    format!("in {}d", (seconds + 43_200) / 86_400)
}

/// `30s`, `1.5s`, `2m`: a timeout as the user set it.
pub fn seconds(value: f64) -> String {
    if value >= 120.0 && value % 60.0 == 0.0 {
        format!("{}m", value / 60.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}s")
    } else {
        format!("{value}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn ages_read_naturally() {
        let now = Utc::now();
        assert_eq!(age(now - Duration::seconds(5), now), "5s ago");
        assert_eq!(age(now - Duration::seconds(185), now), "3m ago");
        assert_eq!(age(now - Duration::hours(2), now), "2h ago");
        assert_eq!(age(now - Duration::days(4), now), "4d ago");
        assert_eq!(age(now + Duration::seconds(3), now), "just now");
    }

    #[test]
    fn times_ahead_read_naturally() {
        let now = Utc::now();
        assert_eq!(until(now + Duration::seconds(5), now), "in 5s");
        assert_eq!(until(now + Duration::minutes(80), now), "in 1h");
        assert_eq!(until(now + Duration::seconds(7_199), now), "in 2h");
        assert_eq!(until(now + Duration::seconds(3_599), now), "in 1h");
        assert_eq!(until(now + Duration::days(3), now), "in 3d");
        assert_eq!(until(now - Duration::seconds(3), now), "now");
    }

    #[test]
    fn timeouts_read_as_set() {
        assert_eq!(seconds(30.0), "30s");
        assert_eq!(seconds(1.5), "1.5s");
        assert_eq!(seconds(300.0), "5m");
    }
}
