//! The float type the reference ops are written over: f32 for the backend, f64 for gradient checks.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

pub trait Real:
    Copy
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f32(x: f32) -> Self;
    fn from_usize(x: usize) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn is_nan(self) -> bool;
    /// The slice as f32 when `Self` is f32 (the fast paths are f32-only), else None.
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    /// `c = a·b + beta·c` for row-major-strided matrices: a [m,k], b [k,n], c [m,n]; strides are (row, col).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        a_s: (usize, usize),
        b: &[Self],
        b_s: (usize, usize),
        beta: Self,
        c: &mut [Self],
        c_s: (usize, usize),
    );
}

/// Bounds check shared by both gemm instances: the last element each strided operand touches must exist,
/// because the GEMMs take raw pointers or unchecked strides.
#[allow(clippy::too_many_arguments)]
fn check_gemm(
    m: usize,
    k: usize,
    n: usize,
    la: usize,
    a_s: (usize, usize),
    lb: usize,
    b_s: (usize, usize),
    lc: usize,
    c_s: (usize, usize),
) {
    let last =
        |r: usize, c: usize, s: (usize, usize)| if r == 0 || c == 0 { 0 } else { (r - 1) * s.0 + (c - 1) * s.1 + 1 };
    assert!(last(m, k, a_s) <= la && last(k, n, b_s) <= lb && last(m, n, c_s) <= lc, "gemm operand out of bounds");
}

macro_rules! impl_real {
    ($t:ty, $gemm:path, $as_f32:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f32(x: f32) -> Self {
                x as $t
            }
            fn from_usize(x: usize) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn as_f32(s: &[Self]) -> Option<&[f32]> {
                $as_f32(s)
            }
            fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
                $as_f32(s)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                a_s: (usize, usize),
                b: &[Self],
                b_s: (usize, usize),
                beta: Self,
                c: &mut [Self],
                c_s: (usize, usize),
            ) {
                check_gemm(m, k, n, a.len(), a_s, b.len(), b_s, c.len(), c_s);
                $gemm(m, k, n, a, a_s, b, b_s, beta, c, c_s)
            }
        }
    };
}

/// f64 (the gradient checks): matrixmultiply. The caller checked the bounds.
#[allow(clippy::too_many_arguments)]
fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    a_s: (usize, usize),
    b: &[f64],
    b_s: (usize, usize),
    beta: f64,
    c: &mut [f64],
    c_s: (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: check_gemm proved every strided access lies inside the slices; c does not alias a or b.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_s.0 as isize,
            a_s.1 as isize,
            b.as_ptr(),
            b_s.0 as isize,
            b_s.1 as isize,
            beta,
            c.as_mut_ptr(),
            c_s.0 as isize,
            c_s.1 as isize,
        );
    }
}

impl_real!(f32, super::gemm::sgemm, Some);
impl_real!(f64, dgemm, |_| None);
