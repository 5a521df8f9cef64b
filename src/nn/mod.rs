//! Layers and the sample CNN, generic over the backend; PyTorch-default init; safetensors weights.

pub mod cnn;
pub mod init;
pub mod weights;

pub use cnn::{Activations, DeviceData, PARAMS, SampleCnn, StepArgs};
