//! Bad input ends with exit status 2 and a message naming the problem; divergence stops before saving NaN.

use std::path::Path;
use std::process::{Command, Output};

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

#[track_caller]
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

const QUICK: [&str; 6] = ["train", "--limit-train", "64", "--steps", "2", "--no-eval"];

fn quick(extra: &[&str]) -> Output {
    let backend: &[&str] = if extra.contains(&"--backend") { &[] } else { &["--backend", "cpu"] };
    wgtrain(&[&QUICK[..], backend, extra].concat())
}

fn mnist_dir_with(dir: &Path, broken: &str, bytes: &[u8]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        std::fs::copy(src.join(format!("{f}.gz")), dir.join(format!("{f}.gz"))).unwrap();
    }
    std::fs::remove_file(dir.join(format!("{broken}.gz"))).unwrap();
    std::fs::write(dir.join(broken), bytes).unwrap();
}

#[test]
fn truncated_and_wrong_magic_idx() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = vec![0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
    header.extend([0u8; 100]);
    mnist_dir_with(dir.path(), "train-images-idx3-ubyte", &header);
    let out = quick(&["--data", dir.path().to_str().unwrap()]);
    assert_fails(&out, 2, "train-images-idx3-ubyte");
    assert_fails(&out, 2, "truncated");

    let dir = tempfile::tempdir().unwrap();
    mnist_dir_with(dir.path(), "t10k-labels-idx1-ubyte", &[0, 0, 8, 3, 0, 0, 0, 1, 7]);
    let out = quick(&["--data", dir.path().to_str().unwrap()]);
    assert_fails(&out, 2, "t10k-labels-idx1-ubyte");
    assert_fails(&out, 2, "magic");
}

#[test]
fn bad_init_weights() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    let w = vec![0.0f32; 32 * 25];
    wgtrain::nn::weights::save(&bad, &[("conv1.weight", &[32, 1, 5, 5], &w)]).unwrap();
    let out = quick(&["--init", bad.to_str().unwrap()]);
    assert_fails(&out, 2, "conv1.weight");
    std::fs::write(&bad, b"not a safetensors file").unwrap();
    assert_fails(&quick(&["--init", bad.to_str().unwrap()]), 2, "bad.safetensors");
}

#[test]
fn bad_options() {
    assert_fails(&quick(&["--backend", "tpu"]), 2, "tpu");
    assert_fails(&quick(&["--batch-size", "0"]), 2, "--batch-size");
    assert_fails(&quick(&["--batch-size", "65"]), 2, "--batch-size 65");
    assert_fails(&quick(&["--limit-train", "10000000"]), 2, "--limit-train");
    assert_fails(&quick(&["--schedule", "{\"kind\":\"nope\"}"]), 2, "nope");
    assert_fails(&quick(&["--nesterov"]), 2, "--nesterov");
}

#[test]
fn divergence_stops_without_saving_and_keeps_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    std::fs::write(&weights, b"earlier file").unwrap();
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--limit-train",
        "256",
        "--steps",
        "20",
        "--no-eval",
        "--lr",
        "1e12",
        "--save-weights",
        weights.to_str().unwrap(),
    ]);
    assert_fails(&out, 1, "non-finite");
    assert_fails(&out, 1, "learning rate 1000000000000");
    assert_eq!(std::fs::read(&weights).unwrap(), b"earlier file");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

/// A negative number is a bad value of its option, named as such — not an unknown option `-1`.
#[test]
fn negative_numbers_are_bad_values_of_their_option() {
    assert_fails(&quick(&["--seed", "-1"]), 2, "invalid value '-1' for '--seed");
    assert_fails(&quick(&["--lr", "-0.1"]), 2, "--lr must be a finite number");
    let grid = r#"{"lr": [0.1]}"#;
    assert_fails(&wgtrain(&["sweep", "--parallel", "-1", "--grid", grid]), 2, "invalid value '-1' for '--parallel");
    assert_fails(&wgtrain(&["lr-find", "--steps", "-5"]), 2, "invalid value '-5' for '--steps");
}

#[test]
fn counts_that_overflow_are_usage_errors() {
    // (2^61 + 1) epochs × 8 steps per epoch is 2^64 + 8: it wrapped to an 8-step run that exited 0.
    assert_fails(&quick_epochs(&["--epochs", "2305843009213693953"]), 2, "--epochs 2305843009213693953");
    assert_fails(&quick_epochs(&["--steps", "18446744073709551615"]), 2, "too many");
}

fn quick_epochs(extra: &[&str]) -> Output {
    wgtrain(&[&["train", "--backend", "cpu", "--limit-train", "512", "--no-eval"][..], extra].concat())
}

#[test]
fn messages_name_the_real_cause() {
    let out = wgtrain(&["train", "--backend", "cpu", "--limit-train", "0", "--no-eval"]);
    assert_fails(&out, 2, "--limit-train must be at least 1");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--batch-size"));

    let dir = tempfile::tempdir().unwrap();
    mnist_dir_with(dir.path(), "t10k-images-idx3-ubyte", &[0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--limit-train",
        "64",
        "--steps",
        "1",
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "test set");
    assert_fails(&out, 2, "empty");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--limit-test"));

    // A negative number is a value, refused by validation naming the option (train and schedule alike).
    for opt in ["--lr", "--momentum", "--weight-decay"] {
        assert_fails(&quick(&[opt, "-1"]), 2, &format!("{opt} must be"));
    }
    let sched = ["schedule", "--schedule", "{\"kind\":\"step\",\"step_size\":2}", "--steps", "3"];
    assert_fails(&wgtrain(&[&sched[..], &["--lr", "-1"]].concat()), 2, "--lr must be");
}

#[test]
fn a_directory_given_as_input_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_fails(&quick(&["--init", d]), 2, d);
    assert_fails(&quick(&["--schedule", &format!("@{d}")]), 2, d);
    let sched = ["schedule", "--schedule", "{\"kind\":\"reduce_lr_on_plateau\"}", "--steps", "3"];
    assert_fails(&wgtrain(&[&sched[..], &["--metrics-values", &format!("@{d}")]].concat()), 2, d);
}

#[test]
fn options_that_would_do_nothing_are_refused() {
    assert_fails(&quick(&["--backend", "cpu", "--adapter", "nvidia"]), 2, "--adapter");
    assert_fails(&quick(&["--backend", "auto", "--adapter", "no-such-adapter-xyz"]), 2, "no-such-adapter-xyz");
    let compare = ["compare", "--backends", "cpu", "--limit-train", "64", "--steps", "2"];
    for opt in ["--metrics", "--save-weights"] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let out = wgtrain(&[&compare[..], &[opt, p.to_str().unwrap()]].concat());
        assert_fails(&out, 2, opt);
        assert!(!p.exists());
    }
    assert_fails(&quick(&["--limit-test", "10"]), 2, "--limit-test");
    assert_fails(&quick(&["--keep-checkpoints", "2"]), 2, "--keep-checkpoints needs --checkpoint-dir");
    for (opt, value) in [("--checkpoint-dir", "ckpt"), ("--early-stop-patience", "2"), ("--resume", "ckpt")] {
        assert_fails(&wgtrain(&[&compare[..], &[opt, value]].concat()), 2, &format!("compare does not use {opt}"));
    }
    // From a config file shared with `train` as well: a `resume` key there once started from zero weights.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shared.toml");
    std::fs::write(&cfg, "resume = \"ckpt\"\n").unwrap();
    let grid = r#"{"lr": [0.1]}"#;
    let out = wgtrain(&["sweep", "--backend", "cpu", "--grid", grid, "--config", cfg.to_str().unwrap()]);
    assert_fails(&out, 2, "sweep does not use --resume");
}

/// A file where the checkpoint directory should be is refused up front (exit 2), not at the first checkpoint
/// with a raw OS error (exit 1), and the file is left alone.
#[test]
fn a_checkpoint_dir_that_is_a_file_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ckpt");
    std::fs::write(&file, b"keep me").unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = quick(&["--checkpoint-dir", file.to_str().unwrap(), "--metrics", metrics.to_str().unwrap()]);
    assert_fails(&out, 2, "is a file, not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert!(!metrics.exists(), "nothing may run before the check");
}

/// A batch of activations larger than the machine's memory is refused on the CPU backend with exit status 2,
/// naming the tensor and the bytes, before training — not the allocator's abort (status 134). (4096 examples of
/// a conv output of 396,000 × 26 × 26 values: 4.4 TB, more than any machine this runs on.)
#[test]
fn activations_beyond_the_machines_memory_are_refused_on_the_cpu() {
    let model = r#"{"layers": [{"type": "conv2d", "out_channels": 396000, "kernel_size": 3},
        {"type": "max_pool2d", "kernel_size": 13}, {"type": "flatten"}, {"type": "linear", "out_features": 10}]}"#;
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--model",
        model,
        "--limit-train",
        "4096",
        "--batch-size",
        "4096",
        "--steps",
        "1",
        "--no-eval",
    ]);
    assert_fails(&out, 2, "bytes of memory");
}
