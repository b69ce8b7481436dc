//! The report and its figures: the right files, whole and readable, and numbers that match the
//! library's own analyses.

mod common;

use common::{rk4, rosenbrock};
use nalgebra::{SMatrix, SVector};
use selfheal::calibrate::parse_utc;
use selfheal::model::{Model, P2p};
use selfheal::report::{files_list, read_observations, write_report, ReportPlan};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, Outcome};

/// The rows of a CSV file: header, then records as strings.
fn csv_rows(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The Jacobian by fourth-order central differences of the right-hand side (no automatic
/// differentiation), each column's step relative to its component.
fn fd_jacobian(p: &[f64], x: &SVector<f64, 3>) -> SMatrix<f64, 3, 3> {
    let mut j = SMatrix::<f64, 3, 3>::zeros();
    for c in 0..3 {
        let h = 1e-4 * x[c].abs().max(1e-12);
        let at = |k: f64| {
            let mut y = *x;
            y[c] += k * h;
            P2p.rhs(0.0, &y, p)
        };
        let col = (at(-2.0) - at(-1.0) * 8.0 + at(1.0) * 8.0 - at(2.0)) / (12.0 * h);
        j.set_column(c, &col);
    }
    j
}

#[test]
fn report_writes_its_files_and_touches_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("notes.txt");
    std::fs::write(&keep, "mine").unwrap();
    std::fs::write(dir.path().join("report.md"), "stale").unwrap();
    let mut sc = Scenario::new(&P2p);
    sc.shock = Some(Shock::instantaneous(0.5));
    let plan = ReportPlan::reference(&sc).unwrap();
    let r = write_report(&P2p, &sc, "test", &[], dir.path(), &plan).unwrap();
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "mine");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = files_list(["sn_capacity", "dedicated"], true, true);
    want.push("notes.txt".into());
    want.sort();
    assert_eq!(names, want, "no temporary or extra files");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("does not recover"),
        "a 0.5 wave tips the default network:\n{md}"
    );
    // The numbers, each against a second method.
    let p = sc.params.values().to_vec();
    // The critical shock separates fates found by plain simulations at much tighter tolerance
    // (its bracket is 1e-6 wide), and the text states it.
    let f = r
        .critical_shock
        .expect("a 0.5 wave tips the default network");
    assert!(f > 0.3 && f < 0.5, "{f}");
    assert!(md.contains(&format!("f\\* = {f:.4}")));
    for (shock, want) in [
        (f - 1e-5, Outcome::Recovered),
        (f + 1e-5, Outcome::Collapsed),
    ] {
        let mut s = Scenario::new(&P2p);
        s.shock = Some(Shock::instantaneous(shock));
        s.t_end = 3000.0;
        let out = simulate(&P2p, &s, &rosenbrock(1e-11, 1e-16))
            .unwrap()
            .summary
            .outcome;
        assert_eq!(out, want, "shock {shock} either side of f* = {f}");
    }
    // The folds in capacity are where the number of equilibria changes between 1 and 3
    // (found by the equilibrium search alone, either side of each fold).
    assert_eq!(r.capacity_folds.len(), 2, "{:?}", r.capacity_folds);
    let count = |k: f64| {
        let mut ps = sc.params.clone();
        ps.set("sn_capacity", k).unwrap();
        selfheal::equilibria::all_equilibria(&P2p, ps.values())
            .unwrap()
            .len()
    };
    let (lo, hi) = (r.capacity_folds[0], r.capacity_folds[1]);
    for (k, want) in [
        (lo * (1.0 - 1e-4), 1),
        (lo * (1.0 + 1e-4), 3),
        (hi * (1.0 - 1e-4), 3),
        (hi * (1.0 + 1e-4), 1),
    ] {
        assert_eq!(count(k), want, "sn_capacity = {k} (folds {lo}, {hi})");
    }
    // equilibria.csv: each row zeroes the right-hand side, and its stability, unstable
    // dimensions and leading real part agree with the eigenvalues of a finite-difference
    // Jacobian.
    let (header, rows) = csv_rows(&dir.path().join("equilibria.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 3, "the default network has three equilibria");
    for row in &rows {
        let x = SVector::<f64, 3>::from_fn(|i, _| row[i].parse().unwrap());
        let f = P2p.rhs(0.0, &x, &p);
        assert!(f.amax() < 1e-12, "{row:?}: |f| = {:e}", f.amax());
        assert!(
            row[col("residual")].parse::<f64>().unwrap() < 1e-12,
            "{row:?}"
        );
        let ev = fd_jacobian(&p, &x).complex_eigenvalues();
        let max_re = ev.iter().map(|l| l.re).fold(f64::NEG_INFINITY, f64::max);
        let scale = ev.iter().map(|l| l.norm()).fold(0.0, f64::max);
        // Far from zero compared with the finite differences' error.
        assert!(max_re.abs() > 1e-6 * scale, "{row:?}: {ev:?}");
        let unstable = ev.iter().filter(|l| l.re > 0.0).count();
        assert_eq!(
            row[col("stable")],
            (max_re < 0.0).to_string(),
            "{row:?}: {ev:?}"
        );
        assert_eq!(row[col("unstable_dims")], unstable.to_string(), "{row:?}");
        let listed: f64 = row[col("max_real_eig")].parse().unwrap();
        assert!(
            (listed - max_re).abs() < 1e-8 * scale,
            "{row:?}: max real part {listed} vs {max_re}"
        );
    }
    // trajectory.csv: rows every 10 min from the wave at t = 0 to t_end, against RK4 from the
    // state after the wave (the healthy state, the first row of equilibria.csv, hit by 0.5).
    let (header, rows) = csv_rows(&dir.path().join("trajectory.csv"));
    assert_eq!(header[..4], ["t", "peers", "supernodes", "queue"]);
    let healthy = SVector::<f64, 3>::from_fn(|i, _| {
        csv_rows(&dir.path().join("equilibria.csv")).1[0][i]
            .parse()
            .unwrap()
    });
    let x0 = P2p.reboot_jump(&healthy, &p, 0.5, 0.5).unwrap();
    let reference = rk4(&p, x0, sc.t_end, 0.01, 10.0);
    assert_eq!(rows.len(), reference.len());
    let mut worst: f64 = 0.0;
    for (k, (row, x)) in rows.iter().zip(&reference).enumerate() {
        assert_eq!(row[0].parse::<f64>().unwrap(), 10.0 * k as f64);
        for i in 0..3 {
            let v: f64 = row[i + 1].parse().unwrap();
            worst = worst.max((v - x[i]).abs() / x[i].abs());
        }
    }
    // Seen: 6e-7 at the report's rtol 1e-6; RK4 at this step is good to 1e-9.
    assert!(
        worst < 1e-5,
        "trajectory.csv off RK4 by {worst:e} (relative)"
    );
    for svg in [
        "outage.svg",
        "bifurcation.svg",
        "tipping_map.svg",
        "phase.svg",
    ] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(text.contains("<text"), "{svg} has no text");
    }
    assert!(std::fs::read_to_string(dir.path().join("outage.svg"))
        .unwrap()
        .contains("time (hours)"));
    for png in [
        "outage.png",
        "bifurcation.png",
        "tipping_map.png",
        "phase.png",
    ] {
        let b = std::fs::read(dir.path().join(png)).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{png}");
        let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
        assert_eq!((w, h), (900, 560), "{png}");
    }
}

#[test]
fn utc_times_parse_to_the_epoch_count() {
    // 2007-08-16T00:00:00Z is 1187222400 s after 1970-01-01 (13741 days).
    assert_eq!(parse_utc("2007-08-16T00:00:00Z").unwrap(), 1_187_222_400.0);
    assert_eq!(parse_utc("1970-01-01T00:00:00Z").unwrap(), 0.0);
    assert_eq!(parse_utc("2000-03-01T12:30Z").unwrap(), 951_913_800.0);
    assert!(parse_utc("2007-08-16 22:15").is_err());
    assert!(parse_utc("2007-13-01T00:00:00Z").is_err());
}

#[test]
fn observations_are_read_relative_to_the_start_and_bad_files_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obs.csv");
    std::fs::write(
        &path,
        "time,online_users,note\n2007-08-16T22:15:00Z,149608,screenshot\n",
    )
    .unwrap();
    let obs = read_observations(&path, "2007-08-16T00:00:00Z").unwrap();
    assert_eq!(obs, vec![(1335.0, 149_608.0, "screenshot".to_string())]);
    std::fs::write(&path, "time,users\n2007-08-16T22:15:00Z,1\n").unwrap();
    let e = read_observations(&path, "2007-08-16T00:00:00Z")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing column `online_users`"), "{e}");
    std::fs::write(&path, "time,online_users\nyesterday,1\n").unwrap();
    assert!(read_observations(&path, "2007-08-16T00:00:00Z")
        .unwrap_err()
        .to_string()
        .contains("line 2"));
    std::fs::write(&path, "time,online_users\n2007-08-16T22:15:00Z,-5\n").unwrap();
    assert!(read_observations(&path, "2007-08-16T00:00:00Z")
        .unwrap_err()
        .to_string()
        .contains(">= 0"));
}

#[test]
fn report_cli_refuses_a_missing_scenario_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(["report", "missing.toml", "--out", "r"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing.toml"));
    assert!(!dir.path().join("r").exists());
}

#[test]
fn tipping_map_cells_without_a_value_say_why_and_agree_with_other_methods() {
    use selfheal::equilibria::{all_equilibria, choose_rest};
    use selfheal::model::{Model, ParamSet};
    use selfheal::report::critical_shock_map;
    use selfheal::simulate::{simulate, Outcome, SimOptions};
    use selfheal::sweep::Axis;
    let sc = Scenario::new(&P2p);
    // Capacities below the healthy fold (down), inside the bistable range (tips) and above the
    // collapsed state's Hopf point (heals).
    let mut ax = Axis::parse("sn_capacity=300:12000:3", &sc).unwrap();
    ax.set_log().unwrap();
    let mut ay = Axis::parse("dedicated=1e-6:1e-5:2", &sc).unwrap();
    ay.set_log().unwrap();
    let (xa, ya) = (ax.clone(), ay.clone());
    let mut rows = 0;
    let map = critical_shock_map(&P2p, &sc, ax, ay, |_| {
        rows += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(rows, 1 + 6, "header and every row");
    let (down, heals) = (&map.missing[0].cells, &map.missing[1].cells);
    assert!(!down.is_empty() && !heals.is_empty(), "{down:?} {heals:?}");
    for i in 0..6 {
        let (k, d) = (xa.value(i / 2), ya.value(i % 2));
        let mut ps = ParamSet::defaults(P2p.params());
        ps.set("sn_capacity", k).unwrap();
        ps.set("dedicated", d).unwrap();
        // Down: from the equilibria alone, no stable state serves half the users.
        let eq = all_equilibria(&P2p, ps.values()).unwrap();
        let healthy = choose_rest(&P2p, ps.values(), &eq).unwrap().healthy;
        assert_eq!(down.contains(&i), !healthy, "cell {i} ({k}, {d})");
        // Heals: plain simulations of large shocks recover.
        if heals.contains(&i) {
            for f in [0.3, 0.6, 0.9] {
                let mut s = sc.clone();
                s.params = ps.clone();
                s.shock = Some(Shock::instantaneous(f));
                let out = simulate(&P2p, &s, &SimOptions::default()).unwrap();
                assert_eq!(
                    out.summary.outcome,
                    Outcome::Recovered,
                    "cell {i} shock {f}"
                );
            }
        }
    }
}

#[test]
fn report_of_a_network_without_a_healthy_state_says_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Scenario::new(&P2p);
    sc.params.set("sn_capacity", 300.0).unwrap();
    sc.shock = Some(Shock::instantaneous(0.5));
    sc.t_end = 600.0;
    let plan = ReportPlan::reference(&sc).unwrap();
    write_report(&P2p, &sc, "down", &[], dir.path(), &plan).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("no healthy state"), "{md}");
    assert!(md.contains("**it is down**"), "{md}");
    for wrong in ["it recovers", "heals itself", "back at 95 %"] {
        assert!(!md.contains(wrong), "`{wrong}` in a down report:\n{md}");
    }
}

/// A scenario at the edge of the valid ranges (a supernode capacity of 1e-300: the network is
/// down, every branch collapses to vanishing sizes) still gives the whole report, and the
/// staging directory it is written through is gone afterwards.
#[test]
fn a_report_at_vanishing_capacity_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[params]\nsn_capacity = 1e-300\n",
    )
    .unwrap();
    let out = common::selfheal(&["report", "s.toml", "--out", "rep"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(dir.path().join("rep"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        files_list(["sn_capacity", "dedicated"], true, true).len(),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
}

/// The report of model files through the command line: a model of one state (no phase
/// portrait), a model without a wave (no critical shock, map or levers) and a retry storm whose
/// critical shock, read back from report.md, separates recovering from collapsing waves in
/// plain simulations.
#[test]
fn reports_of_model_files_have_their_own_files_and_a_critical_shock_that_holds() {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("aloha", ["m", "qa"], false, true),
        ("bittorrent", ["lambda", "theta"], true, false),
        ("retry-storm", ["capacity", "clients"], true, true),
    ];
    for (name, axes, phase, map) in cases {
        let model = format!("{models}/{name}.toml");
        let mut args = vec!["report", "--model", &model, "--out", name];
        if name == "bittorrent" {
            // Without a wave there are no levers to choose the axes from: the first two
            // parameters that can be axes are taken; named here, as a user would.
            args.extend(["--axes", "lambda,theta"]);
        }
        let out = common::selfheal(&args, dir.path());
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want = files_list(axes, phase, map);
        want.sort();
        assert_eq!(names, want, "{name}");
    }
    let md = std::fs::read_to_string(dir.path().join("retry-storm/report.md")).unwrap();
    let key = "critical shock is f\\* = ";
    let at = md.find(key).expect("a critical shock") + key.len();
    let fstar: f64 = md[at..at + 6].parse().unwrap();
    let model = format!("{models}/retry-storm.toml");
    for (f, want) in [(fstar - 2e-3, "recovered"), (fstar + 2e-3, "collapsed")] {
        let out = common::selfheal(
            &[
                "simulate",
                "--model",
                &model,
                "--shock",
                &format!("{f}"),
                "--out",
                "s.csv",
                "--force",
            ],
            dir.path(),
        );
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(&format!("outcome: {want}")), "f = {f}: {e}");
    }
    let md = std::fs::read_to_string(dir.path().join("bittorrent/report.md")).unwrap();
    assert!(md.contains("defines no wave"), "{md}");
}
