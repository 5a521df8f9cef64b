//! Per-dispatch GPU timings from timestamp queries written inside the compute pass, so a real training step
//! (one encoder, one pass) can be broken down kernel by kernel without changing how it is recorded.
//! Needs the adapter's `TIMESTAMP_QUERY_INSIDE_PASSES` feature (Vulkan/DX12/Metal on most desktop GPUs).

use crate::{Error, Result};

/// Timestamps kept before the oldest unreported ones are dropped (two per dispatch).
const CAPACITY: u32 = 4096; // wgpu's maximum per query set

/// The features the profiler needs; the device asks for them whenever the adapter has them.
pub const FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

/// One timed dispatch: which kernel, on which tensor, and how long it ran on the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchTime {
    /// `kernel → output tensor`, e.g. `Conv2d/Forward+Relu → act.conv2` (the kernel as
    /// [`KernelKey`](super::kernels::KernelKey) displays it).
    pub label: String,
    pub nanos: f64,
    /// Floating-point operations of the dispatch (2·M·N·K for a GEMM-shaped kernel, its split-K partials
    /// included), 0 for the others: `flops / nanos` is the achieved GFLOP/s.
    pub flops: f64,
}

pub(crate) struct Profiler {
    pub set: wgpu::QuerySet,
    pub resolve: wgpu::Buffer,
    pub labels: Vec<(String, f64)>,
    /// FLOPs of the next dispatch, noted by its launcher (`GpuBackend::note_flops`), taken by `slots`.
    pub next_flops: f64,
    period_ns: f64,
}

impl Profiler {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, adapter: &str) -> Result<Profiler> {
        if !device.features().contains(FEATURES) {
            return Err(Error::Gpu(format!(
                "{adapter} does not support timestamp queries inside compute passes, which profiling needs"
            )));
        }
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profiler"),
            ty: wgpu::QueryType::Timestamp,
            count: CAPACITY,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profiler_resolve"),
            size: u64::from(CAPACITY) * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(Profiler {
            set,
            resolve,
            labels: Vec::new(),
            next_flops: 0.0,
            period_ns: f64::from(queue.get_timestamp_period()),
        })
    }

    /// Query indices for the next dispatch (start, end), or `None` when the set is full.
    pub fn slots(&mut self, label: String) -> Option<(u32, u32)> {
        let i = u32::try_from(self.labels.len() * 2).ok()?;
        if i + 2 > CAPACITY {
            return None;
        }
        self.labels.push((label, std::mem::take(&mut self.next_flops)));
        Some((i, i + 1))
    }

    /// Queries written so far (to resolve).
    pub fn used(&self) -> u32 {
        (self.labels.len() * 2) as u32
    }

    /// Pair the resolved ticks with the labels and start over.
    pub fn finish(&mut self, ticks: &[u64]) -> Vec<DispatchTime> {
        self.labels
            .drain(..)
            .zip(ticks.chunks_exact(2))
            .map(|((label, flops), t)| DispatchTime {
                label,
                nanos: t[1].saturating_sub(t[0]) as f64 * self.period_ns,
                flops,
            })
            .collect()
    }
}
