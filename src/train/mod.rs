//! The training loop: data → forward → loss → backward → update → scheduler → metrics.
//!
//! The scheduler runs on the host and hands each step its `lr`/`momentum` through an [`SgdHyper`]; losses stay
//! on the backend in a ring of [`LOSS_RING`] slots and are read back in bulk, so a GPU step never waits.

pub mod metrics;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::backend::Backend;
use crate::nn::{Activations, DeviceData, SampleCnn, StepArgs};
use crate::optim::{Sgd, SgdGroup, SgdHyper};
use crate::schedule::Scheduler;
use crate::{Error, Result};
pub use metrics::{Event, MetricsLog};

/// Losses kept on the backend between readbacks.
pub const LOSS_RING: usize = 256;
/// Images per evaluation batch (any remainder runs as one smaller batch).
pub const EVAL_BATCH: usize = 500;

/// Host-side data of one split: normalized images (row-major [N,1,28,28]) and labels.
pub struct HostSplit {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
}

impl HostSplit {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What to train on and how.
pub struct TrainSetup {
    pub train: HostSplit,
    pub val: Option<HostSplit>,
    pub test: Option<HostSplit>,
    pub batch_size: usize,
    pub steps: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub sgd: Sgd,
    /// Wait for each step and time it (for `compare`); normal training never waits inside an epoch.
    pub sync_each_step: bool,
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
}

/// Progress callback: (steps done, total steps, last known loss).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, Option<f32>);

/// Steps per epoch: the last partial batch is dropped.
pub fn steps_per_epoch(train_len: usize, batch: usize) -> usize {
    train_len / batch.max(1)
}

/// Train `model` on `backend`. `scheduler` is already built (step 0 done); metrics go to `log`.
pub fn train<B: Backend>(
    backend: &mut B,
    model: &mut SampleCnn<B>,
    setup: &TrainSetup,
    scheduler: &mut Scheduler,
    log: &mut MetricsLog,
    progress: Progress,
) -> Result<TrainReport> {
    let bs = setup.batch_size;
    let spe = steps_per_epoch(setup.train.len(), bs);
    if bs == 0 || spe == 0 {
        return Err(Error::Usage(format!(
            "batch size {bs} must be between 1 and the number of training images ({})",
            setup.train.len()
        )));
    }
    scheduler.check_run(setup.steps)?;
    let mut train = DeviceData::upload(backend, &setup.train.images, &setup.train.labels, "train")?;
    let mut val = setup.val.as_ref().map(|s| Evaluator::new(backend, s, "val")).transpose()?;
    let mut test = setup.test.as_ref().map(|s| Evaluator::new(backend, s, "test")).transpose()?;
    let mut act = Activations::new(backend, bs, true)?;
    let mut losses = backend.zeros(&[LOSS_RING], "losses")?;
    let mut rng = ChaCha8Rng::seed_from_u64(setup.seed ^ 0x5eed_0f0d_e5ed);
    let mut order: Vec<u32> = (0..setup.train.len() as u32).collect();

    // (lr, momentum) of each step not yet read back, and the running epoch loss for plateau without --val-split.
    let mut pending: Vec<(f64, f64)> = Vec::with_capacity(LOSS_RING);
    let mut epoch_loss = (0.0f64, 0usize);
    let mut last_loss = f32::NAN;
    let mut momentum_started = false;
    let mut train_time = Duration::ZERO;
    let mut test_result = None;
    let mut t0 = Instant::now();
    let mut step_ms = Vec::new();

    for s in 0..setup.steps {
        let epoch = s / spe;
        let in_epoch = s % spe;
        if in_epoch == 0 && setup.shuffle {
            order.shuffle(&mut rng);
            backend.write_indices(&mut train.order, &order)?;
        }
        let (lr, momentum) = (scheduler.lr(), scheduler.momentum());
        let sgd = &setup.sgd;
        let mut hyper = SgdHyper::default();
        hyper.group[0] = SgdGroup {
            lr: lr as f32,
            momentum: momentum as f32,
            dampening: sgd.dampening as f32,
            weight_decay: sgd.weight_decay as f32,
            nesterov: u32::from(sgd.nesterov),
            init_momentum: u32::from(!momentum_started),
            ..Default::default()
        };
        let p = StepArgs { batch_offset: in_epoch * bs, loss_slot: pending.len(), sgd: hyper };
        momentum_started |= momentum != 0.0;
        let step_start = Instant::now();
        model.train_step(backend, &mut act, &train, &mut losses, &p)?;
        pending.push((lr, momentum));
        scheduler.step()?;

        let epoch_end = in_epoch + 1 == spe || s + 1 == setup.steps;
        if pending.len() == LOSS_RING || epoch_end || setup.sync_each_step {
            let first = s + 1 - pending.len();
            let values = backend.read(&losses)?;
            for (i, (&(lr, momentum), &loss)) in pending.iter().zip(&values).enumerate() {
                let step = first + i;
                log.push(Event::Step { step, epoch: step / spe, lr, momentum, loss });
                if !loss.is_finite() {
                    log.flush()?;
                    return Err(Error::NonFinite { step, lr, loss });
                }
                epoch_loss = (epoch_loss.0 + loss as f64, epoch_loss.1 + 1);
                last_loss = loss;
            }
            pending.clear();
            if setup.sync_each_step {
                step_ms.push(step_start.elapsed().as_secs_f64() * 1e3);
            }
            log.flush()?;
            progress(s + 1, setup.steps, Some(last_loss));
        }
        if epoch_end {
            train_time += t0.elapsed();
            let done = s + 1;
            if let Some(v) = val.as_mut() {
                let (val_loss, val_accuracy) = v.run(backend, model)?;
                log.push(Event::Val { step: done, epoch, val_loss, val_accuracy });
            }
            if scheduler.needs_metric() {
                let metric = match log.events.iter().rev().find_map(|e| match e {
                    Event::Val { val_loss, .. } => Some(*val_loss),
                    _ => None,
                }) {
                    Some(v) if val.is_some() => v,
                    _ => epoch_loss.0 / epoch_loss.1.max(1) as f64,
                };
                scheduler.step_metric(metric)?;
            }
            epoch_loss = (0.0, 0);
            if let Some(t) = test.as_mut() {
                let (test_loss, test_accuracy) = t.run(backend, model)?;
                log.push(Event::Eval { step: done, epoch, test_loss, test_accuracy });
                test_result = Some((test_loss, test_accuracy));
            }
            log.flush()?;
            t0 = Instant::now();
        }
    }
    let weights = model.read_weights(backend)?;
    if let Some((name, _)) = crate::nn::PARAMS.iter().zip(&weights).find(|(_, w)| w.iter().any(|x| !x.is_finite())) {
        return Err(Error::NonFiniteWeights { name: name.0.to_string(), steps: setup.steps });
    }
    let secs = train_time.as_secs_f64().max(1e-9);
    Ok(TrainReport {
        steps: setup.steps,
        final_loss: last_loss,
        test: test_result,
        train_time,
        images_per_s: (setup.steps * bs) as f64 / secs,
        weights,
        step_ms,
    })
}

/// Evaluation over a whole split: full batches of [`EVAL_BATCH`], then one smaller batch for the rest.
struct Evaluator<B: Backend> {
    data: DeviceData<B>,
    full: Option<Activations<B>>,
    rest: Option<Activations<B>>,
    acc: B::Tensor,
}

impl<B: Backend> Evaluator<B> {
    fn new(b: &mut B, split: &HostSplit, name: &str) -> Result<Self> {
        if split.is_empty() {
            return Err(Error::Usage(format!("the {name} set is empty")));
        }
        let n = split.len();
        let data = DeviceData::upload(b, &split.images, &split.labels, name)?;
        let full = (n >= EVAL_BATCH).then(|| Activations::new(b, EVAL_BATCH, false)).transpose()?;
        let rest = (!n.is_multiple_of(EVAL_BATCH)).then(|| Activations::new(b, n % EVAL_BATCH, false)).transpose()?;
        let acc = b.zeros(&[2], &format!("{name}.acc"))?;
        Ok(Evaluator { data, full, rest, acc })
    }

    /// (mean loss, accuracy in [0, 1]).
    fn run(&mut self, b: &mut B, model: &SampleCnn<B>) -> Result<(f64, f64)> {
        b.write(&mut self.acc, &[0.0, 0.0])?;
        let n = self.data.len;
        let mut offset = 0;
        if let Some(a) = self.full.as_mut() {
            while offset + EVAL_BATCH <= n {
                model.eval_batch(b, a, &self.data, &mut self.acc, offset as u32)?;
                offset += EVAL_BATCH;
            }
        }
        if let Some(a) = self.rest.as_mut() {
            model.eval_batch(b, a, &self.data, &mut self.acc, offset as u32)?;
        }
        let v = b.read(&self.acc)?;
        Ok((v[0] as f64 / n as f64, v[1] as f64 / n as f64))
    }
}
