//! PyTorch's default initialisation for Conv2d and Linear, seeded.
//!
//! `reset_parameters` uses kaiming_uniform_(a=√5) for the weight, whose bound gain·√(3/fan_in) with
//! gain = √(2/(1+5)) simplifies to 1/√fan_in, and U(−1/√fan_in, 1/√fan_in) for the bias. fan_in is
//! in_channels·3·3 for a conv and in_features for a linear layer. The values are drawn from ChaCha8 (not
//! PyTorch's Mersenne Twister), so the distribution matches PyTorch but the numbers do not.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tensors in `specs` order: each `*.weight` and `*.bias` drawn from U(−1/√fan_in, 1/√fan_in), where fan_in
/// is the weight's element count divided by its first dimension.
pub fn pytorch_default(specs: &[(&str, &[usize])], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fan_in = 1;
    specs
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            if name.ends_with("weight") {
                fan_in = n / shape[0];
            }
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        })
        .collect()
}
