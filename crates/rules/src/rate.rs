//! Rates as policies and the command line write them: `N/s`, `N/min`, `N/h` — a rule's
//! `throttle:` and the agent's global `--alert-limit`.
//!
//! A rate is a count per fixed window: `10/min` lets at most 10 alerts through in each minute
//! that starts with the first one let through; the rest of that minute is counted as
//! suppressed, never dropped silently (the agent reports it).

use std::fmt;

use serde::Serialize;

/// `count` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rate {
    /// At least 1.
    pub count: u32,
    /// The window: 1 (`/s`), 60 (`/min`) or 3600 (`/h`).
    pub per_secs: u32,
}

/// The units a rate may be written with, and their length in seconds.
const UNITS: &[(&str, u32)] = &[
    ("s", 1),
    ("sec", 1),
    ("second", 1),
    ("min", 60),
    ("minute", 60),
    ("h", 3600),
    ("hour", 3600),
];

/// Why a rate did not parse, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("'{0}' is not a rate: write N/s, N/min or N/h, e.g. 10/min")]
    Shape(String),
    #[error("'{0}': the count must be a whole number from 1 to 1000000")]
    Count(String),
    #[error("'{text}': unknown unit '{unit}': use s, min or h")]
    Unit { text: String, unit: String },
}

impl Rate {
    /// Parses `N/unit` (blanks around the parts allowed).
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| RateError::Shape(text.to_string()))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| RateError::Count(text.to_string()))?;
        let unit = unit.trim();
        let per_secs = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, secs)| *secs)
            .ok_or_else(|| RateError::Unit {
                text: text.to_string(),
                unit: unit.to_string(),
            })?;
        Ok(Rate { count, per_secs })
    }

    /// The window in nanoseconds.
    pub fn window_ns(self) -> u64 {
        u64::from(self.per_secs) * 1_000_000_000
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per_secs {
            1 => "s",
            60 => "min",
            3600 => "h",
            other => return write!(f, "{}/{}s", self.count, other),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl std::str::FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rate::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_every_unit_and_print_short() {
        assert_eq!(
            Rate::parse("10/min"),
            Ok(Rate {
                count: 10,
                per_secs: 60
            })
        );
        assert_eq!(Rate::parse("1 / hour").unwrap().to_string(), "1/h");
        assert_eq!(Rate::parse("5/s").unwrap().window_ns(), 1_000_000_000);
    }

    #[test]
    fn bad_rates_say_what_to_write() {
        assert!(matches!(Rate::parse("10"), Err(RateError::Shape(_))));
        assert!(matches!(Rate::parse("0/min"), Err(RateError::Count(_))));
        assert!(matches!(Rate::parse("x/min"), Err(RateError::Count(_))));
        let err = Rate::parse("10/day").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'10/day': unknown unit 'day': use s, min or h"
        );
    }
}
