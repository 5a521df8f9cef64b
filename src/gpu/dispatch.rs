//! Recording: one dispatch at a time into the open compute pass, with bind groups cached by kernel and
//! buffer ids and optional GPU timestamps around each dispatch; and the submit that ends a recording.
//!
//! Kept apart because it is the hot path of a step (a few dozen calls per step, none of which may allocate
//! after the first step) and the only place that touches the pass, the bind-group cache and the profiler.

use super::GpuBackend;
use super::bindings::Bindings;
use super::buffer::Res;
use super::kernels::{Bind, KernelKey, Layout};
use crate::{Error, Result};

/// Bind groups kept before the cache is cleared (see `dispatch`).
const MAX_BIND_GROUPS: usize = 4096;

/// A dispatch noted before its pipeline was built (see `GpuBackend::dispatch`): what encoding it needs.
pub(crate) struct Deferred {
    key: (KernelKey, Vec<u64>),
    bufs: Vec<(u64, wgpu::Buffer)>,
    groups: [u32; 3],
    label: String,
    flops: f64,
}

/// A member-packed view's binding covers all its members' copies, and so the copies of the set's other tensors
/// in between: a writable binding must not share its buffer with another binding of the same dispatch (wgpu
/// tracks storage usage per buffer). Checked once per bind group, when the dispatch is recorded.
fn check_aliasing(k: KernelKey, layout: Layout, bufs: &[Res<'_>], label: &str) -> Result<()> {
    for (i, (slot, r)) in layout.iter().zip(bufs).enumerate() {
        let clash = layout.iter().zip(bufs).enumerate().find(|(j, (_, o))| *j != i && o.buffer == r.buffer);
        if let (Bind::ReadWrite, Some((_, (other, _)))) = (slot.kind, clash) {
            return Err(Error::shape(
                "dispatch",
                format!("{k} → {label}: `{}` is written but `{}` is bound from the same buffer", slot.name, other.name),
            ));
        }
    }
    Ok(())
}

impl GpuBackend {
    /// Record one dispatch of `k` with the buffers of `binds`, a filled bind layout of `k`'s family; `label`
    /// names the output (bind-group and profiler labels, errors).
    pub(crate) fn dispatch<'a, B: Bindings<'a>>(
        &mut self,
        k: KernelKey,
        binds: B,
        groups: [u32; 3],
        label: &str,
    ) -> Result<()> {
        if groups.contains(&0) {
            if let Some(p) = self.profiler.as_mut() {
                p.next_flops = 0.0; // noted for a dispatch that is not recorded
            }
            return Ok(());
        }
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::DeviceLimit(format!(
                "{label}: {} needs {groups:?} workgroups, the device allows {max} per dimension; use a smaller batch \
                 or fewer members",
                k.pipeline_label()
            )));
        }
        self.ctx.take_error()?;
        let layout = k.layout();
        debug_assert!(k.exists(), "{k:?} is not implemented by the shaders");
        debug_assert_eq!(layout, B::LAYOUT, "{k}: bound with another family's layout");
        let bufs = binds.resources();
        let key = (k, bufs.iter().map(|r| r.id).collect::<Vec<_>>());
        if !self.bind_groups.contains_key(&key) {
            check_aliasing(k, layout, &bufs, label)?;
        }
        if self.in_step && self.defer_builds && (!self.deferred.is_empty() || !self.kernels.has(k)) {
            // A pipeline the step needs is not built yet (the first step of a run): note the dispatch instead
            // of compiling there, one pipeline after another. The step's submit builds every missing pipeline
            // of the step at once, on several threads, then encodes the noted dispatches in order — so only
            // the pipelines a model uses are ever built. Once one dispatch is noted the rest of the step is too
            // (order); later steps find every pipeline built and note nothing.
            let flops = self.profiler.as_mut().map_or(0.0, |p| std::mem::take(&mut p.next_flops));
            let bufs = bufs.iter().map(|r| (r.id, r.buffer.clone())).collect();
            self.deferred.push(Deferred { key, bufs, groups, label: label.to_string(), flops });
            return Ok(());
        }
        self.encode(key, &bufs, groups, label)
    }

    /// Build the pipelines the noted dispatches need (in parallel) and encode those dispatches, in order.
    pub(crate) fn flush_deferred(&mut self) -> Result<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let mut deferred = std::mem::take(&mut self.deferred);
        let mut keys: Vec<KernelKey> = deferred.iter().map(|d| d.key.0).collect();
        keys.sort();
        keys.dedup();
        let built = self.build_pipelines(&keys);
        let mut result = built.map(|_| ());
        for d in deferred.drain(..) {
            if result.is_err() {
                break; // the rest are dropped with the error: nothing half-recorded is submitted later
            }
            if let Some(p) = self.profiler.as_mut() {
                p.next_flops = d.flops;
            }
            let bufs: Vec<Res<'_>> = d.bufs.iter().map(|(id, buffer)| Res { id: *id, buffer }).collect();
            result = self.encode(d.key.clone(), &bufs, d.groups, &d.label);
        }
        deferred.clear();
        self.deferred = deferred; // keeps its capacity
        result
    }

    /// Encode one dispatch into the open pass (opening encoder and pass when needed), creating its bind group
    /// the first time these buffers are bound to this kernel.
    fn encode(&mut self, key: (KernelKey, Vec<u64>), bufs: &[Res<'_>], groups: [u32; 3], label: &str) -> Result<()> {
        let k = key.0;
        let device = &self.ctx.device;
        let pipeline = self.kernels.get(device, k, &mut self.created)?;
        let layout = k.layout();
        if !self.bind_groups.contains_key(&key) {
            if self.bind_groups.len() >= MAX_BIND_GROUPS {
                // Bind groups keep their buffers alive; a program that keeps making new tensors (unit tests,
                // repeated evaluations) must not pin them all. A training step uses a few dozen.
                log::debug!("bind-group cache full ({MAX_BIND_GROUPS}); clearing it");
                self.bind_groups.clear();
            }
            let views = &self.views;
            let entries: Vec<wgpu::BindGroupEntry> = layout
                .iter()
                .zip(bufs)
                .map(|(slot, r)| {
                    let (offset, size) = views.get(&r.id).map_or((0, None), |&(o, s)| (o, wgpu::BufferSize::new(s)));
                    let resource =
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: r.buffer, offset, size });
                    wgpu::BindGroupEntry { binding: slot.binding, resource }
                })
                .collect();
            let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{k} → {label}")),
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
        let slots = self.profiler.as_mut().and_then(|p| p.slots(format!("{k} → {label}")).map(|s| (s, p.set.clone())));
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

    /// The FLOPs of the next dispatch (`2·m·n·k` of a GEMM), for the profiler's achieved FLOP/s; nothing
    /// when not profiling.
    pub(crate) fn note_flops(&mut self, (m, n, k): (usize, usize, usize)) {
        if let Some(p) = self.profiler.as_mut() {
            p.next_flops = 2.0 * m as f64 * n as f64 * k as f64;
        }
    }

    /// Workgroups for `n` threads in groups of 256, as a 2-D grid when one dimension is not enough.
    pub(crate) fn groups_1d(&self, n: usize) -> [u32; 3] {
        let g = n.div_ceil(256) as u64;
        let max = self.ctx.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = g.min(max);
        let y = if x == 0 { 0 } else { g.div_ceil(x) };
        [x as u32, y.min(u32::MAX as u64) as u32, 1]
    }

    /// Submit whatever has been recorded (no wait).
    pub(crate) fn submit(&mut self) -> Result<Option<wgpu::SubmissionIndex>> {
        self.flush_deferred()?;
        self.pass = None; // ends the pass; the encoder can be finished after this
        let idx = self.encoder.take().map(|enc| self.ctx.queue.submit([enc.finish()]));
        if idx.is_some() {
            self.note_submitted();
        }
        self.ctx.take_error()?;
        Ok(idx)
    }
}
