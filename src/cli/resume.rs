//! `train`'s checkpoint options: a fresh run with `--checkpoint-dir`, or `--resume DIR` — the saved options
//! merged with the ones given again, the checkpoint checked against the run they build, its tensors and states
//! restored before the first step, the metrics file cut back to the checkpoint.

use clap::CommandFactory;
use clap::parser::ValueSource;

use crate::backend::Backend;
use crate::cli::train::{Prepared, RunArgs, prepare};
use crate::schedule::Scheduler;
use crate::train::checkpoint::{self, Checkpointer, RunInfo};
use crate::train::{LoopState, MetricsLog, Session, resume, steps_per_epoch};
use crate::{Error, Result};

/// The option ids (`batch_size`, …) given on this process's command line for `subcommand`, or by its `--config`
/// file; `--resume` refuses those that contradict the checkpoint, and only those (an option left at its default
/// is not a contradiction).
pub fn explicit_options(subcommand: &str) -> Vec<String> {
    let Ok(m) = super::Cli::command().try_get_matches_from(super::config::process_args()) else { return Vec::new() };
    let Some((name, sub)) = m.subcommand() else { return Vec::new() };
    if name != subcommand {
        return Vec::new();
    }
    sub.ids()
        .filter(|id| sub.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect()
}

/// A run ready to train: its (merged) options, the prepared setup, the session with weights and optimizer state
/// in place, the metrics log, where the loop starts, and the checkpointer.
pub struct Plan<B: Backend> {
    pub args: RunArgs,
    pub prepared: Prepared,
    pub session: Session<B>,
    pub log: MetricsLog,
    pub start: Option<LoopState>,
    pub checkpointer: Option<Checkpointer>,
}

fn to_value(args: &RunArgs) -> Result<serde_json::Value> {
    serde_json::to_value(args).map_err(|e| Error::Usage(format!("cannot serialize the options: {e}")))
}

/// Prepare a run from `args`, resuming when `--resume` is given.
pub fn begin<B: Backend>(backend: &mut B, args: &RunArgs) -> Result<Plan<B>> {
    if args.checkpoint_every.is_some() && args.checkpoint_dir.is_none() && args.resume.is_none() {
        return Err(Error::Usage("--checkpoint-every needs --checkpoint-dir".into()));
    }
    // Given without a place to keep checkpoints, it would be silently ignored.
    if args.explicit.iter().any(|o| o == "keep_checkpoints") && args.checkpoint_dir.is_none() && args.resume.is_none() {
        return Err(Error::Usage("--keep-checkpoints needs --checkpoint-dir".into()));
    }
    let (args, resumed) = match &args.resume {
        None => (args.clone(), None),
        Some(dir) => {
            let at = checkpoint::latest(dir)?;
            let state = checkpoint::read_state(&at)?;
            let merged = resume::merge_options(&state.run.options, &to_value(args)?, &args.explicit, dir)?;
            let mut merged: RunArgs = serde_json::from_value(merged).map_err(|e| {
                Error::Usage(format!("checkpoint {}: the saved options do not parse: {e}", at.display()))
            })?;
            merged.resume = Some(dir.clone());
            merged.explicit = args.explicit.clone();
            log::info!("resuming from {} at step {}", at.display(), state.step);
            (merged, Some((at, state)))
        }
    };
    let mut prepared = prepare(&args)?;
    let p = &prepared;
    let mut options = to_value(&args)?;
    resume::inline_files(&mut options)?;
    let info = RunInfo {
        options,
        model: p.spec.clone(),
        params: p.arch.params.iter().map(|q| (q.name.clone(), q.shape.clone())).collect(),
        steps_per_epoch: steps_per_epoch(p.setup.train.len(), p.setup.batch_size),
        backend: backend.name(),
    };
    let names: Vec<String> = info.params.iter().map(|(n, _)| n.clone()).collect();
    let groups = p.optim.groups(&names)?.names;
    let mut optimizer_state = None;
    if let Some((at, state)) = &resumed {
        checkpoint::check_fits(at, state, &info, &p.optim, &groups)?;
        if p.setup.steps < state.step {
            return Err(Error::Usage(format!(
                "--resume: the run of {} steps ends before the checkpoint's step {} (--steps/--epochs may only \
                 extend it)",
                p.setup.steps, state.step
            )));
        }
        if state.run.backend != info.backend {
            log::warn!(
                "resuming a checkpoint written on {} on {}: bit-identity is promised only on the same backend",
                state.run.backend,
                info.backend
            );
        }
        let tensors = checkpoint::load_tensors(at, state)?;
        prepared.weights = tensors.weights;
        let fresh = std::mem::replace(&mut prepared.scheduler, Scheduler::fixed(0.0, 0.0));
        prepared.scheduler = fresh.load(&state.scheduler)?;
        optimizer_state = Some(tensors.optimizer);
    }
    let p = &prepared;
    let mut session = Session::new(backend, &p.arch, &p.weights, &p.optim, &p.setup.train, p.setup.batch_size)?;
    let (log, start) = match (&resumed, optimizer_state) {
        (Some((_, state)), Some(values)) => {
            let o = &state.optimizer;
            session.optimizer.load_state(backend, &values, o.steps, &o.momentum_started)?;
            let kept = match &args.metrics {
                Some(path) => resume::kept_metrics(path, state.step, info.steps_per_epoch)?,
                None => String::new(),
            };
            let mut log = MetricsLog::continuing(args.metrics.clone(), kept);
            // Drop the lines a killed run wrote after the checkpoint now, not at the first readback.
            log.flush()?;
            (log, Some(state.loop_state.clone()))
        }
        _ => (MetricsLog::new(args.metrics.clone()), None),
    };
    let checkpointer = match &args.checkpoint_dir {
        Some(dir) => {
            Some(Checkpointer::new(dir, args.checkpoint_every, args.keep_checkpoints, info, resumed.is_some())?)
        }
        None => None,
    };
    Ok(Plan { args, prepared, session, log, start, checkpointer })
}
