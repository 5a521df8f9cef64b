//! Population training (`sweep --parallel P`): P members — same model, initial weights, data and batch order,
//! each with its own optimizer settings, scheduler and early-stopping rule — trained in one step.
//!
//! The members are a member axis ([`crate::backend`]): one model whose parameters, gradients, activations and
//! optimizer state hold one copy per member, so each op of the step — forward, loss, backward, gradient norm,
//! update — is recorded once for all members (on the GPU, one dispatch with the member a workgroup dimension).
//! The batch is gathered once and read by every member; each member's hyper-parameters are its block of the
//! optimizer's one uniform, written from its own scheduler before the step; losses and gradient norms land in
//! per-member rings read back in bulk. Member m runs exactly the ops of the same trial trained alone, on the
//! same inputs in the same order, so its numbers are those of the solo run (bit for bit on the CPU backend).
//!
//! A member whose loss turns non-finite or exceeds the divergence limit, or whose early-stopping rule fires, is
//! frozen: its block of the uniform says so and its update leaves its weights and state alone, while its
//! outcome is what `train` would have returned for it (read when it froze). Its forward and backward still run
//! with the others' (they cannot disturb them: no op mixes members).

use std::time::{Duration, Instant};

use super::{
    DeviceData, EarlyStop, EpochEnd, Evaluated, Evaluator, Event, HostSplit, LOSS_RING, MetricsLog, Shuffler,
    TrainReport, TrainSetup,
};
use crate::backend::{Backend, numel};
use crate::nn::model::Activations;
use crate::nn::{Architecture, Model};
use crate::optim::{OptimConfig, Optimizer, OptimizerKind};
use crate::schedule::{Group, Scheduler};
use crate::{Error, Result};

/// The most members one population holds, whatever the memory (the update kernels' uniform has this many blocks).
pub use crate::backend::MAX_MEMBERS;

/// Bytes of population state the CPU backend allows (parameters, gradients, optimizer state and activations of
/// every member): well under the memory of a small machine, so a sweep never swaps.
pub const CPU_MEMORY_BUDGET: u64 = 8 << 30;

/// What one member needs in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Parameters, gradients, optimizer state and the training activations (and their gradients) at the batch.
    pub bytes: u64,
    /// The largest single binding: an activation at the batch size, or the whole parameter set (one packed set).
    pub largest: u64,
}

/// An upper bound on one member's memory for `arch` trained with `optim` at `batch` (every layer output counted,
/// fused ReLUs included).
pub fn footprint(arch: &Architecture, optim: &OptimConfig, batch: usize) -> Footprint {
    let params: u64 = arch.params.iter().map(|p| numel(&p.shape) as u64).sum();
    let state_sets = match optim.kind {
        OptimizerKind::Sgd => 1,
        OptimizerKind::Adam | OptimizerKind::AdamW => 2 + u64::from(optim.amsgrad),
    };
    let per_example: u64 = arch.shapes.iter().map(|s| numel(s) as u64).sum::<u64>() + numel(&arch.input) as u64;
    // Activations and their gradients, plus the logits' gradient.
    let acts = (2 * per_example + arch.classes as u64) * batch as u64;
    let largest_act = arch.shapes.iter().map(|s| numel(s) as u64).max().unwrap_or(0) * batch as u64;
    // A packed set (parameters, gradients, each state set) is one binding of the multi-tensor ops: all of it counts.
    Footprint { bytes: 4 * ((2 + state_sets) * params + acts), largest: 4 * largest_act.max(params) }
}

/// How many members fit, and how that was computed (for the error message of a `--parallel` above it).
/// `max_binding`: the backend's largest storage binding ([`Backend::max_binding_bytes`]), None on the CPU.
pub fn member_cap(fp: Footprint, max_binding: Option<u64>) -> (usize, String) {
    let (fit, how) = match max_binding {
        // A member axis stacks every member's copy of a tensor in one binding, so the largest one bounds P.
        Some(limit) => (
            limit / fp.largest.max(1),
            format!(
                "the device's largest storage binding is {limit} bytes and one member's largest binding (an \
                 activation at the batch size, or its whole parameter set) takes {} bytes, so {} members' copies fit \
                 in one binding",
                fp.largest,
                limit / fp.largest.max(1)
            ),
        ),
        None => (
            CPU_MEMORY_BUDGET / fp.bytes.max(1),
            format!(
                "the CPU backend allows {CPU_MEMORY_BUDGET} bytes of population state and one member takes {} bytes \
                 (parameters, gradients, optimizer state, activations at the batch size), so {} fit",
                fp.bytes,
                CPU_MEMORY_BUDGET / fp.bytes.max(1)
            ),
        ),
    };
    let cap = (fit as usize).clamp(1, MAX_MEMBERS);
    (cap, format!("{how}; at most {MAX_MEMBERS} members in any case: --parallel {cap} is the most that fits"))
}

/// One member's settings: its optimizer, its scheduler (built on its groups, step 0 done) and early stopping.
pub struct MemberSpec {
    pub optim: OptimConfig,
    pub scheduler: Scheduler,
    pub early_stop: Option<EarlyStop>,
}

/// One member's result: exactly what [`super::train`] returns for the same trial trained alone, and its log.
pub struct MemberOutcome {
    pub result: Result<TrainReport>,
    pub log: MetricsLog,
}

/// Everything a population step touches, allocated once.
pub struct Population<B: Backend> {
    data: DeviceData<B>,
    model: Model<B>,
    optimizer: Optimizer<B>,
    /// Activations with a member axis; `act.acts[0]` and `act.labels` are the shared batch.
    act: Activations<B>,
    /// `losses`, `norms`: member m's loss and gradient norm at ring slot s ([`LOSS_RING`] slots per member).
    losses: B::Tensor,
    norms: B::Tensor,
}

impl<B: Backend> Population<B> {
    /// Upload the data once and one copy of `weights` per member; zero each member's optimizer state (one
    /// entry of `optims` per member, 1 ≤ P ≤ [`MAX_MEMBERS`]); allocate activations for `batch`.
    pub fn new(
        b: &mut B,
        arch: &Architecture,
        weights: &[Vec<f32>],
        optims: &[OptimConfig],
        train: &HostSplit,
        batch: usize,
    ) -> Result<Self> {
        let p = optims.len();
        if optims.is_empty() || p > MAX_MEMBERS {
            return Err(Error::Usage(format!("a population has 1 to {MAX_MEMBERS} members, not {p}")));
        }
        let data = DeviceData::upload(b, train, "train")?;
        let model = Model::with_members(b, arch, weights, p)?;
        let members = optims.iter().map(|o| Ok((o.clone(), o.groups(&model.names())?))).collect::<Result<Vec<_>>>()?;
        let optimizer = Optimizer::with_members(b, &members, &model.names(), &model.shapes())?;
        let act = model.activations(b, batch, true)?;
        let losses = b.zeros_members(p, &[LOSS_RING], "population.losses")?;
        let norms = b.zeros_members(p, &[LOSS_RING], "population.grad_norms")?;
        Ok(Population { data, model, optimizer, act, losses, norms })
    }

    pub fn len(&self) -> usize {
        self.model.members
    }

    pub fn is_empty(&self) -> bool {
        self.model.members == 0
    }

    /// The model with its member axis.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// One step on the batch `order[offset ..][.. batch]` for every member whose entry of `groups` (its
    /// scheduler's current groups) is Some; a None member is frozen (its update changes nothing). Ring slot
    /// `slot`. One op per stage for all members, in one `begin_step`/`end_step`.
    pub fn step(&mut self, b: &mut B, groups: &[Option<&[Group]>], offset: usize, slot: usize) -> Result<()> {
        // Written before the step is recorded, so the uniform lands with the step's one submit.
        self.optimizer.prepare_members(b, groups, slot)?;
        let Population { data, model, optimizer, act, losses, norms } = self;
        b.begin_step()?;
        let Activations { acts, labels, .. } = &mut *act;
        data.gather(b, offset, &mut acts[0], labels)?;
        model.train_pass(b, act, losses, slot)?;
        b.grad_norm(&model.grads, norms, slot)?;
        optimizer.update(b, &mut model.params, &model.grads, norms)?;
        b.end_step()
    }
}

/// One member's loop state: what [`super::train_from`] keeps in locals for a single run.
struct Run {
    spec: MemberSpec,
    log: MetricsLog,
    ends: EpochEnd,
    /// (lrs, momentum) of each step not yet read back.
    pending: Vec<(Vec<f64>, f64)>,
    epoch_loss: (f64, usize),
    last_loss: f32,
    first_loss: Option<f32>,
    test_result: Option<(f64, f64)>,
    /// Set once the member is frozen (diverged, stopped early) or the run ended.
    outcome: Option<Result<TrainReport>>,
}

impl Run {
    /// Log the read-back steps `first ..` (losses and norms from this member's ring); Err at the first step that
    /// diverges, exactly where the solo loop stops.
    fn drain(&mut self, first: usize, losses: &[f32], norms: &[f32], spe: usize, factor: Option<f64>) -> Result<()> {
        let multi_group = self.spec.scheduler.groups().len() > 1;
        for (i, ((lrs, momentum), (&loss, &grad_norm))) in
            self.pending.drain(..).zip(losses.iter().zip(norms)).enumerate()
        {
            let step = first + i;
            let lr = lrs[0];
            let lrs = multi_group.then_some(lrs);
            self.log.push(Event::Step { step, epoch: step / spe, lr, lrs, momentum, loss, grad_norm });
            if !loss.is_finite() {
                return Err(Error::NonFinite { step, lr, loss });
            }
            self.first_loss.get_or_insert(loss);
            if let (Some(f), Some(first)) = (factor, self.first_loss)
                && loss as f64 > f * first as f64
            {
                return Err(Error::Diverged { step, lr, loss, first });
            }
            self.epoch_loss = (self.epoch_loss.0 + loss as f64, self.epoch_loss.1 + 1);
            self.last_loss = loss;
        }
        Ok(())
    }

    /// The report at the end of this member's run (as the end of the solo loop builds it).
    fn finish<B: Backend>(
        &mut self,
        b: &mut B,
        model: &Model<B>,
        member: usize,
        steps_done: usize,
        (train_time, images): (Duration, usize),
    ) -> Result<TrainReport> {
        let mut test = self.test_result;
        let weights = match self.ends.best_weights.take() {
            Some(w) => {
                test = self.ends.test_at_best.or(test);
                w
            }
            None => model.read_member_weights(b)?.swap_remove(member),
        };
        if let Some((name, _)) = model.names().iter().zip(&weights).find(|(_, w)| w.iter().any(|x| !x.is_finite())) {
            return Err(Error::NonFiniteWeights { name: name.clone(), steps: steps_done });
        }
        Ok(TrainReport {
            steps: steps_done,
            final_loss: self.last_loss,
            test,
            train_time,
            images_per_s: images as f64 / train_time.as_secs_f64().max(1e-9),
            weights,
            step_ms: Vec::new(),
            stopped_after_epoch: None,
            best_epoch: self.ends.stopping.best_epoch,
        })
    }
}

/// Train every member of `pop` (one [`MemberSpec`] each, in member order) on the shared `setup` (its
/// `early_stop` is ignored: each member brings its own). Returns one outcome per member, each what
/// [`super::train`] would return for that member alone. `progress` gets (steps done, total steps).
pub fn train_population<B: Backend>(
    b: &mut B,
    pop: &mut Population<B>,
    setup: &TrainSetup,
    specs: Vec<MemberSpec>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<MemberOutcome>> {
    let bs = setup.batch_size;
    let spe = super::checked_steps_per_epoch(setup)?;
    if specs.len() != pop.len() {
        return Err(Error::Usage(format!("{} member settings for a population of {}", specs.len(), pop.len())));
    }
    for s in &specs {
        s.scheduler.check_run(setup.steps)?;
    }
    let mut val = setup.val.as_ref().map(|s| Evaluator::new(b, pop.model(), s, "val")).transpose()?;
    let mut test = setup.test.as_ref().map(|s| Evaluator::new(b, pop.model(), s, "test")).transpose()?;
    let mut runs: Vec<Run> = specs
        .into_iter()
        .map(|spec| Run {
            log: MetricsLog::new(None),
            ends: EpochEnd::new(spec.early_stop),
            spec,
            pending: Vec::with_capacity(LOSS_RING),
            epoch_loss: (0.0, 0),
            last_loss: f32::NAN,
            first_loss: None,
            test_result: None,
            outcome: None,
        })
        .collect();
    let mut shuffler = Shuffler::new(setup.seed, setup.train.len());
    let mut pending_steps = 0;
    let mut train_time = Duration::ZERO;
    let mut t0 = Instant::now();

    for s in 0..setup.steps {
        if runs.iter().all(|r| r.outcome.is_some()) {
            break;
        }
        let epoch = s / spe;
        let in_epoch = s % spe;
        if in_epoch == 0 && setup.shuffle {
            shuffler.next_epoch();
            b.write_indices(&mut pop.data.order, &shuffler.order)?;
        }
        let groups: Vec<Option<&[Group]>> =
            runs.iter().map(|r| r.outcome.is_none().then(|| r.spec.scheduler.groups())).collect();
        pop.step(b, &groups, in_epoch * bs, pending_steps)?;
        for r in runs.iter_mut().filter(|r| r.outcome.is_none()) {
            let lrs: Vec<f64> = r.spec.scheduler.groups().iter().map(|g| g.lr).collect();
            r.pending.push((lrs, r.spec.scheduler.momentum()));
            r.spec.scheduler.step()?;
        }
        pending_steps += 1;

        let done = s + 1;
        let full_epoch = in_epoch + 1 == spe;
        let epoch_end = full_epoch || done == setup.steps;
        if pending_steps == LOSS_RING || epoch_end {
            let first = done - pending_steps;
            let losses = b.read(&pop.losses)?;
            let norms = b.read(&pop.norms)?;
            let rings = losses.chunks_exact(LOSS_RING).zip(norms.chunks_exact(LOSS_RING));
            for ((losses, norms), r) in rings.zip(runs.iter_mut()).filter(|(_, r)| r.outcome.is_none()) {
                if let Err(e) = r.drain(first, losses, norms, spe, setup.diverge_factor) {
                    r.outcome = Some(Err(e));
                }
            }
            pending_steps = 0;
            progress(done, setup.steps);
        }
        if epoch_end {
            train_time += t0.elapsed();
            // Every member evaluated by the same ops (frozen ones too: cheaper than leaving them out).
            let model = &pop.model;
            let vals = val.as_mut().map(|v| v.run_members(b, model)).transpose()?;
            let tests = test.as_mut().map(|t| t.run_members(b, model)).transpose()?;
            for (m, r) in runs.iter_mut().enumerate().filter(|(_, r)| r.outcome.is_none()) {
                let evals = Evaluated { val: vals.as_ref().map(|v| v[m]), test: tests.as_ref().map(|t| t[m]) };
                let mut weights = || Ok(model.read_member_weights(b)?.swap_remove(m));
                let sched = &mut r.spec.scheduler;
                let at = (epoch, done);
                let result = r.ends.run_evaluated(evals, &mut weights, sched, &mut r.log, at, &mut r.epoch_loss)?;
                r.test_result = result.or(r.test_result);
                if r.ends.stop {
                    let steps_done = ((epoch + 1) * spe).min(setup.steps);
                    let mut report = r.finish(b, model, m, steps_done, (train_time, steps_done * bs));
                    if let Ok(rep) = report.as_mut() {
                        rep.stopped_after_epoch = Some(epoch);
                    }
                    r.outcome = Some(report);
                }
            }
            t0 = Instant::now();
        }
    }
    for (m, r) in runs.iter_mut().enumerate().filter(|(_, r)| r.outcome.is_none()) {
        let report = r.finish(b, &pop.model, m, setup.steps, (train_time, setup.steps * bs));
        r.outcome = Some(report);
    }
    Ok(runs
        .into_iter()
        .map(|r| MemberOutcome { result: r.outcome.expect("every member has finished"), log: r.log })
        .collect())
}
