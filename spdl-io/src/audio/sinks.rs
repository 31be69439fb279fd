//! Where decoded samples go, shared by every backend: a sample-accurate
//! time window ([`SampleWindow`]) and channels-first planes that grow
//! within bounds ([`ChannelPlanes`]).

use crate::error::Error;

/// The `[start, end)` window in samples, counted from the first decoded
/// sample (no seeking, so windows are sample-accurate for every codec).
pub(crate) struct SampleWindow {
    start: Option<f64>,
    end: Option<f64>,
    /// Time of the first sample kept (known after the first frame).
    first_time: Option<f64>,
    /// Samples per channel still to drop (window start).
    skip: usize,
    /// Samples per channel still to keep (window end).
    remaining: Option<usize>,
}

impl SampleWindow {
    pub(crate) fn new(start: Option<f64>, end: Option<f64>) -> Self {
        SampleWindow {
            start,
            end,
            first_time: None,
            skip: 0,
            remaining: None,
        }
    }

    /// Sets the counters from the time of the first decoded sample.
    pub(crate) fn begin(&mut self, frame_time: f64, rate: u32) {
        let rate = f64::from(rate);
        let start = self.start.unwrap_or(frame_time).max(frame_time);
        self.skip = ((start - frame_time) * rate).round() as usize;
        self.remaining = self.end.map(|e| ((e - start).max(0.0) * rate).round() as usize);
        self.first_time = Some(start);
    }

    pub(crate) fn first_time(&self) -> Option<f64> {
        self.first_time
    }

    /// Starts the window at `frame_time` over `frames` samples per channel
    /// that are all available at once; returns how many to skip and keep.
    pub(crate) fn claim(&mut self, frame_time: f64, rate: u32, frames: usize) -> (usize, usize) {
        self.begin(frame_time, rate);
        let skip = self.skip.min(frames);
        let keep = self.remaining.map_or(frames - skip, |r| r.min(frames - skip));
        self.skip -= skip;
        if let Some(r) = self.remaining.as_mut() {
            *r -= keep;
        }
        (skip, keep)
    }

    /// Whether the window's end was reached.
    pub(crate) fn is_full(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Takes the next `frames` samples per channel through the window;
    /// returns the range of them inside it.
    pub(crate) fn range(&mut self, frames: usize) -> std::ops::Range<usize> {
        let skip = self.skip.min(frames);
        self.skip -= skip;
        let mut n = frames - skip;
        if let Some(r) = self.remaining.as_mut() {
            n = n.min(*r);
            *r -= n;
        }
        skip..skip + n
    }

    /// Appends the part of `samples` (interleaved, `ch` channels) inside
    /// the window to `out`.
    pub(crate) fn push(&mut self, samples: &[f32], ch: usize, out: &mut impl Extend<f32>) {
        let r = self.range(samples.len() / ch);
        out.extend(samples[r.start * ch..r.end * ch].iter().copied());
    }
}

/// Channel planes collected one after another in one buffer (channel `c`
/// at `c * capacity`), so channels-first output needs no transposed copy.
/// Sized from the header's frame count, but never more than
/// [`ChannelPlanes::MAX_UP_FRONT`] samples up front (a header can lie); a
/// header that understated it makes the planes move to a larger buffer as
/// decoded samples arrive, one that overstated it is compacted at the end.
pub(crate) struct ChannelPlanes {
    data: Vec<f32>,
    channels: usize,
    capacity: usize,
    len: usize,
}

impl ChannelPlanes {
    /// Samples (all channels) allocated before any is decoded: 64 MiB.
    const MAX_UP_FRONT: usize = 1 << 24;

    /// Room for `capacity` samples per channel (at most
    /// [`Self::MAX_UP_FRONT`] in all), hinted to huge pages: the planes are
    /// first touched as they are filled.
    ///
    /// # Errors
    /// The bytes that could not be allocated.
    pub(crate) fn new(channels: usize, capacity: usize) -> Result<Self, usize> {
        let capacity = capacity.min(Self::MAX_UP_FRONT / channels.max(1));
        Ok(ChannelPlanes {
            data: crate::memory::zeroed(channels * capacity)?,
            channels,
            capacity,
            len: 0,
        })
    }

    /// Appends `n` samples to every channel, taken from `plane(c)`.
    ///
    /// # Errors
    /// The bytes that could not be allocated to grow the planes.
    pub(crate) fn push<'a>(&mut self, n: usize, plane: impl Fn(usize) -> &'a [f32]) -> Result<(), usize> {
        if self.len + n > self.capacity {
            self.grow((self.len + n).max(self.capacity.saturating_mul(2)))?;
        }
        for c in 0..self.channels {
            let at = c * self.capacity + self.len;
            self.data[at..at + n].copy_from_slice(&plane(c)[..n]);
        }
        self.len += n;
        Ok(())
    }

    /// Samples per channel so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn grow(&mut self, capacity: usize) -> Result<(), usize> {
        let mut data = crate::memory::zeroed(self.channels.saturating_mul(capacity))?;
        for c in 0..self.channels {
            let from = c * self.capacity;
            data[c * capacity..c * capacity + self.len].copy_from_slice(&self.data[from..from + self.len]);
        }
        (self.data, self.capacity) = (data, capacity);
        Ok(())
    }

    /// The planes, contiguous: (channels, len) in row-major order.
    pub(crate) fn into_vec(mut self) -> Vec<f32> {
        if self.len != self.capacity {
            for c in 1..self.channels {
                let from = c * self.capacity;
                self.data.copy_within(from..from + self.len, c * self.len);
            }
            self.data.truncate(self.channels * self.len);
        }
        self.data
    }
}

/// The error for an output that could not be allocated.
pub(crate) fn oom(src: &str, bytes: usize) -> Error {
    Error::Convert {
        src: src.into(),
        reason: format!("cannot allocate {bytes} bytes for the output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_planes_grow_and_compact_to_channels_first() {
        let (left, right): (Vec<f32>, Vec<f32>) = (
            (0..10).map(|i| i as f32).collect(),
            (0..10).map(|i| -i as f32).collect(),
        );
        // Understated header (capacity 4 < 10 samples): the planes move once.
        let mut planes = ChannelPlanes::new(2, 4).unwrap();
        for chunk in [0..3, 3..7, 7..10] {
            planes
                .push(chunk.len(), |c| {
                    if c == 0 {
                        &left[chunk.clone()]
                    } else {
                        &right[chunk.clone()]
                    }
                })
                .unwrap();
        }
        let want: Vec<f32> = left.iter().chain(&right).copied().collect();
        assert_eq!(planes.into_vec(), want);
        // Overstated header (capacity 100): compacted at the end.
        let mut planes = ChannelPlanes::new(2, 100).unwrap();
        planes
            .push(10, |c| if c == 0 { &left[..] } else { &right[..] })
            .unwrap();
        assert_eq!(planes.len(), 10);
        assert_eq!(planes.into_vec(), want);
    }

    #[test]
    fn window_range_skips_then_keeps() {
        let mut w = SampleWindow::new(Some(0.5), Some(1.0));
        w.begin(0.0, 10); // skip 5 samples, keep 5
        assert_eq!(w.range(3), 3..3);
        assert_eq!(w.range(4), 2..4);
        assert_eq!(w.range(10), 0..3);
        assert!(w.is_full());
    }
}
