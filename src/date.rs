//! The one calendar routine: civil dates <-> days since 1970-01-01 (Howard Hinnant's
//! algorithms, proleptic Gregorian, UTC), with the two textual forms picaboot meets: RFC 3339
//! in image configs and RFC 2822 in Debian `Release` files.

/// Days since 1970-01-01 of the civil date `year-month-day` (month 1..=12).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 UTC time of a Unix timestamp (`2023-11-14T22:13:20Z`).
pub fn rfc3339(epoch: u64) -> String {
    let (y, m, d) = civil_from_days((epoch / 86400) as i64);
    let secs = epoch % 86400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Seconds since the epoch of an RFC 2822 UTC date (`Sat, 21 Nov 2026 09:18:10 UTC`, as in
/// Debian `Release` files); `None` when it cannot be read or is not UTC.
pub fn parse_rfc2822(date: &str) -> Option<i64> {
    let rest = date.split_once(',').map_or(date, |(_, r)| r).trim();
    let mut w = rest.split_whitespace();
    let day: i64 = w.next()?.parse().ok()?;
    let month_name = w.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month_name)? as i64
        + 1;
    let year: i64 = w.next()?.parse().ok()?;
    let mut hms = w.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    let zone = w.next().unwrap_or("UTC");
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        return None;
    }
    // Fields out of their ranges are no date (and would overflow the arithmetic below).
    let ok = (1..=31).contains(&day)
        && (0..=9999).contains(&year)
        && (0..=23).contains(&h)
        && (0..=59).contains(&mi)
        && (0..=60).contains(&s);
    ok.then(|| days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_agree_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            parse_rfc2822("Tue, 14 Nov 2023 22:13:20 UTC"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn fields_out_of_range_are_no_date() {
        // Found by the debian_index fuzz target: the hour overflowed the seconds.
        assert_eq!(
            parse_rfc2822(
                "Tue, 01 Dec 2026 1111111110:-5111128664371037409:-5201111111111110:-511112866437103740559493"
            ),
            None
        );
        for bad in [
            "Tue, 01 Dec 2026 24:00:00 UTC",
            "Tue, 01 Dec 2026 23:60:00 UTC",
            "Tue, 01 Dec 2026 23:00:61 UTC",
            "Tue, 01 Dec 2026 -1:00:00 UTC",
            "Tue, 32 Dec 2026 00:00:00 UTC",
            "Tue, 0 Dec 2026 00:00:00 UTC",
            "Tue, 01 Dec 99999999999999 00:00:00 UTC",
        ] {
            assert_eq!(parse_rfc2822(bad), None, "{bad}");
        }
        assert_eq!(
            parse_rfc2822("Thu, 31 Dec 2026 23:59:60 UTC"),
            Some(days_from_civil(2026, 12, 31) * 86400 + 86400)
        );
    }
}
