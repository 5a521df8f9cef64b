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
