//! Values the host changes between ops without a buffer per value: the cursor (gather offset, loss slot, norm
//! slot — op arguments) and the optimizers' uniforms (rewritten each step).
//!
//! `queue.write_buffer` lands at the start of the *next submit*, before every op of it, not at its place among
//! the recorded ops. So a new value may be written straight away only if no op recorded since the last submit
//! reads the bytes it overwrites; otherwise the recorded work is submitted first ("flush on change"). Each cursor
//! field is its own 4-byte write, so a step that gathers (offset), computes its loss (slot) and its gradient norm
//! (slot) changes three different fields and stays one submit; evaluation batches at successive offsets inside
//! one encoder flush once per batch and stay correct.

use super::buffer::GpuUniform;
use super::ops::u;
use super::params::Cursor;
use super::{CURSOR_ID, GpuBackend};
use crate::backend::MAX_MEMBERS;
use crate::optim::{AdamHyper, SgdHyper};
use crate::{Error, Result};

/// The size the update kernels declare for their hyper-parameter uniform: [`MAX_MEMBERS`] blocks of the larger
/// of the two block types.
const UNIFORM_BYTES: u64 = (MAX_MEMBERS * max(size_of::<SgdHyper>(), size_of::<AdamHyper>())) as u64;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// A field of [`Cursor`], in field order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field {
    BatchOffset = 0,
    LossSlot = 1,
    NormSlot = 2,
}

pub(crate) struct CursorState {
    pub buffer: wgpu::Buffer,
    /// The value each field will hold when the next submit starts.
    value: [u32; 3],
    /// Whether an op recorded since the last submit reads the field.
    read: [bool; 3],
}

impl CursorState {
    pub fn new(device: &wgpu::Device) -> CursorState {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cursor"),
            size: std::mem::size_of::<Cursor>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        CursorState { buffer, value: [0; 3], read: [false; 3] }
    }
}

impl GpuBackend {
    /// The cursor uniform with `field = value` for the op about to be recorded (as `(id, buffer)` to bind).
    pub(crate) fn cursor(&mut self, field: Field, value: usize, op: &str) -> Result<(u64, wgpu::Buffer)> {
        let v = u(op, value)?;
        let i = field as usize;
        if self.cursor.value[i] != v {
            if self.cursor.read[i] {
                self.submit()?;
            }
            self.ctx.queue.write_buffer(&self.cursor.buffer, (i * 4) as u64, bytemuck::bytes_of(&v));
            self.cursor.value[i] = v;
        }
        self.cursor.read[i] = true;
        Ok((CURSOR_ID, self.cursor.buffer.clone()))
    }

    /// Everything recorded so far has been submitted: no recorded op reads a cursor field or a uniform now.
    pub(crate) fn note_submitted(&mut self) {
        self.submits += 1;
        self.cursor.read = [false; 3];
        self.bound_uniforms.clear();
    }

    /// `u` for the op about to be recorded (as `(id, buffer)` to bind); a later `write_uniform` flushes first.
    pub(crate) fn bind_uniform(&mut self, u: &GpuUniform) -> (u64, wgpu::Buffer) {
        if !self.bound_uniforms.contains(&u.id) {
            self.bound_uniforms.push(u.id);
        }
        (u.id, u.buffer.clone())
    }

    pub(crate) fn new_uniform(&mut self, bytes: usize, label: &str) -> Result<GpuUniform> {
        crate::optim::check::check_uniform_size(label, bytes)?;
        if bytes as u64 > self.ctx.limits.max_uniform_buffer_binding_size {
            return Err(Error::DeviceLimit(format!(
                "uniform `{label}` of {bytes} bytes exceeds the device's {}",
                self.ctx.limits.max_uniform_buffer_binding_size
            )));
        }
        self.ctx.take_error()?;
        // The update kernels declare MAX_MEMBERS hyper-parameter blocks (member m reads block m), and a binding
        // must cover what its shader declares; so the buffer holds that many blocks whatever the caller's
        // member count. The caller writes its P blocks at offset 0; the rest stay zero and are never read.
        let size = (bytes as u64).max(UNIFORM_BYTES).next_multiple_of(16);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.created += 1;
        let id = self.new_id();
        Ok(GpuUniform { buffer, id, host: vec![0; bytes], label: label.to_string() })
    }

    pub(crate) fn write_uniform_bytes(&mut self, u: &mut GpuUniform, bytes: &[u8]) -> Result<()> {
        if bytes.len() != u.host.len() {
            return Err(Error::shape(
                "write_uniform",
                format!("`{}` holds {} bytes, got {}", u.label, u.host.len(), bytes.len()),
            ));
        }
        if u.host == bytes {
            return Ok(());
        }
        if self.bound_uniforms.contains(&u.id) {
            self.submit()?;
        }
        self.ctx.queue.write_buffer(&u.buffer, 0, bytes);
        u.host.copy_from_slice(bytes);
        Ok(())
    }
}
