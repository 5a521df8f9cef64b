//! The sample CNN: conv 1→32 3×3, ReLU, conv 32→64 3×3, ReLU, maxpool 2, maxpool 2, flatten, fc 2304→128,
//! ReLU, fc 128→10, mean softmax cross-entropy. Generic over the backend; one step records
//! begin_step → gather → forward → loss → backward → one multi-tensor SGD update → end_step, with every buffer
//! allocated once (parameters, gradients and momentum buffers as packed sets).
//! Every ReLU runs fused with its layer (`conv2d_relu`, `linear_relu`) and, backward, with the op whose output
//! it masks (`conv2d_backward_input_relu`, `maxpool2_backward_relu`, `linear_backward_input_relu`): no
//! pre-activation tensor is kept.

use crate::Result;
use crate::backend::Backend;
use crate::optim::SgdHyper;

/// PyTorch `state_dict` names and shapes, in `model.parameters()` order.
pub const PARAMS: [(&str, &[usize]); 8] = [
    ("conv1.weight", &[32, 1, 3, 3]),
    ("conv1.bias", &[32]),
    ("conv2.weight", &[64, 32, 3, 3]),
    ("conv2.bias", &[64]),
    ("fc1.weight", &[128, 2304]),
    ("fc1.bias", &[128]),
    ("fc2.weight", &[10, 128]),
    ("fc2.bias", &[10]),
];

/// Pixels per image and classes.
pub const IMAGE: [usize; 3] = [1, 28, 28];
pub const CLASSES: usize = 10;

/// Forward activations for one batch size (and, for training, their gradients).
pub struct Activations<B: Backend> {
    pub batch: usize,
    pub x: B::Tensor,
    pub y: B::Indices,
    /// ReLU outputs of conv1, conv2 and fc1; the pools' outputs.
    r1: B::Tensor,
    r2: B::Tensor,
    p1: B::Tensor,
    p2: B::Tensor,
    hr: B::Tensor,
    pub logits: B::Tensor,
    grads: Option<ActivationGrads<B>>,
}

/// Gradients of the loss with respect to the pre-activations (da1, da2, dh) and the pools' outputs.
struct ActivationGrads<B: Backend> {
    dlogits: B::Tensor,
    dh: B::Tensor,
    dp2: B::Tensor,
    dp1: B::Tensor,
    da2: B::Tensor,
    da1: B::Tensor,
}

/// Parameters, their gradients and SGD momentum buffers, resident on the backend as three packed sets of one
/// layout (one update dispatch covers them all); every parameter is in SGD group 0.
pub struct SampleCnn<B: Backend> {
    pub params: Vec<B::Tensor>,
    pub grads: Vec<B::Tensor>,
    pub momentum: Vec<B::Tensor>,
    groups: Vec<u32>,
    hyper: B::Uniform,
    /// The update reads the gradient norm from here when clipping by norm (never, for now).
    norms: B::Tensor,
}

/// What one training step takes besides the model and data: where its batch starts in the order, the loss
/// slot it writes, and the SGD hyper-parameters (group 0; clipping off).
#[derive(Clone, Copy, Debug, Default)]
pub struct StepArgs {
    pub batch_offset: usize,
    pub loss_slot: usize,
    pub sgd: SgdHyper,
}

impl<B: Backend> Activations<B> {
    /// Allocate every activation for `batch` images; `train` adds the backward buffers.
    pub fn new(b: &mut B, batch: usize, train: bool) -> Result<Self> {
        // One set of forward buffers, and for training a second set with the same shapes for their gradients
        // (named after the layer output they belong to: `d.conv2` is the gradient at conv2's pre-activation).
        let shapes: [(&[usize], &str); 6] = [
            (&[batch, 10], "logits"),
            (&[batch, 128], "fc1"),
            (&[batch, 64, 6, 6], "pool2"),
            (&[batch, 64, 12, 12], "pool1"),
            (&[batch, 64, 24, 24], "conv2"),
            (&[batch, 32, 26, 26], "conv1"),
        ];
        let mut set = |prefix: &str| -> Result<Vec<B::Tensor>> {
            shapes.iter().map(|(s, name)| b.zeros(s, &format!("{prefix}{name}"))).collect()
        };
        let six = |v: Vec<B::Tensor>| -> [B::Tensor; 6] { v.try_into().unwrap_or_else(|_| unreachable!("6 shapes")) };
        let [logits, hr, p2, p1, r2, r1] = six(set("")?);
        let grads = if train {
            let [dlogits, dh, dp2, dp1, da2, da1] = six(set("d.")?);
            Some(ActivationGrads { dlogits, dh, dp2, dp1, da2, da1 })
        } else {
            None
        };
        let x = b.zeros(&[batch, IMAGE[0], IMAGE[1], IMAGE[2]], "batch.x")?;
        let y = b.indices(&vec![0; batch], "batch.y")?;
        Ok(Activations { batch, x, y, r1, r2, p1, p2, hr, logits, grads })
    }
}

impl<B: Backend> SampleCnn<B> {
    /// Upload `weights` (in [`PARAMS`] order) and zero gradients and momentum buffers.
    pub fn new(b: &mut B, weights: &[Vec<f32>]) -> Result<Self> {
        let shapes: Vec<Vec<usize>> = PARAMS.iter().map(|(_, s)| s.to_vec()).collect();
        let names = |suffix: &str| -> Vec<String> { PARAMS.iter().map(|(n, _)| format!("{n}{suffix}")).collect() };
        let mut params = b.zeros_packed(&shapes, &names(""))?;
        for (p, w) in params.iter_mut().zip(weights) {
            b.write(p, w)?;
        }
        let grads = b.zeros_packed(&shapes, &names(".grad"))?;
        let momentum = b.zeros_packed(&shapes, &names(".momentum"))?;
        let hyper = b.uniform(std::mem::size_of::<SgdHyper>(), "sgd.hyper")?;
        let norms = b.zeros(&[1], "grad_norm")?;
        Ok(SampleCnn { params, grads, momentum, groups: vec![0; PARAMS.len()], hyper, norms })
    }

    /// Logits for the batch already in `a.x`.
    pub fn forward(&self, b: &mut B, a: &mut Activations<B>) -> Result<()> {
        let p = &self.params;
        b.conv2d_relu(&a.x, &p[0], &p[1], &mut a.r1)?;
        b.conv2d_relu(&a.r1, &p[2], &p[3], &mut a.r2)?;
        b.maxpool2(&a.r2, &mut a.p1)?;
        b.maxpool2(&a.p1, &mut a.p2)?;
        b.linear_relu(&a.p2, &p[4], &p[5], &mut a.hr)?;
        b.linear(&a.hr, &p[6], &p[7], &mut a.logits)
    }

    /// Gradients of the mean loss with respect to every parameter, from `dlogits`.
    fn backward(&mut self, b: &mut B, a: &mut Activations<B>) -> Result<()> {
        let g = a.grads.as_mut().ok_or_else(not_training)?;
        let (p, d) = (&self.params, &mut self.grads);
        let [dw1, db1, dw2, db2, dw3, db3, dw4, db4] = d.as_mut_slice() else { unreachable!("8 parameters") };
        b.linear_backward_weight(&a.hr, &g.dlogits, dw4, db4)?;
        b.linear_backward_input_relu(&g.dlogits, &p[6], &a.hr, &mut g.dh)?;
        b.linear_backward_weight(&a.p2, &g.dh, dw3, db3)?;
        b.linear_backward_input(&g.dh, &p[4], &mut g.dp2)?;
        b.maxpool2_backward(&a.p1, &g.dp2, &mut g.dp1)?;
        b.maxpool2_backward_relu(&a.r2, &g.dp1, &mut g.da2)?;
        b.conv2d_backward_weight(&a.r1, &g.da2, dw2, db2)?;
        b.conv2d_backward_input_relu(&g.da2, &p[2], &a.r1, &mut g.da1)?;
        b.conv2d_backward_weight(&a.x, &g.da1, dw1, db1)
    }

    /// One optimizer step on the batch `order[s.batch_offset ..][.. a.batch]`; the batch loss goes to
    /// `losses[s.loss_slot]`. `a` must have been built with `train = true`.
    pub fn train_step(
        &mut self,
        b: &mut B,
        a: &mut Activations<B>,
        data: &DeviceData<B>,
        losses: &mut B::Tensor,
        s: &StepArgs,
    ) -> Result<()> {
        // Written before the step's ops: on the GPU the write then needs no submit of its own.
        b.write_uniform(&mut self.hyper, bytemuck::bytes_of(&s.sgd))?;
        b.begin_step()?;
        b.gather_batch(&data.images, &data.labels, &data.order, s.batch_offset, &mut a.x, &mut a.y)?;
        self.forward(b, a)?;
        let g = a.grads.as_mut().ok_or_else(not_training)?;
        b.softmax_xent(&a.logits, &a.y, &mut g.dlogits, losses, s.loss_slot)?;
        self.backward(b, a)?;
        b.sgd_update(&mut self.params, &self.grads, &mut self.momentum, &self.groups, &self.hyper, &self.norms)?;
        b.end_step()
    }

    /// Add the batch `order[offset ..][.. a.batch]`'s summed loss and correct count to `acc` [2].
    pub fn eval_batch(
        &self,
        b: &mut B,
        a: &mut Activations<B>,
        data: &DeviceData<B>,
        acc: &mut B::Tensor,
        offset: u32,
    ) -> Result<()> {
        b.begin_step()?;
        b.gather_batch(&data.images, &data.labels, &data.order, offset as usize, &mut a.x, &mut a.y)?;
        self.forward(b, a)?;
        b.eval_accumulate(&a.logits, &a.y, acc)?;
        b.end_step()
    }

    /// Copy every parameter back to the host, in [`PARAMS`] order.
    pub fn read_weights(&self, b: &mut B) -> Result<Vec<Vec<f32>>> {
        self.params.iter().map(|t| b.read(t)).collect()
    }
}

fn not_training() -> crate::Error {
    crate::Error::Usage("activations were allocated for evaluation only (train = false)".into())
}

/// A dataset split resident on the backend: normalized images [M,1,28,28], labels [M], and the order in which
/// batches are drawn (rewritten each epoch when shuffling).
pub struct DeviceData<B: Backend> {
    pub images: B::Tensor,
    pub labels: B::Indices,
    pub order: B::Indices,
    pub len: usize,
}

impl<B: Backend> DeviceData<B> {
    /// Upload once; the order starts as the identity.
    pub fn upload(b: &mut B, images: &[f32], labels: &[u32], name: &str) -> Result<Self> {
        let len = labels.len();
        let identity: Vec<u32> = (0..len as u32).collect();
        Ok(DeviceData {
            images: b.tensor(images, &[len, IMAGE[0], IMAGE[1], IMAGE[2]], &format!("{name}.images"))?,
            labels: b.indices(labels, &format!("{name}.labels"))?,
            order: b.indices(&identity, &format!("{name}.order"))?,
            len,
        })
    }
}
