//! The metrics file (run line, times, step numbering, O(steps) bytes written), the console of `train` (per-epoch
//! lines without a terminal, a bar with kept lines on one, `-q`), driver noise, and `--help`.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use support::*;
use wgtrain::train::{Event, MetricsLog};

/// Two epochs on 300 images with a validation split and a test slice: every console and metrics line appears.
const SMALL_RUN: [&str; 13] = [
    "train",
    "--backend",
    "cpu",
    "--limit-train",
    "300",
    "--val-split",
    "100",
    "--batch-size",
    "64",
    "--epochs",
    "2",
    "--limit-test",
    "200",
];

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn run_line_times_and_step_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.jsonl");
    let t0 = now() - 1.0;
    let args = [&SMALL_RUN[..], &["--seed", "5", "--lr", "0.05", "--momentum", "0.9", "--metrics", s(&m)]].concat();
    assert_ok(&wgtrain(&args));
    let t1 = now() + 1.0;
    let lines = metrics_lines(&m);
    let run = &lines[0];
    assert_eq!(run["event"], "run");
    assert_eq!(run["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((run["seed"].as_u64(), run["backend"].as_str()), (Some(5), Some("cpu")));
    assert!(run["adapter"].is_null());
    assert_eq!(run["model"], "sample-cnn");
    assert_eq!(
        (run["optimizer"]["name"].as_str(), run["optimizer"]["base"]["momentum"].as_f64()),
        (Some("sgd"), Some(0.9))
    );
    assert_eq!(run["options"]["lr"], 0.05);
    assert_eq!(run["options"]["val_split"], 100);
    assert_eq!((run["steps"].as_u64(), run["steps_per_epoch"].as_u64()), (Some(6), Some(3)));
    for l in &lines {
        let t = l["time"].as_f64().unwrap_or_else(|| panic!("no time: {l}"));
        assert!((t0..t1).contains(&t), "{l}");
    }
    // `step` of val/eval = number of optimizer steps done = the `step` the next step line would carry: both
    // measure the weights after that many updates.
    let mut steps_seen = 0u64;
    let mut after_epoch = Vec::new();
    for l in &lines[1..] {
        match l["event"].as_str().unwrap() {
            "step" => {
                assert_eq!(l["step"].as_u64(), Some(steps_seen));
                steps_seen += 1;
            }
            kind @ ("val" | "eval") => {
                assert_eq!(l["step"].as_u64(), Some(steps_seen), "{l}");
                after_epoch.push((kind.to_string(), l["epoch"].as_u64().unwrap()));
            }
            other => panic!("unexpected event {other}"),
        }
    }
    let want: Vec<(String, u64)> =
        [("val", 0), ("eval", 0), ("val", 1), ("eval", 1)].iter().map(|(k, e)| (k.to_string(), *e)).collect();
    assert_eq!(after_epoch, want);
}

/// Bytes this thread has passed to `write` so far (Linux task I/O accounting).
fn thread_bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).unwrap().trim().parse().unwrap()
}

#[test]
fn a_long_runs_metrics_cost_o_steps_bytes() {
    // 100,000 steps flushed as the loop does (every 256-step readback, and at 1,000-step "epoch" ends).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let mut log = MetricsLog::new(Some(path.clone()));
    let before = thread_bytes_written();
    for step in 0..100_000usize {
        log.push(Event::Step {
            step,
            epoch: step / 1000,
            lr: 0.01,
            lrs: None,
            momentum: 0.9,
            loss: 1.0 / (step + 1) as f32,
            grad_norm: 0.5,
        });
        if (step + 1) % 256 == 0 || (step + 1) % 1000 == 0 {
            log.flush().unwrap();
        }
    }
    log.flush().unwrap();
    let written = thread_bytes_written() - before;
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 100_000);
    // Rewriting the whole file at each of ~490 flushes would write ~250× its size.
    assert!(written <= size + size / 10, "wrote {written} bytes for a {size}-byte file");
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn piped_console_prints_one_line_per_epoch() {
    let args = SMALL_RUN;
    let out = wgtrain(&args);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!has_control_chars(&err), "no bar control characters in a log: {err:?}");
    let epochs: Vec<&str> = err.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{err}");
    for (i, l) in epochs.iter().enumerate() {
        assert!(l.starts_with(&format!("epoch {}/2  train loss ", i + 1)), "{l}");
        for part in ["val loss", "val acc", "test loss", "test acc", "images/s"] {
            assert!(l.contains(part), "{part} missing: {l}");
        }
    }
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("trained 6 steps"));

    let quiet = wgtrain(&[&args[..], &["-q"]].concat());
    assert_ok(&quiet);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(String::from_utf8_lossy(&quiet.stdout).starts_with("trained 6 steps"));
}

#[test]
fn piped_console_reports_inside_long_epochs() {
    // 600 steps of batch 1: losses are read back every 256 steps, and --log-every 0 prints at each readback.
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--limit-train",
        "600",
        "--batch-size",
        "1",
        "--no-eval",
        "--log-every",
        "0",
    ]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in ["epoch 1/1  step 256/600  lr 0.01  loss ", "epoch 1/1  step 512/600", "epoch 1/1  train loss"] {
        assert!(err.contains(want), "{want:?} missing: {err}");
    }
    assert!(err.contains("ETA ") && !has_control_chars(&err), "{err:?}");
}

#[test]
fn terminal_console_keeps_epoch_lines_above_the_bar() {
    // `script` runs the command on a pseudo-terminal and copies what it shows.
    let bin = env!("CARGO_BIN_EXE_wgtrain");
    let cmd = format!("{bin} train --backend cpu --limit-train 200 --batch-size 64 --epochs 2 --limit-test 100");
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).env("TERM", "xterm").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("epoch 1/2  train loss") && shown.contains("epoch 2/2  train loss"), "{shown}");
    assert!(shown.contains("trained 6 steps"), "{shown}");
}

#[test]
fn no_driver_noise_while_probing_adapters() {
    let out = bin().arg("devices").env_remove("XDG_RUNTIME_DIR").output().unwrap();
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn help_describes_every_option_and_has_examples() {
    for sub in ["train", "compare", "schedule", "devices"] {
        let out = wgtrain(&[sub, "-h"]);
        assert_ok(&out);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Examples:"), "{sub}: {help}");
        let options = help.lines().skip_while(|l| *l != "Options:").take_while(|l| !l.is_empty());
        for line in options.filter(|l| l.trim_start().starts_with('-')) {
            // `  -q, --quiet  Description`: the signature, two or more spaces, then words.
            let described = line.trim_start().split_once("  ").is_some_and(|(_, d)| !d.trim().is_empty());
            assert!(described, "{sub}: option without a description: {line:?}");
        }
    }
    let long = String::from_utf8_lossy(&wgtrain(&["train", "--help"]).stdout).into_owned();
    for want in ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "one_cycle", "cosine_annealing_warm_restarts"] {
        assert!(long.contains(want), "{want} missing from train --help");
    }
    assert!(long.contains(r#"{"kind":"step","step_size":30,"gamma":0.1}"#));
}
