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

/// Host-side data of one split: its images (row-major, `shape` per image) and labels.
pub struct HostSplit {
    pub images: Images,
    pub labels: Vec<u32>,
    /// Per-image shape [C, H, W].
    pub shape: [usize; 3],
}

/// A split's images, as they are kept on the device.
pub enum Images {
    /// Network inputs as they are (synthetic data, tests): 4 bytes per value.
    Values(Vec<f32>),
    /// One byte per value, turned into the network's input through `table` (256 values) when a batch is
    /// gathered: MNIST's u8 pixels with [`crate::data::normalize_pixel`], a quarter of the f32 memory.
    Pixels { bytes: Vec<u8>, table: Vec<f32> },
}

impl Images {
    /// Values of the images, in order (a table lookup per byte for [`Images::Pixels`]).
    pub fn values(&self) -> Vec<f32> {
        match self {
            Images::Values(v) => v.clone(),
            Images::Pixels { bytes, table } => bytes.iter().map(|&p| table[p as usize]).collect(),
        }
    }

    /// How many values the images hold.
    pub fn len(&self) -> usize {
        match self {
            Images::Values(v) => v.len(),
            Images::Pixels { bytes, .. } => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HostSplit {
    /// A split of f32 inputs.
    pub fn from_values(images: Vec<f32>, labels: Vec<u32>, shape: [usize; 3]) -> HostSplit {
        HostSplit { images: Images::Values(images), labels, shape }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A split's images on the backend, as [`Images`] keeps them on the host.
pub enum DeviceImages<B: Backend> {
    /// [M, C, H, W] f32.
    Values(B::Tensor),
    /// The bytes packed four per u32 ([`crate::backend::pack_bytes`]) and the 256-entry table.
    Pixels { words: B::Indices, table: B::Tensor },
}

/// A dataset split resident on the backend: images, labels [M], and the order batches are drawn in (rewritten
/// each epoch when shuffling).
pub struct DeviceData<B: Backend> {
    pub images: DeviceImages<B>,
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
        if split.images.len() != len * c * h * w {
            return Err(crate::Error::Usage(format!(
                "the {name} split has {} values for {len} images of {c}×{h}×{w}",
                split.images.len()
            )));
        }
        let images = match &split.images {
            Images::Values(v) => DeviceImages::Values(b.tensor(v, &[len, c, h, w], &format!("{name}.images"))?),
            Images::Pixels { bytes, table } => DeviceImages::Pixels {
                words: b.indices(&crate::backend::pack_bytes(bytes), &format!("{name}.pixels"))?,
                table: b.tensor(table, &[table.len()], &format!("{name}.pixel_table"))?,
            },
        };
        Ok(DeviceData {
            images,
            labels: b.indices(&split.labels, &format!("{name}.labels"))?,
            order: b.indices(&identity, &format!("{name}.order"))?,
            len,
        })
    }

    /// Record the gather of the batch `order[offset ..][.. x's rows]` into `x` and `y`.
    pub fn gather(&self, b: &mut B, offset: usize, x: &mut B::Tensor, y: &mut B::Indices) -> Result<()> {
        match &self.images {
            DeviceImages::Values(images) => b.gather_batch(images, &self.labels, &self.order, offset, x, y),
            DeviceImages::Pixels { words, table } => {
                b.gather_pixels(words, table, &self.labels, &self.order, offset, x, y)
            }
        }
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
    /// Upload the data and `weights`, zero the optimizer state, allocate activations for `batch` (the GPU
    /// builds the pipelines the step needs during the first step, all together).
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
        Ok(Session { model, optimizer, act, data, losses, norms })
    }

    /// One optimizer step on the batch `order[offset ..][.. batch]` with the scheduler's current `groups`; its
    /// loss and gradient norm go to `slot` of the rings. One submit on the GPU, no wait.
    pub fn step(&mut self, b: &mut B, groups: &[Group], offset: usize, slot: usize) -> Result<()> {
        // The uniform is written before the step is recorded, so it lands with the step's submit.
        self.optimizer.prepare(b, groups, slot)?;
        b.begin_step()?;
        let Activations { acts, labels, .. } = &mut self.act;
        self.data.gather(b, offset, &mut acts[0], labels)?;
        self.model.train_pass(b, &mut self.act, &mut self.losses, slot)?;
        b.grad_norm(&self.model.grads, &mut self.norms, slot)?;
        self.optimizer.update(b, &mut self.model.params, &self.model.grads, &self.norms)?;
        b.end_step()
    }
}
