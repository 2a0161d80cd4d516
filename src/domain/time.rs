//! Times and durations as users write them: RFC 3339 instants, `30s`-style
//! durations, and the `since`..`until` window that history queries take.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// A value a user gave that does not parse; the text says what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses `500ms`, `30s`, `5m`, `2h`, `30d` (and humantime's longer forms).
pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        ParseError(format!(
            "'{s}' is not a duration ({e}); write it like 500ms, 30s, 5m, 2h or 30d"
        ))
    })?;
    Ok(d)
}

/// Writes a duration the way `parse_duration` reads it.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// Parses an RFC 3339 instant, naming the parameter in the error.
pub fn parse_instant(name: &str, s: &str) -> Result<DateTime<Utc>, ParseError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ParseError(format!(
                "{name}: '{s}' is not an RFC 3339 time ({e}); write it like 2026-11-22T01:00:00Z"
            ))
        })
}

/// RFC 3339 in UTC with a `Z`, as the API speaks it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A half-open window `since <= t < until`; either end may be open. Equal
/// ends make an empty window (an empty answer); `since` after `until` is
/// refused as the mistake it most likely is.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeRange {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Self, ParseError> {
        let since = since.map(|s| parse_instant("since", s)).transpose()?;
        let until = until.map(|s| parse_instant("until", s)).transpose()?;
        if let (Some(a), Some(b)) = (since, until)
            && a > b
        {
            return Err(ParseError(format!(
                "since ({}) must not be after until ({})",
                rfc3339(a),
                rfc3339(b)
            )));
        }
        Ok(Self { since, until })
    }

    /// The window as milliseconds since the epoch, open ends made finite.
    pub fn millis(&self) -> (i64, i64) {
        (
            self.since.map_or(i64::MIN, |t| t.timestamp_millis()),
            self.until.map_or(i64::MAX, |t| t.timestamp_millis()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
    }

    #[test]
    fn a_duration_without_unit_is_rejected_with_an_example() {
        let e = parse_duration("30").unwrap_err();
        assert!(e.0.contains("30s"), "{e}");
    }

    #[test]
    fn a_formatted_duration_parses_back() {
        for d in [Duration::from_millis(500), Duration::from_secs(90)] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn a_window_whose_since_is_after_until_is_rejected() {
        let e = TimeRange::parse(Some("2026-11-22T02:00:00Z"), Some("2026-11-22T01:00:00Z"));
        assert!(e.is_err());
    }

    #[test]
    fn a_bad_time_names_its_parameter() {
        let e = TimeRange::parse(Some("yesterday"), None).unwrap_err();
        assert!(e.0.starts_with("since:"), "{e}");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let r = TimeRange::parse(Some("2026-11-22T03:00:00+02:00"), None).unwrap();
        assert_eq!(rfc3339(r.since.unwrap()), "2026-11-22T01:00:00.000Z");
    }
}
