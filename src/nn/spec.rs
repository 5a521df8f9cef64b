//! Models as layer lists (docs/models.md): the JSON form of a PyTorch `nn.Sequential`, the presets, and the
//! shape inference that turns a list into an [`Architecture`] for a given input, or refuses it naming the layer.
//!
//! A list is checked completely before any tensor exists: every kernel must fit its (padded) input, a
//! `linear` needs a flattened input, and the last layer's width must be the number of classes.

use serde::{Deserialize, Serialize};

use crate::backend::{ConvGeom, PoolGeom};
use crate::{Error, Result};

/// One entry of a layer list, with PyTorch's argument names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out_channels: usize,
        kernel_size: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    MaxPool2d {
        kernel_size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    Relu,
    Flatten,
    Linear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out_features: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// A layer list: `{"layers": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub layers: Vec<LayerSpec>,
}

/// The most elements one parameter or one example's activation may have (2^28: a 1 GiB f32 tensor).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Preset names accepted by `--model`.
pub const PRESETS: [&str; 3] = ["sample-cnn", "lenet5", "mlp"];

fn conv(name: &str, out: usize, k: usize, padding: usize) -> LayerSpec {
    LayerSpec::Conv2d { name: Some(name.into()), out_channels: out, kernel_size: k, stride: 1, padding, bias: true }
}
fn linear(name: Option<&str>, out: usize) -> LayerSpec {
    LayerSpec::Linear { name: name.map(Into::into), out_features: out, bias: true }
}
fn pool(k: usize) -> LayerSpec {
    LayerSpec::MaxPool2d { kernel_size: k, stride: None }
}

impl ModelSpec {
    /// A preset by name (`sample-cnn`, `lenet5`, `mlp`), with the classes of the data as the last width.
    pub fn preset(name: &str, classes: usize) -> Option<ModelSpec> {
        use LayerSpec::{Flatten, Relu};
        let layers = match name {
            // The design card's CNN: conv1 → ReLU → conv2 → ReLU → pool 2 → pool 2 → flatten → fc1 → ReLU → fc2.
            "sample-cnn" => vec![
                conv("conv1", 32, 3, 0),
                Relu,
                conv("conv2", 64, 3, 0),
                Relu,
                pool(2),
                pool(2),
                Flatten,
                linear(Some("fc1"), 128),
                Relu,
                linear(Some("fc2"), classes),
            ],
            "lenet5" => vec![
                conv("c1", 6, 5, 2),
                Relu,
                pool(2),
                conv("c3", 16, 5, 0),
                Relu,
                pool(2),
                Flatten,
                linear(Some("f5"), 120),
                Relu,
                linear(Some("f6"), 84),
                Relu,
                linear(Some("out"), classes),
            ],
            "mlp" => vec![Flatten, linear(None, 256), Relu, linear(None, classes)],
            _ => return None,
        };
        Some(ModelSpec { layers })
    }

    /// `--model` as given: a preset name, a JSON layer list, or `@FILE` holding one.
    pub fn parse_arg(arg: &str, classes: usize) -> Result<ModelSpec> {
        let text = if let Some(path) = arg.strip_prefix('@') {
            std::fs::read_to_string(path).map_err(|e| Error::Model(format!("cannot read layer list {path}: {e}")))?
        } else if let Some(spec) = ModelSpec::preset(arg, classes) {
            return Ok(spec);
        } else if arg.trim_start().starts_with('{') {
            arg.to_string()
        } else {
            return Err(Error::Model(format!(
                "unknown model `{arg}`: use a preset ({}), a JSON layer list, or @FILE",
                PRESETS.join(", ")
            )));
        };
        ModelSpec::from_json(&text)
    }

    /// A layer list from JSON. Unknown keys are refused naming the layer (serde cannot deny them inside an
    /// internally tagged enum, so they are checked on the raw value first).
    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Model(format!("not valid JSON: {e}")))?;
        if let Some(layers) = value.get("layers").and_then(|l| l.as_array()) {
            for (i, layer) in layers.iter().enumerate() {
                let Some(obj) = layer.as_object() else { continue };
                let allowed: &[&str] = match obj.get("type").and_then(|t| t.as_str()) {
                    Some("conv2d") => &["type", "name", "out_channels", "kernel_size", "stride", "padding", "bias"],
                    Some("max_pool2d") => &["type", "kernel_size", "stride"],
                    Some("relu" | "flatten") => &["type"],
                    Some("linear") => &["type", "name", "out_features", "bias"],
                    _ => continue, // serde names the unknown or missing type
                };
                if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(Error::Model(format!(
                        "layer {i}: unknown key \"{k}\" for {} (allowed: {})",
                        obj["type"],
                        allowed[1..].join(", ")
                    )));
                }
            }
        }
        serde_json::from_value(value).map_err(|e| Error::Model(format!("not a valid layer list: {e}")))
    }
}

/// A parameterised tensor of the model: PyTorch `state_dict` name and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// One layer after shape inference. `params` index [`Architecture::params`] (weight, then bias if any).
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    Conv { geom: ConvGeom, weight: usize, bias: Option<usize> },
    Pool { geom: PoolGeom },
    Relu,
    Flatten,
    Linear { weight: usize, bias: Option<usize> },
}

/// A layer list fitted to an input: every layer's output shape (per example, without the batch dimension)
/// and every parameter in `model.parameters()` order.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub spec: ModelSpec,
    pub input: Vec<usize>,
    pub classes: usize,
    pub layers: Vec<Layer>,
    /// `shapes[i]` is the output of layer i (per example); the input is [`Architecture::input`].
    pub shapes: Vec<Vec<usize>>,
    pub params: Vec<ParamSpec>,
}

impl Architecture {
    /// Fit `spec` to inputs of shape `input` ([C,H,W]) and `classes` classes, or say which layer does not fit.
    pub fn new(spec: &ModelSpec, input: [usize; 3], classes: usize) -> Result<Architecture> {
        if spec.layers.is_empty() {
            return Err(Error::Model("the layer list is empty".into()));
        }
        let mut shape = input.to_vec();
        let (mut layers, mut shapes, mut params) = (Vec::new(), Vec::new(), Vec::<ParamSpec>::new());
        for (i, l) in spec.layers.iter().enumerate() {
            let at = |name: &Option<String>| match name {
                Some(n) => format!("layer {i} ({n})"),
                None => format!("layer {i}"),
            };
            let bad = |what: String, msg: String| Err(Error::Model(format!("{what}: {msg}")));
            let pname = |name: &Option<String>| name.clone().unwrap_or_else(|| i.to_string());
            let add = |params: &mut Vec<ParamSpec>, name: String, shape: Vec<usize>| -> Result<usize> {
                if params.iter().any(|p| p.name == name) {
                    return Err(Error::Model(format!("{}: parameter name {name} is used twice", at(&None))));
                }
                params.push(ParamSpec { name, shape });
                Ok(params.len() - 1)
            };
            let layer = match l {
                LayerSpec::Conv2d { name, out_channels, kernel_size, stride, padding, bias } => {
                    let &[c, h, w] = shape.as_slice() else {
                        return bad(
                            at(name),
                            format!("conv2d needs a [C,H,W] input, got {shape:?} (after a flatten?)"),
                        );
                    };
                    if *out_channels == 0 || *kernel_size == 0 || *stride == 0 {
                        return bad(at(name), "out_channels, kernel_size and stride must be at least 1".into());
                    }
                    let geom = ConvGeom { stride: *stride, padding: *padding };
                    let (Some(ho), Some(wo)) = (geom.out_size(h, *kernel_size), geom.out_size(w, *kernel_size)) else {
                        return bad(
                            at(name),
                            format!("kernel {kernel_size} with padding {padding} does not fit the {h}×{w} input"),
                        );
                    };
                    let n = pname(name);
                    let weight =
                        add(&mut params, format!("{n}.weight"), vec![*out_channels, c, *kernel_size, *kernel_size])?;
                    let bias = bias.then(|| add(&mut params, format!("{n}.bias"), vec![*out_channels])).transpose()?;
                    shape = vec![*out_channels, ho, wo];
                    Layer::Conv { geom, weight, bias }
                }
                LayerSpec::MaxPool2d { kernel_size, stride } => {
                    let geom = PoolGeom { kernel: *kernel_size, stride: stride.unwrap_or(*kernel_size) };
                    let &[c, h, w] = shape.as_slice() else {
                        return bad(at(&None), format!("max_pool2d needs a [C,H,W] input, got {shape:?}"));
                    };
                    if geom.kernel == 0 || geom.stride == 0 {
                        return bad(at(&None), "max_pool2d kernel_size and stride must be at least 1".into());
                    }
                    let (Some(ho), Some(wo)) = (geom.out_size(h), geom.out_size(w)) else {
                        return bad(at(&None), format!("pool window {} does not fit the {h}×{w} input", geom.kernel));
                    };
                    shape = vec![c, ho, wo];
                    Layer::Pool { geom }
                }
                LayerSpec::Relu => Layer::Relu,
                LayerSpec::Flatten => {
                    shape = vec![shape.iter().product()];
                    Layer::Flatten
                }
                LayerSpec::Linear { name, out_features, bias } => {
                    let &[features] = shape.as_slice() else {
                        return bad(at(name), format!("linear needs a flattened input, got {shape:?}: add a flatten"));
                    };
                    if *out_features == 0 {
                        return bad(at(name), "out_features must be at least 1".into());
                    }
                    let n = pname(name);
                    let weight = add(&mut params, format!("{n}.weight"), vec![*out_features, features])?;
                    let bias = bias.then(|| add(&mut params, format!("{n}.bias"), vec![*out_features])).transpose()?;
                    shape = vec![*out_features];
                    Layer::Linear { weight, bias }
                }
            };
            // Shapes are indexed with u32 on the GPU and allocated whole on the CPU: refuse absurd sizes here,
            // with a message, rather than overflow or abort on allocation later.
            let too_big = |dims: &[usize]| {
                dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > MAX_ELEMENTS)
            };
            if too_big(&shape) || params.iter().any(|p| too_big(&p.shape)) {
                return Err(Error::Model(format!(
                    "layer {i}: a tensor of more than {MAX_ELEMENTS} elements per example (output {shape:?})"
                )));
            }
            layers.push(layer);
            shapes.push(shape.clone());
        }
        let last = spec.layers.len() - 1;
        if shape != [classes] {
            return Err(Error::Model(format!(
                "layer {last}: the model ends in shape {shape:?}, but the data has {classes} classes \
                 (the last layer must be a linear with out_features {classes})"
            )));
        }
        if params.is_empty() {
            return Err(Error::Model("the layer list has no parameters to train".into()));
        }
        Ok(Architecture { spec: spec.clone(), input: input.to_vec(), classes, layers, shapes, params })
    }

    /// `(name, shape)` pairs in parameter order, as the weights loader wants them.
    pub fn param_shapes(&self) -> Vec<(&str, &[usize])> {
        self.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect()
    }

    /// Multiply-adds per example in the forward pass (for FLOP/s figures).
    pub fn forward_macs(&self) -> usize {
        let mut macs = 0;
        for (i, l) in self.layers.iter().enumerate() {
            let out: usize = self.shapes[i].iter().product();
            match l {
                Layer::Conv { weight, .. } => {
                    let w = &self.params[*weight].shape;
                    macs += out * w[1] * w[2] * w[3];
                }
                Layer::Linear { weight, .. } => macs += out * self.params[*weight].shape[1],
                _ => {}
            }
        }
        macs
    }
}
