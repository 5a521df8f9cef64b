//! Early stopping through the real binary: the run stops exactly where the rule applied to its own logged
//! validation losses says, and `--restore-best` saves the best epoch's weights (equal, bit for bit on the CPU
//! backend, to a run that simply ends after that epoch).

use std::process::Command;

use wgtrain::train::{EarlyStop, EarlyStopState, Verdict};

fn run(extra: &[&str]) -> (Vec<serde_json::Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(["train", "--backend", "cpu", "--limit-train", "1200", "--val-split", "400", "--limit-test", "200"])
        .args(["--batch-size", "50", "--lr", "0.05", "--momentum", "0.9", "--seed", "3"])
        .args(extra)
        .arg("--metrics")
        .arg(&metrics)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = std::fs::read_to_string(&metrics).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (events, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn the_rule_counts_epochs_without_a_large_enough_fall() {
    let rule = EarlyStop { patience: Some(2), min_delta: 0.1, restore_best: false };
    let mut s = EarlyStopState::default();
    let verdicts: Vec<Verdict> =
        [1.0, 0.85, 0.95, 0.8].iter().enumerate().map(|(e, &l)| s.observe(&rule, e, l)).collect();
    use Verdict::*;
    // 0.85 < 1.0 − 0.1 improves; neither 0.95 nor 0.8 falls below 0.85 − 0.1: two misses, stop after epoch 3.
    assert_eq!(verdicts, [Improved, Improved, NoImprovement, Stop]);
    assert_eq!((s.best, s.best_epoch), (Some(0.85), Some(1)));
    let mut s = EarlyStopState::default();
    assert_eq!(s.observe(&rule, 0, f64::NAN), NoImprovement, "a non-finite loss never improves");
}

#[test]
fn training_stops_where_the_rule_says_on_the_logged_validation_losses() {
    let (events, _) = run(&["--epochs", "8", "--early-stop-patience", "2", "--early-stop-min-delta", "0.03"]);
    let val: Vec<f64> = of_kind(&events, "val").iter().map(|e| e["val_loss"].as_f64().unwrap()).collect();
    // Replay the rule on what the run logged.
    let rule = EarlyStop { patience: Some(2), min_delta: 0.03, restore_best: false };
    let mut s = EarlyStopState::default();
    let expected_stop = val.iter().enumerate().position(|(e, &l)| s.observe(&rule, e, l) == Verdict::Stop);
    let stop = of_kind(&events, "early_stop");
    let at = expected_stop.expect("this recipe's validation loss flattens out within 12 epochs");
    assert_eq!(val.len(), at + 1, "ran exactly to the stopping epoch: {val:?}");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0]["epoch"], at);
    assert_eq!(stop[0]["best_epoch"].as_u64(), s.best_epoch.map(|e| e as u64));
    let steps = of_kind(&events, "step");
    assert_eq!(steps.len(), (at + 1) * 16, "16 steps per epoch, none after the stop");
}

#[test]
fn restore_best_saves_the_best_epochs_weights() {
    let dir = tempfile::tempdir().unwrap();
    let best = dir.path().join("best.safetensors");
    let (events, _) = run(&[
        "--epochs",
        "8",
        "--early-stop-patience",
        "2",
        "--early-stop-min-delta",
        "0.03",
        "--restore-best",
        "--save-weights",
        best.to_str().unwrap(),
    ]);
    let stop = of_kind(&events, "early_stop");
    assert_eq!(stop[0]["restored"], true);
    let best_epoch = stop[0]["best_epoch"].as_u64().unwrap() as usize;
    assert!(best_epoch < stop[0]["epoch"].as_u64().unwrap() as usize);
    let plain = dir.path().join("plain.safetensors");
    run(&["--epochs", &(best_epoch + 1).to_string(), "--save-weights", plain.to_str().unwrap()]);
    let (a, b) = (wgtrain::nn::weights::load_any(&best).unwrap(), wgtrain::nn::weights::load_any(&plain).unwrap());
    assert_eq!(a, b, "--restore-best must save the weights after epoch {best_epoch}");
}

#[test]
fn bad_early_stop_options_are_refused() {
    for (args, needle) in [
        (&["--early-stop-patience", "0"][..], "--early-stop-patience"),
        (&["--early-stop-patience", "2", "--early-stop-min-delta", "-1"][..], "--early-stop-min-delta"),
        (&["--early-stop-min-delta", "0.1"][..], "needs --early-stop-patience"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
            .args(["train", "--backend", "cpu", "--limit-train", "64", "--steps", "1", "--no-eval"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
