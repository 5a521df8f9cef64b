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
//! Nothing is allocated after the first step: pipelines, uniform parameter buffers (cached by content),
//! split-K scratch buffers (cached by size), segment tables (cached by content) and bind groups (cached by
//! kernel + buffer ids) are created on first use and reused; [`GpuBackend::allocations`] counts every creation
//! so a test can check this. Tensors made by `zeros_packed` are views of one buffer, bound with their byte range
//! (kept in `views` by tensor id).

mod buffer;
mod context;
mod cursor;
pub mod kernels;
mod ops;
mod packed;
pub mod params;
mod profiler;

use std::collections::HashMap;
use std::time::Duration;

use bytemuck::Pod;
use wgpu::util::DeviceExt;

pub use buffer::{GpuIndices, GpuTensor, GpuUniform};
pub use context::{INSTALL_HINT, best_adapter, best_adapter_in, describe, is_software, list_adapters};
pub use profiler::DispatchTime;

use crate::backend::{Backend, ConvGeom, PoolGeom};
use crate::{Error, Result};
use buffer::{Res, byte_size};
use context::Context;
use cursor::CursorState;
use kernels::{Kernel, Kernels};
use profiler::Profiler;

/// Bind groups kept before the cache is cleared (see `dispatch`).
const MAX_BIND_GROUPS: usize = 4096;

/// Id of the cursor uniform in bind-group keys (tensor ids start above it).
const CURSOR_ID: u64 = 1;

/// Threads per workgroup of the 1-D kernels (elementwise, updates, reductions).
pub(crate) const WG: usize = 256;

/// The GPU backend. See the module docs for the recording model.
pub struct GpuBackend {
    ctx: Context,
    kernels: Kernels,
    bind_groups: HashMap<(Kernel, Vec<u64>), wgpu::BindGroup>,
    uniforms: HashMap<Vec<u8>, (u64, wgpu::Buffer)>,
    scratch: HashMap<u64, (u64, wgpu::Buffer)>,
    /// Segment tables of the update kernels, by content.
    tables: HashMap<Vec<u8>, (u64, wgpu::Buffer)>,
    /// Host scratch for building a segment table without allocating.
    table_bytes: Vec<u8>,
    placeholder: Option<(u64, wgpu::Buffer)>,
    /// Byte range (offset, size) of every packed view, by tensor id.
    views: HashMap<u64, (u64, u64)>,
    cursor: CursorState,
    /// Ids of the host-written uniforms read by ops recorded since the last submit.
    bound_uniforms: Vec<u64>,
    submits: u64,
    in_step: bool,
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

    /// Open exactly the adapter `info` describes (an entry of [`list_adapters`]): for benchmarks and
    /// `compare --backends all`, which run on every adapter including two with the same name.
    pub fn with_adapter(info: &wgpu::AdapterInfo) -> Result<GpuBackend> {
        Self::with_context(Context::open_exact(info)?)
    }

    fn with_context(ctx: Context) -> Result<GpuBackend> {
        let cursor = CursorState::new(&ctx.device);
        Ok(GpuBackend {
            ctx,
            kernels: Kernels::default(),
            bind_groups: HashMap::new(),
            uniforms: HashMap::new(),
            scratch: HashMap::new(),
            tables: HashMap::new(),
            table_bytes: Vec::new(),
            placeholder: None,
            views: HashMap::new(),
            cursor,
            bound_uniforms: Vec::new(),
            submits: 0,
            in_step: false,
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
        let Some(p) = self.profiler.as_ref() else {
            return Err(Error::Usage("take_profile called without start_profiling".into()));
        };
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

    /// Build every pipeline now, so a shader error surfaces here rather than at first use.
    pub fn build_all_pipelines(&mut self) -> Result<()> {
        for &k in Kernel::ALL {
            self.kernels.get(&self.ctx.device, k, &mut self.created)?;
        }
        Ok(())
    }

    /// Destroy the device, as a driver reset would; every later call must return `Err` (for tests).
    #[doc(hidden)]
    pub fn destroy_device_for_test(&mut self) {
        self.ctx.device.destroy();
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A storage buffer of `bytes`, checked against the device limits first; out-of-memory becomes `Err`.
    fn storage(&mut self, bytes: u64, label: &str, what: &str) -> Result<wgpu::Buffer> {
        let l = &self.ctx.limits;
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        if bytes > max {
            return Err(Error::DeviceLimit(format!(
                "{what} `{label}` needs {bytes} bytes but {} allows at most {max} bytes per buffer \
                 (max_storage_buffer_binding_size {}, max_buffer_size {}); use a smaller batch",
                self.ctx.info.name, l.max_storage_buffer_binding_size, l.max_buffer_size
            )));
        }
        self.ctx.take_error()?;
        let oom = self.ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::DeviceLimit(format!("{what} `{label}` ({bytes} bytes): {e}")));
        }
        if let Some(e) = v {
            return Err(Error::Gpu(format!("{what} `{label}` ({bytes} bytes): {e}")));
        }
        self.created += 1;
        Ok(buffer)
    }

    fn new_tensor(&mut self, shape: &[usize], label: &str, data: Option<&[f32]>) -> Result<GpuTensor> {
        let n = crate::backend::numel(shape);
        if let Some(d) = data
            && d.len() != n
        {
            return Err(Error::shape("tensor", format!("`{label}`: {} values for shape {shape:?}", d.len())));
        }
        let buffer = self.storage(byte_size(n), label, "tensor")?;
        if let Some(d) = data.filter(|d| !d.is_empty()) {
            self.ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(d));
        }
        // New buffers are zeroed by wgpu, so `zeros` needs no write.
        let id = self.new_id();
        Ok(GpuTensor { buffer, offset: 0, pack: None, shape: shape.to_vec(), id, label: label.to_string() })
    }

    /// A uniform holding `v`, created once per distinct content (per-layer shapes), then reused.
    fn uniform<T: Pod>(&mut self, v: &T) -> (u64, wgpu::Buffer) {
        let bytes = bytemuck::bytes_of(v).to_vec();
        if let Some((id, b)) = self.uniforms.get(&bytes) {
            return (*id, b.clone());
        }
        let buffer = self.ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(std::any::type_name::<T>().rsplit("::").next().unwrap_or("params")),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        self.created += 1;
        let id = self.new_id();
        self.uniforms.insert(bytes, (id, buffer.clone()));
        (id, buffer)
    }

    /// A scratch buffer of `bytes` (split-K partials), one per size, reused by every op and step that needs
    /// that size. Reuse within a step is safe: wgpu orders dispatches that touch the same buffer.
    fn scratch(&mut self, bytes: u64) -> Result<(u64, wgpu::Buffer)> {
        if let Some((id, b)) = self.scratch.get(&bytes) {
            return Ok((*id, b.clone()));
        }
        let buffer = self.storage(bytes, "split_k_partials", "scratch buffer")?;
        let id = self.new_id();
        self.scratch.insert(bytes, (id, buffer.clone()));
        Ok((id, buffer))
    }

    /// Record one dispatch of `k` with `bufs` bound in the order of the kernel's binding list.
    fn dispatch(&mut self, k: Kernel, bufs: &[Res<'_>], groups: [u32; 3], label: &str) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::DeviceLimit(format!(
                "{label}: {} needs {groups:?} workgroups, the device allows {max} per dimension; use a smaller batch",
                k.label()
            )));
        }
        self.ctx.take_error()?;
        let device = &self.ctx.device;
        let pipeline = self.kernels.get(device, k, &mut self.created)?;
        let spec = k.spec();
        debug_assert_eq!(spec.bindings.len(), bufs.len(), "{k:?}");
        let key = (k, bufs.iter().map(|r| r.id).collect::<Vec<_>>());
        if !self.bind_groups.contains_key(&key) {
            if self.bind_groups.len() >= MAX_BIND_GROUPS {
                // Bind groups keep their buffers alive; a program that keeps making new tensors (unit tests,
                // repeated evaluations) must not pin them all. A training step uses a few dozen.
                log::debug!("bind-group cache full ({MAX_BIND_GROUPS}); clearing it");
                self.bind_groups.clear();
            }
            let views = &self.views;
            let entries: Vec<wgpu::BindGroupEntry> = spec
                .bindings
                .iter()
                .zip(bufs)
                .map(|(&(binding, _), r)| {
                    let (offset, size) = views.get(&r.id).map_or((0, None), |&(o, s)| (o, wgpu::BufferSize::new(s)));
                    let resource =
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: r.buffer, offset, size });
                    wgpu::BindGroupEntry { binding, resource }
                })
                .collect();
            let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{label} ({})", k.label())),
                layout: &pipeline.layout,
                entries: &entries,
            });
            self.created += 1;
            self.bind_groups.insert(key.clone(), bg);
        }
        if self.pass.is_none() {
            let mut enc = match self.encoder.take() {
                Some(e) => e,
                None => device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some(if self.in_step { "step" } else { "ops" }),
                }),
            };
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(if self.in_step { "step" } else { "ops" }),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            self.encoder = Some(enc);
            self.pass = Some(pass);
        }
        let pass = self.pass.as_mut().expect("pass just created");
        let slots =
            self.profiler.as_mut().and_then(|p| p.slots(format!("{k:?} → {label}")).map(|s| (s, p.set.clone())));
        if let Some(((start, _), set)) = &slots {
            pass.write_timestamp(set, *start);
        }
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_groups[&key], &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        if let Some(((_, end), set)) = &slots {
            pass.write_timestamp(set, *end);
        }
        Ok(())
    }

    /// Workgroups for `n` threads in groups of 256, as a 2-D grid when one dimension is not enough.
    fn groups_1d(&self, n: usize) -> [u32; 3] {
        let g = n.div_ceil(256) as u64;
        let max = self.ctx.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = g.min(max);
        let y = if x == 0 { 0 } else { g.div_ceil(x) };
        [x as u32, y.min(u32::MAX as u64) as u32, 1]
    }

    /// Submit whatever has been recorded (no wait).
    fn submit(&mut self) -> Result<Option<wgpu::SubmissionIndex>> {
        self.pass = None; // ends the pass; the encoder can be finished after this
        let idx = self.encoder.take().map(|enc| self.ctx.queue.submit([enc.finish()]));
        if idx.is_some() {
            self.note_submitted();
        }
        self.ctx.take_error()?;
        Ok(idx)
    }

    /// `bytes` bytes of `src` from byte `offset` (a multiple of 4).
    fn read_bytes(&mut self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        self.ctx.take_error()?;
        if self.staging.as_ref().is_none_or(|s| s.size() < bytes) {
            // Grow to a power of two so the bulk loss readback and weight reads settle on one buffer.
            let size = bytes.next_power_of_two().max(1024);
            self.staging = Some(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback_staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            self.created += 1;
        }
        let staging = self.staging.clone().expect("staging just created");
        self.pass = None;
        let mut enc = match self.encoder.take() {
            Some(e) => e,
            None => self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") }),
        };
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
        let idx = self.ctx.queue.submit([enc.finish()]);
        self.note_submitted();
        self.ctx.take_error()?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        let polled =
            self.ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: Some(self.timeout) });
        if let Err(e) = polled {
            self.ctx.take_error()?;
            return Err(Error::Gpu(format!("waiting for the GPU: {e}")));
        }
        self.ctx.take_error()?;
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("mapping the readback buffer: {e}"))),
            Err(_) => return Err(Error::Gpu("the GPU did not finish the readback (device lost?)".into())),
        }
        let out = staging.get_mapped_range(0..bytes).map_err(|e| Error::Gpu(format!("readback: {e}")))?.to_vec();
        staging.unmap();
        Ok(out)
    }
}

impl Drop for GpuBackend {
    fn drop(&mut self) {
        // End an open pass before its encoder goes (fields drop in declaration order, encoder first).
        self.pass = None;
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Indices = GpuIndices;
    type Uniform = GpuUniform;

    fn name(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }

    fn zeros(&mut self, shape: &[usize], label: &str) -> Result<GpuTensor> {
        self.new_tensor(shape, label, None)
    }

    fn tensor(&mut self, data: &[f32], shape: &[usize], label: &str) -> Result<GpuTensor> {
        self.new_tensor(shape, label, Some(data))
    }

    fn indices(&mut self, data: &[u32], label: &str) -> Result<GpuIndices> {
        let buffer = self.storage(byte_size(data.len()), label, "index tensor")?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        }
        let id = self.new_id();
        Ok(GpuIndices { buffer, len: data.len(), id, label: label.to_string() })
    }

    fn write(&mut self, dst: &mut GpuTensor, data: &[f32]) -> Result<()> {
        if data.len() != dst.numel() {
            return Err(Error::shape(
                "write",
                format!("`{}`: {} values for shape {:?}", dst.label, data.len(), dst.shape),
            ));
        }
        // Submit earlier dispatches first: they must not see this write (see the module docs).
        self.submit()?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&dst.buffer, dst.offset, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn write_indices(&mut self, dst: &mut GpuIndices, data: &[u32]) -> Result<()> {
        if data.len() != dst.len {
            return Err(Error::shape(
                "write_indices",
                format!("`{}`: {} values for length {}", dst.label, data.len(), dst.len),
            ));
        }
        self.submit()?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&dst.buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn read(&mut self, src: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(&src.buffer.clone(), src.offset, (src.numel() * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn read_set(&mut self, set: &[GpuTensor]) -> Result<Vec<Vec<f32>>> {
        self.read_packed_set(set)
    }

    fn shape<'a>(&self, t: &'a GpuTensor) -> &'a [usize] {
        &t.shape
    }

    fn zeros_packed(&mut self, shapes: &[Vec<usize>], labels: &[String]) -> Result<Vec<GpuTensor>> {
        self.new_packed(shapes, labels)
    }

    fn uniform(&mut self, bytes: usize, label: &str) -> Result<GpuUniform> {
        self.new_uniform(bytes, label)
    }

    fn write_uniform(&mut self, u: &mut GpuUniform, bytes: &[u8]) -> Result<()> {
        self.write_uniform_bytes(u, bytes)
    }

    fn begin_step(&mut self) -> Result<()> {
        // Work recorded before the step goes in its own submit, so the step's is the step alone.
        self.submit()?;
        self.in_step = true;
        Ok(())
    }

    fn end_step(&mut self) -> Result<()> {
        self.in_step = false;
        self.submit()?;
        Ok(())
    }

    fn gather_batch(
        &mut self,
        images: &GpuTensor,
        labels: &GpuIndices,
        order: &GpuIndices,
        offset: usize,
        x: &mut GpuTensor,
        y: &mut GpuIndices,
    ) -> Result<()> {
        ops::gather::gather_batch(self, images, labels, order, offset, x, y)
    }

    fn conv2d(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, geom: ConvGeom, y: &mut GpuTensor) -> Result<()> {
        ops::conv::forward(self, x, w, b, geom, y, false)
    }

    fn conv2d_relu(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        b: &GpuTensor,
        geom: ConvGeom,
        y: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::forward(self, x, w, b, geom, y, true)
    }

    fn conv2d_backward_input_relu(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        mask: &GpuTensor,
        geom: ConvGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_input(self, dy, w, Some(mask), geom, dx)
    }

    fn max_pool2d_backward_relu(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        geom: PoolGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::pool::backward(self, x, dy, geom, dx, true)
    }

    fn linear_relu(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::linear::forward(self, x, w, b, y, true)
    }

    fn linear_backward_input_relu(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        mask: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::linear::backward_input(self, dy, w, Some(mask), dx)
    }

    fn conv2d_backward_input(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        geom: ConvGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_input(self, dy, w, None, geom, dx)
    }

    fn conv2d_backward_weight(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        geom: ConvGeom,
        dw: &mut GpuTensor,
        db: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_weight(self, x, dy, geom, dw, db)
    }

    fn max_pool2d(&mut self, x: &GpuTensor, geom: PoolGeom, y: &mut GpuTensor) -> Result<()> {
        ops::pool::forward(self, x, geom, y)
    }

    fn max_pool2d_backward(&mut self, x: &GpuTensor, dy: &GpuTensor, geom: PoolGeom, dx: &mut GpuTensor) -> Result<()> {
        ops::pool::backward(self, x, dy, geom, dx, false)
    }

    fn relu(&mut self, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::elementwise::relu(self, x, y)
    }

    fn relu_backward(&mut self, y: &GpuTensor, dy: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
        ops::elementwise::relu_backward(self, y, dy, dx)
    }

    fn linear(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::linear::forward(self, x, w, b, y, false)
    }

    fn linear_backward_input(&mut self, dy: &GpuTensor, w: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
        ops::linear::backward_input(self, dy, w, None, dx)
    }

    fn linear_backward_weight(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        dw: &mut GpuTensor,
        db: &mut GpuTensor,
    ) -> Result<()> {
        ops::linear::backward_weight(self, x, dy, dw, db)
    }

    fn softmax_xent(
        &mut self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        dlogits: &mut GpuTensor,
        losses: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        ops::xent::softmax_xent(self, logits, labels, dlogits, losses, slot)
    }

    fn eval_accumulate(&mut self, logits: &GpuTensor, labels: &GpuIndices, acc: &mut GpuTensor) -> Result<()> {
        ops::xent::eval_accumulate(self, logits, labels, acc)
    }

    fn grad_norm(&mut self, grads: &[GpuTensor], norms: &mut GpuTensor, slot: usize) -> Result<()> {
        ops::grad_norm::grad_norm(self, grads, norms, slot)
    }

    fn sgd_update(
        &mut self,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        bufs: &mut [GpuTensor],
        groups: &[u32],
        hyper: &GpuUniform,
        norms: &GpuTensor,
    ) -> Result<()> {
        ops::update::sgd_update(self, params, grads, bufs, groups, hyper, norms)
    }

    fn adam_update(
        &mut self,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        exp_avg: &mut [GpuTensor],
        exp_avg_sq: &mut [GpuTensor],
        max_exp_avg_sq: &mut [GpuTensor],
        groups: &[u32],
        hyper: &GpuUniform,
        norms: &GpuTensor,
    ) -> Result<()> {
        let sets = ops::update::AdamSets { exp_avg, exp_avg_sq, max_exp_avg_sq };
        ops::update::adam_update(self, params, grads, sets, groups, hyper, norms)
    }
}
