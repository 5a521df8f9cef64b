//! Every compute pipeline the backend uses, named by a [`KernelKey`] (family, mode, epilogue, tile) from which
//! the WGSL file, entry point, override constants and bind layout are derived: one rule per field rather than
//! one hand-written row per variant, so a new variant is a new combination, and [`KernelKey::all`]
//! enumerates exactly the combinations [`KernelKey::exists`] allows. Shader sources are compiled into the binary from `shaders/`; pipelines are built once,
//! up front on several threads ([`Kernels::build_many`]) or on first use, inside error scopes, so a bad shader
//! is an [`Error::Shader`] naming file and entry point.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, Result};

/// Every WGSL file the code loads, with its source. `tests/naga_shaders.rs` checks this equals the set of
/// files in `shaders/`, so neither side can drift.
pub const SHADERS: &[(&str, &str)] = &[
    ("adam.wgsl", include_str!("../../shaders/adam.wgsl")),
    ("conv2d.wgsl", include_str!("../../shaders/conv2d.wgsl")),
    ("elementwise.wgsl", include_str!("../../shaders/elementwise.wgsl")),
    ("gather.wgsl", include_str!("../../shaders/gather.wgsl")),
    ("grad_norm.wgsl", include_str!("../../shaders/grad_norm.wgsl")),
    ("head.wgsl", include_str!("../../shaders/head.wgsl")),
    ("matmul.wgsl", include_str!("../../shaders/matmul.wgsl")),
    ("pool.wgsl", include_str!("../../shaders/pool.wgsl")),
    ("sgd.wgsl", include_str!("../../shaders/sgd.wgsl")),
    ("softmax_xent.wgsl", include_str!("../../shaders/softmax_xent.wgsl")),
];

/// What a binding slot holds; the explicit bind-group layout is built from the slots of a [`Layout`], and a
/// mismatch with the WGSL declaration is a validation error at pipeline creation (caught, not a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Uniform,
    Read,
    ReadWrite,
}

/// One buffer of a bind layout: its name (a field of the family's bindings struct in `bindings.rs`), its
/// `@binding` number and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub binding: u32,
    pub kind: Bind,
}

/// A kernel family's bind layout, in the order its bindings struct lists its fields.
pub type Layout = &'static [Slot];

/// What a kernel computes: one WGSL entry point (two for `GradNorm`, …) and one bind layout per mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Gather,
    /// Linear layers, matmul.wgsl: forward `x·wᵀ`, backward-input `dy·w`, backward-weight `dyᵀ·x`.
    Matmul,
    /// The second half of a split-K product (matmul.wgsl), with the product's epilogue.
    ReduceSplits,
    /// Implicit-GEMM convolution, conv2d.wgsl, in its three modes.
    Conv2d,
    MaxPool2d,
    Relu,
    BiasGrad,
    /// Forward: loss and dlogits; Eval: loss sum and correct count.
    SoftmaxXent,
    /// The classifier head of a training step (last linear layer + softmax cross-entropy + the layer's
    /// backward), head.wgsl: Forward per block of rows, BackwardWeight over the batch.
    Head,
    /// Partials: squares summed per workgroup; Finish: one workgroup adds them and takes the root.
    GradNorm,
    /// Multi-tensor updates: one dispatch for every tensor of a packed set.
    Sgd,
    Adam,
}

/// Which pass of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// The family has one entry point.
    Single,
    Forward,
    /// Backward of a family with one input (ReLU, pool).
    Backward,
    BackwardInput,
    BackwardWeight,
    Eval,
    Partials,
    Finish,
    /// Gather from a dataset kept as bytes.
    Pixels,
}

/// What a GEMM (or pool backward) does to each output before storing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Epilogue {
    None,
    /// `+ bias[row or col]`
    Bias,
    /// `max(· + bias, 0)`: the forward of a layer followed by a ReLU.
    BiasRelu,
    /// `max(·, 0)` (the conv forward always adds its bias).
    Relu,
    /// `· where mask > 0 else 0`: backward through the ReLU whose output (`mask`) fed the layer.
    Mask,
    /// A backward-weight product that also writes the bias gradient beside dw (extra workgroups that sum dy's
    /// channels in `bias_grad`'s order).
    BiasGrad,
    /// A conv forward with bias, ReLU and a chain of max-pools, writing only the pooled output and its argmax;
    /// and that chain's backward (a gather through the argmax).
    ReluPool,
}

/// Output tile of the tiled kernels (conv2d.wgsl), with the outputs per thread (TM × TN) that set it: a
/// workgroup of 16×16 threads computes 16·TM × 16·TN outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tile {
    /// 64×64 (4×4 per thread), and the only tile of the other families.
    Square64,
    /// 32×128 (2×8): products of at most 32 rows.
    M32,
    /// 64×128 (4×8): products of 33–64 rows and many columns (the sample CNN's conv2 forward).
    M64,
    /// 128×128 (8×8 per thread): products of more than 64 rows and many columns.
    Square128,
    /// 32×16 (2×1): outputs of at most 32×16, such as conv1's weight gradient (32×9).
    Narrow,
}

impl Tile {
    /// Outputs per thread (TM rows × TN columns).
    pub const fn per_thread(self) -> (usize, usize) {
        match self {
            Tile::Square64 => (4, 4),
            Tile::M32 => (2, 8),
            Tile::M64 => (4, 8),
            Tile::Square128 => (8, 8),
            Tile::Narrow => (2, 1),
        }
    }

    /// Output rows × columns of one workgroup.
    pub const fn shape(self) -> (usize, usize) {
        let (tm, tn) = self.per_thread();
        (16 * tm, 16 * tn)
    }
}

/// One pipeline: a family's entry point in one mode, specialised by its epilogue and tile (override constants).
/// The file, entry point, override constants and bind layout are all derived from these four fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelKey {
    pub family: Family,
    pub mode: Mode,
    pub epilogue: Epilogue,
    pub tile: Tile,
}

const FAMILIES: [Family; 12] = [
    Family::Gather,
    Family::Matmul,
    Family::ReduceSplits,
    Family::Conv2d,
    Family::MaxPool2d,
    Family::Relu,
    Family::BiasGrad,
    Family::SoftmaxXent,
    Family::Head,
    Family::GradNorm,
    Family::Sgd,
    Family::Adam,
];
const MODES: [Mode; 9] = [
    Mode::Single,
    Mode::Forward,
    Mode::Backward,
    Mode::BackwardInput,
    Mode::BackwardWeight,
    Mode::Eval,
    Mode::Partials,
    Mode::Finish,
    Mode::Pixels,
];
const EPILOGUES: [Epilogue; 7] = [
    Epilogue::None,
    Epilogue::Bias,
    Epilogue::BiasRelu,
    Epilogue::Relu,
    Epilogue::Mask,
    Epilogue::BiasGrad,
    Epilogue::ReluPool,
];
const TILES: [Tile; 5] = [Tile::Square64, Tile::M32, Tile::M64, Tile::Square128, Tile::Narrow];

impl KernelKey {
    /// `family` in `mode`, no epilogue, the default tile.
    pub const fn new(family: Family, mode: Mode) -> KernelKey {
        KernelKey { family, mode, epilogue: Epilogue::None, tile: Tile::Square64 }
    }

    pub const fn with(self, epilogue: Epilogue) -> KernelKey {
        KernelKey { epilogue, ..self }
    }

    pub const fn tile(self, tile: Tile) -> KernelKey {
        KernelKey { tile, ..self }
    }

    /// Whether the shaders implement this combination.
    pub fn exists(self) -> bool {
        use Epilogue as E;
        use Family as F;
        use Mode as M;
        let e = self.epilogue;
        let tile_ok = self.tile == Tile::Square64 || self.family == F::Conv2d;
        tile_ok
            && match (self.family, self.mode) {
                (F::Gather | F::BiasGrad | F::Sgd | F::Adam, M::Single) | (F::Gather, M::Pixels) => e == E::None,
                // The reduction applies whichever epilogue the split product would have.
                (F::ReduceSplits, M::Single) => matches!(e, E::None | E::Bias | E::BiasRelu | E::Mask),
                (F::Matmul, M::Forward) => matches!(e, E::None | E::Bias | E::BiasRelu),
                (F::Matmul | F::Conv2d, M::BackwardInput) => matches!(e, E::None | E::Mask),
                (F::Matmul | F::Conv2d, M::BackwardWeight) => matches!(e, E::None | E::BiasGrad),
                // The pooled conv needs tiles of whole windows (BN a multiple of 64): not the narrow one.
                (F::Conv2d, M::Forward) => {
                    matches!(e, E::None | E::Relu) || (e == E::ReluPool && self.tile != Tile::Narrow)
                }
                (F::MaxPool2d, M::Backward) => matches!(e, E::None | E::Mask | E::ReluPool),
                (F::Head, M::Forward) => matches!(e, E::None | E::Mask),
                (F::Head, M::BackwardWeight) => e == E::None,
                (F::MaxPool2d | F::Relu | F::SoftmaxXent, M::Forward)
                | (F::Relu, M::Backward)
                | (F::SoftmaxXent, M::Eval)
                | (F::GradNorm, M::Partials | M::Finish) => e == E::None,
                _ => false,
            }
    }

    /// Every key the shaders implement (for `build_all_pipelines` and the naga tests), in a fixed order.
    pub fn all() -> Vec<KernelKey> {
        let mut keys = Vec::new();
        for family in FAMILIES {
            for mode in MODES {
                for epilogue in EPILOGUES {
                    for tile in TILES {
                        let k = KernelKey { family, mode, epilogue, tile };
                        if k.exists() {
                            keys.push(k);
                        }
                    }
                }
            }
        }
        keys
    }

    /// The WGSL file and entry point, and the bind layout.
    pub fn shader(self) -> (&'static str, &'static str, Layout) {
        use super::bindings as b;
        use Family as F;
        use Mode as M;
        use b::layout_of as l;
        match (self.family, self.mode) {
            (F::Gather, M::Pixels) => ("gather.wgsl", "gather_pixels", l::<b::GatherPixels>()),
            (F::Gather, _) => ("gather.wgsl", "gather_batch", l::<b::Gather>()),
            (F::Matmul, _) => ("matmul.wgsl", "matmul", l::<b::Gemm>()),
            (F::ReduceSplits, _) => ("matmul.wgsl", "reduce_splits", l::<b::Reduce>()),
            (F::Conv2d, _) if self.epilogue == Epilogue::ReluPool => ("conv2d.wgsl", "conv2d_pool", l::<b::ConvPool>()),
            (F::Conv2d, _) => ("conv2d.wgsl", "conv2d", l::<b::Gemm>()),
            (F::MaxPool2d, M::Backward) if self.epilogue == Epilogue::ReluPool => {
                ("pool.wgsl", "pool_chain_backward", l::<b::PoolChainBackward>())
            }
            (F::MaxPool2d, M::Backward) => ("pool.wgsl", "max_pool2d_backward", l::<b::PoolBackward>()),
            (F::MaxPool2d, _) => ("pool.wgsl", "max_pool2d", l::<b::PoolForward>()),
            (F::Relu, M::Backward) => ("elementwise.wgsl", "relu_backward", l::<b::ReluBackward>()),
            (F::Relu, _) => ("elementwise.wgsl", "relu", l::<b::ReluForward>()),
            (F::BiasGrad, _) => ("elementwise.wgsl", "bias_grad", l::<b::BiasGrad>()),
            (F::SoftmaxXent, M::Eval) => ("softmax_xent.wgsl", "eval_accumulate", l::<b::EvalAccumulate>()),
            (F::SoftmaxXent, _) => ("softmax_xent.wgsl", "softmax_xent", l::<b::SoftmaxXent>()),
            (F::Head, M::BackwardWeight) => ("head.wgsl", "head_weights", l::<b::HeadWeights>()),
            (F::Head, _) => ("head.wgsl", "head_forward", l::<b::HeadForward>()),
            (F::GradNorm, M::Finish) => ("grad_norm.wgsl", "grad_norm_finish", l::<b::NormFinish>()),
            (F::GradNorm, _) => ("grad_norm.wgsl", "grad_norm_partials", l::<b::NormPartials>()),
            (F::Sgd, _) => ("sgd.wgsl", "sgd_update", l::<b::Sgd>()),
            (F::Adam, _) => ("adam.wgsl", "adam_update", l::<b::Adam>()),
        }
    }

    pub fn file(self) -> &'static str {
        self.shader().0
    }

    pub fn entry(self) -> &'static str {
        self.shader().1
    }

    pub fn layout(self) -> Layout {
        self.shader().2
    }

    /// The override constants: the mode (GEMM transposes, conv MODE), the epilogue's flags and the tile.
    pub fn constants(self) -> Vec<(&'static str, f64)> {
        use Family as F;
        use Mode as M;
        let mut c = Vec::new();
        match (self.family, self.mode) {
            (F::Matmul, M::Forward) => c.push(("TRANS_B", 1.0)),
            (F::Matmul, M::BackwardWeight) => c.push(("TRANS_A", 1.0)),
            (F::Conv2d, M::Forward) => c.push(("MODE", 0.0)),
            (F::Conv2d, M::BackwardInput) => c.push(("MODE", 1.0)),
            (F::Conv2d, M::BackwardWeight) => c.push(("MODE", 2.0)),
            _ => {}
        }
        match self.epilogue {
            Epilogue::None => {}
            Epilogue::Bias => c.push(("HAS_BIAS", 1.0)),
            Epilogue::BiasRelu => c.extend([("HAS_BIAS", 1.0), ("RELU", 1.0)]),
            Epilogue::Relu => c.push(("RELU", 1.0)),
            Epilogue::Mask => c.push(("MASK", 1.0)),
            Epilogue::BiasGrad => c.push(("BIAS_GRAD", 1.0)),
            Epilogue::ReluPool if self.family == Family::Conv2d => c.push(("POOL", 1.0)),
            Epilogue::ReluPool => {}
        }
        if self.tile != Tile::Square64 {
            let (tm, tn) = self.tile.per_thread();
            c.extend([("TM", tm as f64), ("TN", tn as f64)]);
        }
        c
    }

    /// Debug label of the pipeline, e.g. `conv2d.wgsl:conv2d[MODE=1,MASK=1]`.
    pub fn pipeline_label(self) -> String {
        let c: Vec<String> = self.constants().iter().map(|(k, v)| format!("{k}={v}")).collect();
        if c.is_empty() {
            format!("{}:{}", self.file(), self.entry())
        } else {
            format!("{}:{}[{}]", self.file(), self.entry(), c.join(","))
        }
    }
}

/// `Family/Mode+Epilogue[Tile]`, leaving out what is the default: `Conv2d/BackwardInput+Mask[M32]`, `Sgd`.
impl std::fmt::Display for KernelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.family)?;
        if self.mode != Mode::Single {
            write!(f, "/{:?}", self.mode)?;
        }
        if self.epilogue != Epilogue::None {
            write!(f, "+{:?}", self.epilogue)?;
        }
        if self.tile != Tile::Square64 {
            write!(f, "[{:?}]", self.tile)?;
        }
        Ok(())
    }
}

pub fn source(file: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(f, _)| *f == file).map(|(_, s)| *s)
}

/// A built pipeline and the layout its bind groups are made against.
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Shader modules and pipelines, kept for the device's lifetime: built up front by [`Kernels::build_many`]
/// (several threads) or, for a key not built yet, on first use by [`Kernels::get`].
#[derive(Default)]
pub struct Kernels {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<KernelKey, Pipeline>,
    /// The driver's pipeline cache, where the device has `PIPELINE_CACHE`, and the file it is saved to after
    /// [`Kernels::build_many`] built something (see `pipeline_cache.rs`).
    cache: Option<wgpu::PipelineCache>,
    cache_file: Option<PathBuf>,
    /// Whether modules keep naga's runtime checks (see [`ShaderChecks`]).
    checks: ShaderChecks,
}

/// How shader modules are built.
///
/// `Trusted` (the default) builds them without naga's runtime checks
/// (`create_shader_module_trusted` with `ShaderRuntimeChecks::unchecked()`): no index clamp on every buffer and
/// array access, no guard counter in every loop, no guard on integer division. The guard counter alone stops
/// drivers from unrolling the tile loops, which pushes the register tiles (`acc`, `ar`, `br`) into local
/// memory: measured on an H200, the sample CNN's conv2 products ran at 290–590 GFLOP/s checked and at 3.7–19
/// TFLOP/s trusted, 11.8 s against 0.50 s per MNIST epoch (docs/performance.md). What makes it safe is that
/// every kernel keeps its accesses inside its operands itself — each `.wgsl` file says how (its guards, and
/// why every divisor is non-zero) — and `tests/gpu_guards.rs` makes that a checked fact: every [`KernelKey`]
/// runs on odd shapes with its outputs between poisoned guard regions, trusted and checked builds must agree
/// bit for bit, and the guards must stay untouched.
///
/// `Checked` keeps every runtime check (`create_shader_module`): for debugging a kernel, set
/// `WGTRAIN_SHADER_CHECKS=1` (read when a backend is opened) or call
/// [`GpuBackend::set_shader_checks`](super::GpuBackend::set_shader_checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShaderChecks {
    #[default]
    Trusted,
    Checked,
}

impl ShaderChecks {
    /// `Checked` when `WGTRAIN_SHADER_CHECKS` is set to anything but `0` or the empty string.
    pub fn from_env() -> ShaderChecks {
        Self::from_setting(std::env::var("WGTRAIN_SHADER_CHECKS").ok().as_deref())
    }

    /// What a value of `WGTRAIN_SHADER_CHECKS` (`None`: unset) asks for.
    pub fn from_setting(value: Option<&str>) -> ShaderChecks {
        match value.map(str::trim) {
            Some(v) if !v.is_empty() && v != "0" => ShaderChecks::Checked,
            _ => ShaderChecks::Trusted,
        }
    }
}

impl Kernels {
    /// No pipelines yet; pipelines are built through `cache` (and it is saved to `cache_file`) when given, from
    /// modules built as `checks` says.
    pub fn new(cache: Option<(wgpu::PipelineCache, Option<PathBuf>)>, checks: ShaderChecks) -> Kernels {
        let (cache, cache_file) = cache.map_or((None, None), |(c, f)| (Some(c), f));
        Kernels { cache, cache_file, checks, ..Kernels::default() }
    }

    /// How this set builds its modules.
    pub fn checks(&self) -> ShaderChecks {
        self.checks
    }

    /// The driver's pipeline cache and its file, handed on when the set is rebuilt with other checks.
    pub fn take_cache(&mut self) -> Option<(wgpu::PipelineCache, Option<PathBuf>)> {
        self.cache.take().map(|c| (c, self.cache_file.take()))
    }

    /// Every key whose pipeline is built (the guard-region test checks that it ran them all).
    pub fn built_keys(&self) -> Vec<KernelKey> {
        let mut keys: Vec<KernelKey> = self.pipelines.keys().copied().collect();
        keys.sort();
        keys
    }

    /// How many pipelines are built.
    pub fn built(&self) -> usize {
        self.pipelines.len()
    }

    /// Whether the pipeline of `k` is built.
    pub fn has(&self, k: KernelKey) -> bool {
        self.pipelines.contains_key(&k)
    }

    /// The pipeline of `k`, building it (and its module) the first time. Number of objects created is
    /// added to `created` (for the allocation counter).
    pub fn get(&mut self, device: &wgpu::Device, k: KernelKey, created: &mut u64) -> Result<&Pipeline> {
        if !self.pipelines.contains_key(&k) {
            self.module(device, k)?;
            let p = build(device, &self.modules[k.file()], k, self.cache.as_ref())?;
            *created += 1;
            self.pipelines.insert(k, p);
        }
        Ok(&self.pipelines[&k])
    }

    /// Build every pipeline of `keys` not built yet, on up to `threads` threads (most drivers compile to
    /// machine code when the pipeline is created, so this is what a lazily built first step waits for;
    /// `wgpu::Device` is `Sync` and its error scopes are per thread, so each thread keeps its own scopes
    /// around its own pipelines). Modules are created first, on this thread: one per file, shared read-only
    /// by the threads. Returns the first error in [`KernelKey`] order, after keeping every pipeline that did
    /// build. Number of pipelines created is added to `created`; returns how many.
    pub fn build_many(
        &mut self,
        device: &wgpu::Device,
        keys: &[KernelKey],
        threads: usize,
        created: &mut u64,
    ) -> Result<usize> {
        let mut todo: Vec<KernelKey> = keys.iter().copied().filter(|k| !self.pipelines.contains_key(k)).collect();
        todo.sort();
        todo.dedup();
        for &k in &todo {
            self.module(device, k)?;
        }
        let (modules, cache, next) = (&self.modules, self.cache.as_ref(), AtomicUsize::new(0));
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&k) = todo.get(i) else { return done };
                done.push((i, build(device, &modules[k.file()], k, cache)));
            }
        };
        let threads = threads.clamp(1, todo.len().max(1));
        let mut built: Vec<(usize, Result<Pipeline>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut all = work();
            for h in handles {
                all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            all
        });
        built.sort_by_key(|(i, _)| *i);
        let mut first_err = None;
        let mut n = 0;
        for (i, r) in built {
            match r {
                Ok(p) => {
                    self.pipelines.insert(todo[i], p);
                    *created += 1;
                    n += 1;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let (true, Some(cache), Some(file)) = (n > 0, &self.cache, &self.cache_file) {
            super::pipeline_cache::save(cache, file);
        }
        first_err.map_or(Ok(n), Err)
    }

    /// Create `k`'s shader module if it does not exist yet. Its errors name `k`'s file and entry point (a
    /// module that failed stays absent, so the error repeats rather than cascading).
    fn module(&mut self, device: &wgpu::Device, k: KernelKey) -> Result<()> {
        let (file, entry, _) = k.shader();
        if !self.modules.contains_key(file) {
            let src = source(file).ok_or_else(|| Error::Shader {
                file: file.into(),
                entry: entry.into(),
                msg: "not among the compiled-in shaders".into(),
            })?;
            self.modules.insert(file, create_module(device, file, entry, src, self.checks)?);
        }
        Ok(())
    }
}

/// The module of WGSL `src`, built as `checks` says, inside error scopes: a WGSL error is an [`Error::Shader`]
/// naming `file` and the `entry` point that needed it.
fn create_module(
    device: &wgpu::Device,
    file: &str,
    entry: &str,
    src: &str,
    checks: ShaderChecks,
) -> Result<wgpu::ShaderModule> {
    // Two scopes: Validation catches WGSL errors, Internal catches backend compiler failures.
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(src.into()) };
    let module = match checks {
        ShaderChecks::Checked => device.create_shader_module(desc),
        // SAFETY: only the compiled-in kernels of `SHADERS` come here (`source` is the only caller's input).
        // Each keeps every buffer and array access inside its binding by its own guards, loops only over
        // bounds it computes, and divides only by sizes the launchers check to be non-zero — each file's
        // header says how — and tests/gpu_guards.rs runs every KernelKey with poisoned guard regions around
        // its outputs against the checked build.
        ShaderChecks::Trusted => unsafe {
            device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
        },
    };
    let v = pollster::block_on(validation.pop());
    let i = pollster::block_on(internal.pop());
    match v.or(i) {
        Some(e) => Err(Error::Shader { file: file.into(), entry: entry.into(), msg: e.to_string() }),
        None => Ok(module),
    }
}

/// Build `k`'s pipeline from its `module`, inside this thread's error scopes, so a bad layout, override or
/// entry point is an [`Error::Shader`] naming file and entry point.
fn build(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    k: KernelKey,
    cache: Option<&wgpu::PipelineCache>,
) -> Result<Pipeline> {
    let (file, entry, layout) = k.shader();
    let constants = k.constants();
    let shader_err = |msg: String| Error::Shader { file: file.into(), entry: entry.into(), msg };
    let label = k.pipeline_label();
    // Two scopes: Validation catches WGSL and layout errors, Internal catches backend compiler failures.
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let entries: Vec<wgpu::BindGroupLayoutEntry> = layout
        .iter()
        .map(|&Slot { binding, kind, .. }| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match kind {
                    Bind::Uniform => wgpu::BufferBindingType::Uniform,
                    Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Bind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&label),
        layout: Some(&pipeline_layout),
        module,
        entry_point: Some(entry),
        // Every kernel writes its workgroup arrays before a barrier and reads them only after it, so the
        // zero-fill WebGPU does by default is pure overhead.
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: false,
        },
        cache,
    });
    let v = pollster::block_on(validation.pop());
    let i = pollster::block_on(internal.pop());
    if let Some(e) = v.or(i) {
        return Err(shader_err(e.to_string()));
    }
    log::debug!("built pipeline {label}");
    Ok(Pipeline { pipeline, layout })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shader_checks_are_off_unless_the_variable_asks_for_them() {
        assert_eq!(ShaderChecks::default(), ShaderChecks::Trusted);
        for unset in [None, Some(""), Some("0"), Some(" 0 ")] {
            assert_eq!(ShaderChecks::from_setting(unset), ShaderChecks::Trusted, "{unset:?}");
        }
        for set in ["1", "yes", "true"] {
            assert_eq!(ShaderChecks::from_setting(Some(set)), ShaderChecks::Checked, "{set}");
        }
    }

    /// A WGSL error and a pipeline error (here: an entry point the module lacks) are both `Error::Shader`
    /// naming file and entry point, also when the pipeline is built on another thread (error scopes are per
    /// thread), and leave no error behind for the uncaptured handler.
    #[test]
    fn shader_errors_name_file_and_entry_point_on_any_thread() {
        let ctx = match super::super::context::Context::new(None, true) {
            Ok(c) => c,
            Err(e) if std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("no GPU adapter: {e}"),
            Err(e) => return eprintln!("*** SKIPPING: no GPU adapter ({e}) ***"),
        };
        let device = &ctx.device;
        let e = create_module(device, "broken.wgsl", "main", "fn main( {", ShaderChecks::Trusted).unwrap_err();
        assert!(matches!(&e, Error::Shader { file, entry, .. } if file == "broken.wgsl" && entry == "main"), "{e:?}");
        let k = KernelKey::new(Family::Matmul, Mode::Forward);
        let module =
            create_module(device, "sgd.wgsl", "sgd_update", source("sgd.wgsl").unwrap(), ShaderChecks::Trusted)
                .unwrap();
        let e = std::thread::scope(|s| s.spawn(|| build(device, &module, k, None).err()).join().unwrap()).unwrap();
        assert!(matches!(&e, Error::Shader { file, entry, .. } if file == "matmul.wgsl" && entry == "matmul"), "{e:?}");
        let good =
            create_module(device, "matmul.wgsl", "matmul", source("matmul.wgsl").unwrap(), ShaderChecks::Checked)
                .unwrap();
        build(device, &good, k, None).unwrap();
        ctx.take_error().unwrap();
    }
}
