//! Each method against closed forms: order of convergence, tolerance proportionality,
//! dense output, and the stiff linear case.

use nalgebra::{Const, DimMin, SVector};
use selfheal::model::textbook::Logistic;
use selfheal::model::{Model, P2p, ParamSet, ParamSpec, Scalar, StateSpec, System};
use selfheal::solve::{integrate, Dense, Method, SolveOptions, SolverStats, Span, Tolerances};
use std::borrow::Cow;

fn logistic_exact(x0: f64, t: f64) -> f64 {
    1.0 / (1.0 + (1.0 / x0 - 1.0) * (-t).exp())
}

/// Stiff linear system x' = A x with eigenvalues −1000 and −1 (closed form by eigenvectors).
struct StiffLinear;
static NO_PARAMS: [ParamSpec; 0] = [];
impl Model<2> for StiffLinear {
    fn name(&self) -> &str {
        "stiff-linear"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            StateSpec {
                name: Cow::Borrowed("u"),
                meaning: Cow::Borrowed("fast"),
            },
            StateSpec {
                name: Cow::Borrowed("v"),
                meaning: Cow::Borrowed("slow"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &NO_PARAMS
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, _p: &[T]) -> SVector<T, 2> {
        // A = [[-1000, 999], [0, -1]]: u(t) = (u0 - v0) e^{-1000 t} + v0 e^{-t}, v = v0 e^{-t}.
        SVector::from([x[0] * -1000.0 + x[1] * 999.0, -x[1]])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::from([1.0, 1.0])
    }
}

fn run<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x0: SVector<f64, N>,
    t1: f64,
    opts: &SolveOptions,
) -> (SVector<f64, N>, Dense<N>, SolverStats)
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let sys = System::new(model, p);
    let mut dense = Dense::default();
    let mut stats = SolverStats::default();
    let (t, y) = integrate(&sys, Span::new(0.0, x0, t1), opts, &mut stats, &mut |s| {
        dense.segments.push(*s);
        false
    })
    .unwrap();
    assert_eq!(t, t1, "the integration must land exactly on t1");
    (y, dense, stats)
}

/// Options for fixed steps `h`: the tolerance is too loose to reject or lengthen any step.
fn fixed_steps(method: Method, h: f64) -> SolveOptions {
    SolveOptions {
        method,
        tol: Tolerances {
            rtol: 0.9,
            atol: 0.9,
        },
        h0: Some(h),
        h_max: Some(h),
        stiffness_detection: false,
        ..Default::default()
    }
}

/// Error at t = 8 with fixed steps h.
fn fixed_step_error(method: Method, h: f64) -> f64 {
    let opts = fixed_steps(method, h);
    let (y, _, stats) = run(&Logistic, &[1.0], SVector::from([0.01]), 8.0, &opts);
    assert_eq!(stats.rejected, 0);
    (y[0] - logistic_exact(0.01, 8.0)).abs()
}

#[test]
fn each_method_converges_at_its_order() {
    for (method, order, h) in [
        (Method::Rosenbrock, 5.0, 0.4),
        (Method::Rodas4, 4.0, 0.2),
        (Method::Dopri5, 5.0, 0.4),
        (Method::Dop853, 8.0, 1.0),
    ] {
        let e1 = fixed_step_error(method, h);
        let e2 = fixed_step_error(method, h / 2.0);
        let observed = (e1 / e2).log2();
        println!("{method}: errors {e1:e} {e2:e}, observed order {observed:.2}");
        assert!(
            (observed - order).abs() < 0.6,
            "{method}: observed order {observed:.2} (errors {e1:e}, {e2:e}), expected {order}"
        );
    }
}

#[test]
fn error_falls_with_tolerance_and_methods_agree() {
    let exact = logistic_exact(0.01, 12.0);
    for method in [
        Method::Rosenbrock,
        Method::Rodas4,
        Method::Dopri5,
        Method::Dop853,
    ] {
        let mut errors = vec![];
        for rtol in [1e-4, 1e-6, 1e-8, 1e-10] {
            let opts = SolveOptions {
                method,
                tol: Tolerances { rtol, atol: 1e-14 },
                ..Default::default()
            };
            let (y, _, _) = run(&Logistic, &[1.0], SVector::from([0.01]), 12.0, &opts);
            let err = (y[0] - exact).abs();
            assert!(
                err < 200.0 * rtol,
                "{method} at rtol {rtol:e}: error {err:e}"
            );
            errors.push(err.max(1e-16));
        }
        // Four decades of tolerance must buy at least two decades of accuracy.
        assert!(
            errors[0] / errors[3] > 100.0,
            "{method}: errors {errors:?} do not fall with tolerance"
        );
    }
}

#[test]
fn dense_output_matches_closed_form_between_steps() {
    for method in [
        Method::Rosenbrock,
        Method::Rodas4,
        Method::Dopri5,
        Method::Dop853,
    ] {
        let opts = SolveOptions {
            method,
            tol: Tolerances {
                rtol: 1e-8,
                atol: 1e-14,
            },
            ..Default::default()
        };
        let (_, dense, _) = run(&Logistic, &[1.0], SVector::from([0.01]), 12.0, &opts);
        let mut worst: f64 = 0.0;
        for k in 0..=1200 {
            let t = k as f64 * 0.01;
            let y = dense.eval(t).unwrap()[0];
            worst = worst.max((y - logistic_exact(0.01, t)).abs());
        }
        // Rosenbrock: the method's own interpolant (order 4 for Rodas5P, 3 for RODAS4); explicit methods: Hermite of
        // degree 7 through values and three derivatives at each step end.
        assert!(worst < 1e-7, "{method}: dense output error {worst:e}");
        // The end point is the integrator's own final state, not an extrapolation.
        let last = dense.segments.last().unwrap();
        assert_eq!(dense.eval(12.0).unwrap(), last.y1);
    }
}

#[test]
fn rosenbrock_solves_stiff_linear_system_in_few_steps() {
    let opts = SolveOptions {
        method: Method::Rosenbrock,
        tol: Tolerances {
            rtol: 1e-8,
            atol: 1e-12,
        },
        ..Default::default()
    };
    let x0 = SVector::from([2.0, 1.0]);
    let (y, _, stats) = run(&StiffLinear, &[], x0, 10.0, &opts);
    let v = (-10.0f64).exp();
    let u = (2.0 - 1.0) * (-10000.0f64).exp() + v;
    assert!((y[0] - u).abs() < 1e-7 * u.abs());
    assert!((y[1] - v).abs() < 1e-7 * v.abs());
    // An explicit method is held to h < 3.3/1000 by stability alone: it needs ≥ 3000 steps.
    let explicit = SolveOptions {
        method: Method::Dopri5,
        stiffness_detection: false,
        ..opts
    };
    let (_, _, explicit_stats) = run(&StiffLinear, &[], x0, 10.0, &explicit);
    assert!(explicit_stats.steps >= 3000, "{}", explicit_stats.steps);
    assert!(
        stats.steps * 5 < explicit_stats.steps,
        "rosenbrock {} steps vs dopri5 {}",
        stats.steps,
        explicit_stats.steps
    );
}

#[test]
fn explicit_method_reports_stiffness_and_names_the_stiff_method() {
    let opts = SolveOptions {
        method: Method::Dopri5,
        ..Default::default()
    };
    let sys = System::new(&StiffLinear, &[]);
    let mut stats = SolverStats::default();
    let err = integrate(
        &sys,
        Span::new(0.0, SVector::from([2.0, 1.0]), 1000.0),
        &opts,
        &mut stats,
        &mut |_| false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("stiff") && err.contains("rosenbrock"), "{err}");
}

#[test]
fn too_many_steps_is_a_typed_error_with_time_and_state() {
    let opts = SolveOptions {
        method: Method::Rosenbrock,
        max_steps: 5,
        tol: Tolerances {
            rtol: 1e-10,
            atol: 1e-14,
        },
        ..Default::default()
    };
    let sys = System::new(&Logistic, &[1.0]);
    let mut stats = SolverStats::default();
    let e = integrate(
        &sys,
        Span::new(0.0, SVector::from([0.01]), 100.0),
        &opts,
        &mut stats,
        &mut |_| false,
    )
    .unwrap_err();
    match e {
        selfheal::Error::Solver { t, state, .. } => {
            assert!(t > 0.0 && t < 100.0);
            assert_eq!(state.len(), 1);
            assert!(state[0].is_finite());
        }
        other => panic!("unexpected error {other}"),
    }
}

/// Largest error of the dense output between step ends, with fixed steps h.
fn fixed_step_dense_error(method: Method, h: f64) -> f64 {
    let opts = fixed_steps(method, h);
    let (_, dense, _) = run(&Logistic, &[1.0], SVector::from([0.01]), 8.0, &opts);
    let mut worst: f64 = 0.0;
    for seg in &dense.segments {
        for th in [0.1, 0.3, 0.5, 0.7, 0.9] {
            let t = seg.time(th);
            worst = worst.max((seg.eval(t)[0] - logistic_exact(0.01, t)).abs());
        }
    }
    worst
}

#[test]
fn rosenbrock_interpolants_converge_at_their_order() {
    // Local interpolation error O(h^{q+1}) for an interpolant of order q, on top of the
    // method's global error: Rodas5P's order-4 interpolant, RODAS4's order 3.
    for (method, order, h) in [(Method::Rosenbrock, 4.0, 0.2), (Method::Rodas4, 3.0, 0.2)] {
        let e1 = fixed_step_dense_error(method, h);
        let e2 = fixed_step_dense_error(method, h / 2.0);
        let observed = (e1 / e2).log2();
        println!("{method}: dense errors {e1:e} {e2:e}, observed {observed:.2}");
        assert!(
            observed > order + 0.5,
            "{method}: interpolant order {observed:.2} (errors {e1:e}, {e2:e}), expected > {order}"
        );
    }
}

/// Forced decay x' = −x + cos t: x(t) = (cos t + sin t)/2 + (x0 − 1/2) e^{−t}. Non-autonomous,
/// so the methods' time-derivative coefficients take part.
struct Forced;
impl Model<1> for Forced {
    fn name(&self) -> &str {
        "forced"
    }
    fn states(&self) -> [StateSpec; 1] {
        [StateSpec {
            name: Cow::Borrowed("x"),
            meaning: Cow::Borrowed("response"),
        }]
    }
    fn params(&self) -> &[ParamSpec] {
        &NO_PARAMS
    }
    fn rhs<T: Scalar>(&self, t: T, x: &SVector<T, 1>, _p: &[T]) -> SVector<T, 1> {
        SVector::from([t.cos() - x[0]])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
        SVector::from([0.0])
    }
    fn autonomous(&self) -> bool {
        false
    }
}

#[test]
fn rosenbrock_methods_keep_their_order_on_a_non_autonomous_problem() {
    let exact = |t: f64| (t.cos() + t.sin()) / 2.0 + (2.0 - 0.5) * (-t).exp();
    let error = |method, h: f64| {
        let opts = fixed_steps(method, h);
        let (y, _, _) = run(&Forced, &[], SVector::from([2.0]), 6.0, &opts);
        (y[0] - exact(6.0)).abs()
    };
    for (method, order) in [(Method::Rosenbrock, 5.0), (Method::Rodas4, 4.0)] {
        let (e1, e2) = (error(method, 0.4), error(method, 0.2));
        let observed = (e1 / e2).log2();
        assert!(
            (observed - order).abs() < 0.6,
            "{method}: observed order {observed:.2} (errors {e1:e}, {e2:e}), expected {order}"
        );
    }
}

/// Integration runs forward only: a span that ends before it starts, or has a non-finite end,
/// is refused with the culprit named, for every method; an empty span returns the start.
#[test]
fn a_backward_or_non_finite_span_is_refused() {
    let p = ParamSet::defaults(P2p.params());
    let sys = System::new(&P2p, p.values());
    let x0 = SVector::from([0.3, 0.001, 0.0]);
    for method in Method::ALL {
        let opts = SolveOptions {
            method,
            ..Default::default()
        };
        for (t0, t1, culprit) in [
            (10.0, 5.0, "t1"),
            (0.0, f64::NAN, "t1"),
            (f64::INFINITY, 1.0, "t0"),
        ] {
            let mut stats = SolverStats::default();
            let e = integrate(&sys, Span::new(t0, x0, t1), &opts, &mut stats, &mut |_| {
                false
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains(&format!("`{culprit}`")), "{method:?}: {e}");
            assert_eq!(stats.steps, 0);
        }
        let mut stats = SolverStats::default();
        let (t, y) = integrate(
            &sys,
            Span::new(3.0, x0, 3.0),
            &opts,
            &mut stats,
            &mut |_| false,
        )
        .unwrap();
        assert_eq!((t, y), (3.0, x0));
    }
}

/// Options are checked before any work: a zero step limit, a non-positive or non-finite step
/// size, and continuation step lengths that are not positive or out of order are refused
/// naming the option.
#[test]
fn invalid_options_are_refused_naming_the_option() {
    use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
    for (opts, name) in [
        (
            SolveOptions {
                max_steps: 0,
                ..Default::default()
            },
            "max_steps",
        ),
        (
            SolveOptions {
                h0: Some(0.0),
                ..Default::default()
            },
            "h0",
        ),
        (
            SolveOptions {
                h_max: Some(f64::NAN),
                ..Default::default()
            },
            "h_max",
        ),
    ] {
        let e = opts.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{name}`")), "{e}");
    }
    let p = ParamSet::defaults(P2p.params());
    let k = p.index("sn_capacity").unwrap();
    for (opts, name) in [
        (
            ContinuationOptions {
                ds_min: 0.0,
                ..Default::default()
            },
            "ds_min",
        ),
        (
            ContinuationOptions {
                ds: -1.0,
                ..Default::default()
            },
            "ds",
        ),
        (
            ContinuationOptions {
                ds_max: 1e-12,
                ..Default::default()
            },
            "ds_max",
        ),
        (
            ContinuationOptions {
                max_steps: 0,
                ..Default::default()
            },
            "max_steps",
        ),
    ] {
        let e = continue_equilibria::<_, 3>(&P2p, p.values(), k, 300.0, 2000.0, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{name}`")), "{e}");
    }
}
