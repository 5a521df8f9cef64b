//! `train --model / --optimizer / --param-groups / --clip-*` through the real binary: layer lists from JSON and
//! from a file train to a sensible accuracy, every preset runs, and bad lists or options end with exit status 2
//! and a message naming the problem (the layer by index and name, the option, the glob).

use std::process::{Command, Output};

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

fn quick(extra: &[&str]) -> Output {
    wgtrain(&[&["train", "--backend", "cpu", "--limit-train", "64", "--steps", "2", "--no-eval"][..], extra].concat())
}

#[track_caller]
fn assert_fails(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test accuracy in percent from the summary line.
fn accuracy(stdout: &str) -> f64 {
    let at = stdout.find("test accuracy ").expect("summary has a test accuracy") + "test accuracy ".len();
    stdout[at..].split('%').next().unwrap().parse().unwrap()
}

#[test]
fn every_preset_and_optimizer_runs() {
    for model in ["sample-cnn", "lenet5", "mlp"] {
        for opt in ["sgd", "adam", "adamw"] {
            assert_ok(&quick(&["--model", model, "--optimizer", opt]));
        }
    }
}

#[test]
fn layer_list_from_a_file_trains_to_a_sensible_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.json");
    std::fs::write(
        &file,
        r#"{"layers": [
            {"type": "conv2d", "name": "c", "out_channels": 8, "kernel_size": 5, "stride": 2, "padding": 2},
            {"type": "relu"},
            {"type": "max_pool2d", "kernel_size": 3, "stride": 2},
            {"type": "flatten"},
            {"type": "linear", "name": "head", "out_features": 10}
        ]}"#,
    )
    .unwrap();
    let weights = dir.path().join("w.safetensors");
    let model = format!("@{}", file.display());
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--model",
        &model,
        "--optimizer",
        "adamw",
        "--lr",
        "0.005",
        "--limit-train",
        "3000",
        "--limit-test",
        "1000",
        "--batch-size",
        "32",
        "--save-weights",
        weights.to_str().unwrap(),
    ]);
    let acc = accuracy(&assert_ok(&out));
    // 93 AdamW steps on a 3k-image subset: a working model reaches ~90%; a broken gradient stays near 10%.
    assert!(acc > 80.0, "accuracy {acc}%");
    let saved = wgtrain::nn::weights::load_any(&weights).unwrap();
    assert_eq!(saved.keys().collect::<Vec<_>>(), ["c.bias", "c.weight", "head.bias", "head.weight"]);
    assert_eq!(saved["c.weight"].0, [8, 1, 5, 5]);
    assert_eq!(saved["head.weight"].0, [10, 8 * 6 * 6]);
}

#[test]
fn lenet5_with_adamw_and_param_groups_trains() {
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--model",
        "lenet5",
        "--optimizer",
        "adamw",
        "--lr",
        "0.002",
        "--limit-train",
        "3000",
        "--limit-test",
        "1000",
        "--batch-size",
        "32",
        "--clip-grad-norm",
        "1.0",
        "--param-groups",
        r#"[{"params": ["*.bias"], "weight_decay": 0}, {"params": ["c*"], "lr": 0.003}]"#,
    ]);
    let acc = accuracy(&assert_ok(&out));
    assert!(acc > 80.0, "accuracy {acc}%");
}

#[test]
fn bad_layer_lists_name_the_layer() {
    let list = |layers: &str| format!(r#"{{"layers": [{layers}]}}"#);
    let cases: [(String, &[&str]); 7] = [
        (
            list(r#"{"type": "flatten"}, {"type": "linear", "name": "out", "out_features": 7}"#),
            &["layer 1", "10 classes"],
        ),
        (
            list(
                r#"{"type": "conv2d", "name": "big", "out_channels": 4, "kernel_size": 31}, {"type": "flatten"}, {"type": "linear", "out_features": 10}"#,
            ),
            &["layer 0 (big)", "kernel 31", "28×28"],
        ),
        (list(r#"{"type": "linear", "name": "fc", "out_features": 10}"#), &["layer 0 (fc)", "flatten"]),
        (
            list(r#"{"type": "flatten"}, {"type": "conv2d", "out_channels": 4, "kernel_size": 3}"#),
            &["layer 1", "[C,H,W]"],
        ),
        (list(r#"{"type": "max_pool2d", "kernel_size": 0}"#), &["layer 0", "at least 1"]),
        (list(r#"{"type": "dropout"}"#), &["dropout"]),
        (list(r#"{"type": "flatten", "extra": 1}"#), &["extra"]),
    ];
    for (model, needles) in cases {
        assert_fails(&quick(&["--model", &model]), needles);
    }
    assert_fails(&quick(&["--model", "resnet50"]), &["resnet50", "sample-cnn, lenet5, mlp"]);
    assert_fails(&quick(&["--model", "@/nonexistent/net.json"]), &["/nonexistent/net.json"]);
    assert_fails(&quick(&["--model", "{\"layers\": []}"]), &["empty"]);
}

#[test]
fn bad_optimizer_options_are_refused() {
    assert_fails(&quick(&["--optimizer", "rmsprop"]), &["rmsprop"]);
    assert_fails(&quick(&["--optimizer", "adam", "--momentum", "0.9"]), &["--momentum", "adam"]);
    assert_fails(&quick(&["--optimizer", "sgd", "--betas", "0.9,0.99"]), &["--betas", "sgd"]);
    assert_fails(&quick(&["--optimizer", "adam", "--betas", "0.9,1.5"]), &["beta2", "[0, 1)"]);
    assert_fails(&quick(&["--optimizer", "adam", "--betas", "0.9"]), &["--betas"]);
    assert_fails(&quick(&["--optimizer", "adamw", "--eps", "-1"]), &["--eps"]);
    assert_fails(&quick(&["--lr", "-0.1"]), &["--lr"]);
    assert_fails(&quick(&["--clip-grad-norm", "-1"]), &["--clip-grad-norm"]);
    assert_fails(&quick(&["--clip-grad-value", "nan"]), &["--clip-grad-value"]);
}

#[test]
fn bad_param_groups_are_refused() {
    assert_fails(&quick(&["--param-groups", r#"[{"params": ["nothing.*"]}]"#]), &["nothing.*", "conv1.weight"]);
    assert_fails(
        &quick(&["--param-groups", r#"[{"params": ["*"]}, {"params": ["*.bias"], "lr": 1}]"#]),
        &["group 1", "*.bias"],
    );
    assert_fails(&quick(&["--param-groups", r#"[{"params": ["*"], "lr": -1}]"#]), &["--lr", "group 0"]);
    assert_fails(&quick(&["--param-groups", r#"[{"params": ["*"], "betas": [0.9, 0.9]}]"#]), &["betas"]);
    assert_fails(&quick(&["--param-groups", "[]"]), &["empty"]);
    assert_fails(&quick(&["--param-groups", r#"[{"params": []}]"#]), &["empty"]);
}

#[test]
fn param_groups_lrs_and_grad_norm_are_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = quick(&[
        "--param-groups",
        r#"[{"params": ["fc*"], "lr": 0.5}]"#,
        "--lr",
        "0.1",
        "--schedule",
        r#"{"kind": "step", "step_size": 1, "gamma": 0.5}"#,
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "step")
        .collect();
    assert_eq!(steps.len(), 2);
    // Each group decays from its own initial lr, as PyTorch's schedulers do.
    assert_eq!(steps[0]["lrs"], serde_json::json!([0.5, 0.1]));
    assert_eq!(steps[1]["lrs"], serde_json::json!([0.25, 0.05]));
    assert_eq!(steps[1]["lr"], 0.25);
    for s in &steps {
        let n = s["grad_norm"].as_f64().unwrap();
        assert!(n.is_finite() && n > 0.0, "{s}");
    }
}

#[test]
fn train_plot_draws_the_run_and_bad_plot_paths_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let out = wgtrain(&[
        "train",
        "--backend",
        "cpu",
        "--limit-train",
        "256",
        "--val-split",
        "64",
        "--limit-test",
        "100",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let text = std::fs::read_to_string(&svg).unwrap();
    for label in ["batch loss", "learning rate", "gradient norm", "accuracy per epoch", "validation", "test"] {
        assert!(text.contains(label), "the figure lacks {label}");
    }
    let out = wgtrain(&["train", "--plot", dir.path().join("run.jpg").to_str().unwrap()]);
    assert_fails(&out, &["run.jpg"]);
}
