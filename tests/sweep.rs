//! `wgtrain sweep` through the real binary: a trial is bit for bit the standalone `train` run with its options
//! (CPU backend), a diverging trial is recorded and the sweep completes, random search is reproducible from its
//! seed, and bad specs end with exit status 2 naming the problem.

use std::process::{Command, Output};

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

const BASE: [&str; 9] = ["--backend", "cpu", "--limit-train", "256", "--steps", "6", "--batch-size", "32", "--no-eval"];

fn sweep_json(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let out = wgtrain(&[&["sweep"][..], &BASE, extra, &["--json", json.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn a_trial_is_the_standalone_train_run_bit_for_bit() {
    let s = sweep_json(&["--grid", r#"{"lr": [0.02, 0.05], "momentum": [0.9]}"#, "--seed", "4"]);
    let trials = s["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(trials[1]["params"], serde_json::json!({"lr": 0.05, "momentum": 0.9}));
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = wgtrain(
        &[
            &["train"][..],
            &BASE,
            &["--lr", "0.05", "--momentum", "0.9", "--seed", "4", "--metrics", metrics.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let train: Vec<f64> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "step")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    let trial: Vec<f64> = trials[1]["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(trial, train);
    assert_eq!(s["objective"], "final_loss");
}

#[test]
fn a_diverging_trial_is_recorded_and_the_sweep_completes() {
    let s = sweep_json(&["--grid", r#"{"lr": [0.05, 30]}"#, "--momentum", "0.9"]);
    let t = s["trials"].as_array().unwrap();
    assert!(t[0]["diverged_at_step"].is_null());
    assert!(t[1]["diverged_at_step"].as_u64().is_some(), "{}", t[1]);
    assert!(t[1]["final_loss"].as_f64().is_some_and(|l| l > 100.0) || t[1]["final_loss"].is_null());
    assert_eq!(s["best"], 0);
}

#[test]
fn random_search_is_reproducible_from_its_seed() {
    let spec = r#"{"lr": {"log_uniform": [0.001, 0.1]}, "momentum": [0, 0.5, 0.9]}"#;
    let params = |seed: &str| -> Vec<serde_json::Value> {
        let s = sweep_json(&["--random", spec, "--trials", "3", "--seed", seed]);
        s["trials"].as_array().unwrap().iter().map(|t| t["params"].clone()).collect()
    };
    let (a, b, c) = (params("5"), params("5"), params("6"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    for p in &a {
        let lr = p["lr"].as_f64().unwrap();
        assert!((0.001..0.1).contains(&lr), "{p}");
    }
}

#[test]
fn bad_specs_are_refused() {
    for (args, needle) in [
        (&["--grid", "{}"][..], "empty"),
        (&["--grid", r#"{"lr": []}"#][..], "empty list"),
        (&["--grid", r#"{"learning_rate": [0.1]}"#][..], "learning_rate"),
        (&["--grid", r#"{"metrics": ["a", "b"]}"#][..], "cannot be swept"),
        (&["--random", r#"{"lr": [0.1]}"#, "--trials", "0"][..], "--trials"),
        // Refused before any trial is drawn (these once overflowed or allocated gigabytes).
        (&["--random", r#"{"lr": [0.1]}"#, "--trials", "100001"][..], "--trials"),
        (&["--random", r#"{"lr": [0.1]}"#, "--trials", "1000000000000000000"][..], "--trials"),
        (&["--random", r#"{"lr": [0.1]}"#, "--trials", "1e18"][..], "--trials"),
        (&["--random", r#"{"lr": {"log_uniform": [0.1, 0.01]}}"#, "--trials", "2"][..], "LO < HI"),
        (&["--grid", r#"{"lr": {"uniform": [0, 1]}}"#][..], "--random"),
        (&["--grid", r#"{"lr": [0.1]}"#, "--random", r#"{"lr": [0.1]}"#][..], "--random"),
        (&["--grid", r#"{"lr": [-1]}"#][..], "--lr"),
        (&[][..], "--grid"),
        // `train` options a sweep does not use are refused, not ignored (they once were).
        (&["--grid", r#"{"lr": [0.1]}"#, "--save-weights", "w.safetensors"][..], "sweep does not use --save-weights"),
        (&["--grid", r#"{"lr": [0.1]}"#, "--metrics", "m.jsonl"][..], "sweep does not use --metrics"),
        (&["--grid", r#"{"lr": [0.1]}"#, "--checkpoint-dir", "ckpt"][..], "sweep does not use --checkpoint-dir"),
        (&["--grid", r#"{"lr": [0.1]}"#, "--resume", "missing-dir"][..], "sweep does not use --resume"),
        (&["--grid", r#"{"lr": [0.1]}"#, "--trials", "3"][..], "--trials with --grid"),
    ] {
        let out = wgtrain(&[&["sweep"][..], &BASE, args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?} should mention {needle}: {err}");
    }
}
