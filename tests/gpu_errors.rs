//! Bad input on the GPU backend is a clear `Err`, never a panic or a hang: an adapter name that matches
//! nothing, tensors beyond the device's limits, shape mismatches, and a lost device.
mod gpu_common;

use gpu_common::gpu_or_skip;
use wgtrain::Error;
use wgtrain::backend::{Backend, ConvGeom, PoolGeom};
use wgtrain::gpu::GpuBackend;
use wgtrain::nn::Model;

#[test]
fn unknown_adapter_name_is_no_adapter_listing_what_exists() {
    let Err(e) = GpuBackend::new(Some("no-such-adapter-xyz"), true) else { panic!("matched a nonexistent adapter") };
    let msg = e.to_string();
    assert!(matches!(e, Error::NoAdapter(_)), "{e:?}");
    assert_eq!(e.exit_code(), 2);
    assert!(msg.contains("no-such-adapter-xyz") && msg.contains("mesa-vulkan-drivers"), "{msg}");
    if !wgtrain::gpu::list_adapters().is_empty() {
        assert!(msg.contains("adapters found"), "{msg}");
    }
}

#[test]
fn batch_beyond_device_limits_is_device_limit() {
    let Some(mut g) = gpu_or_skip("batch_beyond_device_limits_is_device_limit") else { return };
    let max = g.limits().max_storage_buffer_binding_size.min(g.limits().max_buffer_size);
    let e = g.zeros(&[(max / 4 + 1) as usize], "huge").unwrap_err();
    assert!(matches!(e, Error::DeviceLimit(_)) && e.to_string().contains("huge"), "{e}");
    // The sample CNN at a batch whose conv2 activations [B,64,24,24] exceed one buffer: a clear error while
    // allocating, naming the tensor, before any work is recorded. Only where that batch fits in host memory.
    let per_image = 64 * 24 * 24 * 4;
    let batch = (max / per_image + 1) as usize;
    if max <= 1 << 30 {
        let weights = wgtrain::nn::init::pytorch_default(&wgtrain::nn::PARAMS, 0);
        let model = Model::new(&mut g, &wgtrain::nn::sample_cnn(), &weights).unwrap();
        let Err(e) = model.activations(&mut g, batch, true) else { panic!("batch {batch} fit a {max}-byte limit") };
        assert!(matches!(e, Error::DeviceLimit(_)) && e.to_string().contains("conv2"), "{e}");
    } else {
        eprintln!("skipping the sample-CNN part: max buffer {max} bytes would need a batch of {batch}");
    }
}

#[test]
fn shape_mismatches_are_errors() {
    let Some(mut g) = gpu_or_skip("shape_mismatches_are_errors") else { return };
    let x = g.zeros(&[2, 3, 7, 7], "x").unwrap();
    let w = g.zeros(&[4, 2, 3, 3], "w").unwrap(); // wrong in-channels
    let b = g.zeros(&[4], "b").unwrap();
    let mut y = g.zeros(&[2, 4, 5, 5], "y").unwrap();
    assert!(matches!(g.conv2d(&x, &w, &b, ConvGeom::UNIT, &mut y), Err(Error::Shape { .. })));
    // Geometry: a kernel larger than the padded input, stride 0, a non-square kernel, a wrong output shape.
    let w = g.zeros(&[4, 3, 9, 9], "w9").unwrap();
    let geom = ConvGeom { stride: 1, padding: 0 };
    assert!(matches!(g.conv2d(&x, &w, &b, geom, &mut y), Err(Error::Shape { .. })));
    let w = g.zeros(&[4, 3, 3, 3], "w3").unwrap();
    assert!(matches!(g.conv2d(&x, &w, &b, ConvGeom { stride: 0, padding: 1 }, &mut y), Err(Error::Shape { .. })));
    let geom = ConvGeom { stride: 2, padding: 1 }; // 7×7 → 4×4, not 5×5
    assert!(matches!(g.conv2d(&x, &w, &b, geom, &mut y), Err(Error::Shape { .. })));
    let mut dx = g.zeros(&[2, 3, 7, 7], "dx").unwrap();
    assert!(matches!(g.conv2d_backward_input(&y, &w, geom, &mut dx), Err(Error::Shape { .. })));
    let w = g.zeros(&[4, 3, 3, 2], "w32").unwrap();
    assert!(matches!(g.conv2d(&x, &w, &b, ConvGeom::UNIT, &mut y), Err(Error::Shape { .. })));
    let mut p = g.zeros(&[2, 3, 3, 3], "p").unwrap();
    assert!(matches!(g.max_pool2d(&x, PoolGeom { kernel: 8, stride: 1 }, &mut p), Err(Error::Shape { .. })));
    assert!(matches!(g.max_pool2d(&x, PoolGeom { kernel: 2, stride: 0 }, &mut p), Err(Error::Shape { .. })));
    assert!(matches!(g.max_pool2d(&x, PoolGeom { kernel: 3, stride: 3 }, &mut p), Err(Error::Shape { .. }))); // 2×2
    assert!(matches!(
        g.max_pool2d_backward(&x, &p, PoolGeom { kernel: 3, stride: 2 }, &mut y),
        Err(Error::Shape { .. })
    )); // dx shaped unlike x
    let mut t = g.zeros(&[3], "t").unwrap();
    assert!(matches!(g.write(&mut t, &[1.0]), Err(Error::Shape { .. })));
    let logits = g.zeros(&[2, 10], "logits").unwrap();
    let labels = g.indices(&[1, 2], "labels").unwrap();
    let mut dz = g.zeros(&[2, 10], "dz").unwrap();
    let mut losses = g.zeros(&[4], "losses").unwrap();
    g.begin_step().unwrap();
    assert!(matches!(g.softmax_xent(&logits, &labels, &mut dz, &mut losses, 4), Err(Error::Shape { .. })));
    g.end_step().unwrap();
    // The backend is still usable afterwards.
    assert_eq!(g.read(&t).unwrap(), vec![0.0; 3]);
}

#[test]
fn lost_device_is_an_error_not_a_panic_or_hang() {
    let Some(mut g) = gpu_or_skip("lost_device_is_an_error_not_a_panic_or_hang") else { return };
    let x = g.tensor(&[1.0, -2.0, 3.0], &[3], "x").unwrap();
    let mut y = g.zeros(&[3], "y").unwrap();
    g.relu(&x, &mut y).unwrap();
    assert_eq!(g.read(&y).unwrap(), vec![1.0, 0.0, 3.0]);
    g.destroy_device_for_test();
    let r = (|| -> wgtrain::Result<Vec<f32>> {
        g.begin_step()?;
        g.relu(&x, &mut y)?;
        g.end_step()?;
        g.read(&y)
    })();
    let e = r.expect_err("work on a destroyed device succeeded");
    assert!(matches!(e, Error::Gpu(_)), "{e:?}");
    assert!(g.zeros(&[3], "after").is_err() || g.read(&y).is_err());
}
