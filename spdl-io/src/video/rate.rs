//! Frame-rate conversion with the semantics of FFmpeg's `fps` filter
//! (`round=near`): each frame's pts is rounded to the output grid of
//! `1/fps` ticks; a frame is shown from its tick until the next frame's,
//! so frames are repeated to fill gaps and dropped when a later frame
//! lands on the same tick; the last frame lasts until its pts + duration.

use crate::media::decode::Frame;
use crate::media::time::Ratio;

/// One input frame and how many consecutive output ticks it fills.
pub(crate) struct RateOutput {
    pub frame: Frame,
    /// Ticks filled (0 means the frame is dropped).
    pub count: usize,
    /// The first tick filled, in units of `1/fps` seconds.
    pub tick: i64,
}

/// Turns frames at arbitrary timestamps into a constant-rate sequence.
pub(crate) struct FrameRateConverter {
    fps: Ratio,
    time_base: Ratio,
    /// The next output tick to fill.
    next: Option<i64>,
    held: Option<(Frame, i64)>,
}

impl FrameRateConverter {
    pub(crate) fn new(fps: Ratio, time_base: Ratio) -> Self {
        FrameRateConverter {
            fps,
            time_base,
            next: None,
            held: None,
        }
    }

    /// The output tick of `ts` (stream time base), rounded to nearest,
    /// halves away from zero, as `av_rescale_q_rnd(.., AV_ROUND_NEAR_INF)`.
    fn tick(&self, ts: i64) -> i64 {
        let num = i128::from(ts) * i128::from(self.time_base.num) * i128::from(self.fps.num);
        let den = i128::from(self.time_base.den) * i128::from(self.fps.den);
        if den == 0 {
            return 0;
        }
        let half = den.abs() / 2;
        let q = if (num >= 0) == (den > 0) {
            (num.abs() + half) / den.abs()
        } else {
            -((num.abs() + half) / den.abs())
        };
        q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Seconds of output tick `tick`.
    pub(crate) fn seconds(&self, tick: i64) -> f64 {
        tick as f64 * f64::from(self.fps.den) / f64::from(self.fps.num)
    }

    /// Takes the next input frame; returns the previously held frame with
    /// the ticks it fills (up to, not including, this frame's tick).
    pub(crate) fn push(&mut self, frame: Frame) -> Option<RateOutput> {
        let Some(pts) = frame.pts() else {
            return None; // no timestamp: cannot be placed on the grid
        };
        let tick = self.tick(pts);
        let out = self.held.take().map(|(held, _)| self.fill(held, tick));
        self.next.get_or_insert(tick);
        self.held = Some((frame, tick));
        out
    }

    /// The held frame at end of stream, filling ticks until its pts plus
    /// its duration (none if that end rounds to a tick already filled).
    pub(crate) fn finish(&mut self) -> Option<RateOutput> {
        let (held, _) = self.held.take()?;
        let pts = held.pts().unwrap_or(0);
        let end = self.tick(pts.saturating_add(held.duration().max(0)));
        Some(self.fill(held, end))
    }

    fn fill(&mut self, frame: Frame, until: i64) -> RateOutput {
        let next = self.next.unwrap_or(until);
        let count = until.saturating_sub(next).max(0) as usize;
        self.next = Some(next.max(until));
        RateOutput {
            frame,
            count,
            tick: next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_to_nearest_with_halves_away_from_zero() {
        let c = FrameRateConverter::new(Ratio { num: 10, den: 1 }, Ratio { num: 1, den: 1000 });
        assert_eq!(c.tick(0), 0);
        assert_eq!(c.tick(149), 1);
        assert_eq!(c.tick(150), 2);
        assert_eq!(c.tick(-150), -2);
        assert_eq!(c.seconds(25), 2.5);
    }
}
