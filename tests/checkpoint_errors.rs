//! Checkpoints that cannot be resumed exactly are refused with exit status 2 and a message naming what does
//! not match: damaged files, another model / optimizer / parameter-group layout / format version, options that
//! contradict the saved ones; and a fresh run does not write into a directory holding another run's checkpoints.

mod ckpt_common;

use std::path::{Path, PathBuf};
use std::process::Output;

use ckpt_common::{MODEL, checkpoints, wgtrain};

fn base() -> Vec<String> {
    [
        "--backend",
        "cpu",
        "--model",
        MODEL,
        "--limit-train",
        "128",
        "--batch-size",
        "32",
        "--no-eval",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--param-groups",
        r#"[{"params":["*.bias"],"weight_decay":0}]"#,
    ]
    .map(String::from)
    .to_vec()
}

/// A directory with one checkpoint at step 3 of a 3-step run; returns (tempdir, checkpoint dir, step dir).
fn saved() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let out = wgtrain(&base(), &["--steps", "3", "--checkpoint-dir", ck.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(checkpoints(&ck), vec![3]);
    let at = ck.join("step-00000003");
    (dir, ck, at)
}

fn resume(ck: &Path, extra: &[&str]) -> Output {
    wgtrain(
        &[],
        &[&["train", "--backend", "cpu", "--resume", ck.to_str().unwrap(), "--steps", "5"][..], extra].concat(),
    )
}

#[track_caller]
fn assert_refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Rewrite state.json through `edit`.
fn edit_state(at: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = at.join("state.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn the_checkpoint_as_saved_resumes() {
    let (_d, ck, _) = saved();
    // An incomplete checkpoint of a later step (a crash mid-save) is neither picked nor kept.
    std::fs::create_dir(ck.join(".tmp-step-00000004-1")).unwrap();
    std::fs::write(ck.join(".tmp-step-00000004-1/state.json"), "{").unwrap();
    let out = resume(&ck, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(checkpoints(&ck), vec![3, 4, 5]);
    assert!(!ck.join(".tmp-step-00000004-1").exists());
}

#[test]
fn truncated_and_corrupt_files() {
    let (_d, ck, at) = saved();
    let w = at.join("weights.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 100]).unwrap();
    assert_refused(&resume(&ck, &[]), &["weights.safetensors is truncated", "step-00000003"]);
    std::fs::write(&w, &bytes).unwrap();

    let o = at.join("optimizer.safetensors");
    let mut bytes = std::fs::read(&o).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&o, &bytes).unwrap();
    assert_refused(&resume(&ck, &[]), &["optimizer.safetensors is corrupt", "CRC-32"]);
    bytes[last] ^= 0x40;
    std::fs::write(&o, &bytes).unwrap();

    let s = at.join("state.json");
    let text = std::fs::read_to_string(&s).unwrap();
    std::fs::write(&s, &text[..text.len() / 2]).unwrap();
    assert_refused(&resume(&ck, &[]), &["state.json is corrupt or truncated"]);
    std::fs::remove_file(&s).unwrap();
    assert_refused(&resume(&ck, &[]), &["cannot read state.json"]);
}

#[test]
fn incompatible_format_version() {
    let (_d, ck, at) = saved();
    edit_state(&at, |v| {
        v["format"] = 99.into();
        v["wgtrain"] = "9.9.9".into();
    });
    assert_refused(&resume(&ck, &[]), &["format version 99", "wgtrain 9.9.9", "reads version 1"]);
}

#[test]
fn another_model() {
    let (_d, ck, at) = saved();
    // A checkpoint whose layer list has 8 conv channels where the run (its options) builds 4.
    edit_state(&at, |v| {
        v["run"]["model"]["layers"][0]["out_channels"] = 8.into();
        v["run"]["params"][0][1][0] = 8.into();
        v["run"]["params"][1][1][0] = 8.into();
    });
    assert_refused(&resume(&ck, &[]), &["does not match the run", "model:", "conv.weight [8, 1, 3, 3]"]);
    // Asking for another model on the command line is a contradiction.
    let (_d, ck, _) = saved();
    assert_refused(&resume(&ck, &["--model", "mlp"]), &["--model mlp contradicts the checkpoint's"]);
}

#[test]
fn another_optimizer() {
    let (_d, ck, at) = saved();
    assert_refused(&resume(&ck, &["--optimizer", "adamw"]), &["--optimizer adamw contradicts the checkpoint's sgd"]);
    edit_state(&at, |v| {
        v["optimizer"]["kind"] = "adam".into();
        v["optimizer"]["config"]["kind"] = "adam".into();
    });
    assert_refused(&resume(&ck, &[]), &["optimizer: the checkpoint's is adam, the run's is sgd"]);
}

#[test]
fn another_parameter_group_layout() {
    let (_d, ck, at) = saved();
    assert_refused(
        &resume(&ck, &["--param-groups", r#"[{"params":["fc.*"],"lr":0.1}]"#]),
        &["--param-groups", "contradicts the checkpoint's"],
    );
    edit_state(&at, |v| {
        v["optimizer"]["groups"] = serde_json::json!([["conv.bias"], ["conv.weight", "fc.weight", "fc.bias"]]);
    });
    assert_refused(&resume(&ck, &[]), &["parameter groups: the checkpoint's are"]);
}

#[test]
fn contradicting_options_and_lengths() {
    let (_d, ck, _) = saved();
    let out = resume(&ck, &["--batch-size", "16", "--seed", "4"]);
    assert_refused(
        &out,
        &["--batch-size 16 contradicts the checkpoint's 32", "--seed 4 contradicts the checkpoint's 0"],
    );
    // Giving a saved value again is no contradiction.
    let out = resume(&ck, &["--batch-size", "32", "--momentum", "0.9"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Nor is giving the value a left-out option took (SGD's lr 0.01, dampening 0): options compare by their
    // effective values (this once said "contradicts the checkpoint's none").
    let (_d2, ck2, _) = saved();
    let out = resume(&ck2, &["--lr", "0.01", "--dampening", "0", "--weight-decay", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_d3, ck3, _) = saved();
    assert_refused(&resume(&ck3, &["--lr", "0.02"]), &["--lr 0.02 contradicts the checkpoint's 0.01"]);
    let out = wgtrain(&[], &["train", "--backend", "cpu", "--resume", ck.to_str().unwrap(), "--steps", "2"]);
    assert_refused(&out, &["ends before the checkpoint's step 5"]);
}

#[test]
fn missing_checkpoints_and_occupied_directories() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&resume(dir.path(), &[]), &["no complete checkpoint"]);
    assert_refused(&resume(&dir.path().join("nope"), &[]), &["no such directory"]);
    let (_d, ck, _) = saved();
    let out = wgtrain(&base(), &["--steps", "3", "--checkpoint-dir", ck.to_str().unwrap()]);
    assert_refused(&out, &["already holds checkpoints", "--resume"]);
    let out = wgtrain(&base(), &["--steps", "3", "--checkpoint-every", "2"]);
    assert_refused(&out, &["--checkpoint-every needs --checkpoint-dir"]);
}
