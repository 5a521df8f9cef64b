//! The training loop: it owns the step. Per step, in the order data flows: gather → forward → loss → backward →
//! gradient norm → clipping and update (lr per group from the scheduler) → scheduler → metrics.
//!
//! The scheduler runs on the host and hands each step its per-group lr and momentum through the optimizer's
//! uniform; losses and gradient norms stay on the backend in rings of [`LOSS_RING`] slots and are read back in
//! bulk, so a GPU step never waits.

pub mod checkpoint;
pub mod early_stop;
pub mod metrics;
pub mod plot;
pub mod population;
pub mod resume;
pub mod step;

use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::nn::Model;
use crate::nn::model::Activations;
use crate::schedule::Scheduler;
use crate::{Error, Result};
pub use checkpoint::Checkpointer;
pub use early_stop::{EarlyStop, EarlyStopState, Verdict};
pub use metrics::{Event, MetricsLog};
pub use resume::{LoopState, Shuffler, shuffle_seed};
pub use step::{DeviceData, DeviceImages, HostSplit, Images, LOSS_RING, Session};

/// Images per evaluation batch (any remainder runs as one smaller batch).
pub const EVAL_BATCH: usize = 500;

/// What to train on and how.
pub struct TrainSetup {
    pub train: HostSplit,
    pub val: Option<HostSplit>,
    pub test: Option<HostSplit>,
    pub batch_size: usize,
    pub steps: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// Wait for each step and time it (for `compare`); normal training never waits inside an epoch.
    pub sync_each_step: bool,
    pub early_stop: Option<EarlyStop>,
    /// Stop with [`Error::Diverged`] at the first step whose loss exceeds this many times the first step's
    /// (sweeps use it: an exploding trial is over long before its loss overflows to infinity).
    pub diverge_factor: Option<f64>,
}

/// Where the run ended.
pub struct TrainReport {
    pub steps: usize,
    pub final_loss: f32,
    pub test: Option<(f64, f64)>,
    pub train_time: Duration,
    pub images_per_s: f64,
    pub weights: Vec<Vec<f32>>,
    /// Wall time of each step including its readback, when `sync_each_step` was set.
    pub step_ms: Vec<f64>,
    /// Early stopping: the epoch after which the rule stopped the run, and the best epoch.
    pub stopped_after_epoch: Option<usize>,
    pub best_epoch: Option<usize>,
}

/// Progress callback: (steps done, total steps, last known loss).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, Option<f32>);

/// Steps per epoch: the last partial batch is dropped.
pub fn steps_per_epoch(train_len: usize, batch: usize) -> usize {
    train_len / batch.max(1)
}

/// Steps per epoch of `setup`, refusing a batch size of 0 or one larger than the training split.
pub(crate) fn checked_steps_per_epoch(setup: &TrainSetup) -> Result<usize> {
    let bs = setup.batch_size;
    let spe = steps_per_epoch(setup.train.len(), bs);
    if bs == 0 || spe == 0 {
        return Err(Error::Usage(format!(
            "batch size {bs} must be between 1 and the number of training images ({})",
            setup.train.len()
        )));
    }
    Ok(spe)
}

/// Train the session's model on `backend`. `scheduler` is already built on the optimizer's groups (step 0
/// done); metrics go to `log`.
pub fn train<B: Backend>(
    backend: &mut B,
    session: &mut Session<B>,
    setup: &TrainSetup,
    scheduler: &mut Scheduler,
    log: &mut MetricsLog,
    progress: Progress,
) -> Result<TrainReport> {
    train_from(backend, session, setup, scheduler, log, progress, None, None)
}

/// [`train`], continuing from a checkpoint's loop state `start` (the session's weights and optimizer state and
/// the scheduler already restored) and saving checkpoints with `ckpt`.
#[allow(clippy::too_many_arguments)]
pub fn train_from<B: Backend>(
    backend: &mut B,
    session: &mut Session<B>,
    setup: &TrainSetup,
    scheduler: &mut Scheduler,
    log: &mut MetricsLog,
    progress: Progress,
    start: Option<&LoopState>,
    mut ckpt: Option<&mut Checkpointer>,
) -> Result<TrainReport> {
    let bs = setup.batch_size;
    let spe = checked_steps_per_epoch(setup)?;
    let first = start.map_or(0, |s| s.step);
    if first > setup.steps {
        return Err(Error::Usage(format!(
            "the run of {} steps ends before the checkpoint's step {first}",
            setup.steps
        )));
    }
    scheduler.check_run(setup.steps - first)?;
    let model = &session.model;
    let mut val = setup.val.as_ref().map(|s| Evaluator::new(backend, model, s, "val")).transpose()?;
    let mut test = setup.test.as_ref().map(|s| Evaluator::new(backend, model, s, "test")).transpose()?;
    let multi_group = scheduler.groups().len() > 1;
    let mut shuffler = Shuffler::new(setup.seed, setup.train.len());
    if setup.shuffle && first > 0 {
        // The permutation is cumulative (each epoch shuffles the previous order), so replay every shuffle drawn
        // before `first`; the saved word position proves the replay reached the saved RNG state.
        shuffler.replay(first.div_ceil(spe));
        if let Some(s) = start {
            s.check_rng(&shuffler)?;
        }
        if !first.is_multiple_of(spe) {
            backend.write_indices(&mut session.data.order, &shuffler.order)?;
        }
    }
    if let Some(c) = ckpt.as_deref_mut() {
        c.prime(backend, session)?;
    }

    // (lrs, momentum) of each step not yet read back, and the running epoch loss for plateau without --val-split.
    let mut pending: Vec<(Vec<f64>, f64)> = Vec::with_capacity(LOSS_RING);
    let mut epoch_loss = start.map_or((0.0f64, 0usize), |s| (s.epoch_loss_sum, s.epoch_loss_count));
    let mut last_loss = start.and_then(|s| s.last_loss).unwrap_or(f32::NAN);
    let mut train_time = Duration::ZERO;
    let mut test_result = None;
    let mut t0 = Instant::now();
    let mut step_ms = Vec::new();
    let mut ends = EpochEnd::new(setup.early_stop);
    let mut first_loss: Option<f32> = None;
    let mut stopped_after_epoch = None;

    for s in first..setup.steps {
        let epoch = s / spe;
        let in_epoch = s % spe;
        if in_epoch == 0 && setup.shuffle {
            shuffler.next_epoch();
            backend.write_indices(&mut session.data.order, &shuffler.order)?;
        }
        let lrs: Vec<f64> = scheduler.groups().iter().map(|g| g.lr).collect();
        let momentum = scheduler.momentum();
        let step_start = Instant::now();
        session.step(backend, scheduler.groups(), in_epoch * bs, pending.len())?;
        pending.push((lrs, momentum));
        scheduler.step()?;

        let done = s + 1;
        let full_epoch = in_epoch + 1 == spe;
        let epoch_end = full_epoch || done == setup.steps;
        let save_due = ckpt.as_ref().is_some_and(|c| c.due(done));
        // A checkpoint needs every loss of the steps before it read back (the metrics file and the epoch loss).
        if pending.len() == LOSS_RING || epoch_end || setup.sync_each_step || save_due {
            let first = done - pending.len();
            let losses = backend.read(&session.losses)?;
            let norms = backend.read(&session.norms)?;
            for (i, ((lrs, momentum), (&loss, &grad_norm))) in pending.iter().zip(losses.iter().zip(&norms)).enumerate()
            {
                let step = first + i;
                let lr = lrs[0];
                let momentum = *momentum;
                let lrs = multi_group.then(|| lrs.clone());
                log.push(Event::Step { step, epoch: step / spe, lr, lrs, momentum, loss, grad_norm });
                if !loss.is_finite() {
                    log.flush()?;
                    return Err(Error::NonFinite { step, lr, loss });
                }
                first_loss.get_or_insert(loss);
                if let (Some(f), Some(first)) = (setup.diverge_factor, first_loss)
                    && loss as f64 > f * first as f64
                {
                    log.flush()?;
                    return Err(Error::Diverged { step, lr, loss, first });
                }
                epoch_loss = (epoch_loss.0 + loss as f64, epoch_loss.1 + 1);
                last_loss = loss;
            }
            pending.clear();
            if setup.sync_each_step {
                step_ms.push(step_start.elapsed().as_secs_f64() * 1e3);
            }
            log.flush()?;
            progress(done, setup.steps, Some(last_loss));
        }
        let state = |epoch_loss: (f64, usize)| LoopState::new(done, epoch_loss, last_loss, &shuffler);
        // A run that stops inside an epoch saves before the end-of-run evaluation (and a plateau scheduler's
        // metric step), so a resumed run that goes on through the epoch does neither there.
        if let Some(c) = ckpt.as_deref_mut()
            && (save_due || epoch_end)
            && !full_epoch
        {
            c.save(backend, session, scheduler, &state(epoch_loss))?;
        }
        if epoch_end {
            train_time += t0.elapsed();
            let evals = (val.as_mut(), test.as_mut());
            test_result =
                ends.run(backend, evals, &session.model, scheduler, log, epoch, done, &mut epoch_loss)?.or(test_result);
            if let Some(c) = ckpt.as_deref_mut()
                && full_epoch
            {
                c.save(backend, session, scheduler, &state(epoch_loss))?;
            }
            t0 = Instant::now();
            if ends.stop {
                stopped_after_epoch = Some(epoch);
                break;
            }
        }
    }
    if first == setup.steps && !first.is_multiple_of(spe) {
        // Resumed from the checkpoint a run saved at its end inside an epoch: only the end-of-run part is left.
        let evals = (val.as_mut(), test.as_mut());
        test_result = ends.run(backend, evals, &session.model, scheduler, log, first / spe, first, &mut epoch_loss)?;
    }
    let steps_done = stopped_after_epoch.map_or(setup.steps, |e| ((e + 1) * spe).min(setup.steps));
    // With --restore-best the result is the best epoch's weights, and its test figures with them.
    let weights = match ends.best_weights.take() {
        Some(w) => {
            test_result = ends.test_at_best.or(test_result);
            w
        }
        None => session.model.read_weights(backend)?,
    };
    let names = session.model.names();
    if let Some((name, _)) = names.iter().zip(&weights).find(|(_, w)| w.iter().any(|x| !x.is_finite())) {
        return Err(Error::NonFiniteWeights { name: name.clone(), steps: steps_done });
    }
    let secs = train_time.as_secs_f64().max(1e-9);
    Ok(TrainReport {
        steps: steps_done,
        final_loss: last_loss,
        test: test_result,
        train_time,
        images_per_s: ((steps_done - first) * bs) as f64 / secs,
        weights,
        step_ms,
        stopped_after_epoch,
        best_epoch: ends.stopping.best_epoch,
    })
}

/// What runs at the end of an epoch (and at the end of the run): validation, the plateau scheduler's metric
/// step, early stopping, the test evaluation. One per run (a population keeps one per member, sharing the
/// evaluators).
pub(crate) struct EpochEnd {
    rule: Option<EarlyStop>,
    pub(crate) stopping: EarlyStopState,
    /// `--restore-best`: the best epoch's weights (read back once per improving epoch) and test figures.
    pub(crate) best_weights: Option<Vec<Vec<f32>>>,
    pub(crate) test_at_best: Option<(f64, f64)>,
    /// The rule says stop after this epoch.
    pub(crate) stop: bool,
}

/// (mean loss, accuracy) on the validation and the test split at an epoch's end, when the run has them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Evaluated {
    pub val: Option<(f64, f64)>,
    pub test: Option<(f64, f64)>,
}

/// The validation and test evaluators of a run, when it has them.
pub(crate) type Evals<'a, B> = (Option<&'a mut Evaluator<B>>, Option<&'a mut Evaluator<B>>);

impl EpochEnd {
    pub(crate) fn new(rule: Option<EarlyStop>) -> Self {
        EpochEnd { rule, stopping: EarlyStopState::default(), best_weights: None, test_at_best: None, stop: false }
    }

    /// Returns the test (loss, accuracy) when evaluated; resets the running epoch loss.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run<B: Backend>(
        &mut self,
        backend: &mut B,
        (val, test): Evals<'_, B>,
        model: &Model<B>,
        scheduler: &mut Scheduler,
        log: &mut MetricsLog,
        epoch: usize,
        done: usize,
        epoch_loss: &mut (f64, usize),
    ) -> Result<Option<(f64, f64)>> {
        let val = val.map(|v| v.run(backend, model)).transpose()?;
        let test = test.map(|t| t.run(backend, model)).transpose()?;
        let evals = Evaluated { val, test };
        self.run_evaluated(evals, &mut || model.read_weights(backend), scheduler, log, (epoch, done), epoch_loss)
    }

    /// [`EpochEnd::run`] with the evaluations already made (a population evaluates all its members at once);
    /// `weights` reads the weights the rule keeps when they improve.
    pub(crate) fn run_evaluated(
        &mut self,
        Evaluated { val, test }: Evaluated,
        weights: &mut dyn FnMut() -> Result<Vec<Vec<f32>>>,
        scheduler: &mut Scheduler,
        log: &mut MetricsLog,
        (epoch, done): (usize, usize),
        epoch_loss: &mut (f64, usize),
    ) -> Result<Option<(f64, f64)>> {
        let mut val_loss = None;
        if let Some((loss, val_accuracy)) = val {
            log.push(Event::Val { step: done, epoch, val_loss: loss, val_accuracy });
            val_loss = Some(loss);
        }
        // Plateau schedules and early stopping watch the validation loss, else the epoch's mean training loss.
        let monitored = val_loss.unwrap_or(epoch_loss.0 / epoch_loss.1.max(1) as f64);
        if scheduler.needs_metric() {
            scheduler.step_metric(monitored)?;
        }
        *epoch_loss = (0.0, 0);
        let mut improved = false;
        if let Some(rule) = &self.rule {
            match self.stopping.observe(rule, epoch, monitored) {
                Verdict::Improved => {
                    improved = true;
                    if rule.restore_best {
                        self.best_weights = Some(weights()?);
                    }
                }
                Verdict::Stop => self.stop = true,
                Verdict::NoImprovement => {}
            }
        }
        let mut result = None;
        if let Some((test_loss, test_accuracy)) = test {
            log.push(Event::Eval { step: done, epoch, test_loss, test_accuracy });
            result = Some((test_loss, test_accuracy));
            if improved {
                self.test_at_best = result;
            }
        }
        if self.stop {
            log.push(Event::EarlyStop {
                step: done,
                epoch,
                best_epoch: self.stopping.best_epoch,
                best_loss: self.stopping.best,
                restored: self.rule.is_some_and(|r| r.restore_best),
            });
        }
        log.flush()?;
        Ok(result)
    }
}

/// Evaluation over a whole split: full batches of [`EVAL_BATCH`], then one smaller batch for the rest.
pub struct Evaluator<B: Backend> {
    data: DeviceData<B>,
    full: Option<Activations<B>>,
    rest: Option<Activations<B>>,
    acc: B::Tensor,
}

impl<B: Backend> Evaluator<B> {
    pub fn new(b: &mut B, model: &Model<B>, split: &HostSplit, name: &str) -> Result<Self> {
        if split.is_empty() {
            return Err(Error::Usage(format!("the {name} set is empty")));
        }
        let n = split.len();
        let data = DeviceData::upload(b, split, name)?;
        let full = (n >= EVAL_BATCH).then(|| model.activations(b, EVAL_BATCH, false)).transpose()?;
        let rest = (!n.is_multiple_of(EVAL_BATCH)).then(|| model.activations(b, n % EVAL_BATCH, false)).transpose()?;
        let acc = b.zeros_members(model.members, &[2], &format!("{name}.acc"))?;
        Ok(Evaluator { data, full, rest, acc })
    }

    /// (mean loss, accuracy in [0, 1]).
    pub fn run(&mut self, b: &mut B, model: &Model<B>) -> Result<(f64, f64)> {
        Ok(self.run_members(b, model)?[0])
    }

    /// (mean loss, accuracy) of every member of `model` (the model these evaluators were made for), all members
    /// evaluated by the same ops.
    pub fn run_members(&mut self, b: &mut B, model: &Model<B>) -> Result<Vec<(f64, f64)>> {
        b.write(&mut self.acc, &vec![0.0; 2 * model.members])?;
        let n = self.data.len;
        let mut offset = 0;
        if let Some(a) = self.full.as_mut() {
            while offset + EVAL_BATCH <= n {
                eval_batch(b, model, a, &self.data, &mut self.acc, offset)?;
                offset += EVAL_BATCH;
            }
        }
        if let Some(a) = self.rest.as_mut() {
            eval_batch(b, model, a, &self.data, &mut self.acc, offset)?;
        }
        let v = b.read(&self.acc)?;
        Ok(v.chunks_exact(2).map(|a| (a[0] as f64 / n as f64, a[1] as f64 / n as f64)).collect())
    }
}

/// Add the batch `order[offset ..][.. a.batch]`'s summed loss and correct count to `acc` [2].
fn eval_batch<B: Backend>(
    b: &mut B,
    model: &Model<B>,
    a: &mut Activations<B>,
    data: &DeviceData<B>,
    acc: &mut B::Tensor,
    offset: usize,
) -> Result<()> {
    b.begin_step()?;
    let Activations { acts, labels, .. } = &mut *a;
    data.gather(b, offset, &mut acts[0], labels)?;
    model.forward(b, a)?;
    b.eval_accumulate(a.logits(), &a.labels, acc)?;
    b.end_step()
}
