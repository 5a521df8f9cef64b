//! Layers and the sample CNN, generic over the backend; PyTorch-default init; safetensors weights.

pub mod weights;
