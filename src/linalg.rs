//! Small dense linear algebra shared by the solvers and the analyses.

use nalgebra::{Complex, DMatrix};

/// Most QR sweeps the Schur decomposition may take before giving up (nalgebra's default is
/// unbounded, and a matrix with subnormal or non-finite entries can make it loop forever).
pub const SCHUR_MAX_ITERATIONS: usize = 10_000;

/// The eigenvalues of a square matrix by nalgebra's Schur decomposition, with a bounded number
/// of iterations; `None` when an entry is not finite or the decomposition does not converge.
pub fn eigenvalues(m: &DMatrix<f64>) -> Option<Vec<Complex<f64>>> {
    if !m.iter().all(|v| v.is_finite()) {
        return None;
    }
    // Entries below the smallest normal number only slow the iteration down and cannot change
    // any eigenvalue that matters: flush them to zero.
    let m = m.map(|v| if v.abs() < f64::MIN_POSITIVE { 0.0 } else { v });
    let schur = nalgebra::linalg::Schur::try_new(m, f64::EPSILON, SCHUR_MAX_ITERATIONS)?;
    Some(schur.complex_eigenvalues().iter().copied().collect())
}
