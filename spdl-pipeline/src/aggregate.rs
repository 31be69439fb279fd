//! Aggregators: stateful folds from items to groups (batches).

/// Folds items into outputs; a fresh one is made for every epoch.
///
/// ```
/// use spdl_pipeline::Aggregator;
/// /// Groups consecutive items until their total reaches a budget.
/// struct ByTotal { budget: u32, group: Vec<u32> }
/// impl Aggregator<u32> for ByTotal {
///     type Output = Vec<u32>;
///     fn push(&mut self, item: u32) -> Option<Vec<u32>> {
///         self.group.push(item);
///         (self.group.iter().sum::<u32>() >= self.budget).then(|| std::mem::take(&mut self.group))
///     }
///     fn finish(&mut self) -> Option<Vec<u32>> {
///         (!self.group.is_empty()).then(|| std::mem::take(&mut self.group))
///     }
/// }
/// ```
pub trait Aggregator<T>: Send + 'static {
    /// What the aggregator emits.
    type Output: Send + 'static;
    /// Takes one item; returns a finished group, if any.
    fn push(&mut self, item: T) -> Option<Self::Output>;
    /// At the end of the epoch: the last, partial group, if any.
    fn finish(&mut self) -> Option<Self::Output>;
}

/// Groups of `n` items; the last partial group is kept unless `drop_last`.
pub(crate) struct CountAggregator<T> {
    pub n: usize,
    pub drop_last: bool,
    pub group: Vec<T>,
}

impl<T: Send + 'static> Aggregator<T> for CountAggregator<T> {
    type Output = Vec<T>;

    fn push(&mut self, item: T) -> Option<Vec<T>> {
        self.group.push(item);
        (self.group.len() >= self.n).then(|| std::mem::replace(&mut self.group, Vec::with_capacity(self.n)))
    }

    fn finish(&mut self) -> Option<Vec<T>> {
        (!self.group.is_empty() && !self.drop_last).then(|| std::mem::take(&mut self.group))
    }
}
