//! Resumable runs: which source items an epoch has finished with, so a run
//! restarted from a checkpoint ([`RunState`], from [`Run::state`](crate::Run::state))
//! continues the epoch with no item repeated or skipped.
//!
//! Every item carries its source position (`Env::seq`). Between the
//! source and the consumer, `aggregate` stages merge items (a batch is
//! keyed by its first member's key) and `disaggregate` stages split them
//! (the pieces keep their item's key); each such stage is a *level*. A
//! level records what it did: an aggregate the member keys of each group
//! it emits, a disaggregate the number of pieces of each item. When the
//! consumer takes an item, or a stage drops one as failed, [`Progress`]
//! walks those records down to the source positions the item finishes: a
//! group finishes its members, the last piece of an item finishes the
//! item. A resumed run skips finished positions at the source and, for an
//! item some of whose pieces were delivered, that many pieces at its
//! disaggregate stage.
//!
//! In ordered pipelines (every stage `ordered`) the resumed output is the
//! rest of the uninterrupted epoch, item for item, batches included. In
//! completion order no item is skipped and no finished item is made again,
//! but batches of the rest may be formed differently; so an item split by
//! `disaggregate` after an `aggregate` whose pieces were partly taken at the
//! checkpoint is made again whole, in a batch of other members, and those
//! pieces come again (at most one batch's worth per disaggregate level).
//! Pipelines with `route` or merged pipelines are not tracked (their state
//! is the whole epoch).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// Where one epoch stands: the epoch, and the source positions it has
/// finished with (delivered, or dropped as failed).
///
/// ```
/// use spdl_pipeline::PipelineBuilder;
/// let pipeline = PipelineBuilder::new().add_source(0..10).build().unwrap();
/// let mut run = pipeline.run(3);
/// let first: Vec<i32> = run.by_ref().take(4).map(Result::unwrap).collect();
/// let state = run.state();
/// drop(run);
/// let rest: Vec<i32> = pipeline.resume(&state).map(Result::unwrap).collect();
/// assert_eq!([first, rest].concat(), (0..10).collect::<Vec<_>>());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunState {
    /// The epoch.
    pub epoch: u64,
    /// Every source position below this one is finished.
    pub done_below: u64,
    /// Finished positions at or above `done_below`, ascending.
    pub done: Vec<u64>,
    /// Items some of whose pieces were delivered.
    pub partial: Vec<PartialItem>,
}

/// An item some of whose pieces (from a `disaggregate` stage) were
/// delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialItem {
    /// The disaggregate level (0 for the first aggregate or disaggregate
    /// stage from the source, and so on).
    pub level: u32,
    /// The item's key (its first source position).
    pub key: u64,
    /// Pieces delivered.
    pub taken: u64,
    /// The source positions the item was made of, in the order they were
    /// grouped: a resumed run skips pieces only of an item made of the
    /// same ones in the same order (in completion order a batch may hold
    /// the same members in another order, and so split into other pieces).
    pub sources: Vec<u64>,
}

impl PartialItem {
    /// A partly delivered item.
    pub fn new(level: u32, key: u64, taken: u64, sources: Vec<u64>) -> Self {
        PartialItem {
            level,
            key,
            taken,
            sources,
        }
    }
}

impl RunState {
    /// A state at the start of `epoch`.
    pub fn new(epoch: u64) -> Self {
        RunState {
            epoch,
            ..RunState::default()
        }
    }

    /// Whether source position `seq` is finished.
    pub(crate) fn is_done(&self, seq: u64) -> bool {
        seq < self.done_below || self.done.binary_search(&seq).is_ok()
    }

    /// Pieces already delivered of the item `key` made of `sources` at
    /// disaggregate `level`.
    pub(crate) fn pieces_done(&self, level: u32, key: u64, sources: &[u64]) -> u64 {
        self.partial
            .iter()
            .find(|p| p.level == level && p.key == key && p.sources == sources)
            .map_or(0, |p| p.taken)
    }
}

/// What a level does to keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LevelKind {
    Aggregate,
    Disaggregate,
}

/// One level's records.
#[derive(Default)]
struct Level {
    kind: Option<LevelKind>,
    /// Aggregate: the member keys of each group emitted, by group key (two
    /// groups share a key when pieces of one item went to both; they are
    /// delivered in the order they were made).
    groups: HashMap<u64, VecDeque<Vec<u64>>>,
    /// Disaggregate: pieces of each item, and pieces delivered so far.
    pieces: HashMap<u64, (u64, u64)>,
}

/// The bookkeeping of one run (see the module doc).
#[derive(Default)]
pub(crate) struct Progress {
    inner: Mutex<Inner>,
    /// The state this run resumes from.
    pub(crate) resume: Option<RunState>,
}

#[derive(Default)]
struct Inner {
    levels: Vec<Level>,
    /// Finished source positions: all below `below`, and `above`.
    below: u64,
    above: BTreeSet<u64>,
}

impl Progress {
    pub(crate) fn new(resume: Option<RunState>) -> Self {
        let mut inner = Inner::default();
        if let Some(state) = &resume {
            inner.below = state.done_below;
            inner.above = state.done.iter().copied().collect();
        }
        Progress {
            inner: Mutex::new(inner),
            resume,
        }
    }

    /// Adds a level after those spawned so far; its number.
    pub(crate) fn add_level(&self, kind: LevelKind) -> u32 {
        let mut inner = self.inner.lock().expect("progress lock");
        inner.levels.push(Level {
            kind: Some(kind),
            ..Level::default()
        });
        inner.levels.len() as u32 - 1
    }

    /// The number of levels spawned so far: a stage spawned now sees keys
    /// of this level.
    pub(crate) fn depth(&self) -> u32 {
        self.inner.lock().expect("progress lock").levels.len() as u32
    }

    /// Aggregate `level` emitted a group of `members` keyed `key`.
    pub(crate) fn grouped(&self, level: u32, key: u64, members: Vec<u64>) {
        let mut inner = self.inner.lock().expect("progress lock");
        let groups = &mut inner.levels[level as usize].groups;
        groups.entry(key).or_default().push_back(members);
    }

    /// Disaggregate `level` split the item `key` into `pieces` pieces
    /// (after skipping those a resumed run had delivered).
    pub(crate) fn split(&self, level: u32, key: u64, pieces: u64, already: u64) {
        let mut inner = self.inner.lock().expect("progress lock");
        inner.levels[level as usize].pieces.insert(key, (pieces, already));
        if pieces == already {
            inner.finish(level, key);
        }
    }

    /// An item with key `key`, as seen by stages after `depth` levels, is
    /// finished: taken by the consumer or dropped as failed.
    pub(crate) fn finished(&self, depth: u32, key: u64) {
        let mut inner = self.inner.lock().expect("progress lock");
        match depth {
            0 => inner.done(key),
            d => inner.finish(d - 1, key),
        }
    }

    /// The source positions the item `key` entering disaggregate `level`
    /// is made of, in the order they were grouped.
    pub(crate) fn sources(&self, level: u32, key: u64) -> Vec<u64> {
        let inner = self.inner.lock().expect("progress lock");
        let mut out = Vec::new();
        inner.sources(level.checked_sub(1), key, &mut out);
        out
    }

    /// The state now, for `epoch`.
    pub(crate) fn state(&self, epoch: u64) -> RunState {
        let inner = self.inner.lock().expect("progress lock");
        let mut partial = Vec::new();
        for (l, level) in inner.levels.iter().enumerate() {
            for (&key, &(total, delivered)) in &level.pieces {
                if delivered > 0 && delivered < total {
                    let mut sources = Vec::new();
                    inner.sources((l as u32).checked_sub(1), key, &mut sources);
                    partial.push(PartialItem::new(l as u32, key, delivered, sources));
                }
            }
        }
        partial.sort_unstable_by_key(|p| (p.level, p.key));
        RunState {
            epoch,
            done_below: inner.below,
            done: inner.above.iter().copied().collect(),
            partial,
        }
    }
}

impl Inner {
    /// Appends the source positions under the item `key` coming out of
    /// `level` (the source itself for `None`).
    fn sources(&self, level: Option<u32>, key: u64, out: &mut Vec<u64>) {
        let Some(l) = level else {
            out.push(key);
            return;
        };
        let below = l.checked_sub(1);
        let members = match self.levels[l as usize].kind {
            Some(LevelKind::Aggregate) => self.levels[l as usize].groups.get(&key).and_then(|g| g.front()),
            _ => None,
        };
        match members {
            Some(members) => members.iter().for_each(|&m| self.sources(below, m, out)),
            None => self.sources(below, key, out),
        }
    }

    /// The item `key` coming out of `level` is finished.
    fn finish(&mut self, level: u32, key: u64) {
        let l = &mut self.levels[level as usize];
        let below = level.checked_sub(1);
        match l.kind {
            Some(LevelKind::Aggregate) => {
                let members = l.groups.get_mut(&key).and_then(VecDeque::pop_front);
                if l.groups.get(&key).is_some_and(VecDeque::is_empty) {
                    l.groups.remove(&key);
                }
                for m in members.unwrap_or_default() {
                    self.finish_below(below, m);
                }
            }
            Some(LevelKind::Disaggregate) => {
                let entry = l.pieces.entry(key).or_insert((u64::MAX, 0));
                entry.1 += 1;
                if entry.1 >= entry.0 {
                    l.pieces.remove(&key);
                    self.finish_below(below, key);
                }
            }
            None => {}
        }
    }

    fn finish_below(&mut self, level: Option<u32>, key: u64) {
        match level {
            Some(l) => self.finish(l, key),
            None => self.done(key),
        }
    }

    /// Source position `seq` is finished.
    fn done(&mut self, seq: u64) {
        if seq < self.below {
            return;
        }
        self.above.insert(seq);
        while self.above.first() == Some(&self.below) {
            self.above.pop_first();
            self.below += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_pieces_finish_their_source_positions() {
        let p = Progress::new(None);
        let agg = p.add_level(LevelKind::Aggregate);
        let split = p.add_level(LevelKind::Disaggregate);
        p.grouped(agg, 0, vec![0, 1, 2]);
        p.grouped(agg, 3, vec![3, 4]);
        p.split(split, 0, 2, 0);
        p.finished(2, 0);
        let state = p.state(1);
        assert_eq!(state.done_below, 0);
        assert_eq!(state.partial, vec![PartialItem::new(1, 0, 1, vec![0, 1, 2])]);
        p.finished(2, 0);
        assert_eq!(p.state(1).done_below, 3);
        p.split(split, 3, 1, 0);
        p.finished(2, 3);
        assert_eq!(p.state(1).done_below, 5);
    }

    #[test]
    fn done_positions_compact_into_a_watermark() {
        let p = Progress::new(Some(RunState {
            epoch: 2,
            done_below: 2,
            done: vec![5],
            partial: vec![],
        }));
        p.finished(0, 3);
        p.finished(0, 2);
        let state = p.state(2);
        assert_eq!((state.done_below, state.done), (4, vec![5]));
        p.finished(0, 4);
        assert_eq!(p.state(2).done_below, 6);
    }
}
