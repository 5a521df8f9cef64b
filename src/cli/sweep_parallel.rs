//! `sweep --parallel P`: the trials are grouped so that the members of a group see the same batches (they agree
//! on every option except those that only enter the optimizer's update, its schedule or early stopping), and
//! each group trains in chunks of up to P members as one population (`crate::train::population`). Every
//! member's result is what its trial trained alone gives, so the report is the one `--parallel 1` prints.

use std::time::Instant;

use serde_json::{Map, Value};

use super::sweep::{DIVERGE_FACTOR, Trial, progress_line, trial_of};
use crate::backend::Backend;
use crate::cli::train::{RunArgs, prepare};
use crate::train::population::{MemberSpec, Population, footprint, member_cap, train_population};
use crate::{Error, Result};

/// Options that only enter a member's optimizer update, scheduler or early-stopping rule: trials that differ in
/// nothing else share every batch. The optimizer kind and amsgrad stay out: they change the state a member keeps;
/// so do parameter groups: the update reads one parameter→group table for every member.
const MEMBER_OPTIONS: [&str; 13] = [
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "nesterov",
    "betas",
    "eps",
    "clip_grad_norm",
    "clip_grad_value",
    "schedule",
    "early_stop_patience",
    "early_stop_min_delta",
    "restore_best",
];

/// Trial indices grouped by everything but [`MEMBER_OPTIONS`], groups in order of their first trial, trials in
/// spec order within a group.
pub(crate) fn group_trials(args: &[RunArgs]) -> Result<Vec<Vec<usize>>> {
    let mut groups: Vec<(Value, Vec<usize>)> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let mut key = serde_json::to_value(a).map_err(|e| Error::Usage(e.to_string()))?;
        if let Some(map) = key.as_object_mut() {
            for name in MEMBER_OPTIONS {
                map.remove(name);
            }
        }
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// Train every trial (`configs[i]` swept values, `args[i]` its options), up to `p` at once; trials in spec order.
pub(crate) fn run_all<B: Backend>(
    b: &mut B,
    configs: &[Map<String, Value>],
    args: &[RunArgs],
    p: usize,
) -> Result<Vec<Trial>> {
    let groups = group_trials(args)?;
    // The cap depends on each group's model, batch size and optimizer: check them all before any training.
    for g in &groups {
        let first = prepare(&args[g[0]])?;
        let (cap, how) =
            member_cap(footprint(&first.arch, &first.optim, first.setup.batch_size), b.max_binding_bytes());
        if p > cap {
            return Err(Error::Usage(format!("--parallel {p} is more than fits on {}: {how}", b.name())));
        }
    }
    let mut out: Vec<Option<Trial>> = vec![None; configs.len()];
    for chunk in groups.iter().flat_map(|g| g.chunks(p)) {
        let t = Instant::now();
        let mut specs = Vec::with_capacity(chunk.len());
        let mut shared = None;
        for &i in chunk {
            let prep = prepare(&args[i])?;
            specs.push(MemberSpec {
                optim: prep.optim.clone(),
                scheduler: prep.scheduler,
                early_stop: prep.setup.early_stop,
            });
            // Members agree on everything the batches and the initial weights depend on: the first one's do.
            if shared.is_none() {
                shared = Some((prep.setup, prep.arch, prep.weights));
            }
        }
        let (mut setup, arch, weights) = shared.expect("a chunk has at least one trial");
        setup.diverge_factor = Some(DIVERGE_FACTOR);
        let optims: Vec<_> = specs.iter().map(|s| s.optim.clone()).collect();
        let mut pop = Population::new(b, &arch, &weights, &optims, &setup.train, setup.batch_size)?;
        let outcomes = train_population(b, &mut pop, &setup, specs, &mut |_, _| {})?;
        // Every member trained for the whole of its population's time.
        let secs = t.elapsed().as_secs_f64();
        for (&i, o) in chunk.iter().zip(outcomes) {
            let trial = trial_of(&configs[i], &o.log, o.result)?;
            progress_line(i, configs.len(), &trial, secs);
            out[i] = Some(Trial { seconds: secs, ..trial });
        }
    }
    Ok(out.into_iter().map(|t| t.expect("every trial is in one group")).collect())
}
