//! Property tests: bounds, periodicity of warm restarts (and of cosine annealing / cyclic), monotone decay
//! where the kind is monotone, and save/resume at a random step k giving bit-identical continuations for
//! every kind (reduce_lr_on_plateau included).

use proptest::prelude::*;
use serde_json::{Value, json};
use wgtrain::schedule::{ScheduleConfig, Scheduler, SchedulerState, sequence};

fn cfg(v: &Value) -> ScheduleConfig {
    ScheduleConfig::from_value(v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn lrs(v: &Value, lr: f64, steps: usize) -> Vec<f64> {
    sequence(&cfg(v), lr, 0.9, steps, None).unwrap_or_else(|e| panic!("{v}: {e}")).into_iter().map(|r| r.0).collect()
}

/// `a ≤ b` up to rounding in the last bits.
fn le(a: f64, b: f64) -> bool {
    a <= b + 1e-12 * a.abs().max(b.abs())
}

fn nonincreasing(v: &[f64]) -> bool {
    v.windows(2).all(|w| le(w[1], w[0]))
}

fn nondecreasing(v: &[f64]) -> bool {
    v.windows(2).all(|w| le(w[0], w[1]))
}

// ---- generators: one per kind, in wgtrain's JSON format ----

fn simple_kind() -> BoxedStrategy<Value> {
    prop_oneof![
        (1i64..20, 0.05f64..1.0).prop_map(|(s, g)| json!({"kind":"step","step_size":s,"gamma":g})),
        (prop::collection::vec(0i64..80, 0..6), 0.05f64..1.0)
            .prop_map(|(m, g)| json!({"kind":"multi_step","milestones":m,"gamma":g})),
        (0.8f64..1.0).prop_map(|g| json!({"kind":"exponential","gamma":g})),
        (0.05f64..1.0, 0i64..20).prop_map(|(f, t)| json!({"kind":"constant","factor":f,"total_iters":t})),
        (0.05f64..1.0, 0.0f64..1.0, 0i64..30)
            .prop_map(|(s, e, t)| json!({"kind":"linear","start_factor":s,"end_factor":e,"total_iters":t})),
        (0i64..50, 0.1f64..3.0).prop_map(|(t, p)| json!({"kind":"polynomial","total_iters":t,"power":p})),
        (0.9f64..1.0).prop_map(|f| json!({"kind":"multiplicative","factor":f})),
        (1i64..60, 0.0f64..0.01).prop_map(|(t, e)| json!({"kind":"cosine_annealing","t_max":t,"eta_min":e})),
        (1i64..20, 1i64..4, 0.0f64..0.01)
            .prop_map(|(t, m, e)| json!({"kind":"cosine_annealing_warm_restarts","t_0":t,"t_mult":m,"eta_min":e})),
        cyclic(),
        (0i64..20, 20i64..200, 0.2f64..2.0).prop_map(
            |(w, n, c)| json!({"kind":"cosine_with_warmup","num_warmup_steps":w,"num_training_steps":n,"num_cycles":c})
        ),
        (0i64..20, prop::option::of(1i64..50))
            .prop_map(|(w, t)| json!({"kind":"inverse_sqrt","num_warmup_steps":w,"timescale":t})),
        (0.5f64..5.0, 1i64..50, 1i64..1024)
            .prop_map(|(f, w, d)| json!({"kind":"noam","factor":f,"warmup_steps":w,"model_size":d})),
        wcd().prop_map(|mut c| {
            c["kind"] = json!("warmup_cosine_decay");
            c
        }),
        prop::collection::vec(wcd(), 1..4).prop_map(|c| json!({"kind":"sgdr","cycles":c})),
    ]
    .boxed()
}

fn cyclic() -> impl Strategy<Value = Value> {
    (0.001f64..0.01, 0.01f64..1.0, 1i64..20, prop::option::of(1i64..20), 0usize..3, 0.9f64..1.0, any::<bool>())
        .prop_map(|(b, m, up, down, mode, g, cm)| {
            let mode = ["triangular", "triangular2", "exp_range"][mode];
            json!({"kind":"cyclic","base_lr":b,"max_lr":m,"step_size_up":up,"step_size_down":down,
                   "mode":mode,"gamma":g,"cycle_momentum":cm})
        })
}

fn wcd() -> impl Strategy<Value = Value> {
    (0.0f64..1.0, 0.1f64..2.0, 0i64..10, 1i64..40, 0.0f64..0.1, 0.5f64..3.0).prop_map(|(i, p, w, d, e, x)| {
        json!({"init_value":i,"peak_value":p,"warmup_steps":w,"decay_steps":w + d,"end_value":e,"exponent":x})
    })
}

/// A one_cycle config and a number of steps it can serve.
fn one_cycle() -> impl Strategy<Value = (Value, usize)> {
    (0.01f64..1.0, 10i64..300, 0.1f64..0.9, any::<bool>(), any::<bool>(), 5.0f64..50.0, 10.0f64..1e4, any::<bool>())
        .prop_flat_map(|(m, t, p, lin, three, d, f, cm)| {
            let c = json!({"kind":"one_cycle","max_lr":m,"total_steps":t,"pct_start":p,
                           "anneal_strategy": if lin {"linear"} else {"cos"},"three_phase":three,
                           "div_factor":d,"final_div_factor":f,"cycle_momentum":cm});
            (Just(c), 1..=t as usize)
        })
}

fn plateau() -> impl Strategy<Value = Value> {
    (any::<bool>(), 0.1f64..0.9, 0i64..5, 0.0f64..0.1, any::<bool>(), 0i64..3, 0.0f64..0.01, 0.0f64..1e-3).prop_map(
        |(max, f, p, th, abs, cd, min_lr, eps)| {
            json!({"kind":"reduce_lr_on_plateau","mode": if max {"max"} else {"min"},"factor":f,"patience":p,
                   "threshold":th,"threshold_mode": if abs {"abs"} else {"rel"},"cooldown":cd,"min_lr":min_lr,"eps":eps})
        },
    )
}

/// Any kind with a run length it can serve, and metrics for plateau.
fn any_kind() -> impl Strategy<Value = (Value, usize, Vec<f64>)> {
    let metrics = prop::collection::vec(-2.0f64..2.0, 300);
    prop_oneof![
        (simple_kind(), 1usize..300),
        one_cycle(),
        (plateau(), 1usize..300),
        (simple_kind(), simple_kind(), 0i64..60, 1usize..300)
            .prop_map(|(a, b, m, n)| (json!({"kind":"sequential","schedulers":[a, b],"milestones":[m]}), n)),
        (simple_kind(), simple_kind(), 1usize..300)
            .prop_map(|(a, b, n)| (json!({"kind":"chained","schedulers":[a, b]}), n)),
    ]
    .prop_flat_map(move |(c, n)| (Just(c), Just(n), metrics.clone()))
}

/// Drive `s` for `steps` steps from where it is, recording (lr, momentum) bits.
fn run(s: &mut Scheduler, from: usize, to: usize, metrics: &[f64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &m in &metrics[from..to] {
        out.push((s.lr().to_bits(), s.momentum().to_bits()));
        if s.needs_metric() {
            s.step_metric(m).unwrap();
        } else {
            s.step().unwrap();
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn resume_from_saved_state_is_bit_identical((v, n, metrics) in any_kind(), k_frac in 0.0f64..=1.0, lr in 0.001f64..1.0) {
        let c = cfg(&v);
        let Ok(fresh) = Scheduler::new(&c, lr, 0.9) else { return Ok(()) };
        prop_assume!(fresh.check_run(n).is_ok());
        let k = ((n as f64) * k_frac) as usize;
        let whole = run(&mut fresh.clone(), 0, n, &metrics);
        let mut first = fresh.clone();
        let mut resumed = run(&mut first, 0, k, &metrics);
        // Through JSON, as a checkpoint would store it.
        let text = serde_json::to_string(&first.state()).unwrap();
        let state: SchedulerState = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&state, &first.state());
        let mut second = Scheduler::restore(&c, lr, 0.9, &state).unwrap();
        resumed.extend(run(&mut second, k, n, &metrics));
        prop_assert_eq!(whole, resumed, "{} resumed at {} of {}", v, k, n);
    }

    #[test]
    fn cosine_annealing_stays_within_eta_min_and_base_and_is_periodic(t_max in 1i64..60, eta in 0.0f64..0.05, b in 0.05f64..1.0) {
        let v = lrs(&json!({"kind":"cosine_annealing","t_max":t_max,"eta_min":eta}), b, 4 * t_max as usize + 1);
        prop_assert!(v.iter().all(|&x| le(eta, x) && le(x, b)), "{:?}", v);
        prop_assert!(nonincreasing(&v[..=t_max as usize]));
        prop_assert!(nondecreasing(&v[t_max as usize..=2 * t_max as usize]));
        let p = 2 * t_max as usize;
        for t in 0..v.len() - p {
            prop_assert!((v[t] - v[t + p]).abs() <= 1e-12 * b, "period 2·t_max at {}: {} vs {}", t, v[t], v[t + p]);
        }
    }

    #[test]
    fn warm_restarts_are_bounded_and_restart_on_schedule(t0 in 1i64..15, m in 1i64..4, eta in 0.0f64..0.05, b in 0.05f64..1.0) {
        let n = 200usize;
        let v = lrs(&json!({"kind":"cosine_annealing_warm_restarts","t_0":t0,"t_mult":m,"eta_min":eta}), b, n);
        prop_assert!(v.iter().all(|&x| le(eta, x) && le(x, b)));
        // Restarts at T_0, T_0(1+m), T_0(1+m+m²), …: the lr is back at its value at 0 and each cycle has
        // the same shape as the first, stretched by m^i.
        let (mut start, mut len) = (0usize, t0 as usize);
        while start + len < n {
            for j in 0..len.min(n - start) {
                let restart = start + len;
                prop_assert_eq!(v[restart].to_bits(), v[0].to_bits(), "restart at {}", restart);
                if m == 1 {
                    prop_assert_eq!(v[start + j].to_bits(), v[j].to_bits(), "period T_0 at {}", start + j);
                }
            }
            prop_assert!(nonincreasing(&v[start..start + len]));
            start += len;
            len *= m as usize;
        }
    }

    #[test]
    fn cyclic_stays_between_bounds_and_is_periodic(c in cyclic(), b in 0.01f64..1.0) {
        let s = sequence(&cfg(&c), b, 0.9, 120, None).unwrap();
        let (lo, hi) = (c["base_lr"].as_f64().unwrap(), c["max_lr"].as_f64().unwrap());
        prop_assert!(s.iter().all(|r| le(lo, r.0) && le(r.0, hi)), "{:?}", s);
        if c["cycle_momentum"] == true {
            prop_assert!(s.iter().all(|r| le(0.8, r.1) && le(r.1, 0.9)));
        }
        if c["mode"] == "triangular" {
            let up = c["step_size_up"].as_i64().unwrap();
            let l = (up + c["step_size_down"].as_i64().unwrap_or(up)) as usize;
            for t in 0..s.len().saturating_sub(l) {
                prop_assert!((s[t].0 - s[t + l].0).abs() <= 1e-12 * hi);
            }
        }
    }

    #[test]
    fn one_cycle_rises_then_falls_within_its_bounds((c, n) in one_cycle()) {
        let Ok(s) = Scheduler::new(&cfg(&c), 0.1, 0.9) else { return Ok(()) };
        prop_assume!(s.check_run(n).is_ok());
        let r = sequence(&cfg(&c), 0.1, 0.9, n, None).unwrap();
        let max = c["max_lr"].as_f64().unwrap();
        let init = max / c["div_factor"].as_f64().unwrap();
        let min = init / c["final_div_factor"].as_f64().unwrap();
        // Interpolating (to − from)·pct + from rounds to a few ulps of max_lr, not of min_lr (PyTorch computes
        // the same expression), so the lower bound allows 4ε·max_lr below min_lr.
        let slack = 4.0 * f64::EPSILON * max;
        prop_assert!(r.iter().all(|x| min - slack <= x.0 && le(x.0, max)), "{:?}", r);
        if c["cycle_momentum"] == true {
            prop_assert!(r.iter().all(|x| le(0.85, x.1) && le(x.1, 0.95)));
        }
        if c["three_phase"] == false {
            let v: Vec<f64> = r.iter().map(|x| x.0).collect();
            let peak = v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best });
            prop_assert!(nondecreasing(&v[..=peak]) && nonincreasing(&v[peak..]));
        }
    }

    #[test]
    fn decaying_kinds_are_monotone_and_bounded(v in prop_oneof![
        (1i64..20, 0.05f64..1.0).prop_map(|(s, g)| json!({"kind":"step","step_size":s,"gamma":g})),
        (prop::collection::vec(0i64..80, 0..6), 0.05f64..1.0).prop_map(|(m, g)| json!({"kind":"multi_step","milestones":m,"gamma":g})),
        (0.5f64..1.0).prop_map(|g| json!({"kind":"exponential","gamma":g})),
        (0i64..50, 0.1f64..3.0).prop_map(|(t, p)| json!({"kind":"polynomial","total_iters":t,"power":p})),
        (0.5f64..1.0, 0.0f64..0.5, 0i64..30).prop_map(|(s, e, t)| json!({"kind":"linear","start_factor":s,"end_factor":e,"total_iters":t})),
        (0.5f64..1.0).prop_map(|f| json!({"kind":"multiplicative","factor":f})),
    ], b in 0.001f64..1.0) {
        let x = lrs(&v, b, 150);
        prop_assert!(nonincreasing(&x), "{} {:?}", v, x);
        prop_assert!(x.iter().all(|&y| le(0.0, y) && le(y, b)));
    }

    #[test]
    fn warmups_rise_then_decay_within_bounds(w in 1i64..30, b in 0.001f64..1.0, d in 1i64..512) {
        let x = lrs(&json!({"kind":"linear","start_factor":0.01,"total_iters":w}), b, 60);
        prop_assert!(nondecreasing(&x) && x.iter().all(|&y| le(y, b)));
        let x = lrs(&json!({"kind":"inverse_sqrt","num_warmup_steps":w}), b, 100);
        prop_assert!(nondecreasing(&x[..=w as usize]) && nonincreasing(&x[w as usize..]));
        prop_assert!(x.iter().all(|&y| le(0.0, y) && le(y, b)));
        let x = lrs(&json!({"kind":"noam","factor":1.0,"warmup_steps":w,"model_size":d}), b, 100);
        let peak = b / ((d * w) as f64).sqrt();
        prop_assert!(nondecreasing(&x[..w as usize]) && nonincreasing(&x[w as usize - 1..]));
        prop_assert!(x.iter().all(|&y| le(0.0, y) && le(y, peak)));
        let x = lrs(&json!({"kind":"cosine_with_warmup","num_warmup_steps":w,"num_training_steps":w + 40}), b, (w + 41) as usize);
        prop_assert!(nondecreasing(&x[..=w as usize]) && nonincreasing(&x[w as usize..]));
        prop_assert!(x.iter().all(|&y| le(0.0, y) && le(y, b)));
    }

    #[test]
    fn plateau_only_decays_and_respects_min_lr(c in plateau(), metrics in prop::collection::vec(-2.0f64..2.0, 1..200), b in 0.01f64..1.0) {
        let min_lr = c["min_lr"].as_f64().unwrap();
        let r = sequence(&cfg(&c), b, 0.9, metrics.len(), Some(&metrics)).unwrap();
        let x: Vec<f64> = r.iter().map(|y| y.0).collect();
        prop_assert!(nonincreasing(&x));
        prop_assert!(x.iter().all(|&y| le(min_lr.min(b), y) && le(y, b)));
    }
}
