//! `wgtrain lr-find` through the real binary on the sample CNN with SGD momentum 0.9 (the embedded data, the
//! CPU backend): the suggestions land where PyTorch's own range test on this model puts them (steepest
//! 0.03–0.045, valley 0.001–0.006), the test stops once the loss diverges past lr ≈ 1, and bad input is refused.

use std::process::{Command, Output};

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

#[test]
fn suggestions_match_pytorchs_range_test_on_the_sample_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("lr.json");
    let plot = dir.path().join("lr.svg");
    let out = wgtrain(&[
        "lr-find",
        "--backend",
        "cpu",
        "--momentum",
        "0.9",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("step,lr,loss,smoothed\n"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("suggested lr: ") && last.ends_with("(valley)"), "{last}");
    assert!(stderr.contains("stopped at lr"), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &r["suggestions"];
    let (valley, steepest) = (s["valley"].as_f64().unwrap(), s["steepest"].as_f64().unwrap());
    assert!((0.001..=0.006).contains(&valley), "valley {valley}");
    assert!((0.03..=0.045).contains(&steepest), "steepest {steepest}");
    assert_eq!(r["suggestion"].as_f64(), Some(valley));
    let stopped = r["stopped_at_lr"].as_f64().expect("the loss diverges before lr 10");
    assert!((1.0..10.0).contains(&stopped), "stopped at {stopped}");
    let steps = r["steps"].as_array().unwrap();
    assert!(steps.len() < 100, "stopped early");
    // The lr grows exponentially from 1e-7 to 10 over 100 steps.
    let lr1 = steps[1]["lr"].as_f64().unwrap();
    assert!((lr1 / 1e-7 - 1e8f64.powf(1.0 / 99.0)).abs() < 1e-9);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
}

#[test]
fn bad_range_test_options_are_refused() {
    for (args, needle) in [
        (&["--start-lr", "1", "--end-lr", "0.1"][..], "--start-lr"),
        (&["--start-lr", "0"][..], "--start-lr"),
        (&["--smoothing", "1"][..], "--smoothing"),
        (&["--diverge", "1"][..], "--diverge"),
        (&["--steps", "1"][..], "--steps"),
        (&["--schedule", r#"{"kind": "step", "step_size": 1}"#][..], "--schedule"),
        (&["--suggest", "median"][..], "median"),
        // `train` options the test does not use are refused, not ignored (they once were).
        (&["--save-weights", "w.safetensors"][..], "lr-find does not use --save-weights"),
        (&["--metrics", "m.jsonl"][..], "lr-find does not use --metrics"),
        (&["--checkpoint-dir", "ckpt"][..], "lr-find does not use --checkpoint-dir"),
        (&["--resume", "ckpt"][..], "lr-find does not use --resume"),
        (&["--early-stop-patience", "2"][..], "lr-find does not use --early-stop-patience"),
        (&["--epochs", "3"][..], "lr-find does not use --epochs"),
        (&["--lr", "0.1"][..], "lr-find does not use --lr"),
        (&["--limit-test", "10"][..], "lr-find does not use --limit-test"),
    ] {
        let out = wgtrain(&[&["lr-find", "--backend", "cpu", "--limit-train", "64"][..], args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
