//! `--config FILE` through the real binary: a file's values reach the run (seen in the metrics file's run line and
//! per-step lr), the command line wins, TOML and JSON both work with either key spelling, `sweep` takes its grid
//! from a file, and a bad file (unknown key, wrong type, syntax error, missing) ends with exit status 2 naming it.
//! Runs are a few steps of the MLP on 64 images on the CPU backend.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain")).args(args).output().unwrap()
}

/// Options every run here shares, as a TOML fragment (keys in both spellings on purpose).
const TINY_TOML: &str = "backend = \"cpu\"\nmodel = \"mlp\"\nlimit-train = 64\nbatch_size = 32\nno-eval = true\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The metrics file's lines as JSON: the run line first, then the events.
fn metrics(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn step_lrs(lines: &[Value]) -> Vec<f64> {
    lines.iter().filter(|v| v["event"] == "step").map(|v| v["lr"].as_f64().unwrap()).collect()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_toml_files_values_reach_the_run_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "run.toml",
        &format!(
            "{TINY_TOML}steps = 3\nlr = 0.05\nmomentum = 0.9\n\
             schedule = {{ kind = \"step\", step_size = 1, gamma = 0.5 }}\n"
        ),
    );
    let m = dir.path().join("m.jsonl");
    ok(&wgtrain(&["train", "-q", "--config", &cfg, "--metrics", m.to_str().unwrap()]));
    let lines = metrics(&m);
    let opts = &lines[0]["options"];
    assert_eq!(lines[0]["event"], "run");
    assert_eq!((opts["lr"].as_f64(), opts["momentum"].as_f64()), (Some(0.05), Some(0.9)));
    assert_eq!((opts["batch_size"].as_u64(), opts["limit_train"].as_u64()), (Some(32), Some(64)));
    assert_eq!(opts["model"], "mlp");
    // The schedule given as a TOML table drives the run: 0.05 halved every step (exact in binary floating point).
    assert_eq!(step_lrs(&lines), [0.05, 0.025, 0.0125]);

    // The same file with --lr and --steps on the command line: those win, the rest still comes from the file.
    ok(&wgtrain(&["train", "-q", "--config", &cfg, "--lr", "0.2", "--steps", "2", "--metrics", m.to_str().unwrap()]));
    let lines = metrics(&m);
    assert_eq!(lines[0]["options"]["lr"].as_f64(), Some(0.2));
    assert_eq!(lines[0]["options"]["momentum"].as_f64(), Some(0.9));
    assert_eq!(step_lrs(&lines), [0.2, 0.1]);
}

#[test]
fn a_json_file_works_with_dashed_keys_and_json_text_values() {
    let dir = tempfile::tempdir().unwrap();
    // No known extension: read as JSON first. The schedule is the JSON text the command line takes; betas a list.
    let cfg = write(
        dir.path(),
        "run.cfg",
        r#"{"backend": "cpu", "model": "mlp", "limit-train": 64, "batch-size": 32, "no_eval": true, "steps": 2,
            "optimizer": "adam", "lr": 0.01, "betas": [0.8, 0.99],
            "schedule": "{\"kind\": \"exponential\", \"gamma\": 0.5}"}"#,
    );
    let m = dir.path().join("m.jsonl");
    ok(&wgtrain(&["train", "-q", "--config", &cfg, "--metrics", m.to_str().unwrap()]));
    let lines = metrics(&m);
    let opt = &lines[0]["optimizer"];
    assert_eq!(opt["name"], "adam");
    assert_eq!(opt["base"]["betas"], serde_json::json!([0.8, 0.99]));
    assert_eq!(step_lrs(&lines), [0.01, 0.005]);
}

#[test]
fn sweep_reads_its_grid_from_a_file_and_the_command_line_can_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "sweep.toml",
        &format!("{TINY_TOML}steps = 2\n\n[grid]\nlr = [0.01, 0.1]\nmomentum = [0.9]\n"),
    );
    let json = dir.path().join("s.json");
    ok(&wgtrain(&["sweep", "--config", &cfg, "--json", json.to_str().unwrap()]));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let params: Vec<&Value> = s["trials"].as_array().unwrap().iter().map(|t| &t["params"]).collect();
    assert_eq!(
        params,
        [&serde_json::json!({"lr": 0.01, "momentum": 0.9}), &serde_json::json!({"lr": 0.1, "momentum": 0.9})]
    );
    assert_eq!(s["trials"][0]["losses"].as_array().unwrap().len(), 2, "steps = 2 from the file");

    // --random on the command line excludes --grid, so the file's grid gives way (and --trials comes from nowhere
    // else: the command line must give it).
    ok(&wgtrain(&[
        "sweep",
        "--config",
        &cfg,
        "--random",
        r#"{"lr": [0.03]}"#,
        "--trials",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(s["trials"].as_array().unwrap().len(), 1);
    assert_eq!(s["trials"][0]["params"], serde_json::json!({"lr": 0.03}));
}

#[test]
fn lr_find_takes_its_own_options_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "find.toml", &format!("{TINY_TOML}steps = 4\nstart-lr = 1e-4\nend_lr = 1e-1\n"));
    let out = wgtrain(&["lr-find", "--config", &cfg]);
    ok(&out);
    let csv = String::from_utf8_lossy(&out.stdout);
    let lrs: Vec<f64> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("suggested"))
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lrs.len(), 4);
    // The range's ends, up to the rounding of start·(end/start)^(i/(n−1)) in f64.
    assert!((lrs[0] - 1e-4).abs() < 1e-15 && (lrs[3] - 1e-1).abs() < 1e-12, "{lrs:?}");
}

#[test]
fn bad_config_files_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needles) in [
        ("unknown.toml", "lr = 0.1\nlearning_rate = 0.1\n", &["learning_rate", "unknown.toml", "not an option"][..]),
        ("unknown.json", r#"{"start_lr": 0.1}"#, &["start_lr", "unknown.json", "wgtrain train"][..]),
        ("type.toml", "epochs = 1.5\n", &["epochs", "type.toml", "1.5"][..]),
        ("string.toml", "lr = \"fast\"\n", &["`lr`", "fast"][..]),
        ("switch.toml", "no_eval = 1\n", &["no_eval", "true or false"][..]),
        ("choice.toml", "optimizer = \"sgdd\"\n", &["optimizer", "possible values"][..]),
        ("syntax.toml", "lr = 0.1\nmomentum = = 0.9\n", &["syntax.toml", "TOML", "line 2"][..]),
        ("syntax.json", "{\"lr\": 0.1,}", &["syntax.json", "JSON", "line 1"][..]),
        ("top.json", "[1, 2]", &["top.json", "table of options"][..]),
        ("self.toml", "config = \"other.toml\"\n", &["config", "cannot be set from a config file"][..]),
        ("twice.toml", "batch-size = 32\nbatch_size = 16\n", &["batch-size", "batch_size", "same option"][..]),
        // TOML's nan and inf reach the option as on the command line (they were once reported as null).
        ("nan.toml", "lr = nan\n", &["--lr", "finite", "NaN"][..]),
        ("inf.toml", "momentum = -inf\n", &["--momentum", "finite", "-inf"][..]),
    ] {
        let cfg = write(dir.path(), name, text);
        let stderr = refused(&wgtrain(&["train", "--backend", "cpu", "--config", &cfg]));
        for needle in needles {
            assert!(stderr.contains(needle), "{name}: `{needle}` not in: {stderr}");
        }
    }
    let missing = dir.path().join("missing.toml");
    let stderr = refused(&wgtrain(&["train", "--config", missing.to_str().unwrap()]));
    assert!(stderr.contains("missing.toml") && stderr.contains("cannot read"), "{stderr}");
}

/// With --resume, the file's options count as given again: they must agree with the checkpoint.
#[test]
fn with_resume_the_files_options_must_agree_with_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let base = ["train", "-q", "--backend", "cpu", "--model", "mlp", "--limit-train", "64", "--batch-size", "32"];
    let ck = ckpt.to_str().unwrap();
    ok(&wgtrain(&[&base[..], &["--no-eval", "--steps", "2", "--lr", "0.05", "--checkpoint-dir", ck]].concat()));
    let resume =
        |cfg: &str| wgtrain(&[&base[..], &["--no-eval", "--steps", "3", "--resume", ck, "--config", cfg]].concat());
    let stderr = refused(&resume(&write(dir.path(), "other.toml", "lr = 0.07\n")));
    assert!(stderr.contains("--lr 0.07 contradicts"), "{stderr}");
    ok(&resume(&write(dir.path(), "same.toml", "lr = 0.05\n")));
}
