//! One training step, in the order data flows: gather the batch → model forward → loss → model backward →
//! gradient norm → optimizer update (clipping inside it). [`Session`] holds what the step touches, all
//! allocated once: the dataset on the device, the model, its optimizer, the activations, and the rings the
//! losses and gradient norms land in until the loop reads them back in bulk.

use crate::Result;
use crate::backend::Backend;
use crate::nn::model::Activations;
use crate::nn::{Architecture, Model};
use crate::optim::{OptimConfig, Optimizer};
use crate::schedule::Group;

/// Losses and gradient norms kept on the backend between readbacks.
pub const LOSS_RING: usize = 256;

/// Host-side data of one split: normalized images (row-major, `shape` per image) and labels.
pub struct HostSplit {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Per-image shape [C, H, W].
    pub shape: [usize; 3],
}

impl HostSplit {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A dataset split resident on the backend: images [M,C,H,W], labels [M], and the order batches are drawn in
/// (rewritten each epoch when shuffling).
pub struct DeviceData<B: Backend> {
    pub images: B::Tensor,
    pub labels: B::Indices,
    pub order: B::Indices,
    pub len: usize,
}

impl<B: Backend> DeviceData<B> {
    /// Upload once; the order starts as the identity.
    pub fn upload(b: &mut B, split: &HostSplit, name: &str) -> Result<Self> {
        let len = split.len();
        let identity: Vec<u32> = (0..len as u32).collect();
        let [c, h, w] = split.shape;
        Ok(DeviceData {
            images: b.tensor(&split.images, &[len, c, h, w], &format!("{name}.images"))?,
            labels: b.indices(&split.labels, &format!("{name}.labels"))?,
            order: b.indices(&identity, &format!("{name}.order"))?,
            len,
        })
    }
}

/// Everything a training step touches.
pub struct Session<B: Backend> {
    pub model: Model<B>,
    pub optimizer: Optimizer<B>,
    pub act: Activations<B>,
    pub data: DeviceData<B>,
    /// `losses[slot]`, `norms[slot]`: the batch loss and the gradient norm of the step that used `slot`.
    pub losses: B::Tensor,
    pub norms: B::Tensor,
}

impl<B: Backend> Session<B> {
    /// Upload the data and `weights`, zero the optimizer state, allocate activations for `batch`, and have the
    /// backend compile what the step needs ([`Backend::prepare`]).
    pub fn new(
        b: &mut B,
        arch: &Architecture,
        weights: &[Vec<f32>],
        optim: &OptimConfig,
        train: &HostSplit,
        batch: usize,
    ) -> Result<Self> {
        let data = DeviceData::upload(b, train, "train")?;
        let model = Model::new(b, arch, weights)?;
        let groups = optim.groups(&model.names())?;
        let optimizer = Optimizer::new(b, optim, groups, &model.names(), &model.shapes())?;
        let act = model.activations(b, batch, true)?;
        let losses = b.zeros(&[LOSS_RING], "losses")?;
        let norms = b.zeros(&[LOSS_RING], "grad_norms")?;
        b.prepare()?;
        Ok(Session { model, optimizer, act, data, losses, norms })
    }

    /// One optimizer step on the batch `order[offset ..][.. batch]` with the scheduler's current `groups`; its
    /// loss and gradient norm go to `slot` of the rings. One submit on the GPU, no wait.
    pub fn step(&mut self, b: &mut B, groups: &[Group], offset: usize, slot: usize) -> Result<()> {
        // The uniform is written before the step is recorded, so it lands with the step's submit.
        self.optimizer.prepare(b, groups, slot)?;
        b.begin_step()?;
        let Activations { acts, labels, .. } = &mut self.act;
        b.gather_batch(&self.data.images, &self.data.labels, &self.data.order, offset, &mut acts[0], labels)?;
        self.model.forward(b, &mut self.act)?;
        let Activations { acts, labels, dlogits, .. } = &mut self.act;
        let dlogits = dlogits.as_mut().expect("training activations have dlogits");
        b.softmax_xent(acts.last().expect("logits"), labels, dlogits, &mut self.losses, slot)?;
        self.model.backward(b, &mut self.act)?;
        b.grad_norm(&self.model.grads, &mut self.norms, slot)?;
        self.optimizer.update(b, &mut self.model.params, &self.model.grads, &self.norms)?;
        b.end_step()
    }
}
