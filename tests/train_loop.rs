//! The training loop's contract (docs/cli.md): metrics lines, epochs and evaluation, seeding, validation split.

use std::process::Command;

fn train(args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(["train", "--backend", "cpu", "--metrics", metrics.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The run's events without what differs between identical runs: the `run` line (it names the temp file)
    // and the wall-clock `time` of each event.
    let lines = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] != "run")
        .map(|mut v| {
            assert!(v.as_object_mut().unwrap().remove("time").is_some_and(|t| t.is_f64()), "{v}");
            v
        })
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), lines)
}

fn events<'a>(v: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    v.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn epochs_steps_and_eval_events() {
    // 200 images at batch 64: 3 steps per epoch (the partial batch is dropped), 2 epochs.
    let (stdout, m) =
        train(&["--limit-train", "200", "--batch-size", "64", "--epochs", "2", "--limit-test", "300", "--lr", "0.05"]);
    let steps = events(&m, "step");
    assert_eq!(steps.len(), 6);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i);
        assert_eq!(s["epoch"], i / 3);
        assert_eq!(s["lr"], 0.05);
        assert!(s["loss"].as_f64().unwrap() > 0.0);
    }
    let evals = events(&m, "eval");
    assert_eq!(evals.len(), 2);
    assert_eq!((evals[0]["step"].as_u64(), evals[1]["step"].as_u64()), (Some(3), Some(6)));
    let acc = evals[1]["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{acc}");
    assert!(stdout.contains("test accuracy") && stdout.contains("backend cpu"), "{stdout}");
}

#[test]
fn steps_win_over_epochs_and_seed_determines_the_run() {
    let args =
        ["--limit-train", "256", "--batch-size", "32", "--epochs", "5", "--steps", "4", "--no-eval", "--seed", "7"];
    let (_, a) = train(&args);
    let (_, b) = train(&args);
    assert_eq!(events(&a, "step").len(), 4);
    assert_eq!(a, b, "same seed, same backend ⇒ same run");
    let mut other = args;
    other[10] = "8";
    let (_, c) = train(&other);
    assert_ne!(events(&a, "step")[0]["loss"], events(&c, "step")[0]["loss"], "a different seed gives a different init");
}

#[test]
fn validation_split_holds_out_the_last_images() {
    // 300 images, 100 held out: 200 train → 3 steps per epoch at batch 64.
    let (_, m) =
        train(&["--limit-train", "300", "--val-split", "100", "--batch-size", "64", "--epochs", "1", "--no-eval"]);
    assert_eq!(events(&m, "step").len(), 3);
    let val = events(&m, "val");
    assert_eq!(val.len(), 1);
    assert!(val[0]["val_loss"].as_f64().unwrap() > 0.0);
    assert!(events(&m, "eval").is_empty(), "--no-eval skips the test set");
}

#[test]
fn plateau_steps_once_per_epoch_on_the_validation_loss() {
    // mode "max" with patience 0: the first epoch's metric always improves; a lower loss in epoch 2 is "worse"
    // in max mode, so the lr is cut by `factor` for epoch 3 and again for epoch 4 — proving the scheduler saw one
    // metric per epoch and never stepped per batch.
    let sched = r#"{"kind":"reduce_lr_on_plateau","mode":"max","patience":0,"factor":0.5}"#;
    let (_, m) = train(&[
        "--limit-train",
        "328",
        "--val-split",
        "200",
        "--batch-size",
        "64",
        "--epochs",
        "4",
        "--no-eval",
        "--lr",
        "0.1",
        "--schedule",
        sched,
    ]);
    let lrs: Vec<f64> = events(&m, "step").iter().map(|s| s["lr"].as_f64().unwrap()).collect();
    let vals: Vec<f64> = events(&m, "val").iter().map(|v| v["val_loss"].as_f64().unwrap()).collect();
    assert_eq!(vals.len(), 4);
    // Two steps per epoch (128 training images). Expected lr per epoch from PyTorch's rule on the val losses.
    let mut expected = vec![0.1, 0.1];
    let (mut lr, mut best) = (0.1, f64::NEG_INFINITY);
    for v in &vals[..3] {
        if *v > best * (1.0 + 1e-4) {
            best = *v;
        } else {
            lr *= 0.5;
        }
        expected.extend([lr, lr]);
    }
    assert_eq!(lrs, expected, "val losses {vals:?}");
}
