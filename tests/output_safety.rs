//! Output files: paths checked before any work, devices and FIFOs written in place (never replaced), symlinks
//! kept, write errors reported with the path, stale temporary files of dead processes removed.
//! Device nodes are `mknod` copies in a temp dir, never the real `/dev`.

mod support;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use support::*;

#[test]
fn bad_output_paths_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metrics = d.join("m.jsonl");
    std::fs::create_dir(d.join("sub")).unwrap();
    let cases = [
        (d.join("missing/w.safetensors"), "does not exist"),
        (d.join("sub"), "is a directory"),
        (d.join("sub/"), "path separator"),
    ];
    for (weights, why) in &cases {
        // `dir/` keeps its slash: it names a directory, not a file in it.
        let w = if why.contains("separator") {
            format!("{}/", s(weights).trim_end_matches('/'))
        } else {
            s(weights).into()
        };
        let out = wgtrain(&quick_args(&["--save-weights", &w, "--metrics", s(&metrics)]));
        assert_fails(&out, 2, "--save-weights");
        assert_fails(&out, 2, why);
        assert!(!metrics.exists(), "{w}: no training may happen before the output path is checked");
    }
    let out = wgtrain(&quick_args(&["--metrics", s(&d.join("missing/m.jsonl"))]));
    assert_fails(&out, 2, "--metrics");
    assert_fails(&out, 2, "does not exist");
}

#[test]
fn compare_checks_json_and_plot_before_any_backend_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = ["compare", "--backends", "cpu", "--limit-train", "64", "--steps", "2"];
    for (opt, path, why) in [
        ("--plot", d.join("x.jpg"), ".png or .svg"),
        ("--plot", d.join("missing/x.svg"), "does not exist"),
        ("--json", d.join("missing/x.json"), "does not exist"),
        ("--json", d.to_path_buf(), "is a directory"),
    ] {
        let out = wgtrain(&[&base[..], &[opt, s(&path)]].concat());
        assert_fails(&out, 2, opt);
        assert_fails(&out, 2, why);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("[1/1]"), "no backend may run first: {err}");
    }
}

#[test]
fn device_nodes_are_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let null = char_device(dir.path(), "null", 1, 3);
    let out = wgtrain(&quick_args(&["--metrics", s(&null)]));
    assert_ok(&out);
    assert!(is_char_device(&null), "--metrics must not replace a device node with a regular file");
    let out = wgtrain(&quick_args(&["--save-weights", s(&null)]));
    assert_ok(&out);
    assert!(is_char_device(&null), "--save-weights must not replace a device node");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary files left");
}

#[test]
fn a_full_device_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let full = char_device(dir.path(), "full", 1, 7);
    for opt in ["--metrics", "--save-weights"] {
        let out = wgtrain(&quick_args(&[opt, s(&full)]));
        assert_fails(&out, 1, s(&full));
        assert_fails(&out, 1, "No space left on device");
        assert!(is_char_device(&full));
    }
    // A plot written onto it: the error is the OS's, in words (no `ImageError(IoError(Os {…}))`).
    let plot = char_device(dir.path(), "full.png", 1, 7);
    let out = wgtrain(&["schedule", "--schedule", r#"{"kind":"step","step_size":2}"#, "--steps", "4"]);
    assert_ok(&out);
    let out =
        wgtrain(&["schedule", "--schedule", r#"{"kind":"step","step_size":2}"#, "--steps", "4", "--plot", s(&plot)]);
    assert_fails(&out, 1, "No space left on device");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Os {") && !err.contains("ImageError"), "{err}");
}

#[test]
fn plot_path_errors_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/s.png");
    let out =
        wgtrain(&["schedule", "--schedule", r#"{"kind":"step","step_size":2}"#, "--steps", "4", "--plot", s(&missing)]);
    assert_fails(&out, 2, "--plot");
    assert_fails(&out, 2, "does not exist");
    assert!(out.stdout.is_empty(), "checked before any output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Os {") && !err.contains("ImageError"), "{err}");
}

#[test]
fn symlinks_are_followed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = d.join("real.jsonl");
    std::fs::write(&real, b"old\n").unwrap();
    let link = d.join("link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // A dangling link: its target is created.
    let dangling = d.join("dangling.safetensors");
    std::os::unix::fs::symlink("target.safetensors", &dangling).unwrap();
    let out = wgtrain(&quick_args(&["--metrics", s(&link), "--save-weights", s(&dangling)]));
    assert_ok(&out);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert!(metrics_lines(&real).iter().any(|l| l["event"] == "step"), "written through the link");
    assert!(d.join("target.safetensors").is_file());
}

#[test]
fn a_link_to_stdout_writes_to_stdout() {
    // Like `--metrics /dev/stdout`, but the link lives in a temp dir (an old build would replace it).
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let out = wgtrain(&quick_args(&["--metrics", s(&link)]));
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""event":"run""#) && stdout.contains(r#""event":"step""#), "{stdout}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn a_fifo_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("metrics.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = wgtrain(&quick_args(&["--metrics", s(&fifo)]));
    assert_ok(&out);
    let ty = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(ty.is_fifo(), "the FIFO must not be replaced by a regular file");
    let text = reader.join().unwrap();
    assert!(text.lines().count() >= 3 && text.contains(r#""event":"run""#), "{text}");
}

/// The id of a process that has exited (a child that ran `true` and was reaped).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    pid
}

#[test]
fn stale_temporaries_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dead = dead_pid();
    let stale = [d.join(format!(".w.safetensors.tmp{dead}")), d.join(format!(".w.safetensors.tmp{dead}.png"))];
    // Not ours to delete: a live process's temporary, another target's, and an unrelated name.
    let kept = [
        d.join(format!(".w.safetensors.tmp{}", std::process::id())),
        d.join(format!(".other.safetensors.tmp{dead}")),
        d.join(format!(".w.safetensors.tmp{dead}x")),
    ];
    for p in stale.iter().chain(&kept) {
        std::fs::write(p, vec![0u8; 4096]).unwrap();
    }
    let w = d.join("w.safetensors");
    assert_ok(&wgtrain(&quick_args(&["--save-weights", s(&w)])));
    assert!(w.is_file());
    for p in &stale {
        assert!(!p.exists(), "{} should be removed", p.display());
    }
    for p in &kept {
        assert!(p.exists(), "{} must be kept", p.display());
    }
}

/// Two outputs that are one file however spelt (`./x` and `x`, a symlink and its target), and an output that is
/// a file the run reads (`--init`, a data file, `--config`, `--schedule @FILE`), are refused before any work, in
/// every subcommand that writes files; nothing is written or overwritten.
#[test]
fn outputs_that_are_one_file_or_an_input_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = d.join("init.safetensors");
    let out = wgtrain(&quick_args(&["--save-weights", s(&init)]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let init_bytes = std::fs::read(&init).unwrap();
    std::os::unix::fs::symlink(&init, d.join("link.safetensors")).unwrap();
    let dot = |name: &str| format!("{}/./{name}", d.display());
    let data = d.join("data");
    std::fs::create_dir(&data).unwrap();
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    let label_file = data.join("t10k-labels-idx1-ubyte.gz");
    let labels_bytes = std::fs::read(&label_file).unwrap();
    let config = d.join("run.toml");
    std::fs::write(&config, "steps = 2\n").unwrap();
    let metrics = d.join("m.jsonl");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--metrics".into(), s(&metrics).into(), "--save-weights".into(), dot("m.jsonl")], "both name"),
        (vec!["--init".into(), s(&init).into(), "--metrics".into(), dot("init.safetensors")], "which --init reads"),
        (
            vec!["--init".into(), s(&init).into(), "--save-weights".into(), s(&d.join("link.safetensors")).into()],
            "--init",
        ),
        (vec!["--data".into(), s(&data).into(), "--metrics".into(), s(&label_file).into()], "which --data reads"),
        (vec!["--config".into(), s(&config).into(), "--metrics".into(), dot("run.toml")], "which --config reads"),
    ];
    for (extra, why) in &cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = wgtrain(&quick_args(&extra));
        assert_fails(&out, 2, why);
    }
    // The other subcommands' outputs: one file under two options, and the schedule file as a plot.
    let base = ["--backend", "cpu", "--limit-train", "64", "--steps", "8", "--batch-size", "8"];
    let (csv, csv_dot) = (d.join("r.csv"), dot("r.csv"));
    let lr_find = [&["lr-find"][..], &base, &["--csv", s(&csv), "--json", &csv_dot]].concat();
    assert_fails(&wgtrain(&lr_find), 2, "--csv and --json both name");
    let grid = r#"{"lr": [0.1]}"#;
    let sweep = [&["sweep", "--grid", grid][..], &base, &["--json", s(&csv), "--csv", &csv_dot]].concat();
    assert_fails(&wgtrain(&sweep), 2, "--json and --csv both name");
    let sched = d.join("s.svg");
    std::fs::write(&sched, r#"{"kind":"step","step_size":2}"#).unwrap();
    let (at, sched_dot) = (format!("@{}", s(&sched)), dot("s.svg"));
    let out = wgtrain(&["schedule", "--schedule", &at, "--steps", "5", "--plot", &sched_dot]);
    assert_fails(&out, 2, "which --schedule reads");
    // Nothing was touched.
    assert_eq!(std::fs::read(&init).unwrap(), init_bytes);
    assert_eq!(std::fs::read(&label_file).unwrap(), labels_bytes);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "steps = 2\n");
    assert!(!metrics.exists() && !csv.exists());
}
