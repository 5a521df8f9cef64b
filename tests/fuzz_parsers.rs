//! Fuzz-style tests of every input parser (fixed seeds, so failures reproduce): random bytes and mutations of
//! valid files must give a clean bad-input error (exit status 2, a message) or a valid result, never a panic.
//! New parsers (layer lists, configs, checkpoints) get a `check` function and a call to `support::fuzz::fuzz`
//! or `fuzz_json` here.

mod support;

use std::io::Write;
use std::path::Path;

use support::fuzz::{fuzz, fuzz_json};
use wgtrain::data::{parse_images, parse_labels};
use wgtrain::nn::weights;
use wgtrain::schedule::{ScheduleConfig, Scheduler};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

#[test]
fn idx_images_and_labels() {
    let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 37 % 256) as u8).collect();
    let images = vec![idx(0x803, &[2, 3, 4], &pixels), idx(0x803, &[1, 28, 28], &[7; 784])];
    let labels = vec![idx(0x801, &[5], &[0, 1, 2, 9, 4]), idx(0x801, &[0], &[])];
    type Check = fn(&[u8]) -> wgtrain::Result<()>;
    let checks: [(&str, &[Vec<u8>], Check); 2] = [
        ("images", &images, |b| parse_images(b, Path::new("fuzz")).map(|_| ())),
        ("labels", &labels, |b| parse_labels(b, Path::new("fuzz")).map(|_| ())),
    ];
    for (what, seeds, check) in checks {
        let raw = fuzz(what, seeds, 3000, 1, check);
        assert!(raw.errors > 1000 && raw.ok > 0, "{what}: {raw:?}");
        // The same bytes behind a valid gzip stream: the decompressing path validates the same way.
        let gz = fuzz(what, seeds, 1500, 2, |b| check(&gzip(b)));
        assert!(gz.errors > 500, "{what} (gzipped): {gz:?}");
        // Mutations of the compressed bytes themselves (broken streams, wrong lengths, trailing garbage).
        let zipped: Vec<Vec<u8>> = seeds.iter().map(|s| gzip(s)).collect();
        let broken = fuzz(what, &zipped, 1500, 3, check);
        assert!(broken.errors > 500, "{what} (broken gzip): {broken:?}");
    }
}

#[test]
fn safetensors_weights() {
    let dir = tempfile::tempdir().unwrap();
    let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    let b = [1.0f32, -2.0, 3.5, 0.25];
    let seed_path = dir.path().join("seed.safetensors");
    weights::save(&seed_path, &[("a", &[2, 3], &a), ("b", &[4], &b)]).unwrap();
    let two = std::fs::read(&seed_path).unwrap();
    weights::save(&seed_path, &[("b", &[4], &b), ("a", &[2, 3], &[0.0; 6])]).unwrap();
    let one = std::fs::read(&seed_path).unwrap();
    // Parsing goes through a file, as `--init` does; both readers are checked. A new file each time:
    // truncating one file thousands of times makes ext4 flush it every time (seconds of waiting).
    let n = std::cell::Cell::new(0);
    let write = |bytes: &[u8]| {
        n.set(n.get() + 1);
        let p = dir.path().join(format!("f{}.safetensors", n.get()));
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let check = |bytes: &[u8]| -> wgtrain::Result<()> {
        let path = write(bytes);
        let any = weights::load_any(&path);
        let exact = weights::load(&path, &[("a", &[2, 3]), ("b", &[4])]);
        std::fs::remove_file(&path).unwrap();
        any.and(exact).map(|_| ())
    };
    let stats = fuzz("safetensors", &[one, two.clone()], 2000, 4, check);
    assert!(stats.errors > 1000 && stats.ok > 0, "{stats:?}");
    // The header is JSON: structural mutations of it, behind a correct length prefix.
    let header_len = u64::from_le_bytes(two[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&two[8..8 + header_len]).unwrap().trim_end().to_string();
    let data = two[8 + header_len..].to_vec();
    let stats = fuzz_json("safetensors header", &[&header], 1500, 5, |h| {
        let mut file = (h.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(h);
        file.extend_from_slice(&data);
        let path = write(&file);
        let r = weights::load_any(&path).map(|_| ());
        std::fs::remove_file(&path).unwrap();
        r
    });
    assert!(stats.errors > 500, "{stats:?}");
}

/// Parse, build, validate the run, and step through it, as `schedule`/`train` do.
fn check_schedule(bytes: &[u8]) -> wgtrain::Result<()> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(()) };
    // `@FILE` would read a file: keep the fuzzer on the JSON parser.
    let text = if text.starts_with('@') { format!(" {text}") } else { text.to_string() };
    let cfg = ScheduleConfig::parse(&text)?;
    let mut s = Scheduler::new(&cfg, 0.1, 0.9)?;
    s.check_run(60)?;
    for k in 0..60 {
        if s.needs_metric() {
            s.step_metric(1.0 / (k + 1) as f64)?;
        }
        s.step()?;
    }
    Ok(())
}

#[test]
fn schedule_json() {
    let seeds = [
        r#"{"kind":"step","step_size":3,"gamma":0.5}"#,
        r#"{"kind":"multi_step","milestones":[0,2,2,5],"gamma":0.1}"#,
        r#"{"kind":"constant","factor":0.5,"total_iters":3}"#,
        r#"{"kind":"linear","start_factor":0.25,"end_factor":1.0,"total_iters":4}"#,
        r#"{"kind":"exponential","gamma":0.9}"#,
        r#"{"kind":"polynomial","total_iters":10,"power":2.0}"#,
        r#"{"kind":"multiplicative","factor":0.95}"#,
        r#"{"kind":"cosine_annealing","t_max":10,"eta_min":0.001}"#,
        r#"{"kind":"cosine_annealing_warm_restarts","t_0":3,"t_mult":2}"#,
        r#"{"kind":"cyclic","base_lr":0.01,"max_lr":0.1,"step_size_up":4,"mode":"exp_range","gamma":0.99}"#,
        r#"{"kind":"one_cycle","max_lr":0.1,"total_steps":100,"three_phase":true}"#,
        r#"{"kind":"reduce_lr_on_plateau","factor":0.5,"patience":2,"cooldown":1}"#,
        r#"{"kind":"sequential","milestones":[5],"schedulers":[{"kind":"linear","start_factor":0.1,"total_iters":5},{"kind":"cosine_annealing","t_max":50}]}"#,
        r#"{"kind":"chained","schedulers":[{"kind":"step","step_size":10},{"kind":"exponential","gamma":0.99}]}"#,
        r#"{"kind":"cosine_with_warmup","num_warmup_steps":5,"num_training_steps":100}"#,
        r#"{"kind":"inverse_sqrt","num_warmup_steps":10}"#,
        r#"{"kind":"noam","factor":1.0,"warmup_steps":10,"model_size":64}"#,
        r#"{"kind":"warmup_cosine_decay","init_value":0.0,"peak_value":1.0,"warmup_steps":5,"decay_steps":100}"#,
        r#"{"kind":"sgdr","cycles":[{"init_value":0.0,"peak_value":1.0,"warmup_steps":2,"decay_steps":30},{"init_value":0.0,"peak_value":0.5,"warmup_steps":2,"decay_steps":30}]}"#,
    ];
    let stats = fuzz_json("schedule", &seeds, 6000, 6, check_schedule);
    assert!(stats.errors > 2000 && stats.ok > 300, "{stats:?}");
}

/// Parse a layer list and fit it to MNIST, as `train --model JSON` does before any tensor exists.
fn check_layer_list(bytes: &[u8]) -> wgtrain::Result<()> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(()) };
    let spec = wgtrain::nn::ModelSpec::from_json(text)?;
    let arch = wgtrain::nn::Architecture::new(&spec, [1, 28, 28], 10)?;
    // Everything accepted is small enough to allocate and to index with u32.
    for p in &arch.params {
        assert!(p.shape.iter().product::<usize>() <= wgtrain::nn::spec::MAX_ELEMENTS, "{p:?}");
    }
    Ok(())
}

#[test]
fn layer_list_json() {
    let seeds = [
        r#"{"layers":[{"type":"conv2d","name":"c1","out_channels":6,"kernel_size":5,"padding":2},{"type":"relu"},{"type":"max_pool2d","kernel_size":2},{"type":"flatten"},{"type":"linear","name":"out","out_features":10}]}"#,
        r#"{"layers":[{"type":"conv2d","out_channels":7,"kernel_size":3,"stride":2,"padding":1,"bias":false},{"type":"max_pool2d","kernel_size":3,"stride":2},{"type":"flatten"},{"type":"linear","out_features":10}]}"#,
        r#"{"layers":[{"type":"flatten"},{"type":"linear","out_features":256},{"type":"relu"},{"type":"linear","out_features":10}]}"#,
    ];
    let stats = fuzz_json("layer list", &seeds, 4000, 7, check_layer_list);
    assert!(stats.errors > 1000 && stats.ok > 100, "{stats:?}");
}

/// Parse `--param-groups` and assign the sample CNN's parameters, as `train` does.
fn check_param_groups(bytes: &[u8]) -> wgtrain::Result<()> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(()) };
    let text = if text.starts_with('@') { format!(" {text}") } else { text.to_string() };
    let mut cfg = wgtrain::optim::OptimConfig::sgd(0.1, 0.9);
    cfg.groups = wgtrain::optim::GroupSpec::parse_arg(&text)?;
    let names: Vec<String> = wgtrain::nn::PARAMS.iter().map(|(n, _)| n.to_string()).collect();
    let g = cfg.groups(&names)?;
    assert_eq!(g.of.len(), names.len());
    assert!(g.of.iter().all(|&i| (i as usize) < g.hyper.len()));
    Ok(())
}

#[test]
fn param_groups_json() {
    let seeds = [
        r#"[{"params":["*.bias"],"weight_decay":0},{"params":["conv*"],"lr":0.5,"momentum":0.8}]"#,
        r#"[{"params":["fc1.weight","fc2.*"],"lr":0.01,"dampening":0.1,"nesterov":false}]"#,
    ];
    let stats = fuzz_json("param groups", &seeds, 3000, 8, check_param_groups);
    assert!(stats.errors > 500 && stats.ok > 100, "{stats:?}");
}
