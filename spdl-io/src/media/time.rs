//! Time: the rational time bases and frame rates of streams, conversions
//! between timestamps and seconds, and time-window checks.

use ffmpeg_next as ff;
use serde::Serialize;

use crate::error::{Error, Result};

/// A rational number (time bases and frame rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ratio {
    /// Numerator.
    pub num: i32,
    /// Denominator.
    pub den: i32,
}

impl Ratio {
    /// The value as `f64`, or `None` when the denominator is zero.
    pub fn to_f64(self) -> Option<f64> {
        (self.den != 0).then(|| f64::from(self.num) / f64::from(self.den))
    }

    pub(crate) fn nonzero(r: ff::Rational) -> Option<Ratio> {
        (r.numerator() != 0 && r.denominator() != 0).then(|| Ratio::from(r))
    }

    /// Converts a timestamp in this time base to seconds.
    pub(crate) fn seconds(self, ts: i64) -> f64 {
        ts as f64 * f64::from(self.num) / f64::from(self.den.max(1))
    }

    /// Converts seconds to a timestamp in this time base (rounded down).
    pub(crate) fn timestamp(self, seconds: f64) -> i64 {
        Self::clamp((seconds * f64::from(self.den) / f64::from(self.num.max(1))).floor())
    }

    /// The first timestamp shown at or after `seconds` (rounded up, with a
    /// nanosecond's slack for `seconds` computed from a timestamp): window
    /// bounds, so that a frame at 0.28 s is not inside [0.30, ...) in a
    /// 1/25 time base.
    pub(crate) fn timestamp_at_or_after(self, seconds: f64) -> i64 {
        Self::clamp((seconds * f64::from(self.den) / f64::from(self.num.max(1)) - 1e-6).ceil())
    }

    fn clamp(t: f64) -> i64 {
        t.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

impl From<Ratio> for ff::Rational {
    fn from(r: Ratio) -> Self {
        ff::Rational::new(r.num, r.den)
    }
}

impl From<ff::Rational> for Ratio {
    fn from(r: ff::Rational) -> Self {
        Ratio {
            num: r.numerator(),
            den: r.denominator(),
        }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Checks a time window `[start, end)` in seconds (either bound may be
/// open): finite bounds, and start before end.
pub(crate) fn check_window(start: Option<f64>, end: Option<f64>) -> Result<()> {
    let finite = start.is_none_or(f64::is_finite) && end.is_none_or(f64::is_finite);
    if finite && !start.zip(end).is_some_and(|(s, e)| s >= e) {
        return Ok(());
    }
    let bound = |b: Option<f64>, open: &str| b.map_or(open.to_string(), |v| v.to_string());
    Err(Error::InvalidConfig(format!(
        "the time window [{}, {}) is empty or not finite",
        bound(start, "start"),
        bound(end, "end")
    )))
}
