//! Where the backend's GPU memory comes from: tensors (checked against the device limits, out-of-memory as
//! `Err`), uniform parameter buffers cached by content, and split-K scratch buffers cached by size.
//!
//! Kept apart from recording and readback because this is the code that decides whether a step allocates:
//! everything here is created once per distinct content or size and then reused, and every creation is
//! counted in `created` so a test can check that a step allocates nothing after the first.

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use super::GpuBackend;
use super::buffer::GpuTensor;
use crate::{Error, Result};

impl GpuBackend {
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A storage buffer of `bytes`, checked against the device limits first; out-of-memory becomes `Err`.
    pub(crate) fn storage(&mut self, bytes: u64, label: &str, what: &str) -> Result<wgpu::Buffer> {
        let l = &self.ctx.limits;
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        if bytes > max {
            return Err(Error::DeviceLimit(format!(
                "{what} `{label}` needs {bytes} bytes but {} allows at most {max} bytes per buffer \
                 (max_storage_buffer_binding_size {}, max_buffer_size {}); use a smaller batch or fewer members",
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

    /// A tensor of `members` contiguous copies of `shape` (member-major), holding `data` when given.
    pub(crate) fn new_tensor(
        &mut self,
        members: usize,
        shape: &[usize],
        label: &str,
        data: Option<&[f32]>,
    ) -> Result<GpuTensor> {
        crate::backend::check_members("zeros_members", label, members)?;
        let n = crate::backend::numel(shape);
        if let Some(d) = data
            && d.len() != n * members
        {
            return Err(Error::shape("tensor", format!("`{label}`: {} values for shape {shape:?}", d.len())));
        }
        // Checked in u64: a stacked tensor may not even fit usize arithmetic on a 32-bit host.
        let bytes = (n.max(1) as u64).saturating_mul(members as u64).saturating_mul(4);
        let what = if members == 1 { "tensor".to_string() } else { format!("tensor of {members} members") };
        let (buffer, offset) = self.guarded_storage(bytes, label, &what, vec![(0, bytes)])?;
        if let Some(d) = data.filter(|d| !d.is_empty()) {
            self.ctx.queue.write_buffer(&buffer, offset, bytemuck::cast_slice(d));
        }
        // New buffers are zeroed by wgpu, so `zeros` needs no write.
        let id = self.new_id();
        if offset > 0 {
            self.views.insert(id, (offset, bytes + self.guard_overrun()));
        }
        Ok(GpuTensor {
            buffer,
            offset,
            pack: None,
            shape: shape.to_vec(),
            members,
            mstride: n,
            id,
            label: label.to_string(),
        })
    }

    /// A uniform holding `v`, created once per distinct content (per-layer shapes), then reused.
    pub(crate) fn uniform<T: Pod>(&mut self, v: &T) -> (u64, wgpu::Buffer) {
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
    pub(crate) fn scratch(&mut self, bytes: u64) -> Result<(u64, wgpu::Buffer)> {
        if let Some((id, b)) = self.scratch.get(&bytes) {
            return Ok((*id, b.clone()));
        }
        let (buffer, offset) = self.guarded_storage(bytes, "split_k_partials", "scratch buffer", vec![(0, bytes)])?;
        let id = self.new_id();
        if offset > 0 {
            self.views.insert(id, (offset, bytes + self.guard_overrun()));
        }
        self.scratch.insert(bytes, (id, buffer.clone()));
        Ok((id, buffer))
    }
}
