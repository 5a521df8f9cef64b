//! The one readback path: submit what is pending, copy into a MAP_READ staging buffer (grown to a power of two
//! and kept), wait for that copy with the backend's timeout and turn every failure into `Err`.
//!
//! Kept apart because it is the only place the host waits for the GPU; a training step never comes here.

use super::GpuBackend;
use crate::{Error, Result};

impl GpuBackend {
    /// `bytes` bytes of `src` from byte `offset` (a multiple of 4).
    pub(crate) fn read_bytes(&mut self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
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
        self.flush_deferred()?;
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
