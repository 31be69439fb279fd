//! The scheduler's contract: types flow stage to stage, concurrency and
//! ordering are honoured, blocking work stays off the runtime, failures are
//! dropped, counted and reported within budgets, queues are bounded, and a
//! pipeline serves many epochs on the same threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use spdl_pipeline::{DistributedSampler, Error, FailureBudget, PipelineBuilder, PipelineConfig, StageConfig};

fn small() -> PipelineConfig {
    let mut c = PipelineConfig::default();
    c.runtime_threads = 2;
    c.cpu_threads = 2;
    c
}

#[test]
fn ordered_stage_keeps_input_order_despite_uneven_work() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..50u64)
        .pipe(
            |x: u64| async move {
                tokio::time::sleep(Duration::from_millis((x * 7) % 5)).await;
                Ok::<_, String>(x)
            },
            StageConfig::new("jitter").with_concurrency(8).with_ordered(true),
        )
        .build()
        .unwrap();
    let out: Vec<u64> = pipeline.run(0).map(Result::unwrap).collect();
    assert_eq!(out, (0..50).collect::<Vec<_>>());
}

#[test]
fn unordered_stage_delivers_every_item_and_respects_concurrency() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let pipeline = PipelineBuilder::new()
        .add_source(0..40u32)
        .pipe(
            move |x: u32| {
                let (f, p) = (f.clone(), p.clone());
                async move {
                    let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    f.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, String>(x)
                }
            },
            StageConfig::new("sleep").with_concurrency(4),
        )
        .build()
        .unwrap();
    let mut out: Vec<u32> = pipeline.run(0).map(Result::unwrap).collect();
    out.sort_unstable();
    assert_eq!(out, (0..40).collect::<Vec<_>>());
    assert_eq!(peak.load(Ordering::SeqCst), 4, "exactly `concurrency` items at once");
}

#[test]
fn blocking_stages_run_on_the_cpu_pool_not_the_runtime() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..8u8)
        .pipe_blocking(
            |_: u8| Ok::<_, String>(std::thread::current().name().unwrap_or("").to_string()),
            StageConfig::new("where").with_concurrency(2),
        )
        .with_config(small())
        .build()
        .unwrap();
    for name in pipeline.run(0) {
        assert!(name.unwrap().starts_with("spdl-cpu-"));
    }
}

#[test]
fn errors_panics_and_timeouts_are_dropped_counted_and_reported() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..30u32)
        .pipe_blocking(
            |x: u32| match x % 10 {
                3 => Err(format!("bad item {x}")),
                7 => panic!("boom on {x}"),
                _ => Ok(x),
            },
            StageConfig::new("decode").with_concurrency(3),
        )
        .pipe(
            |x: u32| async move {
                if x == 25 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Ok::<_, String>(x)
            },
            StageConfig::new("fetch")
                .with_timeout(Duration::from_millis(200))
                .with_concurrency(4),
        )
        .with_config(small())
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let out: Vec<u32> = run.by_ref().map(Result::unwrap).collect();
    let failures = run.failures();
    assert_eq!(out.len() + failures.len(), 30, "nothing is lost silently");
    let mut failed: Vec<(String, u64)> = failures.iter().map(|f| (f.stage.clone(), f.item)).collect();
    failed.sort();
    let expected: Vec<(String, u64)> = [
        ("decode", 3),
        ("decode", 7),
        ("decode", 13),
        ("decode", 17),
        ("decode", 23),
        ("decode", 27),
        ("fetch", 25),
    ]
    .iter()
    .map(|(s, i)| (s.to_string(), *i))
    .collect();
    assert_eq!(failed, expected);
    assert!(failures.iter().any(|f| f.reason.contains("panicked: boom on 7")));
    assert!(failures.iter().any(|f| f.reason.contains("timed out")));
    let stats = run.stats();
    let decode = stats.stages.iter().find(|s| s.name == "decode").unwrap();
    assert_eq!((decode.items_in, decode.items_out, decode.failures), (30, 24, 6));
}

#[test]
fn stage_budget_stops_the_pipeline_with_the_failure_list() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..1000u32)
        .pipe_blocking(
            |x: u32| if x.is_multiple_of(2) { Err("even") } else { Ok(x) },
            StageConfig::new("odd")
                .with_ordered(true)
                .with_budget(FailureBudget::count(3)),
        )
        .build()
        .unwrap();
    let results: Vec<_> = pipeline.run(0).collect();
    let err = results.last().unwrap().as_ref().unwrap_err();
    match err {
        Error::FailureBudget { scope, failures, .. } => {
            assert_eq!(scope, "odd");
            assert_eq!(failures.len(), 4);
            assert_eq!(failures.iter().map(|f| f.item).collect::<Vec<_>>(), [0, 2, 4, 6]);
        }
        other => panic!("{other}"),
    }
    assert!(results.len() < 100, "stopped early, not after all 1000 items");
}

#[test]
fn pipeline_rate_budget_counts_all_stages() {
    let mut config = small();
    config.budget = FailureBudget::rate(0.2, 20);
    let pipeline = PipelineBuilder::new()
        .add_source(0..200u32)
        .pipe(
            |x: u32| async move {
                if x.is_multiple_of(3) {
                    Err("a")
                } else {
                    Ok(x)
                }
            },
            StageConfig::new("a"),
        )
        .with_config(config)
        .build()
        .unwrap();
    let last = pipeline.run(0).last().unwrap();
    assert!(
        matches!(last, Err(Error::FailureBudget { ref scope, .. }) if scope == "pipeline"),
        "{last:?}"
    );
}

#[test]
fn slow_consumer_bounds_how_far_the_source_runs_ahead() {
    for max_chunk in [1, 256] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let pipeline = PipelineBuilder::new()
            .add_source_fn(move |_| {
                let p = p.clone();
                (0..10_000u32).inspect(move |_| {
                    p.fetch_add(1, Ordering::SeqCst);
                })
            })
            .with_config(PipelineConfig::default().with_max_chunk(max_chunk))
            .pipe(
                |x: u32| async move { Ok::<_, String>(x) },
                StageConfig::new("id").with_concurrency(2).with_queue(4),
            )
            .add_sink(3)
            .build()
            .unwrap();
        let mut run = pipeline.run(0);
        for _ in 0..5 {
            run.next().unwrap().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        // A queue of capacity n takes a chunk while it holds fewer than n
        // items, so it holds at most n - 1 + max_chunk. Queues: source link
        // 16, stage 4, sink 3. Chunks in hand: the source's two (one being
        // filled, one waiting to be put), the stage's input and output, the
        // consumer's; 2 in flight; 5 consumed.
        let m = max_chunk;
        let queues = (16 - 1 + m) + (4 - 1 + m) + (3 - 1 + m);
        let ahead = pulled.load(Ordering::SeqCst);
        assert!(
            ahead <= 5 + queues + 5 * m + 2,
            "the source ran {ahead} items ahead with chunks of {m}"
        );
    }
}

#[test]
fn aggregate_and_disaggregate_group_filter_and_fan_out() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..10u32)
        .pipe(
            |x: u32| async move { Ok::<_, String>(x.is_multiple_of(2).then_some(x)) },
            StageConfig::new("evens").with_ordered(true),
        )
        .disaggregate()
        .aggregate_with(2, true)
        .build()
        .unwrap();
    let out: Vec<Vec<u32>> = pipeline.run(0).map(Result::unwrap).collect();
    assert_eq!(out, vec![vec![0, 2], vec![4, 6]], "the short last group [8] is dropped");
}

#[test]
fn epochs_reshuffle_on_the_same_threads() {
    let sampler = DistributedSampler::new(64, 0, 1).with_seed(1);
    let mut config = small();
    config.name = "epochtest".into();
    let pipeline = PipelineBuilder::new()
        .add_sampler(sampler)
        .pipe_blocking(|i: usize| Ok::<_, String>(i), StageConfig::new("id").with_ordered(true))
        .with_config(config)
        .build()
        .unwrap();
    // This pipeline's threads only (other tests run in the same process).
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("epochtest"))
            .count()
    };
    let first: Vec<usize> = pipeline.run(0).map(Result::unwrap).collect();
    let before = threads();
    let mut orders = vec![first];
    for epoch in 1..5 {
        orders.push(pipeline.run(epoch).map(Result::unwrap).collect());
    }
    assert!(threads() <= before + 1, "epochs reuse the pipeline's threads");
    assert_eq!(orders[1], sampler.indices(1));
    assert_ne!(orders[0], orders[1]);
}

#[test]
fn stats_name_the_bottleneck() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..40u32)
        .pipe(|x: u32| async move { Ok::<_, String>(x) }, StageConfig::new("fast"))
        .pipe_blocking(
            |x: u32| {
                std::thread::sleep(Duration::from_millis(3));
                Ok::<_, String>(x)
            },
            StageConfig::new("slow"),
        )
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    assert_eq!(run.by_ref().count(), 40);
    let stats = run.stats();
    assert_eq!(stats.bottleneck().unwrap().name, "slow", "{stats}");
    let slow = stats.stages.iter().find(|s| s.name == "slow").unwrap();
    assert!(slow.task_p50 >= Duration::from_millis(2), "{stats}");
}

#[test]
fn occupancy_tells_a_saturated_stage_from_an_idle_one() {
    let sleepy = |ms: u64| {
        move |x: u32| {
            std::thread::sleep(Duration::from_millis(ms));
            Ok::<_, String>(x)
        }
    };
    let pipeline = PipelineBuilder::new()
        .add_source(0..20u32)
        .pipe_blocking(sleepy(5), StageConfig::new("busy"))
        .pipe_blocking(sleepy(1), StageConfig::new("idle").with_concurrency(4))
        .with_config(spdl_pipeline::PipelineConfig::default().with_cpu_threads(8))
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    assert_eq!(run.by_ref().count(), 20);
    let stats = run.stats();
    let stage = |name| stats.stages.iter().find(|s| s.name == name).unwrap();
    assert_eq!(stage("idle").concurrency, 4);
    // "busy" works all the time it runs; "idle" waits for it, 4 slots for
    // 1 ms of work every 5 ms.
    assert!(stage("busy").occupancy > 0.8, "{stats}");
    assert!(stage("idle").occupancy < 0.3, "{stats}");
    assert!(stats.to_string().contains("busy"), "{stats}");
}

#[test]
fn next_timeout_reports_a_stalled_pipeline() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..1u32)
        .pipe(
            |x: u32| async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<_, String>(x)
            },
            StageConfig::new("slow"),
        )
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    assert!(matches!(
        run.next_timeout(Duration::from_millis(10)),
        Some(Err(Error::Timeout(_)))
    ));
    assert_eq!(run.next_timeout(Duration::from_secs(5)).unwrap().unwrap(), 0);
    assert!(run.next_timeout(Duration::from_secs(5)).is_none());
}

#[test]
fn dropping_a_run_midway_then_the_pipeline_does_not_hang() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..u64::MAX)
        .pipe_blocking(|x: u64| Ok::<_, String>(x), StageConfig::new("id").with_concurrency(2))
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    // Unordered with two workers: either of the first two items comes first.
    assert!(run.next().unwrap().unwrap() < 2);
    drop(run);
    drop(pipeline);
}

#[test]
fn a_run_is_also_an_async_stream() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..5u32)
        .pipe(
            |x: u32| async move { Ok::<_, String>(x + 1) },
            StageConfig::new("inc").with_ordered(true),
        )
        .build()
        .unwrap();
    let stream = pipeline.run(0).into_stream();
    let user_runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out: Vec<u32> = user_runtime
        .block_on(futures::StreamExt::collect::<Vec<_>>(stream))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, [1, 2, 3, 4, 5]);
}

#[test]
fn profile_runs_each_stage_alone_at_each_concurrency() {
    let pipeline = PipelineBuilder::new()
        .add_source(0..1000u32)
        .pipe(
            |x: u32| async move { Ok::<_, String>(x) },
            StageConfig::new("fetch").with_concurrency(4),
        )
        .aggregate(4)
        .pipe_blocking(|v: Vec<u32>| Ok::<_, String>(v.len()), StageConfig::new("decode"))
        .with_config(small())
        .build()
        .unwrap();
    let report = pipeline.profile(&[1, 4, 16], 64);
    let cells: Vec<(String, usize, u64)> = report
        .iter()
        .map(|p| (p.stage.clone(), p.concurrency, p.items))
        .collect();
    let expected: Vec<(String, usize, u64)> = [
        ("fetch", 1, 64),
        ("fetch", 4, 64),
        ("fetch", 16, 64),
        ("decode", 1, 16),
        ("decode", 4, 16),
        ("decode", 16, 16),
    ]
    .iter()
    .map(|(s, c, n)| (s.to_string(), *c, *n))
    .collect();
    assert_eq!(cells, expected);
    assert!(report.iter().all(|p| p.items_per_sec > 0.0));
}

#[test]
fn custom_aggregator_groups_by_its_own_rule() {
    struct ByTotal(Vec<u32>);
    impl spdl_pipeline::Aggregator<u32> for ByTotal {
        type Output = Vec<u32>;
        fn push(&mut self, item: u32) -> Option<Vec<u32>> {
            self.0.push(item);
            (self.0.iter().sum::<u32>() >= 10).then(|| std::mem::take(&mut self.0))
        }
        fn finish(&mut self) -> Option<Vec<u32>> {
            (!self.0.is_empty()).then(|| std::mem::take(&mut self.0))
        }
    }
    let pipeline = PipelineBuilder::new()
        .add_source(1..=7u32)
        .aggregate_by("by-total", || ByTotal(Vec::new()))
        .build()
        .unwrap();
    for epoch in 0..2 {
        let out: Vec<Vec<u32>> = pipeline.run(epoch).map(Result::unwrap).collect();
        assert_eq!(
            out,
            vec![vec![1, 2, 3, 4], vec![5, 6], vec![7]],
            "a fresh aggregator every epoch"
        );
    }
}

fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Dropping the pipeline while items are in flight (an infinite source,
/// busy CPU stages, a parked consumer) ends every thread it started within
/// a bounded time.
#[test]
fn drop_with_work_in_flight_joins_every_thread() {
    let mut config = small();
    config.name = "shutdowntest".into();
    let pipeline = PipelineBuilder::new()
        .add_source(0..u64::MAX)
        .pipe_blocking(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(20));
                Ok::<_, String>(x)
            },
            StageConfig::new("busy").with_concurrency(4),
        )
        .with_config(config)
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    run.next().unwrap().unwrap();
    assert!(threads_named("shutdowntest") > 0);
    let t0 = std::time::Instant::now();
    drop(run);
    drop(pipeline);
    while threads_named("shutdowntest") > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "threads left after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn stream_sources_feed_the_pipeline_like_iterators() {
    let pipeline = PipelineBuilder::new()
        .add_stream_source_fn(|epoch| futures::stream::iter(0..10u64).map(move |x| x + epoch * 100))
        .pipe(
            |x: u64| async move { Ok::<_, String>(x) },
            StageConfig::new("id").with_ordered(true),
        )
        .build()
        .unwrap();
    let out: Vec<u64> = pipeline.run(2).map(Result::unwrap).collect();
    assert_eq!(out, (200..210).collect::<Vec<_>>());
}

/// A panicking custom aggregator is reported as a failure of its stage;
/// the pipeline goes on.
#[test]
fn a_panicking_aggregator_is_reported_not_fatal() {
    struct Fragile(Vec<u32>);
    impl spdl_pipeline::Aggregator<u32> for Fragile {
        type Output = Vec<u32>;
        fn push(&mut self, item: u32) -> Option<Vec<u32>> {
            assert!(item != 5, "cannot take 5");
            self.0.push(item);
            (self.0.len() == 2).then(|| std::mem::take(&mut self.0))
        }
        fn finish(&mut self) -> Option<Vec<u32>> {
            (!self.0.is_empty()).then(|| std::mem::take(&mut self.0))
        }
    }
    let pipeline = PipelineBuilder::new()
        .add_source(0..8u32)
        .aggregate_by("fragile", || Fragile(Vec::new()))
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let out: Vec<Vec<u32>> = run.by_ref().map(Result::unwrap).collect();
    assert_eq!(out, vec![vec![0, 1], vec![2, 3], vec![4, 6], vec![7]]);
    let failures = run.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].stage.as_str(), failures[0].item), ("fragile", 5));
    assert!(failures[0].reason.contains("cannot take 5"));
}

#[test]
fn a_source_that_stalls_does_not_hold_back_what_it_already_produced() {
    let pipeline = PipelineBuilder::new()
        .add_source_fn(|_| {
            (0..2u32).inspect(|&x| {
                if x == 1 {
                    std::thread::sleep(Duration::from_millis(1500));
                }
            })
        })
        .pipe(|x: u32| async move { Ok::<_, String>(x) }, StageConfig::new("id"))
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let t0 = std::time::Instant::now();
    assert_eq!(run.next().unwrap().unwrap(), 0);
    let first = t0.elapsed();
    assert!(
        first < Duration::from_millis(500),
        "item 0 waited {first:?} for the stalled item 1"
    );
    assert_eq!(run.next().unwrap().unwrap(), 1);
}

#[test]
fn short_blocking_calls_share_pool_tasks_yet_keep_order_and_concurrency() {
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, p) = (now.clone(), peak.clone());
    let pipeline = PipelineBuilder::new()
        .add_source(0..20_000u32)
        .with_config(small())
        .pipe_blocking(
            move |x: u32| {
                let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(running, Ordering::SeqCst);
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(x)
            },
            StageConfig::new("tiny").with_concurrency(2).with_ordered(true),
        )
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let out: Vec<u32> = run.by_ref().map(Result::unwrap).collect();
    assert_eq!(out, (0..20_000).collect::<Vec<_>>());
    assert!(peak.load(Ordering::SeqCst) <= 2, "at most `concurrency` calls at once");
    let tiny = run.stats().stages.into_iter().find(|s| s.name == "tiny").unwrap();
    assert_eq!((tiny.items_in, tiny.items_out), (20_000, 20_000));
}

#[test]
fn a_rate_budget_counts_handled_items_not_chunk_arrivals() {
    // Items reach the stage 256 at a time; the rate must still be failures
    // over items handled, so 10 straight failures exceed 50% after 10.
    let pipeline = PipelineBuilder::new()
        .add_source(0..1000u32)
        .pipe(
            |x: u32| async move {
                if x < 20 {
                    Err(format!("{x} failed"))
                } else {
                    Ok(x)
                }
            },
            StageConfig::new("flaky").with_budget(FailureBudget::rate(0.5, 10)),
        )
        .build()
        .unwrap();
    let results: Vec<_> = pipeline.run(0).collect();
    match results.last() {
        Some(Err(Error::FailureBudget { scope, failures, .. })) => {
            assert_eq!(scope, "flaky");
            assert_eq!(failures.len(), 10, "stopped at the 10th failure");
        }
        other => panic!("expected a budget error, got {other:?}"),
    }
}

#[test]
fn a_stream_keeps_a_shared_pipeline_alive() {
    let pipeline = Arc::new(PipelineBuilder::new().add_source(0..1000u32).build().unwrap());
    let stream = pipeline.run_shared(0).into_stream();
    drop(pipeline); // the stream holds the last reference
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out: Vec<u32> = rt.block_on(stream.map(Result::unwrap).collect());
    assert_eq!(out, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_timeout_is_not_charged_for_time_the_stage_waits_on_its_consumer() {
    // Each call takes ~2 ms; the consumer takes 30 ms per item, so the stage
    // spends most of its time waiting to put. No call may time out.
    let pipeline = PipelineBuilder::new()
        .add_source(0..12u32)
        .pipe(
            |x: u32| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, String>(x)
            },
            StageConfig::new("io")
                .with_concurrency(4)
                .with_timeout(Duration::from_millis(20))
                .with_queue(1),
        )
        .add_sink(1)
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let mut n = 0;
    for item in run.by_ref() {
        item.unwrap();
        std::thread::sleep(Duration::from_millis(30));
        n += 1;
    }
    assert_eq!((n, run.failures().len()), (12, 0), "{:?}", run.failures());
}

#[test]
fn merged_pipelines_run_the_same_epoch_and_pass_on_every_drop() {
    let tens = Arc::new(
        PipelineBuilder::new()
            .add_source_fn(|epoch| (0..3u64).map(move |i| 100 * epoch + i))
            .pipe_blocking(Ok::<u64, String>, StageConfig::new("tens").with_ordered(true))
            .build()
            .unwrap(),
    );
    // Keeps item 0 as `base`, fails every later item of `items` (0..items).
    let failing_after_first = |name: &str, items: u64, base: u64, budget: FailureBudget| {
        Arc::new(
            PipelineBuilder::new()
                .add_source(0..items)
                .pipe_blocking(
                    move |x: u64| if x >= 1 { Err("bad") } else { Ok(base + x) },
                    StageConfig::new(name).with_ordered(true).with_budget(budget),
                )
                .build()
                .unwrap(),
        )
    };
    // Drops 1 and 2 within its (unlimited) budget.
    let lossy = failing_after_first("lossy", 3, 50, FailureBudget::default());
    // Stops on its first failure.
    let strict = failing_after_first("strict", 1000, 70, FailureBudget::count(0));
    let merged = PipelineBuilder::new()
        .with_config(small())
        .add_merged_pipelines(
            vec![tens.clone(), lossy, strict],
            spdl_pipeline::MergePolicy::RoundRobin,
        )
        .add_sink(2)
        .build()
        .unwrap();
    for epoch in 0..2 {
        let out: Vec<_> = merged.run(epoch).map(Result::unwrap).collect();
        let mut oks: Vec<u64> = out.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        oks.sort_unstable();
        let mut want = vec![50, 70, 100 * epoch, 100 * epoch + 1, 100 * epoch + 2];
        want.sort_unstable();
        assert_eq!(oks, want, "epoch {epoch}");
        let mut dropped: Vec<(usize, u64)> = out
            .iter()
            .filter_map(|r| match r {
                Err(Error::Dropped { pipeline, failure }) => Some((*pipeline, failure.item)),
                _ => None,
            })
            .collect();
        dropped.sort_unstable();
        assert_eq!(dropped, [(1, 1), (1, 2)], "each item the lossy pipeline dropped, once");
        let stops: Vec<_> = out
            .iter()
            .filter(|r| matches!(r, Err(Error::FailureBudget { scope, failures, .. }) if scope == "strict" && failures.len() == 1))
            .collect();
        assert_eq!(
            stops.len(),
            1,
            "the strict pipeline's stop arrives once, not also as drops"
        );
        assert_eq!(out.len(), 5 + 2 + 1);
    }
    // The merged pipelines stay usable on their own.
    assert_eq!(tens.run(5).map(Result::unwrap).collect::<Vec<_>>(), [500, 501, 502]);
}

/// A blocking stage's timeout counts from the call's start: items queued
/// behind a call that timed out (which keeps its pool thread until it
/// returns) are not reported as timed out, and all of them arrive.
#[test]
fn a_timeout_counts_from_the_call_not_from_the_queue() {
    let mut config = small();
    config.cpu_threads = 1;
    let pipeline = PipelineBuilder::new()
        .add_source(0..4u32)
        .pipe_blocking(
            |x: u32| {
                std::thread::sleep(Duration::from_millis(if x == 0 { 400 } else { 20 }));
                Ok::<_, String>(x)
            },
            StageConfig::new("slow")
                .with_timeout(Duration::from_millis(150))
                .with_concurrency(2),
        )
        .with_config(config)
        .build()
        .unwrap();
    for epoch in 0..2 {
        let mut run = pipeline.run(epoch);
        let mut out: Vec<u32> = run.by_ref().map(Result::unwrap).collect();
        out.sort();
        let failed: Vec<u64> = run.failures().iter().map(|f| f.item).collect();
        assert_eq!((out, failed), (vec![1, 2, 3], vec![0]), "epoch {epoch}");
    }
}

/// A timed-out blocking call keeps its slot of the stage's concurrency
/// until it returns: the stage never has more calls in flight than its
/// concurrency, even with free pool threads; the timeout is reported at
/// once, and the stage goes on when the call returns.
#[test]
fn a_timed_out_call_keeps_its_slot_until_it_returns() {
    let mut config = small();
    config.cpu_threads = 4;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (flight, peak) = (in_flight.clone(), most.clone());
    let pipeline = PipelineBuilder::new()
        .add_source(0..6u32)
        .pipe_blocking(
            move |x: u32| {
                let now = flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(if x == 0 { 300 } else { 20 }));
                flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(x)
            },
            StageConfig::new("slow")
                .with_timeout(Duration::from_millis(100))
                .with_concurrency(2),
        )
        .with_config(config)
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let mut out: Vec<u32> = run.by_ref().map(Result::unwrap).collect();
    out.sort();
    assert_eq!(out, [1, 2, 3, 4, 5]);
    assert_eq!(run.failures().iter().map(|f| f.item).collect::<Vec<_>>(), [0]);
    assert_eq!(most.load(Ordering::SeqCst), 2, "calls in flight beyond the concurrency");
}

/// Regression: with every slot held by a timed-out call and nothing queued
/// (the timed-out item was the last of its chunk), the stage used to end
/// as if its input were done, cutting the epoch short silently.
#[test]
fn a_stage_with_every_slot_timed_out_waits_for_more_input() {
    let pipeline = PipelineBuilder::new()
        .add_source_fn(|_| {
            (0..4u32).inspect(|&x| {
                if x > 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
            })
        })
        .pipe_blocking(
            |x: u32| {
                std::thread::sleep(Duration::from_millis(if x == 0 { 200 } else { 1 }));
                Ok::<_, String>(x)
            },
            StageConfig::new("slow").with_timeout(Duration::from_millis(20)),
        )
        .with_config(small())
        .build()
        .unwrap();
    let mut run = pipeline.run(0);
    let mut out: Vec<u32> = run.by_ref().map(Result::unwrap).collect();
    out.sort();
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(run.failures().iter().map(|f| f.item).collect::<Vec<_>>(), [0]);
}
