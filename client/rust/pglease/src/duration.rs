//! Durations as people write them in environment variables.

/// Parses `90s`, `10m`, `1h`, `1h30m` or plain seconds.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    let (mut total, mut number) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("{text:?} is not a duration like 90s, 10m or 1h30m")),
        };
        let value: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 1h30m"))?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(format!("{text:?} is not a duration like 90s, 10m or 1h30m"));
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "m", "10x", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
