//! The narrow set of ops the sample CNN needs, forward and backward.
//!
//! A backend *records* ops: the CPU backend runs each at once, the GPU backend encodes them into the current
//! step's command encoder and submits once at [`Backend::end_step`]. Outputs are preallocated tensors passed by
//! `&mut`, so a training step allocates nothing after the first. Every op checks shapes and returns
//! [`Error::Shape`](crate::Error::Shape) rather than panicking.
//!
//! Layout is NCHW, row-major, f32, as in PyTorch. Shapes below use N = batch, C = in channels,
//! K = out channels, H×W = spatial size, I/O = linear in/out features, L = classes.

use bytemuck::{Pod, Zeroable};

use crate::Result;

/// Values that change every step, written once before the step's ops (on the GPU: one `queue.write_buffer`
/// into a uniform before the step's submit, so the scheduler never forces a pipeline rebuild or a readback).
///
/// Mirrored field for field by `struct StepParams` in the WGSL files that read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepParams {
    /// Learning rate used by this step's update (PyTorch casts the Python float to f32 too).
    pub lr: f32,
    /// SGD momentum μ (0 disables the buffer, as in PyTorch).
    pub momentum: f32,
    /// SGD dampening.
    pub dampening: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
    /// 1 for Nesterov momentum.
    pub nesterov: u32,
    /// 1 when the momentum buffers have never been written: PyTorch sets `buf = g` on its first use.
    pub init_momentum: u32,
    /// Index into the order tensor of this step's first example (see [`Backend::gather_batch`]).
    pub batch_offset: u32,
    /// Slot of the loss buffer that [`Backend::softmax_xent`] writes this step's mean loss into.
    pub loss_slot: u32,
}

/// Convolution geometry. The kernel is square, k×k, taken from the weight's shape [K,C,k,k].
/// Output size per spatial dim: Ho = (H + 2·padding − k) / stride + 1 (floor); needs H + 2·padding ≥ k, stride ≥ 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeom {
    /// stride 1, no padding (the sample CNN's convolutions).
    pub const UNIT: ConvGeom = ConvGeom { stride: 1, padding: 0 };

    /// Output size for an input of `size` and a kernel of `kernel`, None if the kernel does not fit
    /// (or stride or kernel is 0).
    pub fn out_size(&self, size: usize, kernel: usize) -> Option<usize> {
        let padded = size.checked_add(self.padding.checked_mul(2)?)?;
        if self.stride == 0 || kernel == 0 || padded < kernel {
            return None;
        }
        Some((padded - kernel) / self.stride + 1)
    }
}

/// Max-pool geometry: window kernel×kernel, `stride` (floor mode, no padding). Ho = (H − kernel)/stride + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeom {
    pub kernel: usize,
    pub stride: usize,
}

impl PoolGeom {
    /// 2×2 windows, stride 2 (the sample CNN's pooling).
    pub const TWO: PoolGeom = PoolGeom { kernel: 2, stride: 2 };

    /// Output size for an input of `size`, None if the window does not fit (or kernel or stride is 0).
    pub fn out_size(&self, size: usize) -> Option<usize> {
        if self.stride == 0 || self.kernel == 0 || size < self.kernel {
            return None;
        }
        Some((size - self.kernel) / self.stride + 1)
    }
}

/// A compute backend. `Tensor` holds f32 values with a shape; `Indices` holds u32 values (labels, orders).
pub trait Backend {
    type Tensor;
    type Indices;

    /// Human-readable name, e.g. `cpu` or `NVIDIA H100 (Vulkan)`.
    fn name(&self) -> String;

    /// A zero-filled tensor. `label` names it in GPU debuggers and error messages.
    fn zeros(&mut self, shape: &[usize], label: &str) -> Result<Self::Tensor>;
    /// A tensor holding `data` (length must equal the product of `shape`).
    fn tensor(&mut self, data: &[f32], shape: &[usize], label: &str) -> Result<Self::Tensor>;
    /// An index tensor holding `data`.
    fn indices(&mut self, data: &[u32], label: &str) -> Result<Self::Indices>;
    /// Overwrite a tensor's contents (takes effect before any op recorded after this call).
    fn write(&mut self, dst: &mut Self::Tensor, data: &[f32]) -> Result<()>;
    /// Overwrite an index tensor's contents (takes effect before any op recorded after this call).
    fn write_indices(&mut self, dst: &mut Self::Indices, data: &[u32]) -> Result<()>;
    /// Copy a tensor back to the host, finishing all recorded work first.
    fn read(&mut self, src: &Self::Tensor) -> Result<Vec<f32>>;
    /// The shape of a tensor.
    fn shape<'a>(&self, t: &'a Self::Tensor) -> &'a [usize];

    /// Start a step: make `p` visible to every op recorded until [`Backend::end_step`].
    fn begin_step(&mut self, p: &StepParams) -> Result<()>;
    /// Finish a step: on the GPU, one submit and no wait.
    fn end_step(&mut self) -> Result<()>;

    /// `x[i,:] = images[order[p.batch_offset + i], :]`, `y[i] = labels[order[p.batch_offset + i]]`,
    /// for i < B. images [M, D], labels [M], order [≥ batch_offset + B], x [B, D], y [B].
    fn gather_batch(
        &mut self,
        images: &Self::Tensor,
        labels: &Self::Indices,
        order: &Self::Indices,
        x: &mut Self::Tensor,
        y: &mut Self::Indices,
    ) -> Result<()>;

    /// Convolution with a square k×k kernel (k from w's shape), stride and zero padding (cross-correlation, as
    /// `torch.nn.Conv2d`): `y[n,k,i,j] = b[k] + Σ_{c,u,v} w[k,c,u,v]·x[n,c,i·s−p+u, j·s−p+v]`, x read as 0
    /// outside the image. x [N,C,H,W], w [K,C,k,k], b [K], y [N,K,Ho,Wo] with Ho, Wo from [`ConvGeom::out_size`].
    fn conv2d(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        geom: ConvGeom,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// `dx[n,c,h,w] = Σ_{k,u,v} w[k,c,u,v]·dy[n,k,i,j]` over the (i, j) with i·s−p+u = h, j·s−p+v = w.
    /// dy [N,K,Ho,Wo], w [K,C,k,k], dx [N,C,H,W].
    fn conv2d_backward_input(
        &mut self,
        dy: &Self::Tensor,
        w: &Self::Tensor,
        geom: ConvGeom,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// `dw[k,c,u,v] = Σ_{n,i,j} dy[n,k,i,j]·x[n,c,i·s−p+u, j·s−p+v]`, `db[k] = Σ_{n,i,j} dy[n,k,i,j]`
    /// (overwritten).
    fn conv2d_backward_weight(
        &mut self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        geom: ConvGeom,
        dw: &mut Self::Tensor,
        db: &mut Self::Tensor,
    ) -> Result<()>;

    /// Max-pool, floor mode, no padding: `y[n,c,i,j] = max_{u,v<kernel} x[n,c,i·stride+u, j·stride+v]`.
    /// x [N,C,H,W], y [N,C,Ho,Wo] with Ho, Wo from [`PoolGeom::out_size`].
    fn max_pool2d(&mut self, x: &Self::Tensor, geom: PoolGeom, y: &mut Self::Tensor) -> Result<()>;
    /// Routes each `dy[n,c,i,j]` to the first maximum of its window in row-major order (PyTorch's tie rule:
    /// a later element wins only if strictly greater; NaN wins), *accumulated* where windows overlap
    /// (stride < kernel); every other `dx` entry is 0.
    fn max_pool2d_backward(
        &mut self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        geom: PoolGeom,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// `y = max(x, 0)` element-wise (any shape; y may not alias x).
    fn relu(&mut self, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// `dx = dy where y > 0 else 0`, y being the ReLU output (y > 0 ⇔ x > 0, PyTorch's gradient at 0 is 0).
    fn relu_backward(&mut self, y: &Self::Tensor, dy: &Self::Tensor, dx: &mut Self::Tensor) -> Result<()>;

    // Fused ReLU layers: each equals the unfused ops named, bit for bit (the ReLU only selects values), and
    // saves the pre-activation tensor and a memory pass over it (on the GPU, a dispatch too).

    /// `conv2d` then `relu`: y = max(conv(x, w) + b, 0).
    fn conv2d_relu(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        geom: ConvGeom,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// `conv2d_backward_input` then `relu_backward` with `mask`: dx = ∂/∂x where mask > 0 else 0, `mask` being
    /// the ReLU output this conv read (shaped like dx).
    fn conv2d_backward_input_relu(
        &mut self,
        dy: &Self::Tensor,
        w: &Self::Tensor,
        mask: &Self::Tensor,
        geom: ConvGeom,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// `max_pool2d_backward` then `relu_backward` with `x`: dx = 0 where x ≤ 0 (x being a ReLU output).
    fn max_pool2d_backward_relu(
        &mut self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        geom: PoolGeom,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// `linear` then `relu`.
    fn linear_relu(&mut self, x: &Self::Tensor, w: &Self::Tensor, b: &Self::Tensor, y: &mut Self::Tensor)
    -> Result<()>;
    /// `linear_backward_input` then `relu_backward` with `mask` (the ReLU output this layer read, shaped like dx).
    fn linear_backward_input_relu(
        &mut self,
        dy: &Self::Tensor,
        w: &Self::Tensor,
        mask: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// `y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]` (`torch.nn.Linear`). x [N,I], w [O,I], b [O], y [N,O].
    /// x may have more dimensions; it is read as [N, product of the rest] (flatten in C,H,W order).
    fn linear(&mut self, x: &Self::Tensor, w: &Self::Tensor, b: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// `dx = dy·w` (dx [N,I], any shape with N·I elements).
    fn linear_backward_input(&mut self, dy: &Self::Tensor, w: &Self::Tensor, dx: &mut Self::Tensor) -> Result<()>;
    /// `dw = dyᵀ·x` [O,I], `db[o] = Σ_n dy[n,o]` (overwritten).
    fn linear_backward_weight(
        &mut self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dw: &mut Self::Tensor,
        db: &mut Self::Tensor,
    ) -> Result<()>;

    /// Fused softmax cross-entropy, mean over the batch:
    /// `loss = (1/N)·Σ_n (logsumexp(z[n,:]) − z[n,y_n])`, `dz[n,l] = (softmax(z[n,:])_l − [l = y_n]) / N`.
    /// Writes `loss` to `losses[p.loss_slot]`. logits [N,L], labels [N] (< L), dlogits [N,L], losses [S].
    fn softmax_xent(
        &mut self,
        logits: &Self::Tensor,
        labels: &Self::Indices,
        dlogits: &mut Self::Tensor,
        losses: &mut Self::Tensor,
    ) -> Result<()>;
    /// Evaluation counters: `acc[0] += Σ_n (logsumexp(z[n,:]) − z[n,y_n])`,
    /// `acc[1] += #{n : argmax_l z[n,l] = y_n}` (first maximum wins ties). logits [N,L], labels [N], acc [2].
    fn eval_accumulate(&mut self, logits: &Self::Tensor, labels: &Self::Indices, acc: &mut Self::Tensor) -> Result<()>;

    /// One parameter's update exactly as `torch.optim.SGD`, hyper-parameters from the current [`StepParams`]:
    /// ```text
    /// g = grad + weight_decay·param
    /// if momentum ≠ 0:
    ///     buf = g                                   (init_momentum = 1)
    ///     buf = momentum·buf + (1 − dampening)·g    (otherwise)
    ///     g = g + momentum·buf  if nesterov  else buf
    /// param = param − lr·g
    /// ```
    /// param, grad and buf have the same number of elements.
    fn sgd_update(&mut self, param: &mut Self::Tensor, grad: &Self::Tensor, buf: &mut Self::Tensor) -> Result<()>;
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}
