//! Calibration: exact gradients against finite differences of the plain objective, and
//! recovery of known parameters from synthetic noisy data within the fit's own intervals.

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use selfheal::calibrate::{
    calibrate, chi2, chi2_gradient, CalibrateOptions, FitMethod, FitParam, Reading,
};
use selfheal::model::P2p;
use selfheal::scenario::Scenario;
use selfheal::simulate::{simulate, SimOptions};
use selfheal::sweep::Quantity;

/// A scenario with a spread wave, a parameter change and a fix: every kind of breakpoint.
fn spread_scenario() -> Scenario {
    Scenario::from_toml(
        &P2p,
        r#"
        population = 1e6
        t_end = 2880
        [params]
        promotion = 0.002
        [shock]
        at = 300
        fraction = 0.45
        sn_fraction = 0.5
        window = 90
        [[intervention]]
        at = 1200
        set = { promotion = 0.004, dedicated = 3e-4 }
        "#,
    )
    .unwrap()
}

fn readings_of(sc: &Scenario, times: &[f64], sigma_rel: f64) -> Vec<Reading> {
    let opts = SimOptions {
        solve: CalibrateOptions::default().solve,
        ..SimOptions::default()
    };
    let sim = simulate(&P2p, sc, &opts).unwrap();
    times
        .iter()
        .map(|&t| {
            let x = sim.dense.eval(t.max(0.0)).unwrap();
            let u = (x[0] + x[1]) * sc.population;
            Reading::new(t, u, sigma_rel * u + 100.0)
        })
        .collect()
}

/// Compares the sensitivity gradient of χ² with central differences of χ² computed by plain
/// simulations, for each kind of fitted quantity, at a point away from the optimum.
fn check_gradient(sc: &Scenario, names: &[&str]) {
    let times: Vec<f64> = (0..30).map(|k| -60.0 + 97.0 * k as f64).collect();
    let mut truth = sc.clone();
    // Data from a slightly different scenario, so that the residuals are not zero.
    truth.population *= 1.03;
    let readings = readings_of(&truth, &times, 0.02);
    let opts = CalibrateOptions {
        solve: selfheal::solve::SolveOptions {
            tol: selfheal::solve::Tolerances {
                rtol: 1e-11,
                atol: 1e-15,
            },
            ..CalibrateOptions::default().solve
        },
        ..CalibrateOptions::default()
    };
    let fit: Vec<FitParam> = names
        .iter()
        .map(|n| FitParam::new(n, sc).unwrap())
        .collect();
    let theta: Vec<f64> = fit.iter().map(|f| f.start).collect();
    let (c, g) = chi2_gradient::<_, 3, 6>(&P2p, sc, &readings, &fit, &theta, &opts).unwrap();
    let c_plain = chi2(&P2p, sc, &readings, &fit, &theta, &opts).unwrap();
    assert!((c - c_plain).abs() <= 1e-6 * c_plain, "χ² {c} vs {c_plain}");
    for (j, f) in fit.iter().enumerate() {
        // Central differences with one Richardson step: a reading one minute after a
        // breakpoint makes χ² strongly curved in that breakpoint's time.
        let h = 1e-4 * theta[j].abs().max(1e-3);
        let at = |d: f64| {
            let mut th = theta.clone();
            th[j] += d;
            chi2(&P2p, sc, &readings, &fit, &th, &opts).unwrap()
        };
        let central = |h: f64| (at(h) - at(-h)) / (2.0 * h);
        let fd = (4.0 * central(h / 2.0) - central(h)) / 3.0;
        let err = (g[j] - fd).abs() / fd.abs().max(1e-6 * c / theta[j].abs().max(1e-3));
        assert!(
            err < 2e-4,
            "{}: sensitivity gradient {} vs central difference {} (rel. error {err:.1e})",
            f.name,
            g[j],
            fd
        );
    }
}

#[test]
fn gradients_match_finite_differences_for_a_spread_wave() {
    check_gradient(
        &spread_scenario(),
        &[
            "promotion",
            "shock",
            "window",
            "shock_at",
            "intervention.1.dedicated",
            "intervention.1.at",
            "population",
            "sn_capacity",
        ],
    );
    check_gradient(&spread_scenario(), &["sn_shock"]);
}

#[test]
fn gradients_match_finite_differences_for_an_instantaneous_wave() {
    let mut sc = spread_scenario();
    sc.shock.as_mut().unwrap().window = 0.0;
    check_gradient(&sc, &["shock", "shock_at", "promotion", "retry"]);
}

#[test]
fn gradients_match_finite_differences_through_a_ramp() {
    // A ramp that moves a parameter fitted from the start (its derivative enters the ramp's
    // start value), and the ramp's own value, time and length.
    let mut sc = spread_scenario();
    let k = sc.params.index("sn_capacity").unwrap();
    let mut ramp = selfheal::scenario::Intervention::step(1500.0, vec![(k, 1400.0)]);
    ramp.ramp = 600.0;
    sc.interventions.push(ramp);
    sc.validate(&P2p).unwrap();
    check_gradient(
        &sc,
        &[
            "sn_capacity",
            "intervention.2.sn_capacity",
            "intervention.2.at",
            "intervention.2.ramp",
            "promotion",
        ],
    );
}

#[test]
fn gradients_match_finite_differences_with_a_second_wave() {
    // The fitted wave quantities are the first wave's; a second wave (spread, after the
    // intervention) is carried through the sensitivities unchanged.
    let mut sc = spread_scenario();
    sc.later_shocks.push(selfheal::scenario::Shock {
        at: 1800.0,
        fraction: 0.2,
        sn_fraction: 0.3,
        window: 40.0,
    });
    sc.validate(&P2p).unwrap();
    check_gradient(&sc, &["shock", "shock_at", "window", "promotion"]);
}

/// A wave that tips the network, fixed later by restored promotion and dedicated capacity.
fn collapse_and_fix() -> Scenario {
    Scenario::from_toml(
        &P2p,
        r#"
        population = 1e6
        t_end = 2880
        [params]
        promotion = 0.001
        [shock]
        at = 300
        fraction = 0.6
        window = 60
        [[intervention]]
        at = 1200
        set = { promotion = 0.004, dedicated = 5e-4 }
        "#,
    )
    .unwrap()
}

#[test]
fn recovers_known_parameters_from_noisy_synthetic_data_within_its_intervals() {
    let truth = collapse_and_fix();
    // Identifiable from such a series: the scale, when the fix came, and how fast users
    // return (which sets the recovery's pace). Quantities the series cannot separate (the
    // wave's size once it tips the network, capacity added beyond what ends the collapse)
    // would come out with wide or bound-hugging values instead.
    let names = ["population", "intervention.1.at", "sign_on"];
    let truth_values = [1e6, 1200.0, 1.0 / 480.0];
    let times: Vec<f64> = (0..96).map(|k| 15.0 + 30.0 * k as f64).collect();
    let clean = readings_of(&truth, &times, 0.0);
    // Gaussian noise of 2 % plus 2000 users, stated as each reading's sigma.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let readings: Vec<Reading> = clean
        .iter()
        .map(|r| {
            let sigma = 0.02 * r.users + 2000.0;
            let noise = Normal::new(0.0, sigma).unwrap().sample(&mut rng);
            Reading::new(r.t, r.users + noise, sigma)
        })
        .collect();
    // Start from a wrong guess.
    let mut guess = truth.clone();
    for (name, v) in names.iter().zip([1.4e6, 1500.0, 1e-3]) {
        Quantity::parse(name, &guess)
            .unwrap()
            .apply(&mut guess, v)
            .unwrap();
    }
    let fit_params = |sc: &Scenario| -> Vec<FitParam> {
        names
            .iter()
            .map(|n| FitParam::new(n, sc).unwrap())
            .collect()
    };
    let mut results = vec![];
    for method in [FitMethod::Both, FitMethod::NelderMead, FitMethod::Lbfgs] {
        let opts = CalibrateOptions {
            method,
            starts: 2,
            ..CalibrateOptions::default()
        };
        let fit = calibrate::<_, 3, 6>(&P2p, &guess, &readings, fit_params(&guess), &opts).unwrap();
        for (p, truth) in fit.params.iter().zip(truth_values) {
            let (lo, hi) = p.interval.expect("determined");
            assert!(
                lo <= truth && truth <= hi,
                "{method:?}: {} = {} ± {:?}, interval [{lo}, {hi}] misses the truth {truth}",
                p.name,
                p.value,
                p.sd
            );
            // Intervals informative, not vacuous.
            assert!(
                hi - lo < 0.5 * truth,
                "{}: interval too wide [{lo}, {hi}]",
                p.name
            );
        }
        // With the noise level stated correctly, χ²/(n − k) is near 1.
        let red = fit.reduced_chi2.unwrap();
        assert!((0.6..1.5).contains(&red), "reduced χ² {red}");
        results.push(fit);
    }
    // The derivative-free and the gradient method reach the same minimum.
    let (nm, lb) = (&results[1], &results[2]);
    for (a, b) in nm.params.iter().zip(&lb.params) {
        let sd = a.sd.unwrap();
        assert!(
            (a.value - b.value).abs() < 0.2 * sd,
            "{}: Nelder–Mead {} vs L-BFGS {} (sd {sd})",
            a.name,
            a.value,
            b.value
        );
    }
}

#[test]
fn bounds_that_exclude_the_start_and_unknown_names_are_refused() {
    let sc = spread_scenario();
    let mut f = FitParam::new("promotion", &sc).unwrap();
    let e = f.set_bounds(0.003, 0.01).unwrap_err().to_string();
    assert!(
        e.contains("promotion (start value)") && e.contains("0.002"),
        "{e}"
    );
    let e = FitParam::new("promoton", &sc).unwrap_err().to_string();
    assert!(e.contains("did you mean `promotion`"), "{e}");
    let e = FitParam::new("t_end", &sc).unwrap_err().to_string();
    assert!(e.contains("cannot be fitted"), "{e}");
    // Quantities that are not parameters have valid ranges too.
    for (name, lo, hi, range) in [
        ("population", -1e8, 1e9, "> 0"),
        ("shock", 0.0, 1.0, "[0, 1)"),
        ("window", -10.0, 200.0, ">= 0"),
        ("shock_at", -100.0, 400.0, ">= 0"),
    ] {
        let mut f = FitParam::new(name, &sc).unwrap();
        let e = f.set_bounds(lo, hi).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{name} (bound)")) && e.contains(range),
            "{e}"
        );
    }
    // Readings the solver cannot compare with: sigma far below the solver's precision,
    // counts beyond any network.
    for (users, sigma) in [(1e6, 1e-300), (1e300, 1e299), (1e6, f64::NAN)] {
        let readings = vec![Reading::new(600.0, users, sigma)];
        let fit = vec![FitParam::new("shock", &sc).unwrap()];
        let e = calibrate::<_, 3, 6>(&P2p, &sc, &readings, fit, &CalibrateOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the reading at t = 600") && e.contains("out of range"),
            "{e}"
        );
    }
}

/// Leverages (the weighted hat matrix's diagonal) sum to the number of fitted quantities (the
/// trace of a projection of rank k), each within [0, 1]; a reading stated a thousand times more
/// precisely than the others decides its direction of the fit alone, and the fit says so.
#[test]
fn a_reading_that_decides_the_fit_alone_is_flagged() {
    let truth = collapse_and_fix();
    let names = ["population", "intervention.1.at"];
    // Every 20 minutes, off the fix's instant, so that several readings see the recovery after
    // it (with one reading every two hours, the one just after the fix had leverage 0.98, and
    // one at the fix's instant 1.000: each decided the fix time alone and was flagged).
    let times: Vec<f64> = (0..144).map(|k| 70.0 + 20.0 * k as f64).collect();
    let readings = readings_of(&truth, &times, 0.02);
    let opts = CalibrateOptions {
        method: FitMethod::Lbfgs,
        starts: 1,
        ..CalibrateOptions::default()
    };
    let params = |sc: &Scenario| -> Vec<FitParam> {
        names
            .iter()
            .map(|n| FitParam::new(n, sc).unwrap())
            .collect()
    };
    let fit = calibrate::<_, 3, 6>(&P2p, &truth, &readings, params(&truth), &opts).unwrap();
    assert_eq!(fit.leverage.len(), readings.len());
    let sum: f64 = fit.leverage.iter().sum();
    assert!((sum - names.len() as f64).abs() < 1e-8, "Σh = {sum}");
    assert!(fit
        .leverage
        .iter()
        .all(|h| (-1e-12..=1.0 + 1e-12).contains(h)));
    assert!(
        !fit.warnings.iter().any(|w| w.contains("leverage")),
        "{:?}",
        fit.warnings
    );
    // One early reading (it alone sees the healthy level, which sets `population`) stated
    // with a thousandth of its sigma.
    let mut sharp = readings.clone();
    sharp[0].sigma /= 1000.0;
    let fit = calibrate::<_, 3, 6>(&P2p, &truth, &sharp, params(&truth), &opts).unwrap();
    let sum: f64 = fit.leverage.iter().sum();
    assert!((sum - names.len() as f64).abs() < 1e-8, "Σh = {sum}");
    assert!(fit.leverage[0] > 0.9, "{:?}", fit.leverage);
    assert!(
        fit.warnings
            .iter()
            .any(|w| w.contains("leverage") && w.contains("at t = 70")),
        "{:?}",
        fit.warnings
    );
}

/// The knife-edge check against the critical shock computed by the tipping analysis (an
/// independent computation): a fitted wave whose interval straddles f* is flagged, one whose
/// interval lies below it is not.
#[test]
fn an_interval_that_straddles_the_tipping_point_is_flagged() {
    use selfheal::analysis::tipping::{critical_shock, TippingOptions};
    use selfheal::calibrate::{knife_edges, Fitted};
    use selfheal::model::{Model, ParamSet};
    let p = ParamSet::defaults(P2p.params());
    let fstar = critical_shock(&P2p, p.values(), &TippingOptions::default())
        .unwrap()
        .value
        .unwrap();
    let opts = CalibrateOptions::default();
    for (f, flagged) in [(fstar - 0.01, true), (fstar - 0.1, false)] {
        let mut sc = Scenario::new(&P2p);
        sc.shock = Some(selfheal::scenario::Shock::instantaneous(f));
        let fit = vec![FitParam::new("shock", &sc).unwrap()];
        let fitted = vec![Fitted {
            name: "shock".into(),
            start: f,
            value: f,
            sd: Some(0.01),
            interval: Some((f - 0.02, f + 0.02)),
            profile: None,
            bounds: (fit[0].lo, fit[0].hi),
            at_bound: false,
        }];
        let w = knife_edges(&P2p, &sc, &fit, &fitted, &opts.solve, opts.level).unwrap();
        assert_eq!(!w.is_empty(), flagged, "f = {f}, f* = {fstar}: {w:?}");
        if flagged {
            assert!(
                w[0].contains("`shock`") && w[0].contains("collapsed"),
                "{w:?}"
            );
        }
    }
}

/// The per-reading fate check on a fit the data push onto the basin boundary: readings that
/// hold the saddle's online level (found by the equilibrium search, an independent
/// computation) for two days can only be approached by a wave that leaves the network on the
/// boundary, where the solver's error decides the fate; the same data made by a wave well
/// below f* are fitted without the warning.
#[test]
fn a_fit_on_the_basin_boundary_is_flagged_by_reading() {
    use selfheal::analysis::tipping::{critical_shock, TippingOptions};
    use selfheal::equilibria::{all_equilibria, Kind};
    use selfheal::model::{Model, ParamSet};
    use selfheal::scenario::Shock;
    let p = ParamSet::defaults(P2p.params());
    let fstar = critical_shock(&P2p, p.values(), &TippingOptions::default())
        .unwrap()
        .value
        .unwrap();
    let saddle = all_equilibria(&P2p, p.values())
        .unwrap()
        .into_iter()
        .find(|e| e.kind == Kind::Saddle)
        .expect("the default network is bistable");
    let times: Vec<f64> = (4..48).map(|h| 60.0 * h as f64).collect();
    let opts = CalibrateOptions {
        starts: 2,
        max_starts: 4,
        ..CalibrateOptions::default()
    };
    let mut guess = Scenario::new(&P2p);
    guess.population = 1e6;
    guess.shock = Some(Shock::instantaneous(fstar - 0.05));
    let on_edge: Vec<Reading> = times
        .iter()
        .map(|&t| {
            let u = (saddle.x[0] + saddle.x[1]) * guess.population;
            Reading::new(t, u, 0.01 * u)
        })
        .collect();
    let mut safe = guess.clone();
    safe.shock = Some(Shock::instantaneous(fstar - 0.15));
    let below = readings_of(&safe, &times, 0.01);
    for (readings, flagged) in [(on_edge, true), (below, false)] {
        let fit = vec![FitParam::new("shock", &guess).unwrap()];
        let fit = calibrate::<_, 3, 6>(&P2p, &guess, &readings, fit, &opts).unwrap();
        let said = fit
            .warnings
            .iter()
            .any(|w| w.contains("knife edge: the reading"));
        assert_eq!(
            said, flagged,
            "f* = {fstar}, fitted {}: {:?}",
            fit.params[0].value, fit.warnings
        );
    }
}

#[test]
fn gradients_match_finite_differences_from_a_daily_cycle() {
    // Under a daily profile the run starts on the healthy daily cycle, whose state at t = 0
    // moves with every parameter in force from the start: its sensitivity is
    // (I − M)⁻¹·∂P/∂θ. The finite differences re-shoot the cycle at each perturbed value.
    // Users return and leave slowly (sessions of about a day, as in the 2007 fit), so the
    // cycle is weakly damped (multiplier about e^{−1.5}) and M matters.
    let mut sc = spread_scenario();
    sc.start = Some("2007-08-16T00:00:00Z".into());
    sc.params.set("sign_on", 5e-4).unwrap();
    sc.params.set("sign_off", 5.7e-4).unwrap();
    let k = sc.params.index("sign_on").unwrap();
    let hourly: [f64; 24] = std::array::from_fn(|h| {
        1.0 + 0.4 * (2.0 * std::f64::consts::PI * (h as f64 - 19.0) / 24.0).cos()
    });
    sc.daily
        .push(selfheal::model::schedule::DailyProfile::new(k, hourly));
    sc.validate(&P2p).unwrap();
    check_gradient(&sc, &["promotion", "sign_on", "shock", "intervention.1.at"]);
}
