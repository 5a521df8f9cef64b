//! Layer lists fitted to their input (docs/models.md), and parameter groups assigned by glob, without training:
//! names and shapes as `nn.Sequential` gives them, checked against the PyTorch goldens' own records.

use wgtrain::nn::{Architecture, ModelSpec, PARAMS};
use wgtrain::optim::{GroupSpec, OptimConfig, OptimizerKind, glob_match};

fn fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trajectory2").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn names(a: &Architecture) -> Vec<String> {
    a.params.iter().map(|p| p.name.clone()).collect()
}

#[test]
fn sample_cnn_preset_is_the_design_card_network() {
    let a = wgtrain::nn::sample_cnn();
    let got: Vec<(&str, &[usize])> = a.param_shapes();
    assert_eq!(got, PARAMS.to_vec());
    assert_eq!(a.shapes.last().unwrap(), &vec![10]);
    // conv1 26×26, conv2 24×24, pools 12×12 and 6×6, flatten 2304.
    assert_eq!(a.shapes[4], vec![64, 12, 12]);
    assert_eq!(a.shapes[6], vec![2304]);
}

#[test]
fn presets_and_lists_carry_pytorchs_names() {
    // Every golden case's parameter names (group_params, flattened) are the architecture's.
    for case in ["public_lenet_sgd", "public_mlp_adam_groups", "public_adamw_cosine"] {
        let j = fixture(&format!("{case}.json"));
        let spec = match &j["case"]["model"] {
            serde_json::Value::String(s) => ModelSpec::parse_arg(s, 10).unwrap(),
            list => serde_json::from_value(list.clone()).unwrap(),
        };
        let a = Architecture::new(&spec, [1, 28, 28], 10).unwrap();
        let mut want: Vec<String> = j["group_params"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g.as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut got = names(&a);
        want.sort();
        got.sort();
        assert_eq!(got, want, "{case}");
    }
    let lenet = Architecture::new(&ModelSpec::preset("lenet5", 10).unwrap(), [1, 28, 28], 10).unwrap();
    assert_eq!(lenet.params[4].shape, vec![120, 400]);
    let mlp = Architecture::new(&ModelSpec::preset("mlp", 3).unwrap(), [1, 45, 65], 3).unwrap();
    assert_eq!(names(&mlp), ["1.weight", "1.bias", "3.weight", "3.bias"]);
    assert_eq!(mlp.params[0].shape, vec![256, 45 * 65]);
    assert_eq!(mlp.params[2].shape, vec![3, 256]);
}

#[test]
fn stride_padding_and_overlapping_pools_give_pytorchs_output_sizes() {
    let spec: ModelSpec = serde_json::from_str(
        r#"{"layers": [
            {"type": "conv2d", "out_channels": 7, "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "max_pool2d", "kernel_size": 3, "stride": 2},
            {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "bias": false},
            {"type": "flatten"},
            {"type": "linear", "out_features": 5}
        ]}"#,
    )
    .unwrap();
    let a = Architecture::new(&spec, [1, 45, 65], 5).unwrap();
    // (45 + 2 − 3)/2 + 1 = 23, (65 + 2 − 3)/2 + 1 = 33; pool: (23 − 3)/2 + 1 = 11, (33 − 3)/2 + 1 = 16.
    assert_eq!(a.shapes[0], vec![7, 23, 33]);
    assert_eq!(a.shapes[1], vec![7, 11, 16]);
    assert_eq!(names(&a), ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias"]);
    assert_eq!(a.params[3].shape, vec![5, 4 * 11 * 16]);
}

#[test]
fn glob_matching() {
    for (p, n, want) in [
        ("*", "conv1.weight", true),
        ("*.bias", "fc1.bias", true),
        ("*.bias", "fc1.weight", false),
        ("conv*", "conv2.weight", true),
        ("c*.w*t", "conv1.weight", true),
        ("fc1.weight", "fc1.weight", true),
        ("fc1.weigh", "fc1.weight", false),
        ("**a", "a", true),
        ("", "", true),
        ("", "x", false),
    ] {
        assert_eq!(glob_match(p, n), want, "{p} ~ {n}");
    }
}

#[test]
fn groups_follow_first_match_and_the_rest_form_a_last_group() {
    let j = fixture("public_mlp_adam_groups.json");
    let specs: Vec<GroupSpec> = serde_json::from_value(j["case"]["param_groups"].clone()).unwrap();
    let mut cfg = OptimConfig::sgd(0.1, 0.0);
    cfg.kind = OptimizerKind::Adam;
    cfg.groups = specs;
    let a = Architecture::new(&ModelSpec::preset("mlp", 10).unwrap(), [1, 28, 28], 10).unwrap();
    let g = cfg.groups(&names(&a)).unwrap();
    let want: Vec<Vec<String>> = serde_json::from_value(j["group_params"].clone()).unwrap();
    assert_eq!(g.names, want);
    assert_eq!(g.of, [1, 0, 1, 0]);
    assert_eq!((g.hyper[0].weight_decay, g.hyper[1].weight_decay), (0.0, 0.0001));

    // Leftovers form a last group with the command-line values.
    cfg.groups = vec![GroupSpec { params: vec!["3.*".into()], lr: Some(0.5), ..Default::default() }];
    let g = cfg.groups(&names(&a)).unwrap();
    assert_eq!(g.of, [1, 1, 0, 0]);
    assert_eq!((g.hyper[0].lr, g.hyper[1].lr), (0.5, 0.1));
}

#[test]
fn lr_find_math_follows_fastai() {
    use wgtrain::lrfind::{Smoother, lr_at, minimum, steepest, suggest, valley};
    assert_eq!(lr_at(0, 100, 1e-7, 10.0), 1e-7);
    assert!((lr_at(99, 100, 1e-7, 10.0) - 10.0).abs() < 1e-12);
    assert!((lr_at(33, 100, 1e-6, 1e-3) / lr_at(32, 100, 1e-6, 1e-3) - 1e3f64.powf(1.0 / 99.0)).abs() < 1e-12);
    // Bias correction: a constant loss is reported as itself from the first step on.
    let mut s = Smoother::new(0.98);
    for _ in 0..5 {
        assert!((s.push(2.5) - 2.5).abs() < 1e-12);
    }
    assert!(!s.diverged(9.9, 4.0) && s.diverged(10.1, 4.0) && s.diverged(f64::NAN, 4.0));
    // A bowl in log lr: falls from index 0 to 12, then rises.
    let lrs: Vec<f64> = (0..20).map(|i| 10f64.powi(i - 10)).collect();
    let loss: Vec<f64> = (0..20).map(|i| ((i as f64) - 12.0).powi(2) + if i == 4 { 0.5 } else { 0.0 }).collect();
    assert_eq!(minimum(&lrs, &loss), Some(lrs[12] / 10.0));
    // Slopes per decade: 2·(i − 12) + 1 steps between points, most negative at the start.
    assert_eq!(steepest(&lrs, &loss), Some(lrs[0]));
    // Longest descending run 0..=12 (length 13, so fastai's start is 12 − 13 = −1): the valley point is
    // −1 + ⌊13/3⌋ + ⌊13/6⌋ = 5, a third of the way down in steps, two thirds of the way in loss.
    assert_eq!(valley(&lrs, &loss), Some(lrs[5]));
    let s = suggest(&lrs, &loss);
    assert_eq!(s.minimum, minimum(&lrs[2..15], &loss[2..15]));
}
