//! Merging several sources into one: round-robin, or weighted random with
//! a seed (the order depends only on the seed and the epoch); a merged
//! pipeline's run passes on every item it dropped. A merge is an iterator,
//! so it feeds the source stage.

use crate::error::{Error, Failure, Result};

/// How [`Merge`] picks the next source.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MergePolicy {
    /// One item from each source in turn; exhausted sources are skipped.
    RoundRobin,
    /// Each item comes from source `i` with probability proportional to
    /// `weights[i]` among the sources not yet exhausted.
    Weighted {
        /// One non-negative weight per source.
        weights: Vec<f64>,
        /// The random seed (mixed with the epoch).
        seed: u64,
    },
}

/// An iterator over several sources, interleaved by a [`MergePolicy`].
///
/// ```
/// use spdl_pipeline::{Merge, MergePolicy};
/// let merged: Vec<u32> = Merge::new(vec![vec![1, 2, 3], vec![10]], MergePolicy::RoundRobin, 0).collect();
/// assert_eq!(merged, [1, 10, 2, 3]);
/// ```
pub struct Merge<I: Iterator> {
    sources: Vec<Option<I>>,
    policy: MergePolicy,
    next: usize,
    rng: u64,
}

impl<I: Iterator> Merge<I> {
    /// Merges `sources` for epoch `epoch`.
    pub fn new<S: IntoIterator<IntoIter = I>>(sources: Vec<S>, policy: MergePolicy, epoch: u64) -> Self {
        let seed = match &policy {
            MergePolicy::Weighted { seed, .. } => *seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            MergePolicy::RoundRobin => 0,
        };
        Merge {
            sources: sources.into_iter().map(|s| Some(s.into_iter())).collect(),
            policy,
            next: 0,
            rng: seed,
        }
    }

    fn random(&mut self) -> f64 {
        // SplitMix64, as the sampler uses.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The source to draw from next, among those not exhausted.
    fn pick(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.sources.len()).filter(|&i| self.sources[i].is_some()).collect();
        if live.is_empty() {
            return None;
        }
        match &self.policy {
            MergePolicy::RoundRobin => {
                let i = live.iter().copied().find(|&i| i >= self.next).unwrap_or(live[0]);
                self.next = i + 1;
                Some(i)
            }
            MergePolicy::Weighted { weights, .. } => {
                let w = |i: usize| weights.get(i).copied().unwrap_or(0.0).max(0.0);
                let total: f64 = live.iter().map(|&i| w(i)).sum();
                if total <= 0.0 {
                    return Some(live[0]);
                }
                let weights: Vec<f64> = live.iter().map(|&i| w(i)).collect();
                let mut r = self.random() * total;
                for (k, wk) in weights.iter().enumerate() {
                    if r < *wk {
                        return Some(live[k]);
                    }
                    r -= wk;
                }
                live.last().copied()
            }
        }
    }
}

impl<I: Iterator> Iterator for Merge<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        loop {
            let i = self.pick()?;
            match self.sources[i].as_mut().and_then(Iterator::next) {
                Some(item) => return Some(item),
                None => self.sources[i] = None,
            }
        }
    }
}

/// One merged pipeline's run, as a source: its items, then an
/// [`Error::Dropped`] for each item it dropped within its budgets, so no
/// failure stays hidden inside a run nobody else can see. A run stopped
/// over budget already lists its failures in that error.
pub(crate) struct MergedRun<R> {
    pipeline: usize,
    run: Option<R>,
    stopped: bool,
    dropped: std::vec::IntoIter<Failure>,
}

/// What a merged run reports once its items are out (`run.rs` implements it
/// for a pipeline's run).
pub(crate) trait DroppedItems {
    /// Every item the run dropped.
    fn failures(&self) -> Vec<Failure>;
}

impl<R> MergedRun<R> {
    pub(crate) fn new(pipeline: usize, run: R) -> Self {
        MergedRun {
            pipeline,
            run: Some(run),
            stopped: false,
            dropped: Vec::new().into_iter(),
        }
    }
}

impl<T, R: Iterator<Item = Result<T>> + DroppedItems> Iterator for MergedRun<R> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if let Some(run) = self.run.as_mut() {
            match run.next() {
                Some(item) => {
                    self.stopped |= matches!(item, Err(Error::FailureBudget { .. }));
                    return Some(item);
                }
                None if self.stopped => self.run = None,
                None => self.dropped = self.run.take().map(|r| r.failures()).unwrap_or_default().into_iter(),
            }
        }
        let pipeline = self.pipeline;
        self.dropped
            .next()
            .map(|failure| Err(Error::Dropped { pipeline, failure }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_merge_follows_the_weights_and_the_seed() {
        let policy = MergePolicy::Weighted {
            weights: vec![3.0, 1.0],
            seed: 5,
        };
        let merged: Vec<u32> = Merge::new(vec![vec![0u32; 3000], vec![1u32; 3000]], policy.clone(), 0)
            .take(2000)
            .collect();
        let ones = merged.iter().filter(|&&v| v == 1).count();
        assert!((400..600).contains(&ones), "{ones} of 2000 from the 1/4-weight source");
        let again: Vec<u32> = Merge::new(vec![vec![0u32; 3000], vec![1u32; 3000]], policy, 0)
            .take(2000)
            .collect();
        assert_eq!(merged, again);
    }

    #[test]
    fn every_item_of_every_source_comes_out() {
        let policy = MergePolicy::Weighted {
            weights: vec![1.0, 0.0, 5.0],
            seed: 1,
        };
        let mut all: Vec<u32> = Merge::new(vec![vec![1, 2], vec![3], vec![4, 5, 6]], policy, 9).collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4, 5, 6]);
    }
}
