//! Population training on the CPU backend: every member's losses, validation and test figures and final
//! weights equal those of the same trial trained alone, bit for bit, for members with different learning rates,
//! momenta, schedules (warmup, step, plateau), clipping and early stopping, and a member that diverges mid-run
//! while the others go on; SGD and Adam/AdamW. Through the binary: `sweep --parallel 3` reports what
//! `--parallel 1` does, and bad `--parallel` values end with exit status 2.

mod population_common;

use std::process::{Command, Output};

use population_common::{check_member, diverged_at, population, run_args, solo};
use wgtrain::cpu::CpuBackend;

fn bits(x: f64, y: f64, what: &str) {
    assert_eq!(x.to_bits(), y.to_bits(), "{what}: population {x} vs alone {y}");
}

/// 128 training images (4 steps of 32 per epoch), 32 held out for validation, 100 test images.
const BASE: [&str; 10] =
    ["--limit-train", "160", "--val-split", "32", "--batch-size", "32", "--limit-test", "100", "--seed", "3"];

/// BASE with a model and a number of epochs.
fn base(model: &str, epochs: &str, more: &[&'static str]) -> Vec<String> {
    let tail = ["--model", model, "--epochs", epochs];
    BASE.iter().chain(&tail).chain(more).map(|s| s.to_string()).collect()
}

/// A warmup from lr·0.01 that reaches 30 at step 8: the member trains a few steps, then explodes.
const RAMP_TO_30: &str = r#"{"kind":"linear","start_factor":0.01,"total_iters":8}"#;

fn check_all(members: &[Vec<&str>], base: &[String]) -> Vec<Option<usize>> {
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let args: Vec<_> = members.iter().map(|m| run_args(&base, m)).collect();
    let mut b = CpuBackend::new();
    let pop = population(&mut b, &args);
    assert_eq!(pop.len(), args.len());
    let mut diverged = Vec::new();
    for (m, (member, a)) in pop.iter().zip(&args).enumerate() {
        let alone = solo(&mut CpuBackend::new(), a);
        check_member(m, member, &alone, &bits);
        diverged.push(diverged_at(&alone));
    }
    diverged
}

#[test]
fn sgd_members_equal_their_solo_runs_bit_for_bit() {
    let step = r#"{"kind":"step","step_size":3,"gamma":0.5}"#;
    let warmup = r#"{"kind":"linear","start_factor":0.1,"total_iters":5}"#;
    let plateau = r#"{"kind":"reduce_lr_on_plateau","factor":0.5,"patience":0}"#;
    let members: Vec<Vec<&str>> = vec![
        vec!["--lr", "0.05", "--momentum", "0.9", "--schedule", step],
        vec!["--lr", "0.02", "--momentum", "0.9", "--nesterov", "--weight-decay", "5e-4", "--schedule", warmup],
        vec!["--lr", "30", "--momentum", "0.9", "--schedule", RAMP_TO_30],
        // min_delta 10: no epoch after the first improves, so the rule stops after epoch 1 (step 8 of 16).
        vec!["--lr", "0.1", "--clip-grad-norm", "0.5", "--early-stop-patience", "1", "--early-stop-min-delta", "10"],
        vec![
            "--lr",
            "0.03",
            "--momentum",
            "0.5",
            "--dampening",
            "0.1",
            "--clip-grad-value",
            "0.01",
            "--schedule",
            plateau,
        ],
    ];
    let diverged = check_all(&members, &base("sample-cnn", "4", &[]));
    let mid_run = diverged[2].expect("the lr-30 member diverges");
    assert!((2..16).contains(&mid_run), "the lr-30 member should diverge mid-run, not at step {mid_run}");
    assert_eq!(diverged.iter().filter(|d| d.is_some()).count(), 1, "only the lr-30 member diverges: {diverged:?}");
}

#[test]
fn sgd_member_stopped_early_matches_its_solo_run() {
    let base = base("sample-cnn", "4", &[]);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let args = run_args(&base, &["--lr", "0.1", "--early-stop-patience", "1", "--early-stop-min-delta", "10"]);
    let alone = solo(&mut CpuBackend::new(), &args);
    let report = alone.result.as_ref().expect("the run finishes");
    assert_eq!(report.stopped_after_epoch, Some(1), "the rule fires after the second epoch");
    assert_eq!(alone.losses.len(), 8);
}

#[test]
fn adamw_members_equal_their_solo_runs_bit_for_bit() {
    let cosine = r#"{"kind":"cosine_annealing","t_max":16}"#;
    let warmup = r#"{"kind":"linear","start_factor":0.1,"total_iters":5}"#;
    let base = base("mlp", "4", &["--optimizer", "adamw"]);
    let members: Vec<Vec<&str>> = vec![
        vec!["--lr", "1e-3", "--schedule", cosine],
        vec!["--lr", "3e-3", "--betas", "0.8,0.99", "--weight-decay", "0.05", "--schedule", warmup],
        vec!["--lr", "2e-3", "--eps", "1e-6", "--clip-grad-norm", "1.0", "--restore-best"],
        vec!["--lr", "30", "--schedule", RAMP_TO_30],
    ];
    let diverged = check_all(&members, &base);
    assert!(diverged[3].is_some_and(|s| s >= 1), "the lr-30 member diverges after its first step: {diverged:?}");
    assert!(diverged[..3].iter().all(Option::is_none), "{diverged:?}");
}

#[test]
fn adam_amsgrad_members_equal_their_solo_runs_bit_for_bit() {
    let base = base("mlp", "2", &["--optimizer", "adam", "--amsgrad"]);
    let members: Vec<Vec<&str>> = vec![
        vec!["--lr", "1e-3"],
        vec!["--lr", "5e-3", "--weight-decay", "1e-4", "--clip-grad-value", "0.05"],
        vec!["--lr", "3e-4", "--betas", "0.95,0.9"],
    ];
    check_all(&members, &base);
}

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

/// The `mlp` preset keeps the CLI tests fast; the library tests above cover the convolutional path.
const SWEEP: [&str; 13] = [
    "sweep",
    "--backend",
    "cpu",
    "--model",
    "mlp",
    "--limit-train",
    "256",
    "--steps",
    "6",
    "--batch-size",
    "32",
    "--no-eval",
    "-q",
];

fn sweep_json(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let out = wgtrain(&[&SWEEP[..], extra, &["--json", json.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    // Wall time is the only field allowed to differ.
    for t in v["trials"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("seconds");
    }
    v
}

#[test]
fn sweep_parallel_3_reports_what_parallel_1_does() {
    // Two batch sizes form two groups (each of 6 trials: chunks of 3); one lr diverges.
    let grid = r#"{"batch_size": [16, 32], "lr": [0.02, 0.1, 30], "momentum": [0, 0.9]}"#;
    let one = sweep_json(&["--grid", grid, "--parallel", "1"]);
    let three = sweep_json(&["--grid", grid, "--parallel", "3"]);
    assert_eq!(one, three);
    let trials = one["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 12);
    assert!(trials.iter().any(|t| !t["diverged_at_step"].is_null()), "a trial diverges");
    assert!(trials.iter().any(|t| t["diverged_at_step"].is_null()), "a trial finishes");
}

#[test]
fn parallel_zero_is_refused() {
    let out = wgtrain(&[&SWEEP[..], &["--grid", r#"{"lr": [0.1]}"#, "--parallel", "0"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--parallel must be at least 1"));
}

#[test]
fn parallel_above_the_cap_is_refused_with_how_it_was_computed() {
    let out = wgtrain(&[&SWEEP[..], &["--grid", r#"{"lr": [0.1, 0.2]}"#, "--parallel", "65"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--parallel 65 is more than fits on cpu"), "{err}");
    assert!(err.contains("bytes") && err.contains("at most 64 members"), "{err}");
    assert!(err.contains("--parallel 64 is the most that fits"), "{err}");
    // A batch so large that memory, not the member limit, binds: one member's activations at batch 10000 take
    // several GB.
    let out = wgtrain(&[
        "sweep",
        "--backend",
        "cpu",
        "--steps",
        "1",
        "--batch-size",
        "10000",
        "--no-eval",
        "-q",
        "--grid",
        r#"{"lr": [0.1, 0.2]}"#,
        "--parallel",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the CPU backend allows 8589934592 bytes"), "{err}");
    assert!(err.contains("--parallel 1 is the most that fits"), "{err}");
}

#[test]
fn sweep_parallel_groups_optimizers_apart_and_matches_parallel_1_with_validation_and_early_stopping() {
    // sgd and adamw trials form two groups of four (chunks of 3 and 1); validation loss is the objective, and
    // the early-stopping rule and the plateau schedule watch it per member.
    let dir = tempfile::tempdir().unwrap();
    let grid = r#"{"optimizer": ["sgd", "adamw"], "lr": [0.003, 0.03],
        "schedule": [{"kind":"reduce_lr_on_plateau","factor":0.5,"patience":0}, {"kind":"step","step_size":2,"gamma":0.5}]}"#;
    let run = |p: &str| {
        let json = dir.path().join(format!("p{p}.json"));
        let csv = dir.path().join(format!("p{p}.csv"));
        let out = wgtrain(&[
            "sweep",
            "--backend",
            "cpu",
            "--limit-train",
            "224",
            "--val-split",
            "32",
            "--batch-size",
            "32",
            "--epochs",
            "3",
            "--model",
            "mlp",
            "--no-eval",
            "--early-stop-patience",
            "1",
            "--early-stop-min-delta",
            "0.01",
            "-q",
            "--grid",
            grid,
            "--parallel",
            p,
            "--json",
            json.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        for t in v["trials"].as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("seconds");
        }
        // The CSV's last column is the wall time.
        let csv = std::fs::read_to_string(csv).unwrap();
        let rows: Vec<String> = csv.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect();
        (v, rows, String::from_utf8_lossy(&out.stdout).lines().count())
    };
    let (one, three) = (run("1"), run("3"));
    assert_eq!(one, three);
    let trials = one.0["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 8);
    assert!(trials.iter().all(|t| t["val_loss"].is_number()), "{trials:?}");
}

#[test]
fn the_member_cap_follows_the_footprint_and_the_binding_limit() {
    use wgtrain::train::population::{MAX_MEMBERS, footprint, member_cap};
    let arch = wgtrain::nn::sample_cnn();
    let sgd = wgtrain::optim::OptimConfig::sgd(0.01, 0.9);
    let small = footprint(&arch, &sgd, 16);
    let large = footprint(&arch, &sgd, 1024);
    assert!(large.bytes > small.bytes && large.largest > small.largest);
    // Parameters alone (weights, gradients, one momentum set) are a floor of the footprint.
    let params: u64 = arch.params.iter().map(|p| p.shape.iter().product::<usize>() as u64).sum();
    assert!(small.bytes > 3 * 4 * params);
    // A packed parameter set is one binding with a member axis: the whole set bounds the largest binding.
    assert!(small.largest >= 4 * params, "{} < {}", small.largest, 4 * params);
    // A binding that holds exactly three copies of the largest tensor caps P at 3, and says so.
    let (cap, how) = member_cap(large, Some(3 * large.largest + 1));
    assert_eq!(cap, 3, "{how}");
    assert!(how.contains(&format!("{} bytes", large.largest)) && how.contains("--parallel 3"), "{how}");
    // Nothing fits but one: still 1 (a solo run is always allowed; its own limits are checked elsewhere).
    assert_eq!(member_cap(large, Some(1)).0, 1);
    // A generous limit: the member limit binds.
    assert_eq!(member_cap(small, Some(u64::MAX)).0, MAX_MEMBERS);
    let (cpu_cap, how) = member_cap(large, None);
    assert!((1..=MAX_MEMBERS).contains(&cpu_cap), "{how}");
}
