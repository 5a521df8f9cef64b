//! Every compute pipeline the backend uses: a [`Kernel`] names a (file, entry point, override constants,
//! bindings) tuple. Shader sources are compiled into the binary from `shaders/`; pipelines are built once,
//! on first use, inside error scopes, so a bad shader is an [`Error::Shader`] naming file and entry point.

use std::collections::HashMap;

use crate::{Error, Result};

/// Every WGSL file the code loads, with its source. `tests/naga_shaders.rs` checks this equals the set of
/// files in `shaders/`, so neither side can drift.
pub const SHADERS: &[(&str, &str)] = &[
    ("adam.wgsl", include_str!("../../shaders/adam.wgsl")),
    ("conv2d.wgsl", include_str!("../../shaders/conv2d.wgsl")),
    ("elementwise.wgsl", include_str!("../../shaders/elementwise.wgsl")),
    ("gather.wgsl", include_str!("../../shaders/gather.wgsl")),
    ("grad_norm.wgsl", include_str!("../../shaders/grad_norm.wgsl")),
    ("matmul.wgsl", include_str!("../../shaders/matmul.wgsl")),
    ("pool.wgsl", include_str!("../../shaders/pool.wgsl")),
    ("sgd.wgsl", include_str!("../../shaders/sgd.wgsl")),
    ("softmax_xent.wgsl", include_str!("../../shaders/softmax_xent.wgsl")),
];

/// What a binding slot holds; the explicit bind-group layout is built from this list, and a mismatch with
/// the WGSL declaration is a validation error at pipeline creation (caught, not a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Uniform,
    Read,
    ReadWrite,
}

use Bind::{Read as R, ReadWrite as W, Uniform as U};

/// One pipeline: a WGSL entry point specialised by override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    GatherBatch,
    /// `y = x·wᵀ + b` (linear forward, not split).
    MatmulNTBias,
    /// `y = relu(x·wᵀ + b)` (forward of a linear + ReLU layer, not split).
    MatmulNTBiasRelu,
    /// `x·wᵀ` without bias: the split-K partials of the linear forward.
    MatmulNT,
    /// `dy·w` (linear backward-input).
    MatmulNN,
    /// `dy·w` where the ReLU output fed to the layer (binding 3) > 0, else 0 (not split).
    MatmulNNMask,
    /// `dyᵀ·x` (linear backward-weight).
    MatmulTN,
    ReduceSplits,
    ReduceSplitsBias,
    ReduceSplitsBiasRelu,
    ReduceSplitsMask,
    /// Conv kernels with the 64×64 tile (TM = 4), for products with 64 or more rows…
    Conv2dForward,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    /// …and with the 32×128 tile (TM = 2), for products of at most 32 rows (32 channels).
    Conv2dForwardM32,
    Conv2dBackwardInputM32,
    Conv2dBackwardWeightM32,
    /// Conv forward with the ReLU in the epilogue, and backward-input masked by the ReLU output that fed it.
    Conv2dForwardRelu,
    Conv2dForwardReluM32,
    Conv2dBackwardInputMask,
    Conv2dBackwardInputMaskM32,
    MaxPool2d,
    MaxPool2dBackward,
    /// Max-pool backward then ReLU backward (x is the ReLU's output).
    MaxPool2dBackwardMask,
    Relu,
    ReluBackward,
    BiasGrad,
    SoftmaxXent,
    EvalAccumulate,
    /// Squares summed per workgroup over a whole packed buffer, then the one-workgroup sum and sqrt.
    GradNormPartials,
    GradNormFinish,
    /// One dispatch updating every tensor of a packed set.
    SgdUpdate,
    AdamUpdate,
}

/// Everything needed to build a kernel's pipeline and bind its buffers.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub file: &'static str,
    pub entry: &'static str,
    pub constants: &'static [(&'static str, f64)],
    /// (binding number, kind), in the order launchers pass buffers.
    pub bindings: &'static [(u32, Bind)],
}

const GEMM: &[(u32, Bind)] = &[(0, U), (1, R), (2, R), (3, R), (4, W)];
const REDUCE: &[(u32, Bind)] = &[(5, U), (6, R), (3, R), (4, W)];
const ELEM: &[(u32, Bind)] = &[(0, U), (1, R), (2, W)];

impl Kernel {
    pub const ALL: &[Kernel] = &[
        Kernel::GatherBatch,
        Kernel::MatmulNTBias,
        Kernel::MatmulNTBiasRelu,
        Kernel::MatmulNT,
        Kernel::MatmulNN,
        Kernel::MatmulNNMask,
        Kernel::MatmulTN,
        Kernel::ReduceSplits,
        Kernel::ReduceSplitsBias,
        Kernel::ReduceSplitsBiasRelu,
        Kernel::ReduceSplitsMask,
        Kernel::Conv2dForward,
        Kernel::Conv2dBackwardInput,
        Kernel::Conv2dBackwardWeight,
        Kernel::Conv2dForwardM32,
        Kernel::Conv2dBackwardInputM32,
        Kernel::Conv2dBackwardWeightM32,
        Kernel::Conv2dForwardRelu,
        Kernel::Conv2dForwardReluM32,
        Kernel::Conv2dBackwardInputMask,
        Kernel::Conv2dBackwardInputMaskM32,
        Kernel::MaxPool2d,
        Kernel::MaxPool2dBackward,
        Kernel::MaxPool2dBackwardMask,
        Kernel::Relu,
        Kernel::ReluBackward,
        Kernel::BiasGrad,
        Kernel::SoftmaxXent,
        Kernel::EvalAccumulate,
        Kernel::GradNormPartials,
        Kernel::GradNormFinish,
        Kernel::SgdUpdate,
        Kernel::AdamUpdate,
    ];

    pub fn spec(self) -> Spec {
        let s = |file, entry, constants, bindings| Spec { file, entry, constants, bindings };
        match self {
            Kernel::GatherBatch => {
                s("gather.wgsl", "gather_batch", &[], &[(0, U), (1, U), (2, R), (3, R), (4, R), (5, W), (6, W)])
            }
            Kernel::MatmulNTBias => s("matmul.wgsl", "matmul", &[("TRANS_B", 1.0), ("HAS_BIAS", 1.0)], GEMM),
            Kernel::MatmulNTBiasRelu => {
                s("matmul.wgsl", "matmul", &[("TRANS_B", 1.0), ("HAS_BIAS", 1.0), ("RELU", 1.0)], GEMM)
            }
            Kernel::MatmulNT => s("matmul.wgsl", "matmul", &[("TRANS_B", 1.0)], GEMM),
            Kernel::MatmulNN => s("matmul.wgsl", "matmul", &[], GEMM),
            Kernel::MatmulNNMask => s("matmul.wgsl", "matmul", &[("MASK", 1.0)], GEMM),
            Kernel::MatmulTN => s("matmul.wgsl", "matmul", &[("TRANS_A", 1.0)], GEMM),
            Kernel::ReduceSplits => s("matmul.wgsl", "reduce_splits", &[], REDUCE),
            Kernel::ReduceSplitsBias => s("matmul.wgsl", "reduce_splits", &[("HAS_BIAS", 1.0)], REDUCE),
            Kernel::ReduceSplitsBiasRelu => {
                s("matmul.wgsl", "reduce_splits", &[("HAS_BIAS", 1.0), ("RELU", 1.0)], REDUCE)
            }
            Kernel::ReduceSplitsMask => s("matmul.wgsl", "reduce_splits", &[("MASK", 1.0)], REDUCE),
            Kernel::Conv2dForward => s("conv2d.wgsl", "conv2d", &[("MODE", 0.0)], GEMM),
            Kernel::Conv2dBackwardInput => s("conv2d.wgsl", "conv2d", &[("MODE", 1.0)], GEMM),
            Kernel::Conv2dBackwardWeight => s("conv2d.wgsl", "conv2d", &[("MODE", 2.0)], GEMM),
            Kernel::Conv2dForwardM32 => s("conv2d.wgsl", "conv2d", &[("MODE", 0.0), ("TM", 2.0)], GEMM),
            Kernel::Conv2dBackwardInputM32 => s("conv2d.wgsl", "conv2d", &[("MODE", 1.0), ("TM", 2.0)], GEMM),
            Kernel::Conv2dBackwardWeightM32 => s("conv2d.wgsl", "conv2d", &[("MODE", 2.0), ("TM", 2.0)], GEMM),
            Kernel::Conv2dForwardRelu => s("conv2d.wgsl", "conv2d", &[("MODE", 0.0), ("RELU", 1.0)], GEMM),
            Kernel::Conv2dForwardReluM32 => {
                s("conv2d.wgsl", "conv2d", &[("MODE", 0.0), ("RELU", 1.0), ("TM", 2.0)], GEMM)
            }
            Kernel::Conv2dBackwardInputMask => s("conv2d.wgsl", "conv2d", &[("MODE", 1.0), ("MASK", 1.0)], GEMM),
            Kernel::Conv2dBackwardInputMaskM32 => {
                s("conv2d.wgsl", "conv2d", &[("MODE", 1.0), ("MASK", 1.0), ("TM", 2.0)], GEMM)
            }
            Kernel::MaxPool2d => s("pool.wgsl", "max_pool2d", &[], &[(0, U), (1, R), (2, W)]),
            Kernel::MaxPool2dBackward => s("pool.wgsl", "max_pool2d_backward", &[], &[(0, U), (1, R), (3, R), (4, W)]),
            Kernel::MaxPool2dBackwardMask => {
                s("pool.wgsl", "max_pool2d_backward", &[("MASK", 1.0)], &[(0, U), (1, R), (3, R), (4, W)])
            }
            Kernel::Relu => s("elementwise.wgsl", "relu", &[], ELEM),
            Kernel::ReluBackward => s("elementwise.wgsl", "relu_backward", &[], &[(0, U), (1, R), (3, R), (2, W)]),
            Kernel::BiasGrad => s("elementwise.wgsl", "bias_grad", &[], &[(4, U), (1, R), (2, W)]),
            Kernel::SoftmaxXent => {
                s("softmax_xent.wgsl", "softmax_xent", &[], &[(0, U), (1, U), (2, R), (3, R), (4, W), (5, W)])
            }
            Kernel::EvalAccumulate => s("softmax_xent.wgsl", "eval_accumulate", &[], &[(0, U), (2, R), (3, R), (6, W)]),
            Kernel::GradNormPartials => s("grad_norm.wgsl", "grad_norm_partials", &[], &[(0, U), (1, R), (2, W)]),
            Kernel::GradNormFinish => s("grad_norm.wgsl", "grad_norm_finish", &[], &[(0, U), (3, U), (4, R), (5, W)]),
            // hyper, segments, norms, param, grad, then the state buffers.
            Kernel::SgdUpdate => s("sgd.wgsl", "sgd_update", &[], &[(0, U), (1, R), (2, R), (3, W), (4, R), (5, W)]),
            Kernel::AdamUpdate => {
                s("adam.wgsl", "adam_update", &[], &[(0, U), (1, R), (2, R), (3, W), (4, R), (5, W), (6, W), (7, W)])
            }
        }
    }

    /// Debug label of the pipeline, e.g. `conv2d.wgsl:conv2d[MODE=1]`.
    pub fn label(self) -> String {
        let s = self.spec();
        let c: Vec<String> = s.constants.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if c.is_empty() {
            format!("{}:{}", s.file, s.entry)
        } else {
            format!("{}:{}[{}]", s.file, s.entry, c.join(","))
        }
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

/// Shader modules and pipelines, created on first use and kept for the device's lifetime.
#[derive(Default)]
pub struct Kernels {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<Kernel, Pipeline>,
}

impl Kernels {
    /// The pipeline of `k`, building it (and its module) the first time. Number of objects created is
    /// added to `created` (for the allocation counter).
    pub fn get(&mut self, device: &wgpu::Device, k: Kernel, created: &mut u64) -> Result<&Pipeline> {
        if !self.pipelines.contains_key(&k) {
            let p = self.build(device, k)?;
            *created += 1;
            self.pipelines.insert(k, p);
        }
        Ok(&self.pipelines[&k])
    }

    fn build(&mut self, device: &wgpu::Device, k: Kernel) -> Result<Pipeline> {
        let spec = k.spec();
        let shader_err = |msg: String| Error::Shader { file: spec.file.into(), entry: spec.entry.into(), msg };
        let label = k.label();
        // Two scopes: Validation catches WGSL and layout errors, Internal catches backend compiler failures.
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        if !self.modules.contains_key(spec.file) {
            let src = source(spec.file).ok_or_else(|| shader_err("not among the compiled-in shaders".into()))?;
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(spec.file),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            self.modules.insert(spec.file, module);
        }
        let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
            .bindings
            .iter()
            .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
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
        let layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &self.modules[spec.file],
            entry_point: Some(spec.entry),
            // Every kernel writes its workgroup arrays before a barrier and reads them only after it, so the
            // zero-fill WebGPU does by default is pure overhead.
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: spec.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let v = pollster::block_on(validation.pop());
        let i = pollster::block_on(internal.pop());
        if let Some(e) = v.or(i) {
            // A module that failed once stays failed; drop it so the error repeats rather than cascading.
            self.modules.remove(spec.file);
            return Err(shader_err(e.to_string()));
        }
        log::debug!("built pipeline {label}");
        Ok(Pipeline { pipeline, layout })
    }
}
