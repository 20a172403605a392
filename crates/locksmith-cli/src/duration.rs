//! Parsing of DUR arguments (`500ms`, `10s`, `2m`, `1h 30m`).

use std::time::Duration;

/// The longest duration accepted. Far larger values would overflow clock arithmetic; for
/// "no bound" leave `--wait` out.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a human duration for clap; the error says what is expected.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; expected a duration such as 500ms, 10s, 2m or 1h30m"))?;
    if d > MAX {
        return Err("too long: at most 100 years (leave --wait out to wait forever)".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_garbage() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("10").is_err());
        assert!(parse("ten seconds").is_err());
        assert!(parse("").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("500000000000years").unwrap_err().contains("too long"));
        assert!(parse("100days").is_ok());
    }
}
