//! Parameters that move inside a run: ramped interventions against closed forms, and the
//! exact gradient of calibration through ramps against finite differences of plain runs.

use selfheal::model::{Model, P2p, ParamSpec, Scalar, StateSpec};
use selfheal::nalgebra::SVector;
use selfheal::scenario::Scenario;
use selfheal::simulate::{simulate, SimOptions};
use selfheal::solve::{SolveOptions, Tolerances};

/// Logistic growth `x' = r·x·(1 − x)` whose level of service is `x` (healthy at `x = 1`).
struct Logistic;

static RATE: [ParamSpec; 1] = [ParamSpec::new(
    "rate",
    "r",
    "1/min",
    1.0,
    (
        selfheal::model::Bound::Closed(0.0),
        selfheal::model::Bound::Unbounded,
    ),
    "growth rate",
)];

impl Model<1> for Logistic {
    fn name(&self) -> &str {
        "logistic"
    }
    fn states(&self) -> [StateSpec; 1] {
        [StateSpec::new("x", "share")]
    }
    fn params(&self) -> &[ParamSpec] {
        &RATE
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        SVector::from([p[0] * x[0] * (T::from(1.0) - x[0])])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
        SVector::from([1.0])
    }
    fn service_level(&self, x: &SVector<f64, 1>, _p: &[f64]) -> Option<f64> {
        Some(x[0].clamp(0.0, 1.0))
    }
}

fn tight() -> SimOptions {
    SimOptions {
        solve: SolveOptions {
            tol: Tolerances {
                rtol: 1e-11,
                atol: 1e-14,
            },
            ..SolveOptions::default()
        },
        dt: 0.25,
        ..SimOptions::default()
    }
}

/// Logistic growth whose rate ramps from r0 to r1 over [a, a + R]: x(t) = 1/(1 + (1/x0 − 1)
/// e^{−∫r}), with ∫r piecewise linear then quadratic then linear in t.
#[test]
fn a_ramp_follows_its_straight_line_and_the_state_stays_continuous() {
    let (r0, r1, a, len, x0) = (0.3, 1.7, 2.0, 5.0, 0.01);
    let sc = Scenario::from_toml(
        &Logistic,
        &format!(
            "t_end = 12\n[params]\nrate = {r0}\n[initial]\nx = {x0}\n[[intervention]]\nat = {a}\nramp = {len}\nset = {{ rate = {r1} }}\n"
        ),
    )
    .unwrap();
    let integral = |t: f64| {
        if t <= a {
            r0 * t
        } else if t <= a + len {
            let u = t - a;
            r0 * a + r0 * u + 0.5 * (r1 - r0) * u * u / len
        } else {
            r0 * a + 0.5 * (r0 + r1) * len + r1 * (t - a - len)
        }
    };
    let exact = |t: f64| 1.0 / (1.0 + (1.0 / x0 - 1.0) * (-integral(t)).exp());
    let sim = simulate(&Logistic, &sc, &tight()).unwrap();
    let mut worst: f64 = 0.0;
    for (t, x) in sim.sample(&Logistic, 0.25) {
        worst = worst.max((x[0] - exact(t)).abs() / exact(t));
    }
    assert!(worst < 1e-8, "largest relative error {worst:.2e}");
    // The rate the run used is the straight line, exactly, and the ends are met.
    for (t, want) in [
        (1.0, r0),
        (a, r0),
        (a + 0.4 * len, r0 + 0.4 * (r1 - r0)),
        (a + len, r1),
        (11.0, r1),
    ] {
        let got = sim.params_at(t)[0];
        assert!((got - want).abs() < 1e-15, "rate at {t}: {got} vs {want}");
    }
    // The integration stopped at both ends of the ramp: a step ends at each.
    for end in [a, a + len] {
        assert!(
            sim.dense.segments.iter().any(|s| s.t1 == end),
            "no step ends at {end}"
        );
    }
    // A step at the ramp's midpoint instead is a different run (the ramp is not ignored).
    let mut step = sc.clone();
    step.interventions[0].ramp = 0.0;
    step.interventions[0].at = a + 0.5 * len;
    let s2 = simulate(&Logistic, &step, &tight()).unwrap();
    let (x_ramp, x_step) = (
        sim.dense.eval(a + 0.25 * len).unwrap()[0],
        s2.dense.eval(a + 0.25 * len).unwrap()[0],
    );
    assert!((x_ramp - x_step).abs() > 1e-3 * x_step);
}

#[test]
fn bad_ramps_are_refused_with_the_culprit() {
    let base = "t_end = 100\n[[intervention]]\nat = 10\nset = { dedicated = 1e-4 }\n";
    let e = Scenario::from_toml(&P2p, &format!("{base}ramp = 95\n")).unwrap_err();
    assert!(
        e.to_string().contains("intervention 1: ramp") && e.to_string().contains("at most 90"),
        "{e}"
    );
    let e = Scenario::from_toml(&P2p, &format!("{base}ramp = -1\n")).unwrap_err();
    assert!(e.to_string().contains("intervention 1: ramp"), "{e}");
    let e = Scenario::from_toml(&P2p, &format!("{base}rmap = 5\n")).unwrap_err();
    assert!(e.to_string().contains("did you mean `ramp`"), "{e}");
    // Setting a parameter again while it still ramps.
    let e = Scenario::from_toml(
        &P2p,
        &format!("{base}ramp = 50\n[[intervention]]\nat = 30\nset = {{ dedicated = 2e-4 }}\n"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("still ramps it (until 60)"), "{e}");
    // The stochastic chain refuses what it cannot follow.
    let sc = Scenario::from_toml(&P2p, &format!("{base}ramp = 50\n")).unwrap();
    let e = selfheal::stochastic::simulate_runs(
        &sc,
        1000,
        1,
        1,
        selfheal::stochastic::StochasticMethod::Exact,
        10.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("intervention 1 ramps"), "{e}");
}

#[test]
fn a_scenario_with_ramps_round_trips_through_toml() {
    let sc = Scenario::from_toml(
        &P2p,
        "t_end = 3000\n[[intervention]]\nat = 10\nramp = 600.5\nset = { dedicated = 1e-4, sn_capacity = 900.0 }\n",
    )
    .unwrap();
    let back = Scenario::from_toml(&P2p, &sc.to_toml(&P2p)).unwrap();
    assert_eq!(back, sc);
}
