//! The JSON config format (schedules.md §6) and up-front validation: every rejected config names the field
//! (and where it sits inside sequential/chained) and the allowed range; odd configs PyTorch accepts are
//! accepted and do what PyTorch does.

use wgtrain::Error;
use wgtrain::schedule::{Group, ScheduleConfig, Scheduler, sequence};

fn parse_err(json: &str) -> String {
    match ScheduleConfig::parse(json) {
        Err(Error::Schedule(m)) => m,
        other => panic!("{json}: expected a schedule error, got {other:?}"),
    }
}

/// Parses, but building it (or checking a run of `steps`) fails; the message.
fn build_err(json: &str, steps: usize) -> String {
    let cfg = ScheduleConfig::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    match Scheduler::new(&cfg, 0.1, 0.9).and_then(|s| s.check_run(steps)) {
        Err(Error::Schedule(m)) => m,
        other => panic!("{json}: expected a schedule error, got {other:?}"),
    }
}

fn lrs(json: &str, lr: f64, steps: usize) -> Vec<f64> {
    let cfg = ScheduleConfig::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    sequence(&cfg, lr, 0.0, steps, None).unwrap_or_else(|e| panic!("{json}: {e}")).into_iter().map(|r| r.0).collect()
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} should contain {p:?}");
    }
}

#[test]
fn structural_errors_name_the_kind_and_field() {
    assert_has(&parse_err(r#"{"kind":"stepp","step_size":3}"#), &["unknown kind", "stepp", "multi_step"]);
    assert_has(&parse_err(r#"{"step_size":3}"#), &["missing field `kind`"]);
    assert_has(&parse_err(r#"{"kind":"step","step_size":3,"gama":0.5}"#), &["step", "unknown field `gama`", "gamma"]);
    assert_has(&parse_err(r#"{"kind":"step"}"#), &["step", "missing field `step_size`"]);
    assert_has(&parse_err(r#"{"kind":"step","step_size":1.5}"#), &["step.step_size", "invalid type"]);
    assert_has(&parse_err(r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":"100"}"#), &["one_cycle.total_steps"]);
    assert_has(
        &parse_err(r#"{"kind":"cyclic","base_lr":0.1,"max_lr":1,"mode":"sine"}"#),
        &["cyclic.mode", "sine", "triangular2"],
    );
    assert_has(&parse_err(r#"[1,2]"#), &["JSON object"]);
    assert_has(&parse_err(r#"{"kind":"step","#), &["not valid JSON"]);
}

#[test]
fn nested_errors_say_where() {
    let m = parse_err(
        r#"{"kind":"sequential","milestones":[3],"schedulers":[{"kind":"linear"},{"kind":"cosine_annealing","tmax":6}]}"#,
    );
    assert_has(&m, &["sequential.schedulers[1]", "cosine_annealing", "unknown field `tmax`"]);
    let m = parse_err(r#"{"kind":"chained","schedulers":[{"kind":"exponential","gamma":"0.9"}]}"#);
    assert_has(&m, &["chained.schedulers[0]", "exponential.gamma"]);
    let m = build_err(
        r#"{"kind":"sequential","milestones":[3],"schedulers":[{"kind":"linear"},{"kind":"constant","factor":2}]}"#,
        1,
    );
    assert_has(&m, &["sequential.schedulers[1]", "constant.factor", "between 0 and 1", "2"]);
}

#[test]
fn values_pytorch_rejects_or_divides_by_zero_on_are_errors() {
    let cases: &[(&str, usize, &[&str])] = &[
        (r#"{"kind":"constant","factor":1.5}"#, 1, &["constant.factor", "between 0 and 1", "1.5"]),
        (r#"{"kind":"linear","start_factor":0}"#, 1, &["linear.start_factor", "greater than 0"]),
        (r#"{"kind":"linear","end_factor":-0.1}"#, 1, &["linear.end_factor"]),
        (r#"{"kind":"step","step_size":0}"#, 1, &["step.step_size", "got 0"]),
        (r#"{"kind":"constant","factor":0,"total_iters":3}"#, 3, &["constant.factor"]),
        (r#"{"kind":"cosine_annealing","t_max":0}"#, 1, &["cosine_annealing.t_max", "got 0"]),
        (r#"{"kind":"cosine_annealing_warm_restarts","t_0":0}"#, 1, &["t_0", "positive"]),
        (r#"{"kind":"cosine_annealing_warm_restarts","t_0":5,"t_mult":0}"#, 1, &["t_mult", "≥ 1"]),
        (r#"{"kind":"cyclic","base_lr":0.1,"max_lr":1,"step_size_up":0}"#, 1, &["cyclic.step_size_up", "positive"]),
        (
            r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":0}"#,
            1,
            &["one_cycle.total_steps", "positive integer", "got 0"],
        ),
        (r#"{"kind":"one_cycle","max_lr":0.1}"#, 1, &["one_cycle", "total_steps", "epochs", "steps_per_epoch"]),
        (r#"{"kind":"one_cycle","max_lr":0.1,"epochs":0,"steps_per_epoch":5}"#, 1, &["one_cycle.epochs"]),
        (
            r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"pct_start":1.5}"#,
            1,
            &["one_cycle.pct_start", "[0, 1]"],
        ),
        (
            r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"pct_start":0.1}"#,
            1,
            &["one_cycle.pct_start", "zero-width"],
        ),
        (r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"div_factor":0}"#, 1, &["one_cycle.div_factor"]),
        (
            r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10}"#,
            11,
            &["one_cycle.total_steps", "at least the number of steps"],
        ),
        // pct_start 1: the second phase has zero width, and the T-th step() enters it.
        (
            r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"pct_start":1.0}"#,
            10,
            &["one_cycle.pct_start", "zero-width"],
        ),
        (r#"{"kind":"reduce_lr_on_plateau","factor":1.0}"#, 1, &["reduce_lr_on_plateau.factor", "< 1"]),
        (
            r#"{"kind":"sequential","milestones":[],"schedulers":[{"kind":"linear"},{"kind":"exponential","gamma":0.9}]}"#,
            1,
            &["sequential.milestones", "1 for 2 schedulers", "got 0"],
        ),
        (r#"{"kind":"sequential","milestones":[],"schedulers":[]}"#, 1, &["sequential.schedulers", "at least one"]),
        (
            r#"{"kind":"chained","schedulers":[{"kind":"reduce_lr_on_plateau"}]}"#,
            1,
            &["chained.schedulers[0]", "reduce_lr_on_plateau"],
        ),
        (
            r#"{"kind":"sequential","milestones":[2],"schedulers":[{"kind":"linear"},{"kind":"step","step_size":0}]}"#,
            3,
            &["sequential.schedulers[1]", "step.step_size"],
        ),
        (r#"{"kind":"noam","factor":1,"warmup_steps":0}"#, 1, &["noam.warmup_steps", "positive"]),
        (r#"{"kind":"noam","factor":1,"model_size":0}"#, 1, &["noam.model_size", "positive"]),
        (r#"{"kind":"inverse_sqrt","num_warmup_steps":4,"timescale":0}"#, 1, &["inverse_sqrt.timescale", "positive"]),
        (
            r#"{"kind":"warmup_cosine_decay","init_value":0,"peak_value":1,"warmup_steps":5,"decay_steps":5}"#,
            1,
            &["warmup_cosine_decay.decay_steps", "greater than warmup_steps"],
        ),
        (r#"{"kind":"sgdr","cycles":[]}"#, 1, &["sgdr.cycles", "at least one"]),
        (
            r#"{"kind":"sgdr","cycles":[{"init_value":0,"peak_value":1,"warmup_steps":2,"decay_steps":5},{"init_value":0,"peak_value":1,"warmup_steps":3,"decay_steps":1}]}"#,
            1,
            &["sgdr.cycles[1].decay_steps"],
        ),
        (
            r#"{"kind":"cyclic","base_lr":[0.1,0.2],"max_lr":1}"#,
            1,
            &["cyclic.base_lr", "one number per param group", "got a list of 2"],
        ),
    ];
    for (json, steps, parts) in cases {
        assert_has(&build_err(json, *steps), parts);
    }
}

#[test]
fn runs_within_a_finite_schedule_are_accepted() {
    let cfg = ScheduleConfig::parse(r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10}"#).unwrap();
    let s = Scheduler::new(&cfg, 0.1, 0.9).unwrap();
    s.check_run(10).unwrap();
    assert!(s.check_run(11).is_err());
    // pct_start 1.0 serves T − 1 steps (the T-th step() divides by zero in PyTorch).
    let cfg = ScheduleConfig::parse(r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"pct_start":1.0}"#).unwrap();
    let s = Scheduler::new(&cfg, 0.1, 0.9).unwrap();
    s.check_run(9).unwrap();
    let mut run = s.clone();
    for _ in 0..9 {
        run.step().unwrap();
    }
    assert!(run.step().is_err(), "PyTorch raises at the 10th step()");
    // factor 0 with total_iters 3: a run of 2 steps never reaches the restore.
    let cfg = ScheduleConfig::parse(r#"{"kind":"constant","factor":0,"total_iters":3}"#).unwrap();
    Scheduler::new(&cfg, 0.1, 0.0).unwrap().check_run(2).unwrap();
}

#[test]
fn odd_configs_pytorch_accepts_do_what_pytorch_does() {
    // Unsorted, repeated milestones: a multiset.
    assert_eq!(
        lrs(r#"{"kind":"multi_step","milestones":[3,1,3],"gamma":0.5}"#, 1.0, 5),
        vec![1.0, 0.5, 0.5, 0.125, 0.125]
    );
    // gamma > 1 grows.
    assert_eq!(lrs(r#"{"kind":"exponential","gamma":2}"#, 1.0, 4), vec![1.0, 2.0, 4.0, 8.0]);
    // eta_min above the base anneals upward; nothing clamps past t_max (period 2·t_max).
    let v = lrs(r#"{"kind":"cosine_annealing","t_max":2,"eta_min":0.3}"#, 0.1, 5);
    assert!((v[2] - 0.3).abs() < 1e-15 && (v[4] - 0.1).abs() < 1e-15, "{v:?}");
    // total_iters 0: the chainable rule never restores.
    assert_eq!(lrs(r#"{"kind":"constant","factor":0.5,"total_iters":0}"#, 0.1, 3), vec![0.05; 3]);
}

#[test]
fn worked_values_of_the_spec() {
    // schedules.md §4.
    let v = lrs(r#"{"kind":"step","step_size":3,"gamma":0.1}"#, 0.1, 7);
    assert_eq!(
        v,
        vec![0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002]
    );
    let v = lrs(r#"{"kind":"cosine_annealing_warm_restarts","t_0":2,"t_mult":2}"#, 1.0, 7);
    let want = [1.0, 0.5, 1.0, 0.854, 0.5, 0.146, 1.0];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-3, "{v:?}");
    }
    let v = lrs(
        r#"{"kind":"chained","schedulers":[{"kind":"constant","factor":0.1,"total_iters":3},{"kind":"exponential","gamma":0.9}]}"#,
        1.0,
        4,
    );
    let want = [0.1, 0.09, 0.081, 0.729];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{v:?}");
    }
}

#[test]
fn config_round_trips_and_spec_examples_parse() {
    for json in [
        r#"{"kind":"step","step_size":30,"gamma":0.1}"#,
        r#"{"kind":"sequential","milestones":[500],"schedulers":[{"kind":"linear","start_factor":0.01,"total_iters":500},{"kind":"cosine_annealing","t_max":9500}]}"#,
        r#"{"kind":"reduce_lr_on_plateau","factor":0.5,"patience":2}"#,
        r#"{"kind":"cyclic","base_lr":[0.01,0.001],"max_lr":0.1,"step_size_up":3,"mode":"exp_range","gamma":0.9}"#,
        r#"{"kind":"sgdr","cycles":[{"init_value":0.0,"peak_value":1.0,"warmup_steps":2,"decay_steps":5,"end_value":0.1}]}"#,
    ] {
        let cfg = ScheduleConfig::parse(json).unwrap();
        let again = ScheduleConfig::parse(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(cfg, again, "{json}");
    }
}

#[test]
fn at_file_reads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, "{\n  \"kind\": \"exponential\",\n  \"gamma\": 0.5\n}\n").unwrap();
    let cfg = ScheduleConfig::parse(&format!("@{}", path.display())).unwrap();
    assert_eq!(cfg.kind(), "exponential");
    assert!(matches!(ScheduleConfig::parse("@/no/such/file.json"), Err(Error::Io { .. })));
}

#[test]
fn momentum_cycling_needs_momentum_or_betas_and_drives_beta1() {
    let cfg = ScheduleConfig::parse(r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10}"#).unwrap();
    let e = Scheduler::with_groups(&cfg, vec![Group::plain(0.1)]).unwrap_err();
    assert!(e.to_string().contains("one_cycle.cycle_momentum"), "{e}");
    let s = Scheduler::with_groups(&cfg, vec![Group::adam(0.1, (0.9, 0.999))]).unwrap();
    assert_eq!(s.groups()[0].betas, Some((0.95, 0.999)));
    assert!(s.cycles_momentum());
    let cfg =
        ScheduleConfig::parse(r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":10,"cycle_momentum":false}"#).unwrap();
    let s = Scheduler::with_groups(&cfg, vec![Group::plain(0.1)]).unwrap();
    assert!(!s.cycles_momentum());
}

/// Every JSON block of the PyTorch-users page parses and builds (the page cannot drift from the format).
#[test]
fn pytorch_users_page_examples_are_valid() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schedules_for_pytorch_users.md")).unwrap();
    let blocks: Vec<&str> = page.split("```json").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    for b in blocks {
        let cfg = ScheduleConfig::parse(b).unwrap_or_else(|e| panic!("{b}: {e}"));
        Scheduler::new(&cfg, 0.1, 0.9).unwrap_or_else(|e| panic!("{b}: {e}"));
    }
}
