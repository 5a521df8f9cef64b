//! Population training on the GPU (lavapipe in CI): every member's losses, validation and test figures and final
//! weights agree with the same trial trained alone on the GPU, a member that diverges mid-run included, for SGD
//! and AdamW; a population step records the batch gather once and every member's ops once, in one step, and
//! creates no GPU object after the first step. Kept tiny (the `mlp` preset, a few batches of 8): lavapipe is
//! slow.
//!
//! Tolerances: a member and its solo run compute the same math on the same inputs; what may differ is only the
//! order of float32 additions inside a kernel. The bounds are those `gpu_parity.rs` holds 12-step trajectories
//! to between two different evaluation orders (CPU vs GPU): losses |Δ| ≤ 1e-5 + 1e-5·|e|, weights
//! |Δ| ≤ 1e-5 + 1e-4·|e| (a few hundred ulp after the updates compound).
mod gpu_common;
mod population_common;

use gpu_common::{gpu_or_skip, rand_vec};
use population_common::{check_member, diverged_at, population, run_args, solo};
use wgtrain::optim::OptimConfig;
use wgtrain::schedule::Group;
use wgtrain::tolerance::Tolerance;
use wgtrain::train::population::Population;
use wgtrain::train::{HostSplit, Images, Session};

/// 48 training images (6 steps of 8 per epoch, 2 epochs), 16 held out for validation, 20 test images.
const BASE: [&str; 14] = [
    "--limit-train",
    "64",
    "--val-split",
    "16",
    "--batch-size",
    "8",
    "--epochs",
    "2",
    "--limit-test",
    "20",
    "--seed",
    "5",
    "--model",
    "mlp",
];

/// A warmup from lr·0.01 that reaches 30 at step 6: a few sane steps, then the member explodes.
const RAMP_TO_30: &str = r#"{"kind":"linear","start_factor":0.01,"total_iters":6}"#;

fn close(x: f64, y: f64, what: &str) {
    let tol = if what.contains("weight") { Tolerance::new(1e-5, 1e-4) } else { Tolerance::new(1e-5, 1e-5) };
    tol.assert(what, &[x], &[y]);
}

fn check_on_gpu(test: &str, extra: &[&str], members: &[Vec<&str>]) -> Vec<Option<usize>> {
    let Some(mut g) = gpu_or_skip(test) else { return Vec::new() };
    let base: Vec<&str> = BASE.iter().copied().chain(extra.iter().copied()).collect();
    let args: Vec<_> = members.iter().map(|m| run_args(&base, m)).collect();
    let pop = population(&mut g, &args);
    let mut diverged = Vec::new();
    for (m, (member, a)) in pop.iter().zip(&args).enumerate() {
        let alone = solo(&mut g, a);
        check_member(m, member, &alone, &close);
        diverged.push(diverged_at(&alone));
    }
    diverged
}

#[test]
fn sgd_members_match_their_solo_runs_on_the_gpu() {
    let test = "sgd_members_match_their_solo_runs_on_the_gpu";
    let step = r#"{"kind":"step","step_size":3,"gamma":0.5}"#;
    let members: Vec<Vec<&str>> = vec![
        vec!["--lr", "0.05", "--momentum", "0.9", "--schedule", step],
        vec!["--lr", "30", "--momentum", "0.9", "--schedule", RAMP_TO_30],
        vec!["--lr", "0.1", "--weight-decay", "1e-3", "--clip-grad-norm", "0.5"],
    ];
    let diverged = check_on_gpu(test, &[], &members);
    if diverged.is_empty() {
        return; // skipped loudly: no adapter
    }
    assert!(diverged[1].is_some_and(|s| s >= 2), "the lr-30 member diverges mid-run: {diverged:?}");
    assert!(diverged[0].is_none() && diverged[2].is_none(), "{diverged:?}");
}

#[test]
fn adamw_members_match_their_solo_runs_on_the_gpu() {
    let test = "adamw_members_match_their_solo_runs_on_the_gpu";
    let members: Vec<Vec<&str>> = vec![
        vec!["--lr", "2e-3", "--betas", "0.8,0.99", "--clip-grad-value", "0.05"],
        vec!["--lr", "30", "--schedule", RAMP_TO_30],
    ];
    let diverged = check_on_gpu(test, &["--optimizer", "adamw"], &members);
    if diverged.is_empty() {
        return;
    }
    assert!(diverged[1].is_some() && diverged[0].is_none(), "{diverged:?}");
}

#[test]
fn a_population_step_gathers_once_and_allocates_nothing_after_the_first() {
    let test = "a_population_step_gathers_once_and_allocates_nothing_after_the_first";
    let Some(mut g) = gpu_or_skip(test) else { return };
    let (batch, members) = (4, 3);
    let split = HostSplit {
        images: Images::Values(rand_vec(1, 8 * 784)),
        labels: (0..8).map(|i| i % 10).collect(),
        shape: [1, 28, 28],
    };
    let arch = wgtrain::nn::sample_cnn();
    let weights = wgtrain::nn::init::pytorch_default(&arch.param_shapes(), 0);
    let optims = vec![OptimConfig::sgd(0.01, 0.9); members];
    let mut pop = Population::new(&mut g, &arch, &weights, &optims, &split, batch).unwrap();
    let (fast, slow) = ([Group::sgd(0.02, 0.9)], [Group::sgd(0.01, 0.5)]);
    // Member 1 is frozen: its update leaves it alone.
    let groups: [Option<&[Group]>; 3] = [Some(&fast), None, Some(&slow)];
    pop.step(&mut g, &groups, 0, 0).unwrap(); // builds pipelines and bind groups
    let after_first = g.allocations();
    for s in 1..4 {
        pop.step(&mut g, &groups, (s % 2) * batch, s).unwrap();
    }
    assert_eq!(g.allocations(), after_first, "GPU objects were created after the first population step");
    let per_member = pop.model().read_member_weights(&mut g).unwrap();
    assert_eq!(per_member[1], weights, "the frozen member's weights never change");
    assert_ne!(per_member[0], weights, "an active member's weights change");
    let before = g.submissions();
    pop.step(&mut g, &groups, 0, 4).unwrap();
    assert_eq!(g.submissions() - before, 1, "one submit per population step");
    // Profiling creates its own query objects, so it starts after the allocation check.
    g.start_profiling().expect("lavapipe and desktop Vulkan drivers offer timestamps inside passes");
    pop.step(&mut g, &groups, batch, 5).unwrap();
    let profile = g.take_profile().unwrap();
    let count = |prefix: &str| profile.iter().filter(|d| d.label.starts_with(prefix)).count();
    let labels: Vec<&str> = profile.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(count("Gather → "), 1, "one shared gather: {labels:?}");
    let (sgd, head) = (count("Sgd → "), count("Head/"));
    assert_eq!((sgd, head), (1, 2), "one update and one fused head (two dispatches) for all members: {labels:?}");
    // The member axis is a workgroup dimension: the population step records exactly a solo step's dispatches.
    let mut session = Session::new(&mut g, &arch, &weights, &optims[0], &split, batch).unwrap();
    session.step(&mut g, &fast, 0, 0).unwrap();
    g.start_profiling().unwrap();
    session.step(&mut g, &fast, batch, 1).unwrap();
    let solo = g.take_profile().unwrap();
    let solo_labels: Vec<&str> = solo.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(profile.len(), solo.len(), "population {labels:?}\nsolo {solo_labels:?}");
}

#[test]
fn parallel_above_the_gpu_cap_is_refused_with_how_it_was_computed() {
    let test = "parallel_above_the_gpu_cap_is_refused_with_how_it_was_computed";
    let Some(g) = gpu_or_skip(test) else { return };
    let mut args = vec!["sweep", "--backend", "gpu", "--model", "mlp", "--steps", "1", "--no-eval", "-q"];
    let adapter = g.adapter_info().name.clone();
    args.extend(["--adapter", &adapter, "--grid", r#"{"lr": [0.1, 0.2]}"#, "--parallel", "65"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--parallel 65 is more than fits on"), "{err}");
    assert!(err.contains("largest storage binding"), "{err}");
    assert!(err.contains("--parallel 64 is the most that fits"), "{err}");
}
