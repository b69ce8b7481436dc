//! The reference model against independent facts: conservation, hand-evaluated edge cases,
//! finite-difference Jacobians, the reboot wave's bookkeeping and the windowed limit.

mod common;

use nalgebra::SVector;
use selfheal::analysis::healthy_state;
use selfheal::model::{jacobian, Model, P2p, P2pIdx, ParamSet, ParamSpec, Scalar, StateSpec};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, SimOptions};
use selfheal::solve::{Method, SolveOptions, Tolerances};
use std::borrow::Cow;

fn defaults() -> Vec<f64> {
    ParamSet::defaults(P2p.params()).values().to_vec()
}

/// The reference model with `offline` as a fourth state obeying its own balance equation
/// dO/dt = δN + δs·S + θQ − λO, written independently of the model's dQ/dt.
struct WithOffline;
impl Model<4> for WithOffline {
    fn name(&self) -> &str {
        "p2p+offline"
    }
    fn states(&self) -> [StateSpec; 4] {
        let [a, b, c] = P2p.states();
        // A name made at run time: names need not live for the whole program.
        let offline = StateSpec {
            name: (String::from("off") + "line").into(),
            meaning: "users not online and not trying".into(),
        };
        [a, b, c, offline]
    }
    fn params(&self) -> &[ParamSpec] {
        P2p.params()
    }
    fn rhs<T: Scalar>(&self, t: T, x: &SVector<T, 4>, p: &[T]) -> SVector<T, 4> {
        let inner = P2p.rhs(t, &SVector::from([x[0], x[1], x[2]]), p);
        let (l, d, ds, th) = (p[0], p[1], p[2], p[4]);
        let d_off = d * x[0] + ds * x[1] + th * x[2] - l * x[3];
        SVector::from([inner[0], inner[1], inner[2], d_off])
    }
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 4> {
        let x = P2p.nominal_state(p);
        SVector::from([x[0], x[1], x[2], 1.0 - x.sum()])
    }
    fn service_level(&self, x: &SVector<f64, 4>, p: &[f64]) -> Option<f64> {
        P2p.service_level(&SVector::from([x[0], x[1], x[2]]), p)
    }
}

#[test]
fn four_populations_sum_to_one_along_a_collapse() {
    // Start from a heavily shocked state and integrate all four balances independently.
    let p = defaults();
    let h = healthy_state(&P2p, &p).unwrap().equilibrium;
    let x = P2p.reboot_jump(&h, &p, 0.5, 0.5).unwrap();
    let mut sc = Scenario::new(&WithOffline);
    sc.initial = Some(vec![x[0], x[1], x[2], 1.0 - x.sum()]);
    let opts = SimOptions {
        solve: SolveOptions {
            method: Method::Rosenbrock,
            tol: Tolerances {
                rtol: 1e-8,
                atol: 1e-14,
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = simulate(&WithOffline, &sc, &opts).unwrap();
    for seg in &sim.dense.segments {
        for th in [0.0, 0.3, 0.7, 1.0] {
            let y = seg.eval(seg.time(th));
            assert!(
                (y.sum() - 1.0).abs() < 1e-12,
                "sum {} at t {}",
                y.sum(),
                seg.t0
            );
        }
    }
}

#[test]
fn no_capacity_means_infinite_utilisation_by_hand() {
    // S + S0 = 0: ρ = ∞, s = 0, φ = φ0, D = 0; S = 0 < σN so u = 1.
    let mut p = defaults();
    p[P2pIdx::Dedicated as usize] = 0.0;
    let x = SVector::from([0.2, 0.0, 0.1]);
    let f = P2p.rhs(0.0, &x, &p);
    let g = |i: P2pIdx| p[i as usize];
    let promotions = g(P2pIdx::Promotion) * g(P2pIdx::Eligible) * 0.2;
    let offline = 1.0 - 0.3;
    let dn = -g(P2pIdx::SignOff) * 0.2 - promotions;
    let ds = promotions;
    let dq = g(P2pIdx::SignOn) * offline - g(P2pIdx::GiveUp) * 0.1;
    assert!((f[0] - dn).abs() < 1e-16);
    assert!((f[1] - ds).abs() < 1e-16);
    assert!((f[2] - dq).abs() < 1e-16);
    assert!(P2p::utilisation_of(&x, &p).is_infinite());
    assert!(jacobian(&P2p, 0.0, &x, &p).iter().all(|v| v.is_finite()));
}

#[test]
fn idle_network_by_hand() {
    // N = Q = 0: ρ = 0, s = 1, φ = 0; σN = 0 so u = 0: only sign-on and normal sign-off act.
    let p = defaults();
    let x = SVector::from([0.0, 0.001, 0.0]);
    let f = P2p.rhs(0.0, &x, &p);
    assert_eq!(f[0], 0.0);
    assert!((f[1] + p[P2pIdx::SnSignOff as usize] * 0.001).abs() < 1e-18);
    assert!((f[2] - p[P2pIdx::SignOn as usize] * 0.999).abs() < 1e-16);
}

#[test]
fn exact_jacobian_matches_central_differences() {
    let p = defaults();
    let points = [
        [0.33, 1.2e-3, 3.5e-4], // healthy
        [0.08, 6e-4, 0.25],     // just after a large shock
        [4e-4, 3.3e-8, 0.04],   // collapsed
        [0.3, 0.02, 0.01],      // far above the supernode target: (S/σN)^20 ~ 1e23
        [0.01, 1e-9, 0.5],      // deep overload: ρ ~ 2e5
    ];
    for x in points {
        let x = SVector::from(x);
        let j = jacobian(&P2p, 0.0, &x, &p);
        for c in 0..3 {
            // Fourth-order central differences: truncation O(h⁴), round-off O(ε|f|/h).
            let h = 1e-4 * x[c].abs().max(1e-12);
            let at = |k: f64| {
                let mut y = x;
                y[c] += k * h;
                P2p.rhs(0.0, &y, &p)
            };
            let fd = (at(-2.0) - at(-1.0) * 8.0 + at(1.0) * 8.0 - at(2.0)) / (12.0 * h);
            for r in 0..3 {
                // Entries far below the row's largest are at finite-difference round-off.
                let row_max = j.row(r).amax();
                let scale = fd[r].abs().max(j[(r, c)].abs()).max(1e-6 * row_max);
                assert!(
                    (fd[r] - j[(r, c)]).abs() < 1e-5 * scale,
                    "J[{r},{c}] at {x:?}: AD {} vs FD {}",
                    j[(r, c)],
                    fd[r]
                );
            }
        }
    }
}

/// The closed-form Jacobian of the reference model (what the solvers use at interior states)
/// against the forward-mode pass through the same rate law, on seeded random parameter sets
/// (within a factor 4 of the defaults, one in ten zero-able parameters at 0) and random states
/// of the simplex spread over twelve orders of magnitude: two derivations of one derivative.
#[test]
fn closed_form_jacobian_matches_forward_mode_on_random_sets() {
    use num_dual::DualSVec64;
    use selfheal::model::{System, P2P_FLOWS};
    use selfheal::qmc::SplitMix;
    let mut rng = SplitMix(29);
    let (mut closed, mut edges) = (0, 0);
    for set in 0..400 {
        let p = common::random_params(&mut rng, 4.0, Some(0.1));
        let sys = System::new(&P2p, p.values());
        for _ in 0..25 {
            // Log-uniform in [1e-12, 1] per state, then scaled into the simplex when needed.
            let mut x = SVector::<f64, 3>::from_fn(|_, _| 10f64.powf(-12.0 * rng.next()));
            if x.sum() > 1.0 {
                x /= x.sum() * (1.0 + rng.next());
            }
            let (fd, jd) = sys.dual_f_and_jacobian(0.0, &x);
            match P2p.rhs_and_jacobian(0.0, &x, p.values()) {
                None => edges += 1,
                Some((f, j)) => {
                    closed += 1;
                    assert_eq!(f, P2p.rhs(0.0, &x, p.values()), "set {set} at {x:?}");
                    // The pass's real parts round differently (its powers go another way).
                    let fscale = fd.amax();
                    assert!(
                        (f - fd).amax() <= 1e-13 * fscale,
                        "set {set} at {x:?}: {f} vs {fd}"
                    );
                    // A row sums flows' gradients: its rounding is relative to the largest
                    // gradient entry of a flow it contains (forward mode, flow by flow).
                    let xd = SVector::<DualSVec64<3>, 3>::from_fn(|i, _| {
                        DualSVec64::<3>::from_re(x[i]).derivative(i)
                    });
                    let pd: Vec<DualSVec64<3>> = p
                        .values()
                        .iter()
                        .map(|v| DualSVec64::<3>::from_re(*v))
                        .collect();
                    let flows = P2p::flows(&xd, &pd).to_array();
                    for r in 0..3 {
                        let scale = P2P_FLOWS
                            .iter()
                            .zip(&flows)
                            .filter(|(spec, _)| spec.jump()[r] != 0)
                            .map(|(_, fl)| fl.eps.0.map_or(0.0, |g| g.amax()))
                            .fold(0.0, f64::max);
                        for c in 0..3 {
                            assert!(
                                (j[(r, c)] - jd[(r, c)]).abs() <= 1e-11 * scale,
                                "set {set} at {x:?}: J[{r},{c}] closed {} vs forward-mode {}",
                                j[(r, c)],
                                jd[(r, c)]
                            );
                        }
                    }
                }
            }
        }
    }
    // Interior states are the rule; a parameter at 0 (no load, no capacity) sends a state to
    // the forward-mode pass.
    assert!(
        closed > 8000 && edges > 0,
        "{closed} closed-form, {edges} at the edges"
    );
}

#[test]
fn right_hand_side_and_jacobian_stay_finite_across_the_simplex() {
    let mut p = defaults();
    p[P2pIdx::NeedSteepness as usize] = 60.0; // steeper than default: overflow-prone
    let grid = [0.0, 1e-12, 1e-8, 1e-4, 0.01, 0.1, 0.3, 0.6, 0.99];
    for &n in &grid {
        for &s in &grid {
            for &q in &grid {
                if n + s + q > 1.0 {
                    continue;
                }
                let x = SVector::from([n, s, q]);
                let f = P2p.rhs(0.0, &x, &p);
                let j = jacobian(&P2p, 0.0, &x, &p);
                assert!(f.iter().chain(j.iter()).all(|v| v.is_finite()), "at {x:?}");
            }
        }
    }
}

#[test]
fn reboot_wave_moves_everyone_it_hits_to_the_queue() {
    let p = defaults();
    let x = SVector::from([0.3, 0.001, 0.002]);
    let (f, c) = (0.4, 0.25);
    let y = P2p.reboot_jump(&x, &p, f, c).unwrap();
    let g = c * 0.001 / (0.001 + p[P2pIdx::Dedicated as usize]);
    assert!((y[0] - 0.6 * (1.0 - g) * 0.3).abs() < 1e-16);
    assert!((y[1] - 0.75 * 0.001).abs() < 1e-18);
    assert!((y.sum() - x.sum()).abs() < 1e-16);
    assert!(P2p.reboot_jump(&x, &p, 1.0, 0.5).is_err());
    assert!(P2p.reboot_jump(&x, &p, 0.5, -0.1).is_err());
}

#[test]
fn windowed_wave_tends_to_the_instantaneous_one() {
    let base = |window: f64| {
        let mut sc = Scenario::new(&P2p);
        sc.t_end = 200.0;
        sc.shock = Some(Shock {
            at: 50.0,
            fraction: 0.3,
            sn_fraction: 0.2,
            window,
        });
        let opts = SimOptions {
            solve: SolveOptions {
                method: Method::Rosenbrock,
                tol: Tolerances {
                    rtol: 1e-10,
                    atol: 1e-15,
                },
                ..Default::default()
            },
            ..Default::default()
        };
        simulate(&P2p, &sc, &opts)
            .unwrap()
            .dense
            .eval(200.0)
            .unwrap()
    };
    let jump = base(0.0);
    let mut previous = f64::INFINITY;
    for w in [1.0, 0.1, 0.01, 0.001] {
        let y = base(w);
        let diff = ((y - jump).component_div(&jump)).amax();
        assert!(
            diff < previous,
            "window {w}: {diff:e} not below {previous:e}"
        );
        previous = diff;
    }
    assert!(
        previous < 1e-4,
        "W = 0.001 still {previous:e} from the jump"
    );
}

#[test]
fn validation_names_parameter_value_and_range() {
    let mut ps = ParamSet::defaults(P2p.params());
    let e = ps.set("sign_off", -0.1).unwrap_err().to_string();
    assert_eq!(
        e,
        "`sign_off` = -0.1 is out of range: must be finite and >= 0"
    );
    let e = ps.set("eligible", 1.5).unwrap_err().to_string();
    assert_eq!(e, "`eligible` = 1.5 is out of range: must be in [0, 1]");
    let e = ps.set("sn_capacity", 0.0).unwrap_err().to_string();
    assert!(e.contains("`sn_capacity` = 0") && e.contains("> 0"), "{e}");
    assert!(ps.set("retry", f64::NAN).is_err());
    assert!(ps.set("give_up", f64::INFINITY).is_err());
}

#[test]
fn scenarios_round_trip_through_toml() {
    let text = std::fs::read_to_string("data/skype2007.toml").unwrap();
    let mut sc = Scenario::from_toml(&P2p, &text).unwrap();
    sc.name = "quotes \" and\nnewlines".into();
    sc.initial = Some(vec![0.3, 0.001, 0.0]);
    sc.params.set("sn_capacity", 1234.5678901234567).unwrap();
    let back = Scenario::from_toml(&P2p, &sc.to_toml(&P2p)).unwrap();
    assert_eq!(back, sc);
}

/// A Rust model with an instantaneous wave but no flow for a spread one: a spread wave is
/// refused (it would silently do nothing), an instantaneous one runs and moves the state.
#[test]
fn a_spread_wave_on_a_model_without_its_flow_is_refused() {
    use selfheal::model::Bound;
    struct Drain;
    static P: [ParamSpec; 1] = [ParamSpec {
        name: Cow::Borrowed("rate"),
        symbol: Cow::Borrowed("r"),
        unit: Cow::Borrowed("1/min"),
        default: 1.0,
        lower: Bound::Open(0.0),
        upper: Bound::Unbounded,
        meaning: Cow::Borrowed("refill rate"),
    }];
    impl Model<1> for Drain {
        fn name(&self) -> &str {
            "drain"
        }
        fn states(&self) -> [StateSpec; 1] {
            [StateSpec {
                name: Cow::Borrowed("x"),
                meaning: Cow::Borrowed("level"),
            }]
        }
        fn params(&self) -> &[ParamSpec] {
            &P
        }
        fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
            SVector::from([p[0] * (T::from(1.0) - x[0])])
        }
        fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
            SVector::from([1.0])
        }
        fn service_level(&self, x: &SVector<f64, 1>, _p: &[f64]) -> Option<f64> {
            Some(x[0].clamp(0.0, 1.0))
        }
        fn reboot_jump<T: Scalar>(
            &self,
            x: &SVector<T, 1>,
            _p: &[T],
            f: T,
            _c: T,
        ) -> Result<SVector<T, 1>, selfheal::Error> {
            Ok(x * (T::from(1.0) - f))
        }
    }
    let mut sc = Scenario::new(&Drain);
    sc.shock = Some(Shock {
        window: 10.0,
        ..Shock::instantaneous(0.5)
    });
    let e = sc.validate(&Drain).unwrap_err().to_string();
    assert!(e.contains("reboot_flow") && e.contains("window = 0"), "{e}");
    sc.shock = Some(Shock::instantaneous(0.5));
    let sim = simulate(&Drain, &sc, &SimOptions::default()).unwrap();
    assert!((sim.summary.min_peers - 0.5).abs() < 1e-9);
}

/// The crash hazards of revision 3, against the equations written out from docs/model.md:
/// switching them on adds −C to dN/dt, −ηcs·S to dS/dt and C + ηcs·S to dQ/dt, with
/// C = ηc·N + ηcs·S·N/(S + S0); they are the spread reboot wave's flow with the same hazards
/// (a second, independently written route); and they keep N + S + Q + O = 1.
#[test]
fn crash_hazards_add_the_flows_of_the_equations() {
    let mut rng = common::SplitMix(29);
    let defaults = ParamSet::defaults(P2p.params()).values().to_vec();
    let (ic, ics) = (
        P2p.params().iter().position(|s| s.name == "crash").unwrap(),
        P2p.params()
            .iter()
            .position(|s| s.name == "sn_crash")
            .unwrap(),
    );
    assert_eq!((defaults[ic], defaults[ics]), (0.0, 0.0));
    for _ in 0..5000 {
        let mut x: SVector<f64, 3> = SVector::from_fn(|_, _| rng.next());
        x[1] *= 10f64.powf(-6.0 * rng.next());
        if x.sum() > 1.0 {
            x /= x.sum() * (1.0 + rng.next());
        }
        let (ec, ecs) = (10f64.powf(-5.0 * rng.next()), 10f64.powf(-5.0 * rng.next()));
        let mut p = defaults.clone();
        p[P2pIdx::Dedicated as usize] = 10f64.powf(-8.0 * rng.next());
        let off = P2p.rhs(0.0, &x, &p);
        p[ic] = ec;
        p[ics] = ecs;
        let on = P2p.rhs(0.0, &x, &p);
        let (n, s) = (x[0], x[1]);
        let s0 = p[P2pIdx::Dedicated as usize];
        let c = ec * n + ecs * s * n / (s + s0);
        let want = [-c, -ecs * s, c + ecs * s];
        let scale = off.amax() + c + ecs * s;
        for i in 0..3 {
            assert!(
                (on[i] - off[i] - want[i]).abs() <= 1e-13 * scale,
                "state {i} at {x:?}: {} vs {}",
                on[i] - off[i],
                want[i]
            );
        }
        // The spread wave's flow with the same hazards (crashes off).
        p[ic] = 0.0;
        p[ics] = 0.0;
        let wave = P2p.reboot_flow(&x, &p, ec, ecs);
        for i in 0..3 {
            assert!(
                (wave[i] - want[i]).abs() <= 1e-13 * scale,
                "{wave:?} vs {want:?}"
            );
        }
        // Offline users gain nothing: the three derivatives' change sums to zero.
        assert!((on - off).sum().abs() <= 1e-13 * scale);
    }
}
