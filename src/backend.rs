//! The narrow set of ops the sample CNN needs, forward and backward.
//!
//! A backend *records* ops: the CPU backend runs each at once, the GPU backend encodes them into the current
//! step's command encoder and submits once at [`Backend::end_step`]. Outputs are preallocated tensors passed by
//! `&mut`, so a training step allocates nothing after the first. Every op checks shapes and returns
//! [`Error::Shape`](crate::Error::Shape) rather than panicking.
//!
//! Member axis (populations, `sweep --parallel P`, [`crate::train::population`]): a tensor may hold `members`
//! copies of its shape, member-major ([`Backend::zeros_members`], [`Backend::zeros_packed_members`]);
//! [`Backend::shape`] is one member's shape, [`Backend::members`] the count, and `write`/`read`/`read_set` move
//! every member's values, member 0 first. Every op runs once per member m on member m's copies, as one op (on
//! the GPU: one dispatch, the member a workgroup dimension), in this one rule:
//! - its outputs, and the parameters and state it reads, all have the same member count P (the op's P);
//! - an *input* with one member (the shared batch, a layer's fixed zero bias) is read by every member;
//! - index tensors (labels, orders) are always shared;
//! - slots (`losses[slot]`, `norms[slot]`, `acc`) are per member: member m's slot s of a tensor with P members;
//! - an update's `hyper` uniform holds P hyper-parameter blocks, member m's at m·(block size)
//!   (at most [`MAX_MEMBERS`]); a block with `frozen = 1` leaves that member's parameters and state untouched.
//!
//! With every count 1 each op is exactly the single-run op; a member's numbers never depend on another member.
//!
//! Layout is NCHW, row-major, f32, as in PyTorch. Shapes below use N = batch, C = in channels,
//! K = out channels, H×W = spatial size, I/O = linear in/out features, L = classes.

use crate::Result;

/// The most members a population (a member axis) holds: the update kernels declare this many hyper-parameter
/// blocks in their uniform, and each member adds its loss and norm rings to the step's bulk readback.
pub const MAX_MEMBERS: usize = 64;

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

/// Max-pools right after a conv + ReLU, run inside it ([`Backend::conv2d_relu_pool`]): a first pool of
/// `inner`×`inner` windows, then a second of `outer`×`outer` windows over its output (`outer` = 1: none), both
/// with stride = kernel. Together they pool `edge`×`edge` windows, `edge = inner·outer` (floor mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolChain {
    pub inner: usize,
    pub outer: usize,
}

impl PoolChain {
    /// The edge of the windows the two pools cover together.
    pub fn edge(&self) -> usize {
        self.inner * self.outer
    }

    /// Whether the fused op takes this chain: window edges 2, 4 or 8 (a GPU tile of 64 or 128 columns then holds
    /// whole windows); a [`Error::Shape`] naming `op` otherwise.
    pub fn check(&self, op: &'static str) -> Result<()> {
        if [2, 4, 8].contains(&self.edge()) {
            return Ok(());
        }
        Err(crate::Error::shape(
            op,
            format!("{self:?} pools {0}×{0} windows; the fused op takes edges 2, 4 or 8", self.edge()),
        ))
    }

    /// Pooled size of an input `size` long, None if a window does not fit (or a kernel is 0): floor(floor(size /
    /// inner) / outer) = floor(size / edge).
    pub fn out_size(&self, size: usize) -> Option<usize> {
        let e = self.edge();
        (e > 0 && size >= e).then(|| size / e)
    }
}

/// A compute backend. `Tensor` holds f32 values with a shape; `Indices` holds u32 values (labels, orders).
pub trait Backend {
    type Tensor;
    type Indices;
    /// A small block of bytes the host rewrites every step (an optimizer's hyper-parameters): a uniform buffer on
    /// the GPU, a byte vector on the CPU. Its layout is one of the `#[repr(C)]` structs of [`crate::optim::hyper`].
    type Uniform;

    /// Human-readable name, e.g. `cpu` or `NVIDIA H100 (Vulkan)`.
    fn name(&self) -> String;
    /// The largest storage binding the backend allows in bytes (bounds how many members' copies of a tensor a
    /// population may stack, `crate::train::population::member_cap`); None where memory is the only bound (CPU).
    fn max_binding_bytes(&self) -> Option<u64> {
        None
    }

    /// A zero-filled tensor. `label` names it in GPU debuggers and error messages.
    fn zeros(&mut self, shape: &[usize], label: &str) -> Result<Self::Tensor>;
    /// A zero-filled tensor with a member axis: `members` (1 to [`MAX_MEMBERS`]) copies of `shape`, member-major.
    fn zeros_members(&mut self, members: usize, shape: &[usize], label: &str) -> Result<Self::Tensor>;
    /// How many members' copies a tensor holds (1 for every tensor not made with a member axis).
    fn members(&self, t: &Self::Tensor) -> usize;
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
    /// Copy every tensor of `set` back to the host (in order). A GPU backend reads a whole packed set with one
    /// copy and one wait (checkpoints read the parameters and each optimizer state set this way).
    fn read_set(&mut self, set: &[Self::Tensor]) -> Result<Vec<Vec<f32>>> {
        set.iter().map(|t| self.read(t)).collect()
    }
    /// The shape of a tensor.
    fn shape<'a>(&self, t: &'a Self::Tensor) -> &'a [usize];

    /// Tensors of the given shapes allocated back to back in one allocation (zero-filled; on the GPU one
    /// buffer, each tensor a view at a 256-byte-aligned offset, the gaps zero forever). Multi-tensor ops
    /// ([`Backend::grad_norm`], [`Backend::sgd_update`], [`Backend::adam_update`]) take packed sets — all the
    /// tensors of one call, in order — so they cover every tensor in one or two dispatches; two packed sets made
    /// from the same shapes have the same layout. `labels` names each tensor (same length as `shapes`).
    fn zeros_packed(&mut self, shapes: &[Vec<usize>], labels: &[String]) -> Result<Vec<Self::Tensor>>;
    /// A packed set with a member axis: every tensor has `members` copies. On the GPU the set is member-major
    /// (member m's tensors are one single-member set at m·(set size)), so a multi-tensor op reads member m's
    /// whole set as one range; a tensor's copies lie a set size apart.
    fn zeros_packed_members(
        &mut self,
        members: usize,
        shapes: &[Vec<usize>],
        labels: &[String],
    ) -> Result<Vec<Self::Tensor>>;
    /// A uniform of `bytes` bytes (a positive multiple of 16), zero-filled.
    fn uniform(&mut self, bytes: usize, label: &str) -> Result<Self::Uniform>;
    /// Overwrite a uniform with `bytes` (exactly its size); takes effect before any op recorded after this call,
    /// like [`Backend::write`].
    fn write_uniform(&mut self, u: &mut Self::Uniform, bytes: &[u8]) -> Result<()>;

    /// Start a step (on the GPU: one encoder and one pass for every op until [`Backend::end_step`]; the first
    /// step of a backend also builds, together, the pipelines its ops need when it ends).
    fn begin_step(&mut self) -> Result<()>;
    /// Finish a step: on the GPU, one submit and no wait.
    fn end_step(&mut self) -> Result<()>;

    /// `x[i,:] = images[order[offset + i], :]`, `y[i] = labels[order[offset + i]]`, for i < B.
    /// images [M, D], labels [M], order [≥ offset + B], x [B, D], y [B].
    #[allow(clippy::too_many_arguments)]
    fn gather_batch(
        &mut self,
        images: &Self::Tensor,
        labels: &Self::Indices,
        order: &Self::Indices,
        offset: usize,
        x: &mut Self::Tensor,
        y: &mut Self::Indices,
    ) -> Result<()>;

    /// [`Backend::gather_batch`] from a dataset kept as bytes (a quarter of its f32 size): `x[i, j] =
    /// table[byte(order[offset + i]·D + j)]`, D = x's values per row, where byte(k) is byte k of `pixels` read as
    /// a little-endian byte stream (four per u32; the last word zero-padded) and `table` [256] the input value of
    /// each byte, computed once by the host (so both backends produce the same values, with no arithmetic).
    #[allow(clippy::too_many_arguments)]
    fn gather_pixels(
        &mut self,
        pixels: &Self::Indices,
        table: &Self::Tensor,
        labels: &Self::Indices,
        order: &Self::Indices,
        offset: usize,
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
    /// `conv2d_relu` followed by the max-pools of `pools`, as one op that writes only the pooled output:
    /// y [N,K,Hp,Wp] with Hp = floor(Ho / edge), Wp likewise. `argmax` [N,K,Hp,Wp] gets where each pooled value
    /// sits in its edge×edge window of the conv output, as di·edge + dj (an f32 holding a small integer), chosen
    /// as the two pools choose it: the inner pool's winner (their tie rule) inside the outer pool's winner.
    #[allow(clippy::too_many_arguments)]
    fn conv2d_relu_pool(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        geom: ConvGeom,
        pools: PoolChain,
        y: &mut Self::Tensor,
        argmax: &mut Self::Tensor,
    ) -> Result<()>;
    /// The backward of [`Backend::conv2d_relu_pool`]'s pools and ReLU: from the gradient at the pooled output
    /// `dy` [N,K,Hp,Wp], the gradient at the conv's pre-activation dx [N,K,Ho,Wo] — `dy` at each window's argmax
    /// where the pooled value `y` is > 0, 0 everywhere else (what `max_pool2d_backward` twice and
    /// `relu_backward` give).
    fn conv2d_relu_pool_backward(
        &mut self,
        y: &Self::Tensor,
        argmax: &Self::Tensor,
        dy: &Self::Tensor,
        pools: PoolChain,
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
    /// Writes `loss` to `losses[slot]`. logits [N,L], labels [N] (< L), dlogits [N,L], losses [S], slot < S.
    fn softmax_xent(
        &mut self,
        logits: &Self::Tensor,
        labels: &Self::Indices,
        dlogits: &mut Self::Tensor,
        losses: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;
    /// The classifier head of a training step as one op — a last linear layer, the loss and the layer's
    /// backward: `linear(x, w, b) → logits`, [`Backend::softmax_xent`] (`losses[slot]`, `dlogits`),
    /// `linear_backward_weight(x, dlogits) → dw, db`, and, when `dx` is given, `linear_backward_input` into it
    /// (`linear_backward_input_relu` masked by x when `relu_input`: x is then the ReLU output that fed the
    /// layer). The default runs exactly those ops ([`linear_softmax_xent_ops`]); the GPU fuses them into two
    /// dispatches with the same arithmetic.
    fn linear_softmax_xent(&mut self, h: Head<'_, Self>) -> Result<()>
    where
        Self: Sized,
    {
        linear_softmax_xent_ops(self, h)
    }

    /// Evaluation counters: `acc[0] += Σ_n (logsumexp(z[n,:]) − z[n,y_n])`,
    /// `acc[1] += #{n : argmax_l z[n,l] = y_n}` (first maximum wins ties). logits [N,L], labels [N], acc [2].
    fn eval_accumulate(&mut self, logits: &Self::Tensor, labels: &Self::Indices, acc: &mut Self::Tensor) -> Result<()>;

    /// Global L2 norm of a packed set of gradients: `norms[slot] = sqrt(Σ_t Σ_i grads[t][i]²)` (what
    /// `torch.nn.utils.clip_grad_norm_` measures, before clipping). The CPU accumulates in f64 and stores f32.
    /// grads: a whole packed set (not empty); norms [S], slot < S.
    fn grad_norm(&mut self, grads: &[Self::Tensor], norms: &mut Self::Tensor, slot: usize) -> Result<()>;

    /// `torch.optim.SGD` over a packed set, parameter t in group `groups[t]` (< [`crate::optim::MAX_GROUPS`]),
    /// hyper-parameters from `hyper` (an [`crate::optim::SgdHyper`]), gradients clipped first as `hyper.clip`
    /// says, reading the norm from `norms[hyper.clip.norm_slot]`:
    /// ```text
    /// g = grad
    /// if clip.use_norm:  g = g · min(1, max_norm · (1 / (norm + 1e-6)))   (f32, as clip_grad_norm_ computes it)
    /// if clip.use_value: g = clamp(g, −clip.value, clip.value)            (as clip_grad_value_)
    /// if weight_decay ≠ 0: g = g + weight_decay·param
    /// if momentum ≠ 0:  buf = g (init_momentum = 1)  or  momentum·buf + (1 − dampening)·g;
    ///                   g = g + momentum·buf (nesterov)  or  buf
    /// param = param − lr·g
    /// ```
    /// params, grads and bufs are packed sets of one layout, one entry of `groups` per parameter; `bufs` may be
    /// empty when no group has momentum. The gradient tensors are not modified.
    #[allow(clippy::too_many_arguments)]
    fn sgd_update(
        &mut self,
        params: &mut [Self::Tensor],
        grads: &[Self::Tensor],
        bufs: &mut [Self::Tensor],
        groups: &[u32],
        hyper: &Self::Uniform,
        norms: &Self::Tensor,
    ) -> Result<()>;

    /// `torch.optim.Adam` (decoupled = 0) / `AdamW` (decoupled = 1), single-tensor (non-foreach) formulation, at
    /// the step whose bias corrections `hyper` (an [`crate::optim::AdamHyper`]) carries, after the same clipping
    /// as [`Backend::sgd_update`]. f32 arithmetic in this order:
    /// ```text
    /// if weight_decay ≠ 0:
    ///     if decoupled: param = param · decay_factor
    ///     else:         g = g + weight_decay·param
    /// exp_avg    = lerp(exp_avg, g, 1 − beta1)     (torch.lerp: exp_avg + w·(g − exp_avg) for w < 0.5,
    ///                                               else g − (g − exp_avg)·(1 − w))
    /// exp_avg_sq = beta2·exp_avg_sq + ((1 − beta2)·g)·g
    /// if amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq); v = max_exp_avg_sq  else v = exp_avg_sq
    /// denom = sqrt(v) / bias_correction2_sqrt + eps
    /// param = param − (step_size · exp_avg) / denom
    /// ```
    /// `1 − beta1` and `1 − beta2` are the hyper block's `one_minus_beta1`/`one_minus_beta2` (the host's f64
    /// values rounded once, as PyTorch's Python floats), never formed from the f32 betas.
    /// All sets are packed sets of one layout; `max_exp_avg_sq` may be empty unless `hyper.amsgrad = 1`.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        &mut self,
        params: &mut [Self::Tensor],
        grads: &[Self::Tensor],
        exp_avg: &mut [Self::Tensor],
        exp_avg_sq: &mut [Self::Tensor],
        max_exp_avg_sq: &mut [Self::Tensor],
        groups: &[u32],
        hyper: &Self::Uniform,
        norms: &Self::Tensor,
    ) -> Result<()>;
}

/// A member count must be 1 to [`MAX_MEMBERS`].
/// The tensors of [`Backend::linear_softmax_xent`]: the layer's input x [N, I] (any shape with N·I elements),
/// weight w [L, I] and bias b [L], the labels [N]; what it writes: `logits` and `dlogits` [N, L],
/// `losses[slot]`, dw [L, I], db [L] and (unless the layer is the model's first) dx shaped like x.
pub struct Head<'a, B: Backend> {
    pub x: &'a B::Tensor,
    pub w: &'a B::Tensor,
    pub b: &'a B::Tensor,
    pub labels: &'a B::Indices,
    /// Whether x is a ReLU output, so that dx is masked where x ≤ 0.
    pub relu_input: bool,
    pub logits: &'a mut B::Tensor,
    pub dlogits: &'a mut B::Tensor,
    pub losses: &'a mut B::Tensor,
    pub slot: usize,
    pub dw: &'a mut B::Tensor,
    pub db: &'a mut B::Tensor,
    pub dx: Option<&'a mut B::Tensor>,
}

/// [`Backend::linear_softmax_xent`] as the ops it stands for, one after another: the definition, what the CPU
/// runs, and the GPU's fallback where its fused kernels do not apply.
pub fn linear_softmax_xent_ops<B: Backend>(be: &mut B, h: Head<'_, B>) -> Result<()> {
    be.linear(h.x, h.w, h.b, h.logits)?;
    be.softmax_xent(h.logits, h.labels, h.dlogits, h.losses, h.slot)?;
    be.linear_backward_weight(h.x, h.dlogits, h.dw, h.db)?;
    match h.dx {
        Some(dx) if h.relu_input => be.linear_backward_input_relu(h.dlogits, h.w, h.x, dx),
        Some(dx) => be.linear_backward_input(h.dlogits, h.w, dx),
        None => Ok(()),
    }
}

pub fn check_members(op: &'static str, label: &str, members: usize) -> Result<()> {
    if (1..=MAX_MEMBERS).contains(&members) {
        Ok(())
    } else {
        Err(crate::Error::shape(op, format!("`{label}`: {members} members; a member axis holds 1 to {MAX_MEMBERS}")))
    }
}

/// `bytes` as a little-endian stream of u32 words (the last one zero-padded): the layout of
/// [`Backend::gather_pixels`]'s `pixels`.
pub fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |w, &b| (w << 8) | u32::from(b))).collect()
}

/// Byte `k` of a stream packed by [`pack_bytes`].
pub fn packed_byte(words: &[u32], k: usize) -> u8 {
    (words[k / 4] >> (8 * (k % 4))) as u8
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}
