//! Model files: the shipped reference model as a file against the built-in one (right-hand
//! side, Jacobian, equilibria, folds, critical shock, trajectories), and every kind of error in
//! a model file refused with the file and the line.

use nalgebra::SVector;
use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
use selfheal::analysis::tipping::{critical_shock, TippingOptions};
use selfheal::equilibria::all_equilibria;
use selfheal::model::{jacobian, param_derivative, Model, P2p, ParamSet};
use selfheal::modelfile::{FileModel, ModelFile};
use selfheal::scenario::Scenario;
use selfheal::simulate::simulate;

mod common;

fn p2p_file() -> FileModel<3> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/p2p.toml");
    ModelFile::load(std::path::Path::new(path))
        .unwrap()
        .typed::<3>()
        .unwrap()
}

/// A random interior point of the simplex and a random valid parameter set (each parameter
/// within a factor of 10 of its default on a log scale, the crash hazards, off by default,
/// between 1e-5 and 1e-1; fractions kept in [0, 1]).
fn random_case(rng: &mut common::SplitMix) -> (SVector<f64, 3>, Vec<f64>) {
    let mut x: SVector<f64, 3> = SVector::from_fn(|_, _| rng.next());
    // Spread over magnitudes: supernodes and queue often tiny.
    x[1] *= 10f64.powf(-6.0 * rng.next());
    x[2] *= 10f64.powf(-4.0 * rng.next());
    if x.sum() > 1.0 {
        x /= x.sum() * (1.0 + rng.next());
    }
    let p: Vec<f64> = P2p
        .params()
        .iter()
        .map(|s| {
            let base = if s.default == 0.0 { 1e-3 } else { s.default };
            let v = base * 10f64.powf(2.0 * rng.next() - 1.0);
            if s.admits(v) {
                v
            } else {
                s.default
            }
        })
        .collect();
    (x, p)
}

#[test]
fn the_reference_model_as_a_file_has_the_same_right_hand_side_and_jacobian() {
    let file = p2p_file();
    assert_eq!(
        file.params()
            .iter()
            .map(|s| s.name.as_ref())
            .collect::<Vec<_>>(),
        P2p.params()
            .iter()
            .map(|s| s.name.as_ref())
            .collect::<Vec<_>>()
    );
    for (a, b) in file.params().iter().zip(P2p.params()) {
        assert_eq!(
            (a.default, a.lower, a.upper),
            (b.default, b.lower, b.upper),
            "{}",
            a.name
        );
    }
    let mut rng = common::SplitMix(13);
    let mut worst: f64 = 0.0;
    for _ in 0..10_000 {
        let (x, p) = random_case(&mut rng);
        let a = P2p.rhs(0.0, &x, &p);
        let b = file.rhs(0.0, &x, &p);
        // Relative to the flows that make up each derivative (the sum of their sizes).
        let flows = P2p::flows(&x, &p).to_array();
        let scale: f64 = flows.iter().map(|v| v.abs()).sum::<f64>().max(1e-300);
        for i in 0..3 {
            let e = (a[i] - b[i]).abs() / scale;
            worst = worst.max(e);
            assert!(e <= 1e-12, "x = {x:?}, p = {p:?}: {a:?} vs {b:?}");
        }
        let (ja, jb) = (jacobian(&P2p, 0.0, &x, &p), jacobian(&file, 0.0, &x, &p));
        let jscale = ja.amax().max(1e-300);
        assert!((ja - jb).amax() <= 1e-10 * jscale, "{ja} vs {jb}");
        // Parameter derivatives, except in the steepnesses, whose derivatives the built-in
        // model does not carry (the file's expressions do).
        for k in [0, 3, 6, 7, 12] {
            let (da, db) = (
                param_derivative(&P2p, 0.0, &x, &p, k),
                param_derivative(&file, 0.0, &x, &p, k),
            );
            let s = da.amax().max(db.amax()).max(1e-300);
            assert!((da - db).amax() <= 1e-10 * s, "param {k}: {da} vs {db}");
        }
    }
    eprintln!("worst relative difference of the right-hand sides: {worst:e}");
}

#[test]
fn the_reference_model_as_a_file_has_the_same_equilibria_folds_and_critical_shock() {
    let file = p2p_file();
    let p = ParamSet::defaults(P2p.params());
    let (ea, eb) = (
        all_equilibria(&P2p, p.values()).unwrap(),
        all_equilibria(&file, p.values()).unwrap(),
    );
    assert_eq!(ea.len(), 3);
    assert_eq!(ea.len(), eb.len());
    for (a, b) in ea.iter().zip(&eb) {
        assert_eq!(a.kind, b.kind);
        for i in 0..3 {
            assert!(
                (a.x[i] - b.x[i]).abs() <= 1e-10 * a.x[i].abs().max(1e-12),
                "{a:?} vs {b:?}"
            );
        }
    }
    let k = p.index("sn_capacity").unwrap();
    let opts = ContinuationOptions::default();
    let ca = continue_equilibria(&P2p, p.values(), k, 300.0, 20_000.0, &opts).unwrap();
    let cb = continue_equilibria(&file, p.values(), k, 300.0, 20_000.0, &opts).unwrap();
    let (fa, fb) = (ca.folds(), cb.folds());
    assert_eq!(fa.len(), 2);
    assert_eq!(fa.len(), fb.len());
    for (a, b) in fa.iter().zip(&fb) {
        assert!((a - b).abs() < 1e-8 * a, "{a} vs {b}");
    }
    let topts = TippingOptions::default();
    let (sa, sb) = (
        critical_shock(&P2p, p.values(), &topts).unwrap(),
        critical_shock(&file, p.values(), &topts).unwrap(),
    );
    let (a, b) = (sa.value.unwrap(), sb.value.unwrap());
    // Both certified to the tipping tolerance; their brackets overlap.
    let (ba, bb) = (sa.bracket.unwrap(), sb.bracket.unwrap());
    assert!(ba.0 <= bb.1 && bb.0 <= ba.1, "{ba:?} vs {bb:?}");
    assert!((a - b).abs() <= 2.0 * topts.tol, "{a} vs {b}");
}

#[test]
fn the_reference_model_as_a_file_has_the_same_trajectories_and_shock() {
    let file = p2p_file();
    let text = "t_end = 2880\n[shock]\nat = 60\nfraction = 0.5\nwindow = 30\n";
    let (sa, sb) = (
        Scenario::from_toml(&P2p, text).unwrap(),
        Scenario::from_toml(&file, text).unwrap(),
    );
    let opts = common::rosenbrock(1e-10, 1e-14);
    let (ra, rb) = (
        simulate(&P2p, &sa, &opts).unwrap(),
        simulate(&file, &sb, &opts).unwrap(),
    );
    assert_eq!(ra.summary.outcome, rb.summary.outcome);
    for ((ta, xa), (tb, xb)) in ra
        .sample(&P2p, 10.0)
        .into_iter()
        .zip(rb.sample(&file, 10.0))
    {
        assert_eq!(ta, tb);
        for i in 0..3 {
            assert!(
                (xa[i] - xb[i]).abs() <= 1e-8 * xa[i].abs().max(1e-9),
                "t = {ta}: {xa:?} vs {xb:?}"
            );
        }
    }
    // The instantaneous wave: the time-1 map of the shock transitions equals the closed form.
    let p = ParamSet::defaults(P2p.params());
    let x = SVector::from([0.33, 0.0012, 0.0004]);
    for (f, c) in [(0.3, 0.3), (0.6, 0.2), (0.95, 0.99)] {
        let a = P2p.reboot_jump(&x, p.values(), f, c).unwrap();
        let b = file.reboot_jump(&x, p.values(), f, c).unwrap();
        for i in 0..3 {
            assert!(
                (a[i] - b[i]).abs() <= 1e-12 * a[i].abs().max(1e-9),
                "{f} {c}: {a:?} vs {b:?}"
            );
        }
    }
}

/// A small valid model, to be broken one way at a time.
const VALID: &str = r#"name = "aloha"
[states]
n = { max = "m" }
[params]
m = { default = 100, min = 1 }
qa = { default = 0.003, min = 0, max = 1 }
qr = { default = 0.1, min = 0, max = 1 }
[let]
G = "(m - n)*qa + n*qr"
[[transition]]
name = "arrival"
jump = { n = 1 }
rate = "(m - n)*qa"
[[transition]]
name = "success"
jump = { n = -1 }
rate = "G*exp(-G)"
"#;

fn refused(text: &str) -> String {
    let e = ModelFile::from_toml(text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.toml"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn every_kind_of_error_in_a_model_file_names_the_file_and_the_line() {
    assert!(ModelFile::from_toml(VALID, "ok.toml").is_ok());
    // Unknown name in a rate, with the nearest valid one.
    let e = refused(&VALID.replace("G*exp(-G)", "G*exp(-GG)"));
    assert!(
        e.contains("line 17") && e.contains("unknown name `GG`") && e.contains("did you mean `G`"),
        "{e}"
    );
    // Unknown function.
    let e = refused(&VALID.replace("exp(-G)", "expp(-G)"));
    assert!(
        e.contains("unknown function `expp`") && e.contains("did you mean `exp`"),
        "{e}"
    );
    // A jump naming no state.
    let e = refused(&VALID.replace("jump = { n = -1 }", "jump = { nn = -1 }"));
    assert!(
        e.contains("line 16")
            && e.contains("`nn`, which is not a state")
            && e.contains("did you mean `n`"),
        "{e}"
    );
    // A rate that is negative where the states are valid.
    let e = refused(&VALID.replace("rate = \"(m - n)*qa\"", "rate = \"(n - m)*qa\""));
    assert!(
        e.contains("line 13") && e.contains("transition `arrival`") && e.contains("rate is -"),
        "{e}"
    );
    // A let that uses itself or a later one (a cycle).
    let e = refused(&VALID.replace(
        "G = \"(m - n)*qa + n*qr\"",
        "G = \"(m - n)*qa + n*qr + H\"\nH = \"G\"",
    ));
    assert!(
        e.contains("[let] G uses a later let, `H`") && e.contains("line 9"),
        "{e}"
    );
    let e = refused(&VALID.replace("G = \"(m - n)*qa + n*qr\"", "G = \"G + 1\""));
    assert!(e.contains("uses itself"), "{e}");
    // A missing section, an unknown key, a syntax error.
    let e = refused(&VALID.replace("[states]\nn = { max = \"m\" }\n", ""));
    assert!(e.contains("states"), "{e}");
    let e = refused(&VALID.replace("max = \"m\"", "maxx = \"m\""));
    assert!(e.contains("line 3") && e.contains("maxx"), "{e}");
    let e = refused(&VALID.replace("G*exp(-G)", "G*exp(-G"));
    assert!(e.contains("expected `,` or `)` in `exp(…)`"), "{e}");
    let e = refused(&VALID.replace("G*exp(-G)", "(G*exp(-G)"));
    assert!(e.contains("missing `)`"), "{e}");
    // No transition; a default outside its range; a name defined twice; a reserved name.
    let cut = VALID.find("[[transition]]").unwrap();
    let e = refused(&VALID[..cut]);
    assert!(e.contains("no [[transition]]"), "{e}");
    let e = refused(&VALID.replace("qa = { default = 0.003", "qa = { default = 3"));
    assert!(e.contains("default = 3 is outside its range"), "{e}");
    let e = refused(&VALID.replace("G = ", "qa = "));
    assert!(e.contains("defined twice"), "{e}");
    let e = refused(
        &VALID
            .replace("G = \"", "exp = \"")
            .replace("G*exp(-G)", "1"),
    );
    assert!(e.contains("reserved"), "{e}");
}

#[test]
fn aloha_equilibria_match_an_independent_root_search_and_its_burst_tips_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/aloha.toml");
    let mf = ModelFile::load(std::path::Path::new(path)).unwrap();
    let m = mf.typed::<1>().unwrap();
    let p = ParamSet::defaults(m.params());
    let (mm, qa, qr) = (p.values()[0], p.values()[1], p.values()[2]);
    // The drift in closed form, and its roots by bisection on a fine scan of [0, m].
    let drift = |n: f64| {
        let g = (mm - n) * qa + n * qr;
        (mm - n) * qa - g * (-g).exp()
    };
    let mut roots = vec![];
    let k = 100_000;
    for i in 0..k {
        let (mut a, mut b) = (mm * i as f64 / k as f64, mm * (i + 1) as f64 / k as f64);
        if drift(a) * drift(b) < 0.0 {
            for _ in 0..200 {
                let c = 0.5 * (a + b);
                if drift(a) * drift(c) <= 0.0 {
                    b = c;
                } else {
                    a = c;
                }
            }
            roots.push(0.5 * (a + b));
        }
    }
    assert_eq!(roots.len(), 3, "{roots:?}");
    let mut eq: Vec<f64> = all_equilibria(&m, p.values())
        .unwrap()
        .iter()
        .map(|e| e.x[0])
        .collect();
    eq.sort_by(f64::total_cmp);
    assert_eq!(eq.len(), 3, "{eq:?}");
    for (a, b) in eq.iter().zip(&roots) {
        assert!((a - b).abs() < 1e-9 * mm, "{a} vs {b}");
    }
    // The good state is healthy; a burst that moves the backlog past the saddle jams it: the
    // critical burst is the fraction of idle stations that lands exactly on the saddle,
    // n_s = f·m (from n = n_good: n_good + f·(m − n_good) = n_s).
    let cs = critical_shock(&m, p.values(), &TippingOptions::default()).unwrap();
    let f = cs.value.unwrap();
    let expected = (roots[1] - roots[0]) / (mm - roots[0]);
    assert!((f - expected).abs() < 2e-6, "{f} vs {expected}");
}

#[test]
fn bittorrent_steady_state_matches_its_closed_form() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/bittorrent.toml");
    let m = ModelFile::load(std::path::Path::new(path))
        .unwrap()
        .typed::<2>()
        .unwrap();
    let p = ParamSet::defaults(m.params());
    let v = |n: &str| p.values()[p.index(n).unwrap()];
    let (lambda, theta, gamma, c, mu, eta) = (
        v("lambda"),
        v("theta"),
        v("gamma"),
        v("c"),
        v("mu"),
        v("eta"),
    );
    // Upload-constrained: γy = μ(ηx + y) and λ − θx = γy, solved for (x, y).
    let y = lambda / (gamma + theta * (gamma - mu) / (mu * eta));
    let x = (lambda - gamma * y) / theta;
    assert!(
        c * x > mu * (eta * x + y),
        "the defaults are upload-constrained"
    );
    let eq = all_equilibria(&m, p.values()).unwrap();
    assert_eq!(eq.len(), 1, "{eq:?}");
    let e = &eq[0];
    assert!(
        (e.x[0] - x).abs() < 1e-10 * x && (e.x[1] - y).abs() < 1e-10 * y,
        "{:?} vs ({x}, {y})",
        e.x
    );
    assert_eq!(e.kind, selfheal::analysis::Kind::Stable);
    // And a simulation from an empty swarm settles there.
    let sc = Scenario::from_toml(&m, "t_end = 200000\n[initial]\nx = 0\ny = 0\n").unwrap();
    let sim = simulate(&m, &sc, &common::rosenbrock(1e-10, 1e-12)).unwrap();
    let (_, end) = sim.sample(&m, 200_000.0).into_iter().last().unwrap();
    assert!(
        (end[0] - x).abs() < 1e-6 * x && (end[1] - y).abs() < 1e-6 * y,
        "{end:?}"
    );
}

/// The retry-storm model's right-hand side written out by hand (an independent transcription
/// of models/retry-storm.toml's description), at its default parameters.
fn retry_storm_rhs(q: f64, z: f64) -> (f64, f64) {
    let (clients, rate, capacity, timeout, retry, steepness, deadline) =
        (1000.0, 0.09, 100.0, 1.0_f64, 0.9, 4.0, 10.0);
    let work = q + z + 1.0;
    let wait: f64 = work / capacity;
    let th = wait.powf(steepness) / (timeout.powf(steepness) + wait.powf(steepness)) / timeout;
    (
        rate * (clients - q) - capacity * q / work - (1.0 - retry) * q * th - q / deadline,
        q * th - capacity * z / work - z / deadline,
    )
}

/// Classical RK4 on [`retry_storm_rhs`] for `t` seconds.
fn retry_storm_run(mut q: f64, mut z: f64, t: f64) -> (f64, f64) {
    let h = 0.002;
    for _ in 0..(t / h) as usize {
        let k1 = retry_storm_rhs(q, z);
        let k2 = retry_storm_rhs(q + 0.5 * h * k1.0, z + 0.5 * h * k1.1);
        let k3 = retry_storm_rhs(q + 0.5 * h * k2.0, z + 0.5 * h * k2.1);
        let k4 = retry_storm_rhs(q + h * k3.0, z + h * k3.1);
        q += h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
        z += h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
    }
    (q, z)
}

#[test]
fn retry_storm_states_and_critical_burst_match_a_hand_written_integration() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/retry-storm.toml");
    let m = ModelFile::load(std::path::Path::new(path))
        .unwrap()
        .typed::<2>()
        .unwrap();
    let p = ParamSet::defaults(m.params());
    // The two attractors, by integrating the hand-written equations to rest from a short and a
    // long queue.
    let healthy = retry_storm_run(10.0, 1.0, 300.0);
    let collapsed = retry_storm_run(500.0, 500.0, 300.0);
    let eq = all_equilibria(&m, p.values()).unwrap();
    let stable: Vec<_> = eq
        .iter()
        .filter(|e| e.kind == selfheal::analysis::Kind::Stable)
        .collect();
    assert_eq!((eq.len(), stable.len()), (3, 2), "{eq:?}");
    for (q, z) in [healthy, collapsed] {
        assert!(
            stable
                .iter()
                .any(|e| (e.x[0] - q).abs() < 1e-6 * q && (e.x[1] - z).abs() < 1e-6 * z.max(1e-3)),
            "({q}, {z}) not among {stable:?}"
        );
    }
    // The critical burst: a fraction f of the idle clients sends at once (q → q + f·(C − q));
    // bisection on the hand-written flow against the certified answer.
    let fate = |f: f64| {
        let q0 = healthy.0 + f * (1000.0 - healthy.0);
        let (q, _) = retry_storm_run(q0, healthy.1, 200.0);
        q < 50.0
    };
    let (mut lo, mut hi) = (0.0, 0.5);
    assert!(fate(lo) && !fate(hi));
    for _ in 0..20 {
        let mid = 0.5 * (lo + hi);
        if fate(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let cs = critical_shock(&m, p.values(), &TippingOptions::default()).unwrap();
    let (a, b) = cs.bracket.unwrap();
    assert!(
        a <= hi + 1e-5 && lo - 1e-5 <= b,
        "[{a}, {b}] vs [{lo}, {hi}]"
    );
    // Where rates are of order 100 per second the healthy state's residual rounds at 1e-14:
    // the settle test once took that for motion and called the unshocked trial undecided.
    let mut q = p.values().to_vec();
    q[m.params()
        .iter()
        .position(|s| s.name == "capacity")
        .unwrap()] = 81.2123587453534;
    q[m.params().iter().position(|s| s.name == "clients").unwrap()] = 414.221220503751;
    let cs = critical_shock(&m, &q, &TippingOptions::default()).unwrap();
    assert!(cs.value.is_none() && !cs.down, "{cs:?}");
}

/// Immigration and death, linear: the chain's mean equals the fluid solution at every M.
const IMMIGRATION_DEATH: &str = r#"name = "immigration-death"
[states]
x = { description = "individuals per unit" }
[params]
lambda = { default = 2, min = 0 }
mu = { default = 0.5, min = 0, open = true }
[[transition]]
name = "arrival"
jump = { x = 1 }
rate = "lambda"
[[transition]]
name = "death"
jump = { x = -1 }
rate = "mu*x"
[service]
level = "1"
"#;

#[test]
fn a_model_files_chain_has_the_fluid_mean_within_central_limit_bounds() {
    use selfheal::modelfile::chain::{chain_runs, ChainOptions};
    use selfheal::stochastic::StochasticMethod;
    let m = ModelFile::from_toml(IMMIGRATION_DEATH, "id.toml")
        .unwrap()
        .typed::<1>()
        .unwrap();
    let sc = Scenario::from_toml(&m, "t_end = 8").unwrap();
    let x0 = SVector::from([0.0]);
    for method in [StochasticMethod::Exact, StochasticMethod::TauLeap] {
        let opts = ChainOptions {
            population: 50.0,
            runs: 400,
            seed: 7,
            method,
            dt: 1.0,
            epsilon: 0.03,
        };
        let runs = chain_runs(&m, &sc, &x0, &opts).unwrap();
        for k in 1..=8 {
            let t = k as f64;
            let fluid = 2.0 / 0.5 * (1.0 - (-0.5 * t).exp());
            let v: Vec<f64> = runs.iter().map(|r| r.grid[k][0]).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            // The count is Poisson with mean M·x(t): the mean of R runs has sd sqrt(x/(M R)).
            let sd = (fluid / (50.0 * 400.0)).sqrt();
            assert!(
                (mean - fluid).abs() < 4.0 * sd,
                "{method:?} t = {t}: {mean} vs {fluid} (sd {sd})"
            );
            // Whole counts only.
            assert!(v
                .iter()
                .all(|x| ((x * 50.0).round() - x * 50.0).abs() < 1e-9));
        }
        if method == StochasticMethod::TauLeap {
            assert!(runs.iter().all(|r| r.leaps > 0));
        }
    }
}

/// A model file without a watched state recovers by its service level: ALOHA's backlog grows
/// in a jam, so the recovery time is when 1 − n/m, having fallen below 95 % of its healthy
/// value, is back, read here off the dense output on a fine grid.
#[test]
fn a_backlog_models_recovery_time_follows_its_service_level() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/aloha.toml");
    let m = ModelFile::load(std::path::Path::new(path))
        .unwrap()
        .typed::<1>()
        .unwrap();
    let sc = selfheal::scenario::Scenario::from_toml(
        &m,
        "t_end = 9000\n[params]\nqr = 0.12\n[shock]\nat = 100\nfraction = 0.3\n[[intervention]]\nat = 1500\nset = { qr = 0.05 }\n",
    )
    .unwrap();
    let sim = selfheal::simulate::simulate(&m, &sc, &Default::default()).unwrap();
    let s = &sim.summary;
    let healthy = 1.0 - s.healthy[0] / 100.0;
    let level = 0.95 * healthy;
    let (mut fell, mut back) = (None, None);
    let dt = 0.25;
    for k in 0..=((sc.t_end - 100.0) / dt) as usize {
        let t = 100.0 + k as f64 * dt;
        let service = 1.0 - sim.dense.eval(t).unwrap()[0] / 100.0;
        if fell.is_none() && service < level {
            fell = Some(t);
        } else if fell.is_some() && back.is_none() && service >= level {
            back = Some(t);
        }
    }
    let (fell, back) = (fell.expect("the jam"), back.expect("the recovery"));
    assert!(fell < 200.0 && back > 1500.0, "{fell} {back}");
    let r = s.recovery_time.expect("a recovery time");
    assert!((r - (back - 100.0)).abs() <= dt, "{r} vs {}", back - 100.0);
    assert_eq!(s.outcome, selfheal::simulate::Outcome::Recovered);
}

/// The reference model's unit-jump chain by tau-leaping at 10^5 users: right after an
/// instantaneous wave of 0.3, the mean of the recorded peers equals the fluid state after the
/// jump within central-limit bounds. (Recording the counts a leap reached at grid times inside
/// the leap put the t = 0 row a leap ahead: +4.9e-3, fifty standard errors; leaps through the
/// wave's map at the run's ε biased it by −8e-4.)
#[test]
fn tau_leaping_records_the_state_after_a_wave_without_bias() {
    use selfheal::modelfile::chain::{chain_runs, ChainOptions};
    use selfheal::stochastic::StochasticMethod;
    let m = p2p_file();
    let mut sc = Scenario::new(&m);
    sc.shock = Some(selfheal::scenario::Shock::instantaneous(0.3));
    sc.t_end = 10.0;
    let fluid = selfheal::simulate::simulate(&P2p, &sc, &Default::default()).unwrap();
    let after = fluid.dense.eval(0.0).unwrap()[0];
    let x0 = selfheal::analysis::healthy_state(&m, sc.params.values())
        .unwrap()
        .equilibrium;
    let opts = ChainOptions {
        population: 1e5,
        runs: 100,
        seed: 11,
        method: StochasticMethod::TauLeap,
        dt: 5.0,
        epsilon: 0.03,
    };
    let runs = chain_runs(&m, &sc, &x0, &opts).unwrap();
    let v: Vec<f64> = runs.iter().map(|r| r.grid[0][0]).collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let se = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    assert!(
        (mean - after).abs() < 4.0 * se,
        "mean {mean} vs fluid {after} (standard error {se})"
    );
}

/// A state bound that depends on a parameter: feasibility and projection use the parameters
/// they are given, a scenario's initial state is checked at its own parameters, and a run's
/// sampled states respect the bound in force at each time (it changes at an intervention).
#[test]
fn a_bound_that_depends_on_a_parameter_is_kept_at_the_parameters_in_force() {
    let text = "name = \"capped growth\"\n[states]\nn = { max = \"cap\" }\n\
        [params]\ncap = { default = 10, min = 0, open = true }\nr = { default = 1, min = 0 }\n\
        [[transition]]\nname = \"grow\"\njump = { n = 1 }\nrate = \"r*n*(1 - n/cap)\"\n[service]\nlevel = \"1\"\n";
    let m = ModelFile::from_toml(text, "capped.toml")
        .unwrap()
        .typed::<1>()
        .unwrap();
    let x = SVector::from([11.0]);
    assert!(!m.feasible(&x, &[10.0, 1.0]));
    assert!(m.feasible(&x, &[12.0, 1.0]));
    assert_eq!(m.project(&x, &[10.0, 1.0]).unwrap()[0], 10.0);
    assert_eq!(m.project(&x, &[12.0, 1.0]).unwrap()[0], 11.0);
    // An initial state above the default bound is refused, one below a raised bound is not.
    let e = Scenario::from_toml(&m, "t_end = 50\n[initial]\nn = 11\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("n = 11") && e.contains("capped growth"), "{e}");
    Scenario::from_toml(&m, "t_end = 50\n[params]\ncap = 12\n[initial]\nn = 11\n").unwrap();
    // Growth to the bound, which is raised at t = 20: every sample within the bound in force
    // (the logistic solution never exceeds it), and the run goes past the old bound.
    let sc = Scenario::from_toml(
        &m,
        "t_end = 60\n[initial]\nn = 1\n[[intervention]]\nat = 20\nset = { cap = 20 }\n",
    )
    .unwrap();
    let sim = simulate(&m, &sc, &Default::default()).unwrap();
    assert_eq!(sim.params_at(19.9)[0], 10.0);
    assert_eq!(sim.params_at(20.0)[0], 20.0);
    let rows = sim.sample(&m, 0.25);
    for (t, x) in &rows {
        let cap = if *t < 20.0 { 10.0 } else { 20.0 };
        assert!(x[0] <= cap, "n = {} above {cap} at t = {t}", x[0]);
    }
    let last = rows.last().unwrap().1[0];
    assert!(last > 19.0 && last <= 20.0, "{last}");
}
