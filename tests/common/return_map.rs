//! A second method for the first Lyapunov coefficient, shared by the Hopf tests: integrate
//! the model at a Hopf point and measure how much small oscillations grow per turn.

use nalgebra::{Complex, Const, DimMin, SMatrix, SVector};
use selfheal::model::Model;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// Eigenvector `A v = λ v` by inverse iteration (unit norm), without balancing.
fn eigenvector<const N: usize>(a: &SMatrix<f64, N, N>, lambda: C64) -> SVector<C64, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let shift = lambda + C64::new(1e-10, 0.0) * a.norm();
    let m = a.map(|v| C64::new(v, 0.0)) - SMatrix::<C64, N, N>::identity() * shift;
    let lu = m.lu();
    let mut v = SVector::<C64, N>::from_fn(|i, _| C64::new(1.0, 0.1 * i as f64));
    for _ in 0..6 {
        v = lu.solve(&v).unwrap();
        v /= C64::new(v.norm(), 0.0);
    }
    v
}

/// The first Lyapunov coefficient measured by integrating the model at a Hopf point: from
/// `x* + z q + z̄ q̄` with `z = r`, the real part of `z = ⟨p, x − x*⟩` where its imaginary part
/// crosses zero upwards, turn after turn; `(r_{k+1} − r_k)/(2π r_k³)` averaged over turns 1–3
/// (turn 0 lets the off-manifold part decay). Classical RK4 with step `dt`.
fn return_map_l1<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x_star: &SVector<f64, N>,
    omega: f64,
    r: f64,
    dt: f64,
) -> f64
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let a = selfheal::model::jacobian(model, 0.0, x_star, p);
    let q = eigenvector(&a, C64::new(0.0, omega));
    let mut pv = eigenvector(&a.transpose(), C64::new(0.0, -omega));
    let pq: C64 = pv.iter().zip(q.iter()).map(|(a, b)| a.conj() * b).sum();
    pv /= pq.conj();
    let z_of = |x: &SVector<f64, N>| -> C64 {
        pv.iter()
            .zip((x - x_star).iter())
            .map(|(a, b)| a.conj() * b)
            .sum()
    };
    let f = |x: &SVector<f64, N>| model.rhs(0.0, x, p);
    let rk4 = |x: &SVector<f64, N>, h: f64| {
        let k1 = f(x);
        let k2 = f(&(x + k1 * (h / 2.0)));
        let k3 = f(&(x + k2 * (h / 2.0)));
        let k4 = f(&(x + k3 * h));
        x + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0)
    };
    let mut x = x_star + q.map(|v| 2.0 * r * v.re);
    let mut z = z_of(&x);
    let mut radii = vec![];
    let t_end = 6.0 * 2.0 * PI / omega;
    let mut t = 0.0;
    while radii.len() < 4 && t < t_end {
        let xn = rk4(&x, dt);
        let zn = z_of(&xn);
        if z.im < 0.0 && zn.im >= 0.0 && zn.re > 0.0 {
            // The crossing inside the step, by the secant method on sub-steps from x.
            let (mut a0, mut g0, mut a1, mut g1) = (0.0, z.im, 1.0, zn.im);
            let mut at = zn;
            for _ in 0..20 {
                if g1 == g0 {
                    break;
                }
                let a = a1 - g1 * (a1 - a0) / (g1 - g0);
                at = z_of(&rk4(&x, a * dt));
                (a0, g0, a1, g1) = (a1, g1, a, at.im);
                if (a1 - a0).abs() < 1e-15 {
                    break;
                }
            }
            radii.push(at.re);
        }
        x = xn;
        z = zn;
        t += dt;
    }
    assert_eq!(radii.len(), 4, "four returns to the section");
    radii[1..]
        .windows(2)
        .map(|w| (w[1] - w[0]) / (2.0 * PI * w[0].powi(3)))
        .sum::<f64>()
        / 2.0
}

/// The return-map estimate at amplitudes r and r/2, extrapolated to r → 0 (its error is
/// linear in r).
pub fn measured_l1<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x_star: &SVector<f64, N>,
    omega: f64,
    r: f64,
    dt: f64,
) -> f64
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let d1 = return_map_l1(model, p, x_star, omega, r, dt);
    let d2 = return_map_l1(model, p, x_star, omega, r / 2.0, dt);
    2.0 * d2 - d1
}
