//! Cost of the per-step scheduler work in the training loop: one `step()` plus reading `lr()` (and
//! `momentum()`), for every kind. Budget: ≤ 1 µs per step (the step itself takes milliseconds).
//!
//! `cargo bench --bench schedule` (or `--profile dev` for a quick upper bound without a release build).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wgtrain::schedule::{ScheduleConfig, Scheduler};

/// One config per kind, each able to serve far more steps than a benchmark runs (no overrun, no
/// underflow into subnormals that would time the FPU rather than the scheduler).
const KINDS: &[(&str, &str)] = &[
    ("constant", r#"{"kind":"constant"}"#),
    ("linear", r#"{"kind":"linear","start_factor":0.01,"total_iters":100000000}"#),
    ("step", r#"{"kind":"step","step_size":1000,"gamma":0.9999}"#),
    ("multi_step", r#"{"kind":"multi_step","milestones":[1000,2000,3000,4000,5000,6000,7000,8000],"gamma":0.99}"#),
    ("exponential", r#"{"kind":"exponential","gamma":0.9999999}"#),
    ("polynomial", r#"{"kind":"polynomial","total_iters":1000000000,"power":2.0}"#),
    ("multiplicative", r#"{"kind":"multiplicative","factor":0.9999999}"#),
    ("cosine_annealing", r#"{"kind":"cosine_annealing","t_max":10000,"eta_min":1e-5}"#),
    ("cosine_annealing_warm_restarts", r#"{"kind":"cosine_annealing_warm_restarts","t_0":1000,"t_mult":1}"#),
    ("cyclic", r#"{"kind":"cyclic","base_lr":0.001,"max_lr":0.1,"step_size_up":2000}"#),
    ("one_cycle", r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":1000000000000}"#),
    ("reduce_lr_on_plateau", r#"{"kind":"reduce_lr_on_plateau","patience":5}"#),
    (
        "sequential",
        r#"{"kind":"sequential","milestones":[1000],"schedulers":[{"kind":"linear","start_factor":0.01,"total_iters":1000},{"kind":"cosine_annealing","t_max":1000000}]}"#,
    ),
    (
        "chained",
        r#"{"kind":"chained","schedulers":[{"kind":"step","step_size":1000,"gamma":0.9999},{"kind":"cosine_annealing","t_max":5000}]}"#,
    ),
    ("cosine_with_warmup", r#"{"kind":"cosine_with_warmup","num_warmup_steps":1000,"num_training_steps":100000}"#),
    ("inverse_sqrt", r#"{"kind":"inverse_sqrt","num_warmup_steps":1000}"#),
    ("noam", r#"{"kind":"noam","factor":1.0}"#),
    (
        "warmup_cosine_decay",
        r#"{"kind":"warmup_cosine_decay","init_value":0,"peak_value":1,"warmup_steps":1000,"decay_steps":100000}"#,
    ),
    (
        "sgdr",
        r#"{"kind":"sgdr","cycles":[{"init_value":0,"peak_value":1,"warmup_steps":100,"decay_steps":1000},{"init_value":0,"peak_value":0.5,"warmup_steps":100,"decay_steps":100000000}]}"#,
    ),
];

fn per_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step+lr");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (name, json) in KINDS {
        let cfg = ScheduleConfig::parse(json).expect("bench config");
        let mut s = Scheduler::new(&cfg, 0.1, 0.9).expect("bench scheduler");
        if s.needs_metric() {
            // Alternate improving and flat metrics so cuts and cooldowns both happen.
            let mut k = 0u64;
            g.bench_function(*name, |b| {
                b.iter(|| {
                    k += 1;
                    let m = if k.is_multiple_of(7) { 1.0 / k as f64 } else { 1.0 };
                    s.step_metric(black_box(m)).expect("step");
                    black_box((s.lr(), s.momentum()))
                })
            });
        } else {
            g.bench_function(*name, |b| {
                b.iter(|| {
                    s.step().expect("step");
                    black_box((s.lr(), s.momentum()))
                })
            });
        }
    }
    g.finish();
}

// Criterion's own plots go through plotters' ab_glyph backend, which has no font registered here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = per_step
}
criterion_main!(benches);
