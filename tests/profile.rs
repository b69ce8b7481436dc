//! Profile-likelihood intervals: against the closed form of a quantity the model is linear in,
//! their coverage of the truth over seeded synthetic data sets, and a quantity the readings do
//! not see (the profile runs to both bounds). And the global phase on a χ² with two basins.

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use selfheal::calibrate::{calibrate, stats, CalibrateOptions, Fit, FitParam, Reading};
use selfheal::scenario::Scenario;

#[path = "common/logistic.rs"]
mod logistic;
use logistic::Logistic;

const TRUE_RATE: f64 = 0.8;
const TRUE_SHOCK: f64 = 0.9;
const POPULATION: f64 = 1000.0;

fn scenario(shock: f64) -> Scenario {
    Scenario::from_toml(
        &Logistic,
        &format!(
            "population = {POPULATION}\nt_end = 15\n[params]\nrate = {TRUE_RATE}\n[shock]\nat = 1\nfraction = {shock}\n"
        ),
    )
    .unwrap()
}

/// The closed form's share online at `t`.
fn share(t: f64, f: f64, r: f64) -> f64 {
    if t < 1.0 {
        1.0
    } else {
        1.0 / (1.0 + (1.0 / (1.0 - f) - 1.0) * (-r * (t - 1.0)).exp())
    }
}

/// Readings of the closed form at 20 times after the wave with Gaussian noise of `sigma`.
fn readings(seed: u64, sigma: f64) -> Vec<Reading> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0, sigma).unwrap();
    (0..20)
        .map(|k| {
            let t = 1.5 + 0.5 * k as f64;
            let y = POPULATION * share(t, TRUE_SHOCK, TRUE_RATE);
            Reading::new(t, y + noise.sample(&mut rng), sigma)
        })
        .collect()
}

fn fit(sc: &Scenario, readings: &[Reading], names: &[&str]) -> Fit {
    let params = names
        .iter()
        .map(|n| FitParam::new(n, sc).unwrap())
        .collect();
    let opts = CalibrateOptions {
        starts: 1,
        profile: true,
        ..CalibrateOptions::default()
    };
    calibrate::<_, 1, 2>(&Logistic, sc, readings, params, &opts).unwrap()
}

#[test]
fn the_profile_of_a_quantity_the_model_is_linear_in_is_the_closed_form_interval() {
    // The model's users are population × share: χ² is a parabola in the population, so
    // the profile interval is P̂ ± √(Δ / Σ (share_i/σ_i)²), Δ = s²·t², whatever the
    // coordinate the optimiser moves on.
    let sigma = 10.0;
    let rd = readings(11, sigma);
    let f = fit(&scenario(TRUE_SHOCK), &rd, &["population"]);
    let p = &f.params[0];
    let q = p.profile.as_ref().expect("profiled");
    let curvature: f64 = rd
        .iter()
        .map(|r| (share(r.t, TRUE_SHOCK, TRUE_RATE) / sigma).powi(2))
        .sum();
    let (n, k) = (rd.len() as f64, 1.0);
    // P̂ and χ²_min of the linear least-squares problem, in closed form.
    let p_hat = rd
        .iter()
        .map(|r| r.users * share(r.t, TRUE_SHOCK, TRUE_RATE) / sigma.powi(2))
        .sum::<f64>()
        / curvature;
    let chi2_min: f64 = rd
        .iter()
        .map(|r| ((p_hat * share(r.t, TRUE_SHOCK, TRUE_RATE) - r.users) / sigma).powi(2))
        .sum();
    let t = stats::student_t_quantile(0.975, n - k);
    let half = (chi2_min / (n - k) * t * t / curvature).sqrt();
    assert!(
        (p.value - p_hat).abs() < 1e-6 * p_hat,
        "{} vs {p_hat}",
        p.value
    );
    let (lo, hi) = (q.lower.unwrap(), q.upper.unwrap());
    assert!(!lo.at_bound && !hi.at_bound);
    // The ends are the computed points just past the crossing: outside it, within 1/1000 of
    // the half-width (the walk's narrowing) plus the solver's error.
    for (end, exact) in [(lo.value, p_hat - half), (hi.value, p_hat + half)] {
        let out = (end - exact) * (exact - p_hat).signum();
        assert!(
            (-1e-4 * half..=2e-3 * half).contains(&out),
            "profile end {end} vs closed form {exact} (half-width {half})"
        );
    }
}

#[test]
fn profile_intervals_cover_the_truth_at_about_their_nominal_rate() {
    // 40 data sets of the same regrowth with independent noise; the shock and the rate are
    // fitted from a wrong start each time. At 95 %, 40 intervals miss the truth 2 times on
    // average; 7 or more misses would happen with probability 0.0034 if the intervals were
    // right, so more than 6 misses of either quantity fails the test.
    let seeds = 40;
    let truth = [TRUE_SHOCK, TRUE_RATE];
    let (mut profile_hits, mut gn_hits) = ([0; 2], [0; 2]);
    for seed in 0..seeds {
        let rd = readings(1000 + seed, 10.0);
        let f = fit(&scenario(0.7), &rd, &["shock", "rate"]);
        for (j, p) in f.params.iter().enumerate() {
            let q = p.profile.as_ref().unwrap();
            let (lo, hi) = (q.lower.unwrap().value, q.upper.unwrap().value);
            assert!(
                lo < p.value && p.value < hi,
                "{}: {lo} {} {hi}",
                p.name,
                p.value
            );
            // A positive quantity's intervals stay positive.
            let (a, b) = p.interval.unwrap();
            assert!(a > 0.0 && lo > 0.0, "{}: {a}, {lo}", p.name);
            profile_hits[j] += usize::from(lo <= truth[j] && truth[j] <= hi);
            gn_hits[j] += usize::from(a <= truth[j] && truth[j] <= b);
            assert!(
                q.lowest_delta > -1e-6 * f.chi2.max(1.0),
                "seed {seed}: the profile found a better optimum ({})",
                q.lowest_delta
            );
        }
    }
    eprintln!("profile coverage {profile_hits:?}, Gauss–Newton {gn_hits:?} of {seeds}");
    for j in 0..2 {
        assert!(profile_hits[j] >= seeds as usize - 6, "{profile_hits:?}");
    }
}

#[test]
fn a_quantity_the_readings_do_not_see_is_profiled_to_both_bounds() {
    // Readings before the wave say nothing about its size: χ² is flat in `shock`, the
    // Gauss–Newton interval is not determined and the profile runs to both bounds.
    let rd: Vec<Reading> = (0..8)
        .map(|k| Reading::new(0.1 * k as f64, POPULATION + 3.0 * (k as f64 - 3.5), 5.0))
        .collect();
    let f = fit(&scenario(0.5), &rd, &["shock"]);
    let p = &f.params[0];
    assert!(p.interval.is_none());
    let q = p.profile.as_ref().unwrap();
    let (lo, hi) = (q.lower.unwrap(), q.upper.unwrap());
    assert!(lo.at_bound && hi.at_bound, "{lo:?} {hi:?}");
    assert_eq!((lo.value, hi.value), p.bounds);
}

#[test]
fn the_global_phase_counts_distinct_optima_and_runs_until_the_best_repeats() {
    // Readings of two waves (0.5 at t = 8, 0.7 at t = 85; slow regrowth, so that each dip
    // spans many readings) fitted by one wave of 0.6 whose time is fitted: χ² has a basin at
    // each dip, the deeper at the larger one (the dip left unexplained is the smaller), and a
    // plateau between them. Starts from t = 12 and spread over [0, 100] reach several.
    let truth = Scenario::from_toml(
        &Logistic,
        "population = 1000\nt_end = 100\n[params]\nrate = 0.2\n[[shock]]\nat = 8\nfraction = 0.5\n[[shock]]\nat = 85\nfraction = 0.7\n",
    )
    .unwrap();
    let sim = selfheal::simulate::simulate(
        &Logistic,
        &truth,
        &selfheal::simulate::SimOptions::default(),
    )
    .unwrap();
    let rd: Vec<Reading> = (0..200)
        .map(|k| {
            let t = 0.5 * k as f64 + 0.1;
            Reading::new(t, POPULATION * sim.dense.eval(t).unwrap()[0], 10.0)
        })
        .collect();
    let mut guess = scenario(0.6);
    guess.t_end = 100.0;
    guess.shock.as_mut().unwrap().at = 12.0;
    guess.params.set("rate", 0.2).unwrap();
    for starts in [1, 4] {
        let opts = CalibrateOptions {
            starts,
            max_starts: 32,
            ..CalibrateOptions::default()
        };
        let params = vec![FitParam::new("shock_at", &guess).unwrap()];
        let f = calibrate::<_, 1, 2>(&Logistic, &guess, &rd, params, &opts).unwrap();
        let run = f.stages[0].starts;
        // One start cannot repeat a value: a single start always runs more.
        assert!((starts.max(2)..=32).contains(&run), "{starts}: {run}");
        assert!(f.optima.iter().map(|o| o.found).sum::<usize>() <= run);
        assert!(f.optima.windows(2).all(|w| w[0].chi2 < w[1].chi2));
        // The best repeats (or every start ran), and it is the wave at the larger dip.
        assert!(f.optima[0].found >= 2 || run == 32, "{:?}", f.optima);
        assert!(
            (f.params[0].value - 85.0).abs() < 1.0,
            "{}",
            f.params[0].value
        );
        if starts == 4 {
            // The dip at t = 8 is a basin of its own, reached by a start and worse.
            assert!(f.optima.len() >= 2, "{:?}", f.optima);
            assert!(
                f.optima.iter().any(|o| (o.theta[0] - 8.0).abs() < 1.0),
                "{:?}",
                f.optima
            );
        }
    }
}
