//! PyTorch goldens (tests/fixtures/lr, copied from shared/goldens/lr; see torch_lr_goldens.py and
//! to_canonical.py there): every config of battery.json through [`sequence`] at ≤ 1e-9 relative error (and
//! bit for bit where PyTorch's recursions are followed), error configs rejected up front naming the field;
//! and the richer source battery (several param groups, Adam's beta1, closures, fractional epochs) through
//! the lower-level API.

use std::collections::BTreeMap;

use serde_json::Value;
use wgtrain::Error;
use wgtrain::schedule::{
    ChainedLr, Factor, Group, LambdaLr, LrScheduler, MultiplicativeLr, ScheduleConfig, Scheduler, sequence,
    sequence_groups,
};
use wgtrain::tolerance::Tolerance;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lr");
/// The goldens' SGD momentum (torch_lr_goldens.py builds `SGD(momentum=0.9)`).
const SGD_MOMENTUM: f64 = 0.9;
const TOL: Tolerance = Tolerance::new(0.0, 1e-9);

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIX}/{name}")).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// How many values agree bit for bit (the fixtures hold Python's shortest round-trip reprs, and serde_json
/// parses them exactly with its `float_roundtrip` feature).
fn exact(a: &[f64], b: &[f64]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.to_bits() == y.to_bits()).count()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// The field each error config must be rejected for.
fn expected_field(name: &str) -> &'static str {
    match name {
        "step_size_zero_error" => "step_size",
        "constant_factor_zero_error" | "constant_invalid_factor" => "factor",
        "linear_invalid_start" => "start_factor",
        "onecycle_overrun_error" => "total_steps",
        "onecycle_zero_width_phase_error" => "pct_start",
        other => panic!("no expected field for error config {other}"),
    }
}

#[test]
fn battery_matches_pytorch_for_all_50_configs() {
    let battery = load("battery.json");
    let goldens = load("goldens.json");
    let battery = battery.as_array().expect("list");
    assert_eq!(battery.len(), 50, "the battery has 50 configs");
    let (mut values, mut bit_exact, mut errors) = (0usize, 0usize, 0usize);
    for c in battery {
        let name = c["name"].as_str().expect("name");
        let cfg = ScheduleConfig::from_value(&c["schedule"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let lr = c["lr"].as_f64().expect("lr");
        let steps = c["steps"].as_u64().expect("steps") as usize;
        let metrics = c.get("metrics").map(floats);
        let g = &goldens[name];
        let got = sequence(&cfg, lr, SGD_MOMENTUM, steps, metrics.as_deref());
        if let Some(err) = g.get("error") {
            let field = expected_field(name);
            match got {
                Err(Error::Schedule(msg)) => assert!(
                    msg.contains(field),
                    "{name}: PyTorch raises {err}; our message should name `{field}`: {msg}"
                ),
                other => panic!("{name}: PyTorch raises {err}, we gave {other:?}"),
            }
            errors += 1;
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_lr = floats(&g["lr"]);
        let lrs: Vec<f64> = got.iter().map(|r| r.0).collect();
        TOL.assert(&format!("{name} lr"), &lrs, &want_lr);
        values += lrs.len();
        bit_exact += exact(&lrs, &want_lr);
        if let Some(m) = g.get("momentum") {
            let moms: Vec<f64> = got.iter().map(|r| r.1).collect();
            let want = floats(m);
            TOL.assert(&format!("{name} momentum"), &moms, &want);
            bit_exact += exact(&moms, &want);
            values += moms.len();
        }
    }
    eprintln!("battery: {values} values ({bit_exact} bit-exact), {errors} error configs rejected");
    assert_eq!(errors, 6);
    assert_eq!(bit_exact, values, "PyTorch's recursions reproduce every golden bit for bit");
}

// ---- the source battery through the lower-level API ----

fn lambda_fn(spec: &Value) -> Factor {
    let f = |k: &str| spec[k].as_f64().expect("lambda parameter");
    match spec["fn"].as_str().expect("fn") {
        "exp" => {
            let g = f("gamma");
            Factor::from_fn(move |t| g.powf(t as f64))
        }
        "const" => {
            let v = f("value");
            Factor::from_fn(move |_| v)
        }
        // Python `epoch // every` on ints, then float(): 0 for the first `every` steps.
        "step_div" => {
            let e = spec["every"].as_i64().expect("every");
            Factor::from_fn(move |t| t.div_euclid(e) as f64)
        }
        other => panic!("unknown lambda fn {other}"),
    }
}

fn lambdas(c: &Value) -> Vec<Factor> {
    match &c["lr_lambda"] {
        Value::Array(v) => v.iter().map(lambda_fn).collect(),
        spec => vec![lambda_fn(spec)],
    }
}

/// A source-battery config (PyTorch names) in wgtrain's JSON format, keeping per-group lists.
fn canonical(c: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in c.as_object().expect("object") {
        let key = match k.as_str() {
            "name" | "tier" | "catches" | "steps" | "base_lrs" | "metrics" | "version_sensitive" | "optimizer"
            | "step_epochs" | "note" => continue,
            "T_max" => "t_max",
            "T_0" => "t_0",
            "T_mult" => "t_mult",
            "cosine_kwargs" => "cycles",
            "kind" => {
                let kind = v.as_str().expect("kind");
                let kind = match kind {
                    "hf_cosine_with_warmup" => "cosine_with_warmup",
                    "hf_inverse_sqrt" => "inverse_sqrt",
                    "optax_warmup_cosine_decay" => "warmup_cosine_decay",
                    "optax_sgdr" => "sgdr",
                    k => k,
                };
                out.insert("kind".into(), kind.into());
                continue;
            }
            "schedulers" => {
                out.insert(
                    "schedulers".into(),
                    Value::Array(v.as_array().expect("list").iter().map(canonical).collect()),
                );
                continue;
            }
            k => k,
        };
        out.insert(key.into(), v.clone());
    }
    Value::Object(out)
}

fn build(c: &Value, groups: &mut [Group]) -> LrScheduler {
    match c["kind"].as_str().expect("kind") {
        "lambda" => LrScheduler::Lambda(LambdaLr::new(groups, lambdas(c)).expect("lambda")),
        "multiplicative" => {
            LrScheduler::Multiplicative(MultiplicativeLr::new(groups, lambdas(c)).expect("multiplicative"))
        }
        "chained" => {
            let children = c["schedulers"].as_array().expect("list").iter().map(|s| build(s, groups)).collect();
            LrScheduler::Chained(ChainedLr::new(groups, children).expect("chained"))
        }
        _ => {
            let cfg = ScheduleConfig::from_value(&canonical(c)).unwrap_or_else(|e| panic!("{}: {e}", c["name"]));
            LrScheduler::build(&cfg, groups).unwrap_or_else(|e| panic!("{}: {e}", c["name"]))
        }
    }
}

#[test]
fn source_battery_groups_adam_lambdas_and_epochs_match_pytorch() {
    let battery = load("source_battery.json");
    let results = load("source_goldens.json");
    let gold: BTreeMap<&str, &Value> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["name"].as_str().expect("name"), r))
        .collect();
    let (mut checked, mut values, mut bit_exact) = (0, 0, 0);
    for c in battery.as_array().expect("list") {
        let name = c["name"].as_str().expect("name");
        let g = gold[name];
        // Not a wgtrain kind (fairseq) or version-sensitive in PyTorch (schedules.md §2.14); errors are
        // covered by the canonical battery.
        if c["kind"] == "fairseq_inverse_sqrt" || g.get("error").is_some() {
            continue;
        }
        let adam = c.get("optimizer").and_then(Value::as_str) == Some("adam");
        let mut groups: Vec<Group> = floats(&c["base_lrs"])
            .into_iter()
            .map(|lr| if adam { Group::adam(lr, (0.9, 0.999)) } else { Group::sgd(lr, SGD_MOMENTUM) })
            .collect();
        let sched = build(c, &mut groups);
        let steps = c["steps"].as_u64().expect("steps") as usize;
        let rows: Vec<Vec<Group>> = if let Some(epochs) = c.get("step_epochs") {
            // CosineAnnealingWarmRestarts driven by step(epoch) (null = plain step()).
            let mut s = sched;
            let mut rows = Vec::new();
            for e in epochs.as_array().expect("list") {
                rows.push(groups.clone());
                match e.as_f64() {
                    Some(e) => s.step_epoch(&mut groups, e).expect("step_epoch"),
                    None => s.step(&mut groups).expect("step"),
                }
            }
            rows
        } else {
            let metrics = c.get("metrics").map(floats);
            let s = Scheduler::from_parts(groups, sched).expect("scheduler");
            sequence_groups(s, steps, metrics.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let want = g["lrs"].as_array().expect("lrs");
        assert_eq!(rows.len(), want.len(), "{name}: number of steps");
        let n_groups = rows[0].len();
        for i in 0..n_groups {
            let got: Vec<f64> = rows.iter().map(|r| r[i].lr).collect();
            let exp: Vec<f64> = want.iter().map(|r| r[i].as_f64().expect("lr")).collect();
            TOL.assert(&format!("{name} group {i} lr"), &got, &exp);
            values += got.len();
            bit_exact += exact(&got, &exp);
            if let Some(m) = g.get("momentum") {
                let got: Vec<f64> = rows.iter().map(|r| r[i].momentum_value()).collect();
                let exp: Vec<f64> = m.as_array().expect("momentum").iter().map(|r| r[i].as_f64().expect("m")).collect();
                TOL.assert(&format!("{name} group {i} momentum"), &got, &exp);
                values += got.len();
                bit_exact += exact(&got, &exp);
            }
        }
        checked += 1;
    }
    eprintln!("source battery: {checked} configs, {values} values ({bit_exact} bit-exact)");
    assert!(checked >= 50, "only {checked} source configs checked");
    assert_eq!(bit_exact, values, "every value bit for bit");
}

/// Where PyTorch raises, we raise at the same `step()` call, and `check_run` rejects exactly the runs that
/// reach it (a run of N steps makes N `step()` calls).
#[test]
fn errors_are_raised_at_pytorchs_step_and_caught_by_check_run() {
    let battery = load("source_battery.json");
    let results = load("source_goldens.json");
    let gold: BTreeMap<&str, &Value> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["name"].as_str().expect("name"), r))
        .collect();
    let mut checked = 0;
    for c in battery.as_array().expect("list") {
        let name = c["name"].as_str().expect("name");
        let Some(err) = gold[name].get("error") else { continue };
        let cfg = ScheduleConfig::from_value(&canonical(c)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let groups: Vec<Group> = floats(&c["base_lrs"]).into_iter().map(|lr| Group::sgd(lr, SGD_MOMENTUM)).collect();
        let built = Scheduler::with_groups(&cfg, groups);
        if err["phase"] == "construct" {
            assert!(
                matches!(built, Err(Error::Schedule(_))),
                "{name}: PyTorch raises at construction, we built {built:?}"
            );
        } else {
            let s = built.unwrap_or_else(|e| panic!("{name}: PyTorch constructs, we gave {e}"));
            let call = err["scheduler_step_call"].as_u64().expect("call") as usize;
            s.check_run(call - 1).unwrap_or_else(|e| panic!("{name}: {} steps are fine in PyTorch: {e}", call - 1));
            assert!(s.check_run(call).is_err(), "{name}: check_run({call}) must fail");
            let mut run = s.clone();
            for k in 1..call {
                run.step().unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
            }
            assert!(run.step().is_err(), "{name}: step() call {call} must fail as in PyTorch");
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}
