//! A dataset sampler for distributed training: the order is a function of
//! (seed, epoch, rank, world size) only, ranks get disjoint indices and
//! equal counts, and every epoch reshuffles without the caller having to
//! remember a call.

use crate::error::{Error, Result};

/// What to do when the dataset does not divide evenly among ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Remainder {
    /// Repeat indices from the start of the shuffled order so every rank
    /// gets `ceil(len / world_size)` (PyTorch's `DistributedSampler`).
    #[default]
    Pad,
    /// Drop the tail so every rank gets `floor(len / world_size)`.
    Drop,
}

/// Shuffled, rank-sharded indices of a dataset of `len` items.
///
/// ```
/// use spdl_pipeline::DistributedSampler;
/// let rank0 = DistributedSampler::new(10, 0, 2).with_seed(7);
/// let rank1 = DistributedSampler::new(10, 1, 2).with_seed(7);
/// let (a, b) = (rank0.indices(3), rank1.indices(3));
/// assert_eq!(a.len(), 5);
/// assert!(a.iter().all(|i| !b.contains(i)));
/// assert_ne!(rank0.indices(3), rank0.indices(4)); // a new order each epoch
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedSampler {
    len: usize,
    rank: usize,
    world_size: usize,
    seed: u64,
    shuffle: bool,
    remainder: Remainder,
}

impl DistributedSampler {
    /// A shuffling sampler (seed 0, padding) for `rank` of `world_size`.
    ///
    /// # Panics
    /// If `world_size` is 0 or `rank >= world_size`.
    pub fn new(len: usize, rank: usize, world_size: usize) -> Self {
        assert!(
            world_size > 0 && rank < world_size,
            "rank {rank} is not in 0..{world_size}"
        );
        DistributedSampler {
            len,
            rank,
            world_size,
            seed: 0,
            shuffle: true,
            remainder: Remainder::Pad,
        }
    }
    /// A sampler for the rank of this process as `torchrun` (and most
    /// launchers) tell it: `RANK` and `WORLD_SIZE` (0 and 1 when unset).
    ///
    /// ```
    /// let sampler = spdl_pipeline::DistributedSampler::from_env(10).unwrap();
    /// assert!(sampler.rank() < sampler.world_size());
    /// ```
    ///
    /// # Errors
    /// [`Error::Build`] naming the variable when one is not a
    /// non-negative integer, or when `RANK` is not below `WORLD_SIZE`.
    pub fn from_env(len: usize) -> Result<Self> {
        let (rank, world_size) = rank_from_env()?;
        Ok(DistributedSampler::new(len, rank, world_size))
    }
    /// This sampler's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }
    /// The length of the dataset sampled.
    pub fn dataset_len(&self) -> usize {
        self.len
    }
    /// Sets the seed (the same on every rank).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Turns shuffling off (indices in order, still sharded).
    #[must_use]
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Sets how an uneven remainder is handled.
    #[must_use]
    pub fn with_remainder(mut self, remainder: Remainder) -> Self {
        self.remainder = remainder;
        self
    }

    /// Indices each rank gets per epoch.
    pub fn per_rank(&self) -> usize {
        match self.remainder {
            Remainder::Pad => self.len.div_ceil(self.world_size),
            Remainder::Drop => self.len / self.world_size,
        }
    }

    /// This rank's indices for `epoch`.
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            let mut rng = SplitMix64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for i in (1..order.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        let total = self.per_rank() * self.world_size;
        if self.len > 0 {
            let mut k = 0;
            while order.len() < total {
                order.push(order[k % self.len]);
                k += 1;
            }
        }
        order.truncate(total);
        order.into_iter().skip(self.rank).step_by(self.world_size).collect()
    }
}

/// This process's `(rank, world size)` from `RANK` and `WORLD_SIZE`, as
/// `torchrun` sets them; `(0, 1)` when they are unset.
///
/// # Errors
/// [`Error::Build`] naming the variable when one is not a non-negative
/// integer, or when the rank is not below the world size.
pub fn rank_from_env() -> Result<(usize, usize)> {
    let var = |name: &str, default: usize| match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| Error::Build(format!("{name}={v:?} is not a non-negative integer"))),
        Err(_) => Ok(default),
    };
    let (rank, world_size) = (var("RANK", 0)?, var("WORLD_SIZE", 1)?);
    if world_size == 0 || rank >= world_size {
        return Err(Error::Build(format!(
            "RANK={rank} is not in 0..WORLD_SIZE={world_size}"
        )));
    }
    Ok((rank, world_size))
}

/// SplitMix64: a small, well-mixed generator; the order depends on nothing
/// but the seed, so every rank and every run agree.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_disjoint_equal_and_cover_the_dataset() {
        for (len, world) in [(10, 3), (9, 3), (1, 4), (100, 7)] {
            let all: Vec<Vec<usize>> = (0..world)
                .map(|r| DistributedSampler::new(len, r, world).indices(1))
                .collect();
            let n = len.div_ceil(world);
            assert!(all.iter().all(|v| v.len() == n), "{len}/{world}");
            let mut seen: Vec<usize> = all.concat();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen, (0..len).collect::<Vec<_>>(), "every index appears");
        }
    }

    #[test]
    fn drop_gives_floor_and_no_repeats() {
        let all: Vec<usize> = (0..3)
            .flat_map(|r| {
                DistributedSampler::new(10, r, 3)
                    .with_remainder(Remainder::Drop)
                    .indices(0)
            })
            .collect();
        assert_eq!(all.len(), 9);
        let mut d = all.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 9);
    }

    #[test]
    fn order_depends_only_on_seed_and_epoch() {
        let s = DistributedSampler::new(50, 1, 2).with_seed(42);
        assert_eq!(s.indices(5), s.indices(5));
        assert_ne!(s.indices(5), s.indices(6));
        assert_ne!(s.indices(5), s.with_seed(43).indices(5));
        let plain = DistributedSampler::new(6, 0, 2).with_shuffle(false);
        assert_eq!(plain.indices(9), vec![0, 2, 4]);
    }
}
