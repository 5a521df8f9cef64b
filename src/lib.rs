//! wgtrain: a neural-network trainer on any GPU through wgpu compute shaders, checked against a plain CPU
//! reference, with PyTorch-exact learning-rate schedules written to the update kernel as a per-step uniform.
//!
//! Modules, in the order data flows through a step:
//! - [`data`]: MNIST IDX reader (raw/gz, validated) and the embedded default dataset;
//! - [`backend`]: the narrow [`backend::Backend`] trait, every op with its exact math and shapes;
//! - [`cpu`]: the reference backend (plain Rust, the living definition of each op);
//! - [`gpu`]: the wgpu backend (WGSL kernels under `shaders/`);
//! - [`nn`]: the sample CNN, PyTorch-default init, safetensors weights;
//! - [`optim`]: optimizer hyper-parameters (SGD as `torch.optim.SGD`);
//! - [`schedule`]: learning-rate schedulers, PyTorch-exact;
//! - [`train`]: the training loop and metrics;
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
pub mod nn;
pub mod optim;
pub mod output;
pub mod plot;
pub mod schedule;
pub mod tolerance;
pub mod train;
pub mod util;

pub use error::{Error, Result};
