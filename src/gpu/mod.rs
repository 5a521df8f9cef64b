//! The wgpu backend: every op of [`Backend`] as a WGSL compute dispatch (kernels under `shaders/`).
//!
//! Recording model. Between [`Backend::begin_step`] and [`Backend::end_step`] every op appends its
//! dispatch(es) to one compute pass of one command encoder; `end_step` submits it once and does not wait.
//! Ops outside a step go into an implicit encoder that the next [`Backend::read`] (or `begin_step`,
//! `write`) submits. `read` is the only readback: it submits pending work, copies into a MAP_READ staging
//! buffer and waits for that copy.
//!
//! Ordering hazard: `queue.write_buffer` (used by `write`, `write_indices`, `write_uniform` and the cursor)
//! lands at the start of the *next* submit, i.e. before every dispatch of that submit, not at its place among
//! the ops. So `write` first submits any dispatches already recorded, and `write_uniform` and the cursor (the
//! gather offset, loss slot and norm slot, see `cursor.rs`) do so when a recorded op reads what they overwrite;
//! the new values are then seen by exactly the ops recorded after the call, as the trait promises. A normal
//! step writes its optimizer uniform before `begin_step` and changes each cursor field once, so it still makes
//! one submit ([`GpuBackend::submissions`] counts them).
//!
//! Nothing is allocated after the first step: pipelines (the first step notes its dispatches and builds the
//! pipelines they need together, on several threads, when it is submitted; outside a step, on first use), uniform parameter buffers (cached by content), split-K scratch buffers (cached by size),
//! segment tables (cached by content) and bind groups (cached by kernel + buffer ids) are created on first
//! use and reused; [`GpuBackend::allocations`] counts every creation
//! so a test can check this. Tensors made by `zeros_packed` are views of one buffer, bound with their byte range
//! (kept in `views` by tensor id).
//!
//! Member axis (populations, see `crate::backend`): a tensor may hold P members' copies of its shape (`members`,
//! `mstride` in [`GpuTensor`]). Every op is still one dispatch (two for split-K and the norm): each kernel takes
//! the member from a workgroup dimension and each operand's member stride from its parameter uniform (0 for a
//! shared one-member input), never a loop over members on the host, and nothing a member computes depends on P
//! (tiles, split counts and summation orders are one member's), so member m's numbers are bit for bit those of
//! the same op run alone on its data. The update kernels read member m's hyper-parameter block m of the
//! optimizer's uniform, which is therefore allocated for [`crate::backend::MAX_MEMBERS`] blocks.
//!
//! Where things are, by concern (each file's docs say why it stands alone):
//! - `mod.rs`: the [`GpuBackend`] state and its public API (opening, counters, profiling, prebuilding).
//! - `alloc.rs`: tensors, cached parameter uniforms and split-K scratch — everything a step could allocate.
//! - `packed.rs`: packed sets (several tensors in one buffer) and the update kernels' segment tables.
//! - `cursor.rs`: host-written values (cursor fields, optimizer uniforms) and the flush-on-change rule.
//! - `dispatch.rs`: recording a dispatch (bind-group cache, timestamps; noted until the first step's pipelines
//!   are built) and submitting.
//! - `readback.rs`: the one path that waits for the GPU.
//! - `kernels.rs`: [`kernels::KernelKey`] (family, mode, epilogue, tile) → shader file, entry point, override
//!   constants, and the named bind layout of each family; pipelines built on several threads (the first
//!   step's, or [`GpuBackend::build_all_pipelines`]) or on first use.
//! - `pipeline_cache.rs`: the driver's pipeline cache, saved to a file between runs.
//! - `ops/`: one launcher per kernel family (shape checks, parameters, grid, named bindings).
//! - `backend_impl.rs`: the [`Backend`] trait, forwarding each op to its launcher.

mod alloc;
mod backend_impl;
mod bindings;
mod buffer;
mod context;
mod cursor;
mod dispatch;
mod guards;
pub mod kernels;
mod ops;
mod packed;
pub mod params;
mod pipeline_cache;
mod profiler;
mod readback;

use std::collections::HashMap;
use std::time::Duration;

pub use buffer::{GpuIndices, GpuTensor, GpuUniform};
pub use context::{INSTALL_HINT, best_adapter, best_adapter_in, describe, is_software, list_adapters};
pub use guards::POISON;
pub use kernels::ShaderChecks;
pub use profiler::DispatchTime;

#[cfg(doc)]
use crate::backend::Backend;
use crate::{Error, Result};
use context::Context;
use cursor::CursorState;
use kernels::{KernelKey, Kernels, Tile};
use profiler::Profiler;

/// Id of the cursor uniform in bind-group keys (tensor ids start above it).
const CURSOR_ID: u64 = 1;

/// Threads per workgroup of the 1-D kernels (elementwise, updates, reductions).
pub(crate) const WG: usize = 256;

/// The GPU backend. See the module docs for the recording model.
pub struct GpuBackend {
    ctx: Context,
    kernels: Kernels,
    bind_groups: HashMap<(KernelKey, Vec<u64>), wgpu::BindGroup>,
    uniforms: HashMap<Vec<u8>, (u64, wgpu::Buffer)>,
    scratch: HashMap<u64, (u64, wgpu::Buffer)>,
    /// Segment tables of the update kernels, by content.
    tables: HashMap<Vec<u8>, (u64, wgpu::Buffer)>,
    /// Host scratch for building a segment table without allocating.
    table_bytes: Vec<u8>,
    placeholder: Option<(u64, wgpu::Buffer)>,
    /// Byte range (offset, size) of every packed view, by tensor id.
    views: HashMap<u64, (u64, u64)>,
    /// Bindings that cover two views of one packed set (the head's dw and db, written by one kernel): the
    /// span's id (its byte range is in `views`), by the two views' ids.
    spans: HashMap<(u64, u64), u64>,
    /// Guard regions around every buffer made while on (a test hook, see `guards.rs`).
    guards: Option<guards::GuardRegions>,
    /// The conv tile every conv dispatch uses instead of the one picked from its shape (tests, benchmarks).
    conv_tile: Option<Tile>,
    cursor: CursorState,
    /// Ids of the host-written uniforms read by ops recorded since the last submit.
    bound_uniforms: Vec<u64>,
    submits: u64,
    in_step: bool,
    /// Whether a step's dispatches wait for their pipelines to be built together (see `dispatch.rs`).
    defer_builds: bool,
    /// Dispatches noted until the step's missing pipelines are built.
    deferred: Vec<dispatch::Deferred>,
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    staging: Option<wgpu::Buffer>,
    profiler: Option<Profiler>,
    next_id: u64,
    created: u64,
    timeout: Duration,
}

impl GpuBackend {
    /// Open the best adapter whose name contains `filter` (case-insensitive); software adapters (lavapipe,
    /// llvmpipe, SwiftShader, WARP) only if `allow_software`. [`Error::NoAdapter`] lists what was found.
    pub fn new(filter: Option<&str>, allow_software: bool) -> Result<GpuBackend> {
        Self::with_context(Context::new(filter, allow_software)?)
    }

    /// wgpu's no-op adapter, where nothing runs: for measuring the host's share of a step (`examples/profile_step.rs
    /// --noop`). Needs wgpu's `noop` feature (the examples have it); values read back are not results.
    #[doc(hidden)]
    pub fn noop() -> Result<GpuBackend> {
        Self::with_context(Context::noop()?)
    }

    /// Open exactly the adapter `info` describes (an entry of [`list_adapters`]): for benchmarks and
    /// `compare --backends all`, which run on every adapter including two with the same name.
    pub fn with_adapter(info: &wgpu::AdapterInfo) -> Result<GpuBackend> {
        Self::with_context(Context::open_exact(info)?)
    }

    fn with_context(ctx: Context) -> Result<GpuBackend> {
        let cursor = CursorState::new(&ctx.device);
        let kernels = Kernels::new(pipeline_cache::open(&ctx.device, &ctx.info), ShaderChecks::from_env());
        Ok(GpuBackend {
            ctx,
            kernels,
            bind_groups: HashMap::new(),
            uniforms: HashMap::new(),
            scratch: HashMap::new(),
            tables: HashMap::new(),
            table_bytes: Vec::new(),
            placeholder: None,
            views: HashMap::new(),
            spans: HashMap::new(),
            guards: None,
            conv_tile: None,
            cursor,
            bound_uniforms: Vec::new(),
            submits: 0,
            in_step: false,
            defer_builds: true,
            deferred: Vec::new(),
            encoder: None,
            pass: None,
            staging: None,
            profiler: None,
            next_id: CURSOR_ID + 1,
            created: 1,
            timeout: Duration::from_secs(600),
        })
    }

    /// The adapter in use.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.ctx.info
    }

    /// The device's limits (the adapter's own, requested in full).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.ctx.limits
    }

    /// Number of GPU objects (buffers, bind groups, pipelines) created so far; constant after the first
    /// training step.
    pub fn allocations(&self) -> u64 {
        self.created
    }

    /// Number of command buffers submitted so far (a training step is one).
    pub fn submissions(&self) -> u64 {
        self.submits
    }

    /// How many pipelines have been built so far.
    pub fn pipelines_built(&self) -> usize {
        self.kernels.built()
    }

    /// Whether the first step builds the pipelines it needs together, on several threads, once the step is
    /// recorded (the default), or each one where it is first dispatched (`false`: for comparing the two).
    pub fn set_defer_builds(&mut self, defer: bool) {
        self.defer_builds = defer;
    }

    /// Build shader modules with naga's runtime checks (`ShaderChecks::Checked`) or without them (`Trusted`, the
    /// default unless `WGTRAIN_SHADER_CHECKS` is set): see [`ShaderChecks`]. Pipelines built so far (and the
    /// bind groups made against their layouts) are dropped when this changes, so every later dispatch runs
    /// modules built the new way.
    pub fn set_shader_checks(&mut self, checks: ShaderChecks) -> Result<()> {
        if checks != self.kernels.checks() {
            self.submit()?;
            let cache = self.kernels.take_cache();
            self.kernels = Kernels::new(cache, checks);
            self.bind_groups.clear();
        }
        Ok(())
    }

    /// How this backend builds its shader modules.
    pub fn shader_checks(&self) -> ShaderChecks {
        self.kernels.checks()
    }

    /// Every kernel whose pipeline is built so far.
    pub fn built_kernels(&self) -> Vec<KernelKey> {
        self.kernels.built_keys()
    }

    /// Run every conv dispatch with `tile` instead of the tile picked from its shape (`None`: pick again). Every
    /// tile computes the same sums in the same order, so results do not change: tests check each tile against
    /// the others on small shapes, benchmarks compare their speed.
    pub fn set_conv_tile(&mut self, tile: Option<Tile>) {
        self.conv_tile = tile;
    }

    /// How long [`Backend::read`] waits for the GPU before reporting an error instead of hanging.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Time every dispatch recorded from now on with GPU timestamps (see [`GpuBackend::take_profile`]).
    /// `Err` when the adapter lacks timestamp queries inside passes.
    pub fn start_profiling(&mut self) -> Result<()> {
        self.profiler = Some(Profiler::new(&self.ctx.device, &self.ctx.queue, &self.ctx.info.name)?);
        Ok(())
    }

    /// The GPU time of every dispatch recorded since profiling started or since the last call, in order
    /// (waits for the GPU). Dispatches beyond the query set's capacity are not timed.
    pub fn take_profile(&mut self) -> Result<Vec<DispatchTime>> {
        if self.profiler.is_none() {
            return Err(Error::Usage("take_profile called without start_profiling".into()));
        }
        self.flush_deferred()?;
        let Some(p) = self.profiler.as_ref() else { unreachable!("checked above") };
        let (set, resolve, used) = (p.set.clone(), p.resolve.clone(), p.used());
        self.pass = None;
        let mut enc = match self.encoder.take() {
            Some(e) => e,
            None => self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") }),
        };
        if used > 0 {
            enc.resolve_query_set(&set, 0..used, &resolve, 0);
        }
        self.encoder = Some(enc);
        let bytes = self.read_bytes(&resolve, 0, u64::from(used) * 8)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(self.profiler.as_mut().map(|p| p.finish(&ticks)).unwrap_or_default())
    }

    /// Build every pipeline the shaders implement now, on several threads, so a shader error surfaces here
    /// (tools and measurements; a training run builds only its step's pipelines, during its first step).
    /// Returns how many were built (0 the second time).
    pub fn build_all_pipelines(&mut self) -> Result<usize> {
        self.build_pipelines(&KernelKey::all())
    }

    /// Build the pipelines of `keys` that are not built yet, on up to `available_parallelism` (at most 8)
    /// threads, through the driver's pipeline cache where the device has one. Returns how many were built.
    pub fn build_pipelines(&mut self, keys: &[KernelKey]) -> Result<usize> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        self.kernels.build_many(&self.ctx.device, keys, threads, &mut self.created)
    }

    /// Destroy the device, as a driver reset would; every later call must return `Err` (for tests).
    #[doc(hidden)]
    pub fn destroy_device_for_test(&mut self) {
        self.ctx.device.destroy();
    }
}

impl Drop for GpuBackend {
    fn drop(&mut self) {
        // End an open pass before its encoder goes (fields drop in declaration order, encoder first).
        self.pass = None;
    }
}
