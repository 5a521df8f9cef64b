//! Shared by the trajectory tests of every backend: replay a PyTorch golden case through the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use wgtrain::tolerance::Tolerance;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// Per-step loss and final weights within 1e-4 of PyTorch's f64 run (the bar). Float32 rounding alone
/// moves these short runs by < 1e-6 (`f32_vs_f64_max_*` in each JSON), so 1e-4 leaves room only for the
/// reordering of f32 sums, not for a different formula.
pub const TRAJECTORY_TOL: Tolerance = Tolerance::new(1e-4, 0.0);

/// Run `wgtrain train` on the case with `backend_args` and compare against the goldens.
pub fn check_trajectory(case: &str, backend_args: &[&str]) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("trajectory/{case}.json"))).unwrap()).unwrap();
    let c = &json["case"];
    let opt = &c["opt"];
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.jsonl");
    let weights = dir.path().join("final.safetensors");
    let init = fixture(&format!("trajectory/{case}.init.safetensors"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    cmd.args(["train", "--no-shuffle", "--no-eval"]).args(backend_args);
    cmd.arg("--init").arg(&init).arg("--metrics").arg(&metrics).arg("--save-weights").arg(&weights);
    for (flag, v) in [("--limit-train", &c["n"]), ("--batch-size", &c["batch"]), ("--steps", &c["steps"])] {
        cmd.args([flag, &v.to_string()]);
    }
    for (flag, key) in [("--lr", "lr"), ("--momentum", "momentum"), ("--weight-decay", "weight_decay")] {
        cmd.args([flag, &opt[key].as_f64().unwrap().to_string()]);
    }
    if opt["nesterov"].as_bool().unwrap() {
        cmd.arg("--nesterov");
    }
    if !c["schedule"].is_null() {
        cmd.args(["--schedule", &c["schedule"].to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{case}: wgtrain failed: {}", String::from_utf8_lossy(&out.stderr));

    let steps: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "step")
        .collect();
    let golden = json["log64"].as_array().unwrap();
    assert_eq!(steps.len(), golden.len(), "{case}: number of step events");
    let field = |v: &[serde_json::Value], k: &str| v.iter().map(|e| e[k].as_f64().unwrap()).collect::<Vec<f64>>();
    // The learning rate is a host-side f64: it must match PyTorch's exactly.
    Tolerance::new(0.0, 1e-12).assert(&format!("{case} lr"), &field(&steps, "lr"), &field(golden, "lr"));
    TRAJECTORY_TOL.assert(&format!("{case} loss"), &field(&steps, "loss"), &field(golden, "loss"));

    let ours = wgtrain::nn::weights::load_any(&weights).unwrap();
    let theirs = wgtrain::nn::weights::load_any(&fixture(&format!("trajectory/{case}.final64.safetensors"))).unwrap();
    for (name, _) in wgtrain::nn::PARAMS {
        TRAJECTORY_TOL.assert(&format!("{case} {name}"), &ours[name].1, &theirs[name].1);
    }
}

/// The `wgtrain train` arguments that replay a trajectory2 case (layer lists, Adam/AdamW, groups, clipping).
pub fn trajectory2_args(c: &serde_json::Value) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let opt = &c["opt"];
    let model = match &c["model"] {
        serde_json::Value::String(s) => s.clone(),
        list => list.to_string(),
    };
    a.extend(["--model".into(), model, "--optimizer".into(), opt["kind"].as_str().unwrap().into()]);
    for (k, v) in opt.as_object().unwrap() {
        match k.as_str() {
            "kind" => {}
            "betas" => a.extend(["--betas".into(), format!("{},{}", v[0], v[1])]),
            "nesterov" | "amsgrad" => {
                if v.as_bool().unwrap() {
                    a.push(format!("--{k}"));
                }
            }
            _ => a.extend([format!("--{}", k.replace('_', "-")), v.to_string()]),
        }
    }
    for (flag, key) in [("--limit-train", "n"), ("--batch-size", "batch"), ("--steps", "steps")] {
        a.extend([flag.into(), c[key].to_string()]);
    }
    if !c["schedule"].is_null() {
        a.extend(["--schedule".into(), c["schedule"].to_string()]);
    }
    if let Some(g) = c.get("param_groups") {
        a.extend(["--param-groups".into(), g.to_string()]);
    }
    for key in ["clip_grad_norm", "clip_grad_value"] {
        if let Some(v) = c.get(key) {
            a.extend([format!("--{}", key.replace('_', "-")), v.to_string()]);
        }
    }
    a
}

/// Replay a trajectory2 case with `backend_args`: per step the lr of every group (exact: a host-side f64),
/// momentum or beta1 (exact), the loss and the gradient norm (within [`TRAJECTORY_TOL`]), and every final weight
/// within [`TRAJECTORY_TOL`] of PyTorch's float64 run.
pub fn check_trajectory2(case: &str, backend_args: &[&str]) {
    replay_layer_list("trajectory2", case, backend_args, [TRAJECTORY_TOL; 3]);
}

/// The bound of a long (trajectory3) case: max(1e-5, 4 × the larger of PyTorch's two float32 spreads from its
/// own float64 run, `f32_vs_f64_*` and `f32_reorder_*`), for the loss (`what` = "loss") or the weights
/// ("weight"). An implementation whose float32 arithmetic is PyTorch's, up to summation order, lands within a
/// small multiple of PyTorch's own spread; a biased formula lands orders of magnitude outside it.
pub fn trajectory3_bound(json: &serde_json::Value, what: &str) -> f64 {
    let spread = |k: String| json[&k].as_f64().unwrap_or_else(|| panic!("{k} missing"));
    let larger = spread(format!("f32_vs_f64_max_{what}_diff")).max(spread(format!("f32_reorder_max_{what}_diff")));
    (4.0 * larger).max(1e-5)
}

/// Replay a trajectory3 case (24-step runs) with `backend_args`, as [`check_trajectory2`] but within
/// [`trajectory3_bound`]: the loss per step by the loss bound, the final weights by the weight bound, and the
/// gradient norm by the loss bound relative to its size (no float32 spread is recorded for it).
pub fn check_trajectory3(case: &str, backend_args: &[&str]) {
    let json = load_json(&format!("trajectory3/{case}.json"));
    let (loss, weight) = (trajectory3_bound(&json, "loss"), trajectory3_bound(&json, "weight"));
    let tols = [Tolerance::new(loss, 0.0), Tolerance::new(loss, loss), Tolerance::new(weight, 0.0)];
    replay_layer_list("trajectory3", case, backend_args, tols);
}

pub fn load_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

/// Replay `dir/case` (a trajectory2-format case) through `wgtrain train`: lr, lr of every group and
/// momentum/beta1 exact; per step the loss and the gradient norm, and every final weight, within `tols` (loss,
/// gradient norm, weights) of PyTorch's float64 run.
pub fn replay_layer_list(dir: &str, case: &str, backend_args: &[&str], tols: [Tolerance; 3]) {
    let [loss_tol, norm_tol, weight_tol] = tols;
    let json = load_json(&format!("{dir}/{case}.json"));
    let c = &json["case"];
    let tmp = tempfile::tempdir().unwrap();
    let metrics = tmp.path().join("metrics.jsonl");
    let weights = tmp.path().join("final.safetensors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgtrain"));
    cmd.args(["train", "--no-shuffle", "--no-eval"]).args(backend_args).args(trajectory2_args(c));
    cmd.arg("--init").arg(fixture(&format!("{dir}/{case}.init.safetensors")));
    cmd.arg("--metrics").arg(&metrics).arg("--save-weights").arg(&weights);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{case}: wgtrain failed: {}", String::from_utf8_lossy(&out.stderr));

    let steps: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "step")
        .collect();
    let golden = json["log64"].as_array().unwrap();
    assert_eq!(steps.len(), golden.len(), "{case}: number of step events");
    let field = |v: &[serde_json::Value], k: &str| v.iter().map(|e| e[k].as_f64().unwrap()).collect::<Vec<f64>>();
    let exact = Tolerance::new(0.0, 1e-12);
    exact.assert(&format!("{case} lr"), &field(&steps, "lr"), &field(golden, "lr"));
    let groups = golden[0]["lrs"].as_array().unwrap().len();
    for g in 0..groups {
        let lr_of = |v: &[serde_json::Value], multi: bool| -> Vec<f64> {
            v.iter().map(|e| if multi { e["lrs"][g].as_f64().unwrap() } else { e["lr"].as_f64().unwrap() }).collect()
        };
        exact.assert(&format!("{case} lr of group {g}"), &lr_of(&steps, groups > 1), &lr_of(golden, true));
    }
    let momentum_key = if golden[0].get("beta1").is_some() { "beta1" } else { "momentum" };
    exact.assert(&format!("{case} {momentum_key}"), &field(&steps, "momentum"), &field(golden, momentum_key));
    loss_tol.assert(&format!("{case} loss"), &field(&steps, "loss"), &field(golden, "loss"));
    norm_tol.assert(&format!("{case} grad_norm"), &field(&steps, "grad_norm"), &field(golden, "grad_norm"));

    let ours = wgtrain::nn::weights::load_any(&weights).unwrap();
    let theirs = wgtrain::nn::weights::load_any(&fixture(&format!("{dir}/{case}.final64.safetensors"))).unwrap();
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{case}: parameter names");
    for (name, (shape, values)) in &theirs {
        assert_eq!(&ours[name].0, shape, "{case} {name} shape");
        weight_tol.assert(&format!("{case} {name}"), &ours[name].1, values);
    }
}
