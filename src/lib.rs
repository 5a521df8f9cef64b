//! wgtrain: a neural-network trainer on any GPU through wgpu compute shaders, checked against a plain CPU
//! reference, with PyTorch-exact learning-rate schedules written to the update kernel as a per-step uniform.
//!
//! Modules, in the order data flows through a step:
//! - [`data`]: MNIST IDX reader (raw/gz, validated) and the embedded default dataset;
//! - [`backend`]: the narrow [`backend::Backend`] trait, every op with its exact math and shapes;
//! - [`cpu`]: the reference backend (plain Rust, the living definition of each op);
//! - [`gpu`]: the wgpu backend (WGSL kernels under `shaders/`);
//! - [`nn`]: models as layer lists (presets, shape inference, fused forward/backward), init, safetensors;
//! - [`optim`]: SGD, Adam, AdamW as `torch.optim` defines them: groups, clipping, state, per-step uniform;
//! - [`schedule`]: learning-rate schedulers, PyTorch-exact;
//! - [`lrfind`]: the learning-rate range test's smoothing and suggestions;
//! - [`train`]: the loop, which owns the step, and metrics;
//! - [`sweep`]: grid and random search specs, trial ranking, plots;
//! - [`output`]: output files and streams (paths checked up front, safe writes, no panics on pipes);
//! - [`console`]: the progress bar and per-epoch lines of `train`;
//! - [`util`]: small shared helpers.

pub mod backend;
pub mod cli;
pub mod compare;
pub mod console;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod lrfind;
pub mod nn;
pub mod optim;
pub mod output;
pub mod plot;
pub mod schedule;
pub mod sweep;
pub mod tolerance;
pub mod train;
pub mod util;

pub use error::{Error, Result};
