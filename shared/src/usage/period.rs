//! A usage period: one calendar month in UTC. Counters and budgets are keyed by it, so a new
//! month starts from zero without anything resetting them.

use std::fmt;

use time::{Date, Month, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    month: Month,
}

impl Period {
    pub fn of(at: OffsetDateTime) -> Period {
        let at = at.to_offset(time::UtcOffset::UTC);
        Period {
            year: at.year(),
            month: at.month(),
        }
    }

    /// `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Period> {
        let (year, month) = text.split_once('-')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
        (1970..=9999).contains(&year).then_some(Period { year, month })
    }

    pub fn start(self) -> OffsetDateTime {
        Date::from_calendar_date(self.year, self.month, 1)
            .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The start of the next period: when a budget reached in this one resets.
    pub fn end(self) -> OffsetDateTime {
        self.next().start()
    }

    pub fn next(self) -> Period {
        match self.month {
            Month::December => Period {
                year: self.year + 1,
                month: Month::January,
            },
            month => Period {
                year: self.year,
                month: month.next(),
            },
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn months_in_utc_and_their_bounds() {
        let period = Period::of(datetime!(2026-12-31 23:30 -02:00));
        assert_eq!(period.to_string(), "2027-01", "01:30 UTC on New Year's day");
        assert_eq!(period.start(), datetime!(2027-01-01 0:00 UTC));
        assert_eq!(period.end(), datetime!(2027-02-01 0:00 UTC));
        assert_eq!(
            Period::parse("2026-11").map(|p| p.end()),
            Some(datetime!(2026-12-01 0:00 UTC))
        );
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }
}
