//! Models as layer lists (docs/models.md), generic over the backend; PyTorch-default init; safetensors weights.
//!
//! - [`spec`]: the JSON layer list, the presets, shape inference ([`Architecture`]);
//! - [`model`]: parameters, gradients, forward and backward with fused ReLU layers ([`Model`]);
//! - [`init`], [`weights`]: PyTorch-default initialisation, safetensors with `state_dict` names.

pub mod init;
pub mod model;
pub mod spec;
pub mod weights;

pub use model::{Activations, Model};
pub use spec::{Architecture, Layer, LayerSpec, ModelSpec, ParamSpec};

/// The sample CNN's parameters (the `sample-cnn` preset on 28×28 MNIST), PyTorch `state_dict` names and shapes in
/// `model.parameters()` order.
pub const PARAMS: [(&str, &[usize]); 8] = [
    ("conv1.weight", &[32, 1, 3, 3]),
    ("conv1.bias", &[32]),
    ("conv2.weight", &[64, 32, 3, 3]),
    ("conv2.bias", &[64]),
    ("fc1.weight", &[128, 2304]),
    ("fc1.bias", &[128]),
    ("fc2.weight", &[10, 128]),
    ("fc2.bias", &[10]),
];

/// The sample CNN fitted to 28×28 MNIST with 10 classes.
pub fn sample_cnn() -> Architecture {
    let spec = ModelSpec::preset("sample-cnn", 10).expect("a preset");
    Architecture::new(&spec, [1, 28, 28], 10).expect("the sample CNN fits MNIST")
}
