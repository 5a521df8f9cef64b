//! Datasets kept as bytes on the device (`Backend::gather_pixels`): a batch gathered from the bytes through the
//! 256-entry table equals, bit for bit, the batch gathered from the normalized f32 images, on the CPU and on the
//! GPU; the byte packing handles a stream that is not a multiple of four; bad sizes are shape errors.

#[path = "gpu_common/mod.rs"]
mod gpu_common;

use gpu_common::gpu_or_skip;
use wgtrain::backend::{Backend, pack_bytes, packed_byte};
use wgtrain::cpu::CpuBackend;
use wgtrain::data::{normalize_pixel, pixel_table};

/// M images of D bytes (D odd, so rows straddle words), labels, and a shuffled order.
fn dataset() -> (usize, usize, Vec<u8>, Vec<u32>, Vec<u32>) {
    let (m, d) = (7, 13);
    let bytes: Vec<u8> = (0..m * d).map(|i| ((i * 97 + 31) % 256) as u8).collect();
    let labels: Vec<u32> = (0..m as u32).map(|i| i % 10).collect();
    let order: Vec<u32> = (0..m as u32).map(|i| (i * 3 + 2) % m as u32).collect();
    (m, d, bytes, labels, order)
}

/// x of the batch of `batch` rows at `offset`, gathered from the f32 values and from the bytes (the labels
/// take the same path in both kernels; the CPU test checks them).
fn both<B: Backend>(b: &mut B, offset: usize, batch: usize) -> [Vec<f32>; 2] {
    let (m, d, bytes, labels, order) = dataset();
    let values: Vec<f32> = bytes.iter().map(|&p| normalize_pixel(p)).collect();
    let images = b.tensor(&values, &[m, d], "images").unwrap();
    let words = b.indices(&pack_bytes(&bytes), "pixels").unwrap();
    let table = b.tensor(&pixel_table(), &[256], "table").unwrap();
    let (labels, order) = (b.indices(&labels, "labels").unwrap(), b.indices(&order, "order").unwrap());
    let mut out = Vec::new();
    for from_bytes in [false, true] {
        let mut x = b.zeros(&[batch, d], "x").unwrap();
        let mut y = b.indices(&vec![0; batch], "y").unwrap();
        if from_bytes {
            b.gather_pixels(&words, &table, &labels, &order, offset, &mut x, &mut y).unwrap();
        } else {
            b.gather_batch(&images, &labels, &order, offset, &mut x, &mut y).unwrap();
        }
        out.push(b.read(&x).unwrap());
    }
    [out[0].clone(), out[1].clone()]
}

#[test]
fn packing_is_a_little_endian_byte_stream() {
    let bytes = [1u8, 2, 3, 4, 5];
    let words = pack_bytes(&bytes);
    assert_eq!(words, vec![0x0403_0201, 0x05]);
    assert!((0..5).all(|k| packed_byte(&words, k) == bytes[k]));
    assert_eq!(pixel_table().len(), 256);
}

#[test]
fn gathering_bytes_through_the_table_equals_gathering_f32_values_on_the_cpu() {
    let mut b = CpuBackend::new();
    let [values, bytes] = both(&mut b, 2, 4);
    assert_eq!(values, bytes);
    // Labels: through the CPU's Vec indices directly.
    let (m, d, px, labels, order) = dataset();
    let table = b.tensor(&pixel_table(), &[256], "table").unwrap();
    let mut x = b.zeros(&[3, d], "x").unwrap();
    let mut y = vec![0u32; 3];
    b.gather_pixels(&pack_bytes(&px), &table, &labels, &order, 4, &mut x, &mut y).unwrap();
    assert_eq!(y, order[4..7].iter().map(|&r| labels[r as usize]).collect::<Vec<_>>());
    assert_eq!(x.data[..d], px[order[4] as usize * d..][..d].iter().map(|&p| normalize_pixel(p)).collect::<Vec<_>>());
    // Errors: a short table, a word count that does not match M·D bytes, a batch past the order.
    let short = b.tensor(&[0.0; 255], &[255], "short").unwrap();
    let e = b.gather_pixels(&pack_bytes(&px), &short, &labels, &order, 0, &mut x, &mut y).unwrap_err();
    assert!(e.to_string().contains("table"), "{e}");
    let e = b.gather_pixels(&pack_bytes(&px[..m * d - 8]), &table, &labels, &order, 0, &mut x, &mut y).unwrap_err();
    assert!(e.to_string().contains("pixel words"), "{e}");
    let e = b.gather_pixels(&pack_bytes(&px), &table, &labels, &order, 5, &mut x, &mut y).unwrap_err();
    assert!(e.to_string().contains("order"), "{e}");
}

#[test]
fn gathering_bytes_on_the_gpu_equals_the_cpu_bit_for_bit() {
    let Some(mut g) = gpu_or_skip("gathering_bytes_on_the_gpu_equals_the_cpu_bit_for_bit") else { return };
    let mut c = CpuBackend::new();
    for (offset, batch) in [(0, 7), (2, 4), (6, 1)] {
        let [gv, gb] = both(&mut g, offset, batch);
        let [cv, _] = both(&mut c, offset, batch);
        assert_eq!(gb, cv, "bytes on the GPU, offset {offset}");
        assert_eq!(gv, cv, "f32 on the GPU, offset {offset}");
    }
}
