//! Resumable runs: a run stopped after k items (mid-batch, with items in
//! flight) and resumed from its state gives, concatenated, exactly the
//! uninterrupted epoch in ordered mode; in completion order every item,
//! with at most the pieces of one partly taken batch again; failures
//! before the checkpoint are not re-run.

use std::time::Duration;

use spdl_pipeline::{Pipeline, PipelineBuilder, RunState, StageConfig};

fn stage(name: &str, ordered: bool) -> StageConfig {
    StageConfig::new(name).with_concurrency(4).with_ordered(ordered)
}

/// Source 0..200 -> (fails on multiples of 13; a varying delay) -> batches
/// of 8 -> sums -> split back into (sum, index) pieces -> output.
fn pipeline(ordered: bool) -> Pipeline<(u64, usize)> {
    PipelineBuilder::new()
        .add_source(0u64..200)
        .pipe_blocking(
            |x: u64| {
                std::thread::sleep(Duration::from_micros((x * 37 % 11) * 100));
                if x.is_multiple_of(13) {
                    Err(format!("item {x} fails"))
                } else {
                    Ok(x)
                }
            },
            stage("work", ordered),
        )
        .aggregate(8)
        .pipe_blocking(
            |batch: Vec<u64>| Ok::<_, String>(batch.iter().map(|&x| (x, batch.len())).collect::<Vec<_>>()),
            stage("pieces", ordered),
        )
        .disaggregate()
        .add_sink(4)
        .build()
        .unwrap()
}

fn run_all(p: &Pipeline<(u64, usize)>, state: Option<&RunState>) -> (Vec<(u64, usize)>, usize) {
    let mut run = match state {
        Some(s) => p.resume(s),
        None => p.run(5),
    };
    let out: Vec<_> = run.by_ref().map(Result::unwrap).collect();
    (out, run.failures().len())
}

#[test]
fn ordered_runs_resume_item_for_item() {
    let p = pipeline(true);
    let (whole, failures) = run_all(&p, None);
    assert_eq!(failures, 16);
    assert_eq!(whole.len(), 200 - 16);
    for k in [0, 1, 7, 8, 9, 60, 183, 184] {
        let mut run = p.run(5);
        let first: Vec<_> = run.by_ref().take(k).map(Result::unwrap).collect();
        // Let the stages run ahead: items in flight are not taken.
        std::thread::sleep(Duration::from_millis(20));
        let state = run.state();
        let failed_before = run.failures().len();
        drop(run);
        let (rest, failed_after) = run_all(&p, Some(&state));
        assert_eq!([first, rest].concat(), whole, "stopped after {k}");
        assert!(failed_after <= failures && failed_before <= failures, "{k}");
    }
}

#[test]
fn completion_order_runs_resume_every_item() {
    let p = pipeline(false);
    let (whole, _) = run_all(&p, None);
    let values = |v: &[(u64, usize)]| {
        let mut x: Vec<u64> = v.iter().map(|p| p.0).collect();
        x.sort_unstable();
        x
    };
    let all = values(&whole);
    for k in [3, 50, 150] {
        let mut run = p.run(5);
        let first: Vec<_> = run.by_ref().take(k).map(Result::unwrap).collect();
        let state = run.state();
        drop(run);
        let (rest, _) = run_all(&p, Some(&state));
        let mut got = values(&[first, rest].concat());
        let extra = got.len() - all.len();
        got.dedup();
        assert_eq!(got, all, "stopped after {k}: every item, once or more");
        assert!(
            extra < 8,
            "stopped after {k}: {extra} pieces again, more than one batch"
        );
    }
}

#[test]
fn a_state_names_its_epoch_and_a_finished_epoch_resumes_empty() {
    let p = pipeline(true);
    let mut run = p.run(5);
    assert_eq!(run.by_ref().count(), 184);
    let state = run.state();
    assert_eq!((state.epoch, state.done_below, state.done.len()), (5, 200, 0));
    assert_eq!(run_all(&p, Some(&state)).0, []);
}
