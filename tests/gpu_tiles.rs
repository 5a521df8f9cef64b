//! The conv tiles sized per layer: every conv tile (`Tile`: 64×64, 32×128, 64×128, 128×128 and the narrow
//! 32×16) sums each output's terms one at a time in ascending order, whatever its shape and slice depth, so
//! forcing any tile must give the bits of the tile picked from the shape — in all three modes, on edges that
//! cut every tile, with split-K. The picked tile itself is checked against the CPU reference in
//! `gpu_kernels.rs`.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::{Backend, ConvGeom};
use wgtrain::gpu::GpuBackend;
use wgtrain::gpu::kernels::Tile;

const TILES: [Tile; 5] = [Tile::Square64, Tile::M32, Tile::M64, Tile::Square128, Tile::Narrow];

/// x [n, c, h, w], weight [k, c, ks, ks], geometry.
type ConvShape = ([usize; 5], usize, ConvGeom);

fn out_shape(([n, _, h, w, k], ks, geom): ConvShape) -> [usize; 4] {
    [n, k, geom.out_size(h, ks).unwrap(), geom.out_size(w, ks).unwrap()]
}

/// y, dx (masked by a ReLU output), dx and dw of one conv on the GPU; outputs start dirty so every element
/// must be written.
fn conv_outputs(g: &mut GpuBackend, shape: ConvShape, seed: u64) -> Vec<Vec<f32>> {
    let ([n, c, h, w, k], ks, geom) = shape;
    let (xs, ws, ys) = ([n, c, h, w], [k, c, ks, ks], out_shape(shape));
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let x = g.tensor(&rand_vec(seed, numel(&xs)), &xs, "x").unwrap();
    let wt = g.tensor(&rand_vec(seed + 1, numel(&ws)), &ws, "w").unwrap();
    let bias = g.tensor(&rand_vec(seed + 2, k), &[k], "b").unwrap();
    let dy = g.tensor(&rand_vec(seed + 3, numel(&ys)), &ys, "dy").unwrap();
    let mut dirty = |s: &[usize]| g.tensor(&vec![7.0; numel(s)], s, "out").unwrap();
    let (mut y, mut dxm, mut dx, mut dw, mut db) = (dirty(&ys), dirty(&xs), dirty(&xs), dirty(&ws), dirty(&[k]));
    g.conv2d_relu(&x, &wt, &bias, geom, &mut y).unwrap();
    g.conv2d_backward_input_relu(&dy, &wt, &x, geom, &mut dxm).unwrap();
    g.conv2d_backward_input(&dy, &wt, geom, &mut dx).unwrap();
    g.conv2d_backward_weight(&x, &dy, geom, &mut dw, &mut db).unwrap();
    [&y, &dxm, &dx, &dw].iter().map(|t| g.read(t).unwrap()).collect()
}

#[test]
fn every_conv_tile_gives_the_bits_of_the_picked_one() {
    let Some(mut g) = gpu_or_skip("every_conv_tile_gives_the_bits_of_the_picked_one") else { return };
    let unit = ConvGeom::UNIT;
    let shapes: [ConvShape; 6] = [
        ([1, 1, 3, 3, 1], 3, unit),                                  // a 1×1 output
        ([2, 3, 19, 23, 70], 3, unit),                               // 70 rows: two 64-row tiles, one 128
        ([1, 33, 9, 8, 17], 3, unit),                                // 33 channels: two 32-row tiles
        ([2, 3, 45, 65, 5], 3, unit),                                // dw reduces 5418 terms: split-K
        ([2, 4, 12, 12, 9], 7, ConvGeom { stride: 4, padding: 3 }),  // 7×7: k² = 49 spans slices
        ([1, 2, 30, 30, 5], 11, ConvGeom { stride: 2, padding: 5 }), // 11×11 with several carries
    ];
    for (i, shape) in shapes.into_iter().enumerate() {
        g.set_conv_tile(None);
        let picked = conv_outputs(&mut g, shape, 100 + i as u64);
        for tile in TILES {
            g.set_conv_tile(Some(tile));
            let got = conv_outputs(&mut g, shape, 100 + i as u64);
            for (j, (p, t)) in picked.iter().zip(&got).enumerate() {
                let same = p.iter().zip(t).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{shape:?}, tile {tile:?}: output {j} differs from the picked tile's");
            }
        }
    }
}
