//! The real `wgtrain schedule` binary against the PyTorch goldens (a handful of battery configs), its CSV
//! format, its exit status 2 on configs PyTorch raises on, and `--plot`.

use std::process::{Command, Output};

use serde_json::Value;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lr");

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).arg("schedule").args(args).output().expect("run wgtrain")
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIX}/{name}")).expect("fixture")).expect("JSON")
}

fn battery_entry(name: &str) -> (Value, Value) {
    let battery = load("battery.json");
    let c = battery.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}")).clone();
    (c, load("goldens.json")[name].clone())
}

/// Rows of the CSV after checking the header and the step column.
fn csv(out: &Output) -> Vec<(f64, f64)> {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,lr,momentum"));
    lines
        .enumerate()
        .map(|(k, line)| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "{line}");
            assert_eq!(f[0], k.to_string());
            (f[1].parse().expect("lr"), f[2].parse().expect("momentum"))
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn binary_reproduces_pytorch_for_a_handful_of_configs() {
    for name in [
        "step_basic",
        "cosine_long_drift",
        "cyclic_triangular",
        "onecycle_cos_default",
        "plateau_min_rel",
        "sequential_linear_cosine",
        "chained_step_cosine",
        "hf_cosine_with_warmup",
        "optax_sgdr",
    ] {
        let (c, g) = battery_entry(name);
        let schedule = c["schedule"].to_string();
        let lr = c["lr"].to_string();
        let steps = c["steps"].to_string();
        let metrics: Option<String> =
            c.get("metrics").map(|m| m.as_array().unwrap().iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
        let mut args = vec!["--schedule", &schedule, "--lr", &lr, "--steps", &steps, "--momentum", "0.9"];
        if let Some(m) = &metrics {
            args.extend(["--metrics-values", m]);
        }
        let out = wgtrain(&args);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let rows = csv(&out);
        let want = floats(&g["lr"]);
        assert_eq!(rows.len(), want.len(), "{name}");
        for (k, ((lr, _), w)) in rows.iter().zip(&want).enumerate() {
            // Shortest round-trip printing: the CSV holds PyTorch's exact doubles.
            assert_eq!(lr.to_bits(), w.to_bits(), "{name} step {k}: {lr} vs {w}");
        }
        match g.get("momentum") {
            Some(m) => {
                for (k, ((_, got), w)) in rows.iter().zip(floats(m)).enumerate() {
                    assert_eq!(got.to_bits(), w.to_bits(), "{name} momentum at step {k}");
                }
            }
            None => assert!(rows.iter().all(|r| r.1 == 0.9), "{name}: momentum column is --momentum"),
        }
    }
}

#[test]
fn configs_pytorch_raises_on_exit_2_naming_the_field() {
    for (name, field) in [
        ("step_size_zero_error", "step_size"),
        ("onecycle_overrun_error", "total_steps"),
        ("constant_invalid_factor", "factor"),
    ] {
        let (c, _) = battery_entry(name);
        let out =
            wgtrain(&["--schedule", &c["schedule"].to_string(), "--lr", "0.1", "--steps", &c["steps"].to_string()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: rejected before any output");
    }
    let out = wgtrain(&["--schedule", r#"{"kind":"step","step_size":3,"gama":0.5}"#, "--steps", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gama"));
}

#[test]
fn usage_errors_exit_2() {
    let plateau = r#"{"kind":"reduce_lr_on_plateau","patience":1}"#;
    for args in [
        vec!["--schedule", r#"{"kind":"exponential","gamma":0.9}"#, "--steps", "0"],
        vec!["--schedule", r#"{"kind":"exponential","gamma":0.9}"#],
        vec!["--schedule", plateau, "--steps", "3", "--metrics-values", "1,2"],
        vec!["--schedule", plateau, "--steps", "3"],
        vec!["--schedule", plateau, "--steps", "3", "--metrics-values", "1,x,3"],
        vec!["--schedule", r#"{"kind":"exponential","gamma":0.9}"#, "--steps", "3", "--plot", "out.jpg"],
    ] {
        let out = wgtrain(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = wgtrain(&["--schedule", r#"{"kind":"exponential","gamma":0.9}"#, "--steps", "3", "--plot", "out.jpg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(".jpg"));
}

#[test]
fn metrics_from_a_file_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.txt");
    std::fs::write(&m, "1\n1 1,1\n").unwrap();
    let arg = format!("@{}", m.display());
    let out = wgtrain(&[
        "--schedule",
        r#"{"kind":"reduce_lr_on_plateau","patience":1,"factor":0.5}"#,
        "--lr",
        "1",
        "--steps",
        "4",
        "--metrics-values",
        &arg,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // first metric improves; two more non-improving steps > patience 1 cut after step 2.
    assert_eq!(csv(&out).iter().map(|r| r.0).collect::<Vec<_>>(), vec![1.0, 1.0, 1.0, 0.5]);
    // --lr defaults to 0.01 and --momentum to 0.
    let out = wgtrain(&["--schedule", r#"{"kind":"exponential","gamma":0.5}"#, "--steps", "2"]);
    assert_eq!(csv(&out), vec![(0.01, 0.0), (0.005, 0.0)]);
}

#[test]
fn plot_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("one_cycle.png");
    let out = wgtrain(&[
        "--schedule",
        r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":1000}"#,
        "--lr",
        "0.1",
        "--steps",
        "1000",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg = dir.path().join("cos.svg");
    let out = wgtrain(&[
        "--schedule",
        r#"{"kind":"cosine_annealing","t_max":50}"#,
        "--lr",
        "3e-4",
        "--steps",
        "100",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("learning rate (×1e-4)") && !text.contains("momentum"),
        "lr panel only"
    );
    // Only the target files: no temporary left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
