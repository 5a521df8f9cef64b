//! Shared by the population test files: a trial's options from command-line flags, the trial trained alone
//! (`train`, as `sweep --parallel 1` runs it) and trained as a population member, and their comparison with a
//! value check the caller picks (bit equality on the CPU, a float32 tolerance on the GPU).
#![allow(dead_code)]

use clap::Parser;
use wgtrain::Error;
use wgtrain::backend::Backend;
use wgtrain::cli::sweep::DIVERGE_FACTOR;
use wgtrain::cli::train::{RunArgs, prepare};
use wgtrain::train::population::{MemberSpec, Population, train_population};
use wgtrain::train::{self, Event, MetricsLog, Session, TrainReport};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    run: RunArgs,
}

/// A trial's options: `base` then `extra`, as `wgtrain train` would parse them.
pub fn run_args(base: &[&str], extra: &[&str]) -> RunArgs {
    let argv = std::iter::once("wgtrain").chain(base.iter().copied()).chain(extra.iter().copied());
    Wrapper::try_parse_from(argv).unwrap_or_else(|e| panic!("bad test options {base:?} {extra:?}: {e}")).run
}

/// What a run produced: its step losses, validation events, and result.
pub struct Outcome {
    pub losses: Vec<f32>,
    pub vals: Vec<(f64, f64)>,
    pub result: wgtrain::Result<TrainReport>,
}

fn outcome(log: &MetricsLog, result: wgtrain::Result<TrainReport>) -> Outcome {
    let losses = log.events.iter().filter_map(|e| if let Event::Step { loss, .. } = e { Some(*loss) } else { None });
    let vals = log.events.iter().filter_map(|e| match e {
        Event::Val { val_loss, val_accuracy, .. } => Some((*val_loss, *val_accuracy)),
        _ => None,
    });
    Outcome { losses: losses.collect(), vals: vals.collect(), result }
}

/// The trial trained alone, exactly as `sweep` trains a trial with `--parallel 1`.
pub fn solo<B: Backend>(b: &mut B, args: &RunArgs) -> Outcome {
    let mut p = prepare(args).unwrap();
    p.setup.diverge_factor = Some(DIVERGE_FACTOR);
    let mut session = Session::new(b, &p.arch, &p.weights, &p.optim, &p.setup.train, p.setup.batch_size).unwrap();
    let mut log = MetricsLog::new(None);
    let result = train::train(b, &mut session, &p.setup, &mut p.scheduler, &mut log, &mut |_, _, _| {});
    outcome(&log, result)
}

/// Every trial trained at once as one population (they must differ only in member options).
pub fn population<B: Backend>(b: &mut B, args: &[RunArgs]) -> Vec<Outcome> {
    let preps: Vec<_> = args.iter().map(|a| prepare(a).unwrap()).collect();
    let mut setup = prepare(&args[0]).unwrap().setup;
    setup.diverge_factor = Some(DIVERGE_FACTOR);
    let (arch, weights) = (&preps[0].arch, &preps[0].weights);
    let optims: Vec<_> = preps.iter().map(|p| p.optim.clone()).collect();
    let mut pop = Population::new(b, arch, weights, &optims, &setup.train, setup.batch_size).unwrap();
    let specs = preps
        .iter()
        .map(|p| MemberSpec { optim: p.optim.clone(), scheduler: p.scheduler.clone(), early_stop: p.setup.early_stop })
        .collect();
    let outs = train_population(b, &mut pop, &setup, specs, &mut |_, _| {}).unwrap();
    outs.into_iter().map(|o| outcome(&o.log, o.result)).collect()
}

/// Where a run ended when it did not finish: the divergence step.
pub fn diverged_at(o: &Outcome) -> Option<usize> {
    match &o.result {
        Err(Error::NonFinite { step, .. } | Error::Diverged { step, .. }) => Some(*step),
        Err(Error::NonFiniteWeights { steps, .. }) => Some(*steps),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => None,
    }
}

/// Member `m`'s outcome against its solo run: same number of steps, the same divergence step, early stop,
/// losses, validation figures, test figures and final weights, values compared with `same(member, solo, what)`.
pub fn check_member(m: usize, member: &Outcome, alone: &Outcome, same: &dyn Fn(f64, f64, &str)) {
    assert_eq!(member.losses.len(), alone.losses.len(), "member {m}: number of steps logged");
    for (i, (&x, &y)) in member.losses.iter().zip(&alone.losses).enumerate() {
        // A diverged run's last loss may be inf or NaN: compare those by kind.
        if !y.is_finite() {
            assert_eq!((x.is_nan(), x.is_infinite()), (y.is_nan(), y.is_infinite()), "member {m} loss {i}");
        } else {
            same(x as f64, y as f64, &format!("member {m} loss at step {i}"));
        }
    }
    assert_eq!(member.vals.len(), alone.vals.len(), "member {m}: validation events");
    for (i, (x, y)) in member.vals.iter().zip(&alone.vals).enumerate() {
        same(x.0, y.0, &format!("member {m} val loss {i}"));
        same(x.1, y.1, &format!("member {m} val accuracy {i}"));
    }
    assert_eq!(diverged_at(member), diverged_at(alone), "member {m}: divergence step");
    if let (Ok(r), Ok(s)) = (&member.result, &alone.result) {
        assert_eq!((r.steps, r.stopped_after_epoch, r.best_epoch), (s.steps, s.stopped_after_epoch, s.best_epoch));
        same(r.final_loss as f64, s.final_loss as f64, &format!("member {m} final loss"));
        assert_eq!(r.test.is_some(), s.test.is_some());
        if let (Some(x), Some(y)) = (r.test, s.test) {
            same(x.0, y.0, &format!("member {m} test loss"));
            same(x.1, y.1, &format!("member {m} test accuracy"));
        }
        assert_eq!(r.weights.len(), s.weights.len());
        for (t, (w, v)) in r.weights.iter().zip(&s.weights).enumerate() {
            assert_eq!(w.len(), v.len());
            for (i, (&x, &y)) in w.iter().zip(v).enumerate() {
                same(x as f64, y as f64, &format!("member {m} weight {t}[{i}]"));
            }
        }
    }
}
