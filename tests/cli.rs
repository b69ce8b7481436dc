//! The command line: bad input is refused with one line naming the culprit, a non-zero exit and
//! no output file; good input writes whole files.

mod common;

use common::selfheal;

/// Runs a command that must fail: returns its single stderr line; checks no `out.csv` appeared.
fn refused(args: &[&str], files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let mut full = args.to_vec();
    // Commands that write a file are asked to write one, which must not appear.
    if [
        "simulate",
        "equilibria",
        "continue",
        "fold-curve",
        "tipping-map",
    ]
    .contains(&args[0])
    {
        full.extend(["--out", "out.csv"]);
    }
    let out = selfheal(&full, dir.path());
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !dir.path().join("out.csv").exists(),
        "{args:?} left an output file"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    stderr.trim_end().to_string()
}

#[test]
fn unknown_parameter_suggests_the_nearest_name() {
    let e = refused(&["simulate", "--set", "retyr=2"], &[]);
    assert_eq!(
        e,
        "error: unknown parameter `retyr` (did you mean `retry`?)"
    );
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[params]\nsn_capacty = 500.0\n")],
    );
    assert!(
        e.contains("`sn_capacty`") && e.contains("`sn_capacity`"),
        "{e}"
    );
}

#[test]
fn unknown_toml_key_suggests_the_nearest_key() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[shock]\nfractoin = 0.5\n")],
    );
    assert!(
        e.contains("unknown key `fractoin`") && e.contains("`fraction`"),
        "{e}"
    );
    let e = refused(&["simulate", "s.toml"], &[("s.toml", "t_ned = 100\n")]);
    assert!(e.contains("`t_ned`") && e.contains("`t_end`"), "{e}");
}

/// Text the error quotes from the input (a multi-line TOML string, a key with a line break)
/// is written with escapes: the error stays one line.
#[test]
fn quoted_line_breaks_do_not_break_the_error_line() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "t_end = \"\"\"\ntwo\ndays\"\"\"\n")],
    );
    assert!(
        e.contains("`t_end` must be a number") && e.contains(r"two\ndays"),
        "{e}"
    );
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[params]\n\"sn\\ncapacity\" = 1\n")],
    );
    assert!(e.contains(r"unknown parameter `sn\ncapacity`"), "{e}");
}

#[test]
fn wrong_types_and_non_finite_values_are_refused() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "t_end = \"two days\"\n")],
    );
    assert!(e.contains("`t_end` must be a number"), "{e}");
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[params]\nretry = nan\n")],
    );
    assert!(e.contains("`retry`") && e.contains("finite"), "{e}");
    let e = refused(&["simulate", "--set", "give_up=inf"], &[]);
    assert!(e.contains("`give_up` = inf"), "{e}");
    let e = refused(&["simulate", "--shock", "abc"], &[]);
    assert!(e.contains("--shock") && e.contains("abc"), "{e}");
}

#[test]
fn out_of_range_values_name_the_range() {
    let e = refused(&["simulate", "--set", "sign_off=-0.01"], &[]);
    assert_eq!(
        e,
        "error: `sign_off` = -0.01 is out of range: must be finite and >= 0"
    );
    let e = refused(&["simulate", "--set", "eligible=1.5"], &[]);
    assert!(
        e.contains("`eligible` = 1.5") && e.contains("in [0, 1]"),
        "{e}"
    );
    let e = refused(&["simulate", "--shock", "1"], &[]);
    assert!(
        e.contains("`shock.fraction` = 1") && e.contains("[0, 1)"),
        "{e}"
    );
    let e = refused(&["simulate", "--sn-shock", "-0.2"], &[]);
    assert!(e.contains("`shock.sn_fraction`"), "{e}");
    let e = refused(&["simulate", "--shock", "0.2", "--shock-at", "5000"], &[]);
    assert!(e.contains("`shock.at`"), "{e}");
    let e = refused(&["simulate", "--dt", "0"], &[]);
    assert!(e.contains("`dt` = 0"), "{e}");
    let e = refused(&["simulate", "--rtol", "0"], &[]);
    assert!(e.contains("`rtol` = 0"), "{e}");
    let e = refused(&["simulate", "--method", "euler"], &[]);
    assert!(e.contains("unknown method `euler`"), "{e}");
}

#[test]
fn interventions_out_of_order_or_after_the_end_are_refused() {
    let text = "t_end = 2880\n[[intervention]]\nat = 1000.0\nset = { dedicated = 1e-3 }\n\
                [[intervention]]\nat = 500.0\nset = { retry = 1.0 }\n";
    let e = refused(&["simulate", "s.toml"], &[("s.toml", text)]);
    assert!(e.contains("time order"), "{e}");
    let text = "t_end = 2880\n[[intervention]]\nat = 3000.0\nset = { dedicated = 1e-3 }\n";
    let e = refused(&["simulate", "s.toml"], &[("s.toml", text)]);
    assert!(
        e.contains("intervention 1: at") && e.contains("t_end"),
        "{e}"
    );
    let text = "[[intervention]]\nat = 30.0\nset = { dedicatd = 1e-3 }\n";
    let e = refused(&["simulate", "s.toml"], &[("s.toml", text)]);
    assert!(e.contains("`dedicated`"), "{e}");
}

#[test]
fn unreadable_scenario_is_refused() {
    let e = refused(&["simulate", "missing.toml"], &[]);
    assert!(e.contains("missing.toml"), "{e}");
    let e = refused(&["simulate", "bad.toml"], &[("bad.toml", "t_end = = 3\n")]);
    assert!(e.contains("invalid TOML"), "{e}");
}

#[test]
fn existing_output_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("run.csv");
    std::fs::write(&target, "precious\n").unwrap();
    let out = selfheal(&["simulate", "--out", "run.csv"], dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1);
    assert!(stderr.contains("already exists") && stderr.contains("--force"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");

    let out = selfheal(
        &[
            "simulate",
            "--shock",
            "0.4",
            "--out",
            "run.csv",
            "--force",
            "--summary",
            "s.json",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&target).unwrap();
    assert!(csv.starts_with("t,peers,supernodes,queue,offline,utilisation\n"));
    assert_eq!(csv.lines().count(), 1 + 289);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(json["scenario"]["shock"]["fraction"], 0.4);
    assert_eq!(json["tolerances"]["rtol"], 1e-6);
    assert!(json["selfheal_version"].is_string());
    assert!(json["summary"]["stats"]["steps"].as_u64().unwrap() > 0);
}

#[test]
fn absolute_output_scales_populations_by_the_user_base() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["simulate", "--dt", "1440", "--set", "dedicated=2e-5"];
        args.extend(extra);
        let out = selfheal(&args, dir.path());
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let frac = run(&[]);
    let abs = run(&["--absolute"]);
    for (f, a) in frac.lines().skip(1).zip(abs.lines().skip(1)) {
        let f: Vec<f64> = f.split(',').map(|v| v.parse().unwrap()).collect();
        let a: Vec<f64> = a.split(',').map(|v| v.parse().unwrap()).collect();
        for i in 1..5 {
            assert!((a[i] - f[i] * 24e6).abs() <= 1e-9 * a[i].abs());
        }
        assert_eq!(a[5], f[5], "utilisation is not a population");
    }
}

#[test]
fn params_lists_every_parameter_with_unit_default_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = selfheal(&["params"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // docs/model.md's table: sixteen parameters and the two crash hazards of revision 3.
    assert_eq!(text.lines().count(), 1 + 18);
    for name in ["crash ", "sn_crash "] {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(line.contains("1/min") && line.contains(" 0 "), "{line}");
    }
    let retry = text.lines().find(|l| l.starts_with("retry ")).unwrap();
    assert!(retry.contains("1/min") && retry.contains("4") && retry.contains("> 0"));
}

fn ok(args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = selfheal(args, dir.path());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn equilibria_lists_three_with_most_peers_first() {
    let (out, _) = ok(&["equilibria"]);
    let mut lines = out.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("peers,supernodes,queue,stable,max_real_eig"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    let peers: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(peers[0] > peers[1] && peers[1] > peers[2]);
    let stable: Vec<&str> = rows.iter().map(|r| r[3]).collect();
    assert_eq!(stable, ["true", "false", "true"]);
}

#[test]
fn critical_shock_prints_the_value_last_and_none_when_nothing_tips() {
    let (out, err) = ok(&["critical-shock"]);
    let f: f64 = out.lines().last().unwrap().parse().unwrap();
    assert!(f > 0.3 && f < 0.6);
    assert!(err.contains("saddle") && err.contains("fate changes in ["));
    // Above the upper fold in capacity there is no collapsed state: every shock heals.
    let (out, _) = ok(&["critical-shock", "--set", "sn_capacity=10000"]);
    assert_eq!(out.lines().last().unwrap(), "none");
    let e = refused(&["critical-shock", "--tol", "0"], &[]);
    assert!(e.contains("`tol` = 0"), "{e}");
}

#[test]
fn critical_window_needs_a_shock_above_critical() {
    let (out, _) = ok(&["critical-window", "--shock", "0.5"]);
    let w: f64 = out.lines().last().unwrap().parse().unwrap();
    assert!(w > 0.0 && w < 60.0, "{w}");
    let e = refused(&["critical-window", "--shock", "0.2"], &[]);
    assert!(e.contains("instantaneous wave tips the network"), "{e}");
    let e = refused(&["critical-window"], &[]);
    assert!(e.contains("--shock"), "{e}");
}

#[test]
fn continue_writes_branches_with_located_folds() {
    let (out, err) = ok(&["continue", "sn_capacity", "--from", "1000", "--to", "300"]);
    let mut lines = out.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("sn_capacity,peers,supernodes,queue,stable,point,branch"));
    let folds: Vec<&str> = lines
        .filter(|l| l.split(',').nth(5) == Some("fold"))
        .collect();
    assert_eq!(folds.len(), 1, "{out}");
    assert!(err.contains("fold at sn_capacity"));
    let e = refused(
        &["continue", "sn_capacity", "--from", "500", "--to", "500"],
        &[],
    );
    assert!(e.contains("empty range"), "{e}");
    let e = refused(
        &["continue", "sn_capacty", "--from", "500", "--to", "600"],
        &[],
    );
    assert!(e.contains("did you mean `sn_capacity`"), "{e}");
}

#[test]
fn fold_curve_marks_the_cusp() {
    let (out, err) = ok(&[
        "fold-curve",
        "sn_capacity",
        "dedicated",
        "--p1",
        "20:20000",
        "--p2",
        "0:0.05",
    ]);
    assert!(out.starts_with("sn_capacity,dedicated,peers,supernodes,queue,point"));
    assert_eq!(out.lines().filter(|l| l.contains(",cusp,")).count(), 1);
    assert!(err.contains("cusp at sn_capacity"));
    let e = refused(
        &[
            "fold-curve",
            "sn_capacity",
            "dedicated",
            "--p1",
            "300:20000",
            "--p2",
            "1:2",
        ],
        &[],
    );
    assert!(e.contains("dedicated"), "{e}");
}

#[test]
fn rescue_prints_the_smallest_step_and_the_recovery_time() {
    let (out, err) = ok(&["rescue", "dedicated"]);
    let v: f64 = out.lines().last().unwrap().parse().unwrap();
    assert!(v > 1e-5 && v < 1e-3, "{v}");
    assert!(err.contains("min after the step"), "{err}");
}

#[test]
fn no_stable_equilibrium_is_one_clear_line() {
    let e = refused(
        &[
            "critical-shock",
            "--set",
            "sn_capacity=216.5",
            "--set",
            "retry=8.22",
            "--set",
            "give_up=0.0339",
            "--set",
            "dedicated=8.04e-4",
            "--set",
            "promotion=0.0374",
        ],
        &[],
    );
    assert!(e.contains("no stable equilibrium"), "{e}");
}

#[test]
fn a_branch_that_cannot_be_followed_keeps_its_points_and_says_why() {
    // Towards 1e308 req/min the supernodes needed fall below 1e-154 and their squares
    // underflow: the branch is lost far out. Its points so far are written, the reason is
    // given with the value in exponent form (not 160 digits), and the exit is non-zero since
    // the answer is incomplete.
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "continue",
        "sn_capacity",
        "--from",
        "1000",
        "--to",
        "1e308",
        "--out",
        "b.csv",
    ];
    let out = selfheal(&args, dir.path());
    assert!(!out.status.success());
    let e = String::from_utf8(out.stderr).unwrap();
    let lost = e
        .lines()
        .find(|l| l.contains(" lost at sn_capacity = "))
        .unwrap_or_else(|| panic!("{e}"));
    let value = lost
        .split(" = ")
        .nth(1)
        .and_then(|v| v.split(':').next())
        .unwrap();
    assert!(value.contains('e') && value.len() < 30, "{lost}");
    assert!(value.parse::<f64>().unwrap() > 1e100, "{lost}");
    assert!(
        e.contains("were not followed to the end of the range"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    let csv = std::fs::read_to_string(dir.path().join("b.csv")).unwrap();
    assert!(csv.starts_with("sn_capacity,"), "{csv}");
    assert!(csv.lines().count() > 1000, "the points traced are kept");
}

#[test]
fn continuation_from_an_empty_network_at_zero_sign_on_reaches_the_range_end() {
    // At sign_on = 0 the only equilibrium is the empty network, where the rate law is not
    // differentiable; the branch is restarted just inside and followed to the end.
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "continue", "sign_on", "--from", "0", "--to", "0.1", "--out", "b.csv",
    ];
    let out = selfheal(&args, dir.path());
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{e}");
    let csv = std::fs::read_to_string(dir.path().join("b.csv")).unwrap();
    let mu: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(mu.first(), Some(&0.0));
    assert_eq!(mu.last(), Some(&0.1));
}

const CAL_SCENARIO: &str = r#"
population = 1e6
start = 2007-08-16T00:00:00Z
t_end = 1440
[shock]
at = 120
fraction = 0.3
"#;
const CAL_DATA: &str = "time,online_users,note\n2007-08-16T01:00:00Z,330000,before\n2007-08-16T03:00:00Z,250000,dip\n2007-08-16T06:00:00Z,320000,\n";

#[test]
fn calibrate_refuses_bad_data_names_and_bounds() {
    let files = |data: &'static str| [("s.toml", CAL_SCENARIO), ("d.csv", data)];
    let cal = |extra: &[&'static str]| {
        let mut a = vec!["calibrate", "s.toml", "--data", "d.csv", "--out", "out.csv"];
        a.extend_from_slice(extra);
        a
    };
    let e = refused(
        &cal(&["--fit", "shock"]),
        &files("time,users\n2007-08-16T01:00:00Z,5\n"),
    );
    assert!(e.contains("missing column `online_users`"), "{e}");
    let e = refused(
        &cal(&["--fit", "shock"]),
        &files("time,online_users\n16/08/2007 01:00,5\n"),
    );
    assert!(
        e.contains("d.csv line 2") && e.contains("not a UTC time"),
        "{e}"
    );
    let e = refused(
        &cal(&["--fit", "shock"]),
        &files("time,online_users\n2007-08-16T01:00:00Z,-5\n"),
    );
    assert!(e.contains("online_users = -5") && e.contains(">= 0"), "{e}");
    let e = refused(&cal(&["--fit", "shok"]), &files(CAL_DATA));
    assert!(
        e.contains("unknown parameter `shok` (did you mean `shock`?)"),
        "{e}"
    );
    let e = refused(
        &cal(&["--fit", "shock", "--bounds", "shock=0.4:0.9"]),
        &files(CAL_DATA),
    );
    assert!(
        e.contains("shock (start value)") && e.contains("(0.4, 0.9)"),
        "{e}"
    );
    let e = refused(
        &cal(&["--fit", "shock", "--bounds", "retry=1:3"]),
        &files(CAL_DATA),
    );
    assert!(e.contains("`retry` is not in --fit"), "{e}");
    let e = refused(
        &cal(&["--fit", "shock", "--fit-method", "newton"]),
        &files(CAL_DATA),
    );
    assert!(e.contains("unknown fit method `newton`"), "{e}");
    let e = refused(
        &["calibrate", "s.toml", "--data", "d.csv", "--fit", "shock"],
        &[("s.toml", "[shock]\nfraction = 0.3\n"), ("d.csv", CAL_DATA)],
    );
    assert!(e.contains("needs the scenario's `start`"), "{e}");
}

#[test]
fn calibrate_fits_and_writes_a_scenario_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), CAL_SCENARIO).unwrap();
    std::fs::write(dir.path().join("d.csv"), CAL_DATA).unwrap();
    let out = selfheal(
        &[
            "calibrate",
            "s.toml",
            "--data",
            "d.csv",
            "--fit",
            "shock,population",
            "--starts",
            "2",
            "--out",
            "fitted.toml",
            "--residuals",
            "r.csv",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("RMSE") && stdout.contains("95 % interval"),
        "{stdout}"
    );
    let fitted = std::fs::read_to_string(dir.path().join("fitted.toml")).unwrap();
    assert!(
        fitted.starts_with("# Fitted by `selfheal calibrate`"),
        "{fitted}"
    );
    // The fitted scenario is a scenario every command reads.
    let sim = selfheal(&["simulate", "fitted.toml", "--t-end", "600"], dir.path());
    assert!(sim.status.success());
    let res = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
    assert_eq!(res.lines().count(), 4);
    assert!(res.starts_with("time,t,observed,model,sigma,z\n"));
    // An existing output is kept unless --force.
    let again = selfheal(
        &[
            "calibrate",
            "s.toml",
            "--data",
            "d.csv",
            "--fit",
            "shock",
            "--out",
            "fitted.toml",
        ],
        dir.path(),
    );
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("fitted.toml")).unwrap(),
        fitted
    );
}

#[test]
fn output_grids_and_sweeps_too_large_to_hold_are_refused_before_any_work() {
    // Each once panicked ("capacity overflow"), aborted allocating tens of GB, or wrapped to
    // "0 rows"; now one line naming the flag, the limit and the real size.
    for (args, want) in [
        (&["simulate", "--dt", "1e-300"][..], "`dt` = 1e-300"),
        (
            &[
                "simulate", "--shock", "0.5", "--t-end", "1e10", "--dt", "1e2",
            ][..],
            "rows",
        ),
        // A horizon beyond what the clock resolves: refused, naming the limit.
        (
            &["simulate", "--t-end", "1e308", "--dt", "1e300"][..],
            "at most 1e10",
        ),
        (
            &["simulate", "--t-end", "1", "--dt", "1e-9"][..],
            "1.000e9 rows",
        ),
        (
            &[
                "stochastic",
                "--population",
                "10000",
                "--runs",
                "1",
                "--quantiles",
                "q.csv",
                "--dt",
                "1e-300",
            ][..],
            "`dt` = 1e-300",
        ),
        (
            &[
                "sweep",
                "--grid",
                "sn_capacity=1:2:4294967296",
                "--grid",
                "retry=1:2:4294967296",
                "--metric",
                "outcome",
                "--out",
                "s.csv",
            ][..],
            "1.844674e19 rows",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0:0.5:3000",
                "--metric",
                "outcome",
                "--threads",
                "50000",
                "--out",
                "s.csv",
            ][..],
            "--threads <T>': must be a whole number in [0, 1024]",
        ),
    ] {
        let e = refused(args, &[]);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn negative_numbers_reach_the_range_checks_that_name_the_flag() {
    // clap once read `-1e-3` as an unknown short flag ("unexpected argument '-1' found").
    for (args, want) in [
        (
            &["simulate", "--shock", "-1e-3"][..],
            "`shock.fraction` = -0.001",
        ),
        (&["simulate", "--rtol", "-1e-6"][..], "`rtol` = -1e-6"),
        (&["critical-shock", "--tol", "-1"][..], "`tol` = -1"),
        (&["simulate", "--dt", "-1"][..], "`dt` = -1"),
        (&["stochastic", "--runs", "-1"][..], "--runs"),
        (&["stochastic", "--population", "-5"][..], "whole number"),
        (
            &[
                "sweep",
                "--grid",
                "shock=0:1:3",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
                "--threads",
                "-1",
            ][..],
            "--threads",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0:1:3",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
                "--shard",
                "-1/3",
            ][..],
            "--shard: shard `-1/3`",
        ),
    ] {
        let e = refused(args, &[]);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Counts written like floats are accepted.
    let (_, err) = ok(&[
        "stochastic",
        "--population",
        "1e4",
        "--runs",
        "1",
        "--t-end",
        "10",
    ]);
    assert!(err.contains("10000 users"), "{err}");
}

#[test]
fn a_shock_without_its_size_is_refused_not_taken_as_zero() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[shock]\nat = 10.0\n")],
    );
    assert!(e.contains("[shock] needs `fraction`"), "{e}");
    // A crash of supernodes only states fraction = 0 with sn_fraction.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "t_end = 60\n[shock]\nfraction = 0.0\nsn_fraction = 0.3\n",
    )
    .unwrap();
    let out = selfheal(&["simulate", "s.toml", "--out", "o.csv"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_command_writes_all_its_outputs_or_none() {
    // A missing directory for the second output: the first is not written either.
    let e = refused(&["simulate", "--summary", "nodir/x.json"], &[]);
    assert!(e.contains("nodir"), "{e}");
    // One file named as two outputs.
    let e = refused(&["simulate", "--summary", "out.csv"], &[]);
    assert!(e.contains("two outputs"), "{e}");
    let e = refused(
        &[
            "stochastic",
            "--population",
            "1000",
            "--runs",
            "2",
            "--out",
            "q.csv",
            "--quantiles",
            "q.csv",
        ],
        &[],
    );
    assert!(e.contains("two outputs"), "{e}");
    // A merge never replaces one of its own shards, even with --force.
    let dir = tempfile::tempdir().unwrap();
    for k in ["1/2", "2/2"] {
        let out = format!("s{}.csv", &k[..1]);
        let r = selfheal(
            &[
                "sweep",
                "--grid",
                "shock=0:0.5:4",
                "--metric",
                "outcome",
                "--shard",
                k,
                "--out",
                &out,
            ],
            dir.path(),
        );
        assert!(r.status.success());
    }
    let before = std::fs::read(dir.path().join("s1.csv")).unwrap();
    let r = selfheal(
        &["merge", "s1.csv", "s2.csv", "--out", "./s1.csv", "--force"],
        dir.path(),
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("is an input of the merge"));
    assert_eq!(std::fs::read(dir.path().join("s1.csv")).unwrap(), before);
}

#[test]
fn ranges_and_times_outside_what_is_valid_are_refused_not_silently_empty() {
    // Once header-only output with exit 0.
    for p1 in ["0:20000", "nan:20000"] {
        let e = refused(
            &[
                "fold-curve",
                "sn_capacity",
                "dedicated",
                "--p1",
                p1,
                "--p2",
                "0:0.05",
            ],
            &[],
        );
        assert!(e.contains("`sn_capacity` = ") && e.contains("> 0"), "{e}");
    }
    // A rescue step after the scenario's end.
    let e = refused(&["rescue", "dedicated", "--at", "3000"], &[]);
    assert!(
        e.contains("`--at` = 3000") && e.contains("t_end = 2880"),
        "{e}"
    );
}

#[test]
fn toml_errors_name_the_line_and_what_to_do() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[params]\nretry = 99999999999999999999\n")],
    );
    assert!(
        e.contains("line 2") && e.contains("write it as a float"),
        "{e}"
    );
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "[params]\nretry = 1.0\nretry = 2.0\n")],
    );
    assert!(
        e.contains("line 3") && e.contains("`retry`") && e.contains("duplicate key"),
        "{e}"
    );
}

#[test]
fn flags_a_command_does_not_use_are_refused_not_ignored() {
    for (args, flag) in [
        (&["equilibria", "--shock", "0.5"][..], "--shock"),
        (&["equilibria", "--rtol", "1e-9"][..], "--rtol"),
        (
            &[
                "continue", "retry", "--from", "1", "--to", "2", "--t-end", "5",
            ][..],
            "--t-end",
        ),
        (
            &[
                "fold-curve",
                "retry",
                "sn_capacity",
                "--p1",
                "1:2",
                "--p2",
                "500:900",
                "--method",
                "dopri5",
            ][..],
            "--method",
        ),
        (&["critical-shock", "--shock", "0.3"][..], "--shock"),
        (
            &["critical-window", "--shock", "0.5", "--window", "3"][..],
            "--window",
        ),
        (
            &["critical-window", "--shock", "0.5", "--sn-shock", "0.2"][..],
            "--sn-shock",
        ),
        (
            &["rescue", "sn_capacity", "--shock-at", "10"][..],
            "--shock-at",
        ),
        (
            &["stochastic", "--population", "100", "--atol", "1e-9"][..],
            "--atol",
        ),
    ] {
        let e = refused(args, &[]);
        assert!(e.contains(&format!("does not use {flag}")), "{args:?}: {e}");
    }
    // The same flags are taken where they matter.
    ok(&[
        "simulate", "--shock", "0.3", "--rtol", "1e-8", "--t-end", "100",
    ]);
    ok(&[
        "critical-window",
        "--shock",
        "0.5",
        "--scan",
        "4",
        "--tol",
        "1e-3",
    ]);
}

/// Inputs that used to be accepted silently or refused with a message that did not name the
/// culprit: a start time without its UTC offset (the readings' times need one too), an empty
/// `--fit`, and fit bounds outside the parameter's valid range (which ended in an
/// out-of-range error inside the optimiser with exit 0).
#[test]
fn start_without_offset_empty_fit_and_bounds_outside_the_range_are_refused() {
    let e = refused(
        &["simulate", "s.toml"],
        &[("s.toml", "start = 2007-08-16T00:00:00\n")],
    );
    assert!(e.contains("`start`") && e.contains("UTC offset"), "{e}");
    let data = "time,online_users\n2007-08-16T06:00:00Z,1000000\n2007-08-16T12:00:00Z,900000\n";
    let scenario = "start = 2007-08-16T00:00:00Z\nt_end = 1440\npopulation = 1e7\n[shock]\nat = 60\nfraction = 0.3\n";
    let files = [("s.toml", scenario), ("d.csv", data)];
    let e = refused(
        &["calibrate", "s.toml", "--data", "d.csv", "--fit", ""],
        &files,
    );
    assert!(e.contains("--fit") && e.contains("empty name"), "{e}");
    let e = refused(
        &[
            "calibrate",
            "s.toml",
            "--data",
            "d.csv",
            "--fit",
            "retry",
            "--bounds",
            "retry=0:5",
        ],
        &files,
    );
    assert!(
        e.contains("--bounds") && e.contains("retry") && e.contains("> 0"),
        "{e}"
    );
}

/// A missing required flag is named on the one line of the error (clap lists it on the lines
/// below its first).
#[test]
fn a_missing_required_flag_is_named() {
    let e = refused(&["sweep", "--grid", "retry=1:2:2", "--out", "s.csv"], &[]);
    assert!(e.contains("--metric"), "{e}");
}

/// Found by an adversarial pass: a thread count out of range is refused before the output is
/// touched (it used to leave a header-only CSV that blocked the retry); a data file with an
/// unclosed quote is refused at its line (it swallowed the rows after it); a merge may not
/// write over a shard's fingerprint; a resume against another kind of sweep says what differs
/// in words, not JSON.
#[test]
fn adversarial_pass_findings_are_refused_cleanly() {
    let e = refused(
        &[
            "sweep",
            "--grid",
            "retry=1:2:3",
            "--metric",
            "outcome",
            "--out",
            "out.csv",
            "--threads",
            "5000",
        ],
        &[],
    );
    assert!(e.contains("--threads") && e.contains("1024"), "{e}");
    let data = "time,online_users,note\n2007-08-16T06:00:00Z,1000000,\"unclosed\n2007-08-16T12:00:00Z,900000,ok\n2007-08-16T13:00:00Z,900000,ok\n";
    let scenario = "start = 2007-08-16T00:00:00Z\nt_end = 1440\npopulation = 1e7\n";
    let e = refused(
        &["calibrate", "s.toml", "--data", "d.csv", "--fit", "retry"],
        &[("s.toml", scenario), ("d.csv", data)],
    );
    assert!(e.contains("d.csv line 2") && e.contains("unclosed"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| selfheal(args, dir.path());
    for k in ["1/2", "2/2"] {
        let out = format!("s{}.csv", &k[..1]);
        let r = run(&[
            "sweep",
            "--grid",
            "retry=1:2:4",
            "--metric",
            "outcome",
            "--shard",
            k,
            "--out",
            &out,
        ]);
        assert!(r.status.success());
    }
    let r = run(&[
        "merge",
        "s1.csv",
        "s2.csv",
        "--out",
        "s2.csv.sweep.json",
        "--force",
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("is an input of the merge"));
    let r = run(&[
        "sweep",
        "--sample",
        "lhs",
        "--n",
        "2",
        "--range",
        "retry=1:2",
        "--metric",
        "outcome",
        "--shard",
        "1/2",
        "--out",
        "s1.csv",
        "--resume",
    ]);
    let e = String::from_utf8_lossy(&r.stderr).to_string();
    assert!(
        !r.status.success() && e.contains("design.Grid") && !e.contains('{'),
        "{e}"
    );
}

/// The stochastic chain refuses a horizon it could never finish (its events grow with the time
/// simulated): a run to t_end = 1e308 used to hang.
#[test]
fn the_chain_refuses_an_endless_horizon() {
    let e = refused(
        &[
            "stochastic",
            "--population",
            "10000",
            "--runs",
            "1",
            "--t-end",
            "1e9",
            "--dt",
            "1e3",
        ],
        &[],
    );
    assert!(e.contains("`t_end`") && e.contains("1e8"), "{e}");
}

/// A grid COUNT written like a float (`1e1`) is a whole number (as every count on the command
/// line); a fractional one is refused, and a whole one too large for any sweep says so.
#[test]
fn grid_counts_accept_float_notation() {
    let dir = tempfile::tempdir().unwrap();
    let r = selfheal(
        &[
            "sweep",
            "--grid",
            "retry=1:2:1e1",
            "--metric",
            "outcome",
            "--out",
            "g.csv",
        ],
        dir.path(),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(dir.path().join("g.csv")).unwrap();
    assert_eq!(text.lines().count(), 11);
    let e = refused(
        &[
            "sweep",
            "--grid",
            "retry=1:2:2.5",
            "--metric",
            "outcome",
            "--out",
            "x.csv",
        ],
        &[],
    );
    assert!(e.contains("COUNT `2.5` is not a whole number"), "{e}");
    let e = refused(
        &[
            "sweep",
            "--grid",
            "retry=1:2:1e30",
            "--metric",
            "outcome",
            "--out",
            "x.csv",
        ],
        &[],
    );
    assert!(e.contains("more points than any sweep can hold"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_link_to_a_file_not_yet_written_counts_as_that_file() {
    // `--summary link.csv` where link.csv points to out.csv (not yet there) names out.csv twice.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("out.csv", dir.path().join("link.csv")).unwrap();
    for force in [false, true] {
        let mut args = vec!["simulate", "--out", "out.csv", "--summary", "link.csv"];
        if force {
            args.push("--force");
        }
        let r = selfheal(&args, dir.path());
        assert!(!r.status.success());
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(e.contains("two outputs"), "{e}");
        assert!(!dir.path().join("out.csv").exists());
    }
    // Written through the link, the output lands where it points.
    let r = selfheal(&["simulate", "--summary", "link.csv"], dir.path());
    assert!(r.status.success());
    assert!(std::fs::symlink_metadata(dir.path().join("link.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(dir.path().join("out.csv"))
        .unwrap()
        .starts_with('{'));
}

#[cfg(unix)]
#[test]
fn outputs_get_the_permissions_of_any_new_file_and_keep_those_of_a_file_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    // A file created the plain way in the same directory shows what the umask allows.
    std::fs::write(dir.path().join("plain.txt"), "x").unwrap();
    let r = selfheal(&["simulate", "--out", "a.csv"], dir.path());
    assert!(r.status.success());
    assert_eq!(mode("a.csv"), mode("plain.txt"));
    std::fs::set_permissions(
        dir.path().join("a.csv"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let r = selfheal(&["simulate", "--out", "a.csv", "--force"], dir.path());
    assert!(r.status.success());
    assert_eq!(mode("a.csv"), 0o640);
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_leaves_no_temporary_file() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    // A long output (5 million rows): interrupted while it is being written.
    let child = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args([
            "simulate", "--t-end", "100000", "--dt", "0.02", "--out", "big.csv",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let names = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let start = std::time::Instant::now();
    while !names().iter().any(|n| n.ends_with(".tmp")) {
        assert!(start.elapsed().as_secs() < 60, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(names().is_empty(), "{:?}", names());
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}

#[test]
fn a_count_past_the_largest_whole_number_is_refused_not_saturated() {
    let e = refused(
        &[
            "sweep",
            "--sample",
            "random",
            "--n",
            "18446744073709551616",
            "--range",
            "retry=1:2",
            "--metric",
            "outcome",
        ],
        &[],
    );
    assert!(
        e.contains("--n") && e.contains("more than any count"),
        "{e}"
    );
    assert!(!e.contains("18446744073709551615 rows"), "{e}");
    let e = refused(&["stochastic", "--runs", "1e30"], &[]);
    assert!(
        e.contains("--runs") && e.contains("more than any count"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn a_sweep_through_a_link_locks_and_fingerprints_the_file_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("s.csv", dir.path().join("link.csv")).unwrap();
    let sweep = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "--grid",
            "shock=0:0.5:3",
            "--metric",
            "outcome",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        selfheal(&args, dir.path())
    };
    assert!(sweep("link.csv", &[]).status.success());
    assert!(dir.path().join("s.csv.sweep.json").exists());
    assert!(!dir.path().join("link.csv.sweep.json").exists());
    // Resumed under either name, it is one sweep.
    assert!(sweep("s.csv", &["--resume"]).status.success());
    assert!(sweep("link.csv", &["--resume"]).status.success());
    // A second writer through the link meets the first's lock.
    let first = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("s.csv.lock"))
        .unwrap();
    first.try_lock().unwrap();
    let r = sweep("link.csv", &["--force"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("being written by another run"));
    drop(first);
}

#[test]
fn empty_names_trailing_slashes_and_endless_starts_are_refused() {
    let e = refused(&["simulate", "--set", "=4"], &[]);
    assert!(e.contains("a parameter name is empty"), "{e}");
    let e = refused(&["continue", "", "--from", "0", "--to", "1"], &[]);
    assert!(e.contains("a parameter name is empty"), "{e}");
    let e = refused(&["simulate", "--summary", "nodir/"], &[]);
    assert!(e.contains("is a directory"), "{e}");
    let e = refused(
        &[
            "calibrate",
            "x.toml",
            "--data",
            "d.csv",
            "--fit",
            "retry",
            "--starts",
            "1e12",
        ],
        &[],
    );
    assert!(e.contains("--starts") && e.contains("[1, 10000]"), "{e}");
}

#[test]
fn model_files_run_through_every_analysis_command() {
    let dir = tempfile::tempdir().unwrap();
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let aloha = format!("{models}/aloha.toml");
    // By flag, and by the scenario's `model` key relative to the scenario file.
    std::fs::copy(&aloha, dir.path().join("aloha.toml")).unwrap();
    std::fs::write(
        dir.path().join("jam.toml"),
        "model = \"aloha.toml\"\nt_end = 2000\n[params]\nqr = 0.12\n[shock]\nat = 100\nfraction = 0.3\n",
    )
    .unwrap();
    let r = selfheal(
        &["simulate", "--model", &aloha, "--out", "a.csv"],
        dir.path(),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv = std::fs::read_to_string(dir.path().join("a.csv")).unwrap();
    assert!(csv.starts_with("t,n\n"), "{csv}");
    let r = selfheal(&["simulate", "jam.toml", "--out", "b.csv"], dir.path());
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{e}");
    assert!(e.contains("outcome: collapsed"), "{e}");
    let r = selfheal(&["equilibria", "--model", &aloha], dir.path());
    assert!(r.status.success());
    assert_eq!(String::from_utf8_lossy(&r.stdout).lines().count(), 4);
    let r = selfheal(&["critical-shock", "jam.toml"], dir.path());
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let f: f64 = String::from_utf8_lossy(&r.stdout).trim().parse().unwrap();
    assert!(f > 0.0 && f < 0.3, "{f}");
    // The analyses in one and two parameters, and the parameter table.
    for args in [
        &["params", "--model", &aloha][..],
        &[
            "continue", "qr", "--from", "0.05", "--to", "0.5", "--model", &aloha, "--out", "c.csv",
        ][..],
        &[
            "fold-curve",
            "qr",
            "qa",
            "--p1",
            "0.05:0.5",
            "--p2",
            "0.001:0.01",
            "--model",
            &aloha,
            "--out",
            "f.csv",
        ][..],
        &["critical-window", "--model", &aloha, "--shock", "0.6"][..],
        &["rescue", "qr", "--model", &aloha, "--tol", "1e-3"][..],
        &[
            "stochastic",
            "--model",
            &aloha,
            "--population",
            "1",
            "--runs",
            "5",
            "--shock",
            "0.3",
            "--quantiles",
            "q.csv",
            "--out",
            "r.csv",
        ][..],
    ] {
        let r = selfheal(args, dir.path());
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let table =
        String::from_utf8_lossy(&selfheal(&["params", "--model", &aloha], dir.path()).stdout)
            .to_string();
    assert!(table.contains("retransmission probability"), "{table}");
    // A sweep in two shards and their merge: metrics named after the model's state, and the
    // lowest service level (1 − n/m, located on its own) equal to 1 − peak_n/m.
    for k in ["1/2", "2/2"] {
        let r = selfheal(
            &[
                "sweep",
                "--grid",
                "qr=0.05:0.2:4",
                "--metric",
                "outcome,peak_n,min_service_level,critical_shock",
                "--model",
                &aloha,
                "--shard",
                k,
                "--out",
                &format!("s{}.csv", &k[..1]),
            ],
            dir.path(),
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let r = selfheal(&["merge", "s1.csv", "s2.csv", "--out", "s.csv"], dir.path());
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let merged = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    let mut lines = merged.lines();
    assert_eq!(
        lines.next(),
        Some("qr,outcome,peak_n,min_service_level,critical_shock,status")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let (peak, level): (f64, f64) = (row[2].parse().unwrap(), row[3].parse().unwrap());
        assert!(((1.0 - peak / 100.0) - level).abs() < 1e-9, "{row:?}");
    }
    // A metric of another model's state names this model's metrics instead.
    let e = refused(
        &[
            "sweep",
            "--grid",
            "qr=0.05:0.2:3",
            "--metric",
            "min_peers",
            "--model",
            &aloha,
            "--out",
            "t.csv",
        ],
        &[],
    );
    assert!(e.contains("min_peers") && e.contains("min_n"), "{e}");
    // A metric the model cannot give (ALOHA has no utilisation) is refused with the reason
    // and only the metrics it can give.
    let e = refused(
        &[
            "sweep",
            "--grid",
            "qr=0.05:0.2:3",
            "--metric",
            "peak_utilisation",
            "--model",
            &aloha,
            "--out",
            "t.csv",
        ],
        &[],
    );
    assert!(e.contains("no utilisation") && e.contains("min_n"), "{e}");
    assert!(
        !e.split("gives")
            .nth(1)
            .unwrap_or("")
            .contains("utilisation"),
        "{e}"
    );
    // A model without [shock] refuses a wave before any run, naming the shock; so do the
    // metrics that need one.
    let decay = "name = \"decay\"\n[states]\nx = { max = 10 }\n[params]\nk = { default = 1, min = 0 }\n\
        [[transition]]\nname = \"in\"\njump = { x = 1 }\nrate = \"1\"\n\
        [[transition]]\nname = \"out\"\njump = { x = -1 }\nrate = \"k*x\"\n[service]\nlevel = \"1\"\n";
    for window in ["0", "5"] {
        let e = refused(
            &[
                "simulate", "--model", "d.toml", "--shock", "0.2", "--window", window,
            ],
            &[("d.toml", decay)],
        );
        assert!(
            e.starts_with("error: shock: ") && e.contains("no [shock]"),
            "{e}"
        );
    }
    let e = refused(
        &[
            "sweep",
            "--grid",
            "k=1:2:3",
            "--metric",
            "critical_shock",
            "--model",
            "d.toml",
            "--out",
            "t.csv",
        ],
        &[("d.toml", decay)],
    );
    assert!(e.contains("no reboot wave") && e.contains("min_x"), "{e}");
    // A broken model file names itself and the line.
    std::fs::write(dir.path().join("bad.toml"), "name = \"x\"\n[states]\nn = {}\n[[transition]]\nname = \"a\"\njump = { n = 1 }\nrate = \"nn\"\n").unwrap();
    let r = selfheal(&["simulate", "--model", "bad.toml"], dir.path());
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success()
            && e.contains("bad.toml")
            && e.contains("line 7")
            && e.contains("did you mean `n`"),
        "{e}"
    );
}

/// The second adversarial pass: each of these once gave a wrong label, a solver failure, a
/// misleading culprit, a silent empty answer or an overwritten input.
#[test]
fn second_adversarial_pass_findings_behave() {
    // A stiff but stable node (eigenvalues −7.6e-3 beside −1e10) is stable, and simulates.
    let dir = tempfile::tempdir().unwrap();
    let r = selfheal(&["equilibria", "--set", "overload_rate=1e10"], dir.path());
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains("stable node") && !out.contains("non-hyperbolic"),
        "{out}"
    );
    let r = selfheal(
        &["simulate", "--set", "overload_rate=1e10", "--out", "a.csv"],
        dir.path(),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // A wave a rounding before t_end, and a horizon too short to resolve, run.
    for args in [
        &[
            "simulate",
            "--shock",
            "0.5",
            "--shock-at",
            "2879.999999999999",
            "--out",
            "b.csv",
        ][..],
        &["simulate", "--t-end", "5e-324", "--out", "c.csv"][..],
    ] {
        let r = selfheal(args, dir.path());
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    // Too many runs names --runs, not --dt.
    let e = refused(
        &["stochastic", "--population", "1000", "--runs", "1e9"],
        &[],
    );
    assert!(e.contains("`runs`") && !e.contains("`dt`"), "{e}");
    // A report whose continuation range would underflow names the parameter, not an internal.
    let e = refused(
        &["report", "--set", "sn_capacity=5e-324", "--out", "r"],
        &[],
    );
    assert!(
        e.contains("`sn_capacity` = 5e-324") && !e.contains("sn_capacity from"),
        "{e}"
    );
    let e = refused(&["report", "--out", "afile"], &[("afile", "x")]);
    assert!(e.contains("afile is a file"), "{e}");
    // Fold and Hopf curves over a range their seeding cannot cover say so, not "0 curves".
    for cmd in ["fold-curve", "hopf-curve"] {
        let e = refused(
            &[
                cmd,
                "sn_capacity",
                "dedicated",
                "--p1",
                "1e-300:1e300",
                "--p2",
                "0:0.001",
            ],
            &[],
        );
        assert!(e.contains("did not cover the range"), "{cmd}: {e}");
    }
}

#[test]
fn calibration_never_writes_over_its_inputs() {
    let files = [("sc.toml", CAL_SCENARIO), ("d.csv", CAL_DATA)];
    for out in [["--residuals", "d.csv"], ["--out", "sc.toml"]] {
        let mut args = vec![
            "calibrate",
            "sc.toml",
            "--data",
            "d.csv",
            "--fit",
            "retry",
            "--force",
        ];
        args.extend(out);
        let e = refused(&args, &files);
        assert!(e.contains("is an input of calibrate"), "{e}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_output_that_fails_on_a_device_leaves_the_other_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let r = selfheal(
        &["simulate", "--out", "a.csv", "--summary", "/dev/full"],
        dir.path(),
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("/dev/full"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `calibrate` on a model file in seconds: readings of a filling BitTorrent swarm simulated
/// with λ = 0.04 (placed on the clock in seconds), fitted from λ = 0.03, give back 0.04; the
/// fitted scenario, written in another directory, names its model relative to itself and
/// runs from anywhere.
#[test]
fn calibrate_fits_a_model_file_in_its_own_time_unit() {
    use selfheal::model::Model;
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/models/bittorrent.toml");
    std::fs::copy(src, dir.path().join("bittorrent.toml")).unwrap();
    let scenario = |lambda: f64| {
        format!(
            "model = \"bittorrent.toml\"\nstart = 2020-01-01T00:00:00Z\nt_end = 4000\n[params]\nlambda = {lambda}\n[initial]\nx = 1\ny = 1\n"
        )
    };
    let file = selfheal::modelfile::ModelFile::load(&dir.path().join("bittorrent.toml")).unwrap();
    let m = file.typed::<2>().unwrap();
    let truth = selfheal::scenario::Scenario::from_toml(&m, &scenario(0.04)).unwrap();
    let sim = selfheal::simulate::simulate(&m, &truth, &Default::default()).unwrap();
    let mut csv = String::from("time,online_users\n");
    for k in 1..=40 {
        let t = 100.0 * k as f64;
        let x = sim.dense.eval(t).unwrap();
        let (mins, secs) = (k * 100 / 60, k * 100 % 60);
        let _ = std::fmt::Write::write_fmt(
            &mut csv,
            format_args!(
                "2020-01-01T{:02}:{:02}:{secs:02}Z,{}\n",
                mins / 60,
                mins % 60,
                m.online(&x)
            ),
        );
    }
    std::fs::write(dir.path().join("swarm.csv"), csv).unwrap();
    std::fs::write(dir.path().join("guess.toml"), scenario(0.03)).unwrap();
    std::fs::create_dir(dir.path().join("fits")).unwrap();
    let r = selfheal(
        &[
            "calibrate",
            "guess.toml",
            "--data",
            "swarm.csv",
            "--fit",
            "lambda",
            "--bounds",
            "lambda=0.01:0.1",
            "--out",
            "fits/fitted.toml",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let fitted = std::fs::read_to_string(dir.path().join("fits/fitted.toml")).unwrap();
    assert!(
        fitted.contains("model = \"../bittorrent.toml\""),
        "{fitted}"
    );
    let back = selfheal::scenario::Scenario::from_toml(&m, &fitted).unwrap();
    let lambda = back.params.get("lambda").unwrap();
    assert!((lambda - 0.04).abs() < 1e-5, "{lambda}\n{out}");
    // The fitted scenario runs from another directory, its model found beside it.
    let r = selfheal(
        &["simulate", "fitted.toml", "--out", "f.csv"],
        &dir.path().join("fits"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // A model without a clock length cannot place clock-time readings.
    let aloha = concat!(env!("CARGO_MANIFEST_DIR"), "/models/aloha.toml");
    std::fs::write(dir.path().join("a.toml"), "start = 2020-01-01T00:00:00Z\n").unwrap();
    let r = selfheal(
        &[
            "calibrate",
            "a.toml",
            "--model",
            aloha,
            "--data",
            "swarm.csv",
            "--fit",
            "qr",
        ],
        dir.path(),
    );
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && e.contains("`slot`"), "{e}");
}

/// The shipped models' scenarios run through the command line with the outcomes their comments
/// promise, and the ALOHA scenario's critical burst equals the closed form of a one-state model
/// (the unstable backlog's share of the idle stations), from the equilibria the CLI lists.
#[test]
fn the_shipped_model_scenarios_run_and_say_what_they_promise() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = concat!(env!("CARGO_MANIFEST_DIR"), "/models/scenarios");
    for (name, outcome) in [
        ("aloha", "recovered"),
        ("retry-storm", "recovered"),
        ("bittorrent", "recovered"),
        ("p2p", "collapsed"),
    ] {
        let sc = format!("{scenarios}/{name}.toml");
        let r = selfheal(
            &["simulate", &sc, "--out", &format!("{name}.csv")],
            dir.path(),
        );
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{name}: {e}");
        assert!(e.contains(&format!("outcome: {outcome}")), "{name}: {e}");
    }
    let sc = format!("{scenarios}/aloha.toml");
    let r = selfheal(&["equilibria", &sc], dir.path());
    let eq: Vec<f64> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(eq.len(), 3, "{eq:?}");
    let (unstable, healthy) = (eq[1], eq[2]);
    let closed = (unstable - healthy) / (100.0 - healthy);
    let r = selfheal(&["critical-shock", &sc], dir.path());
    let f: f64 = String::from_utf8_lossy(&r.stdout).trim().parse().unwrap();
    assert!((f - closed).abs() < 1e-6, "{f} vs {closed}");
}

/// Shards of sweeps of two model files with the same name and parameters but other equations
/// are not merged, and a run of one does not resume the other's file.
#[test]
fn shards_of_another_model_definition_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let aloha =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/aloha.toml")).unwrap();
    let other = aloha.replace("rate = \"G*exp(-G)\"", "rate = \"0.5*G*exp(-G)\"");
    assert_ne!(aloha, other, "the success rate is written as expected");
    std::fs::write(dir.path().join("a.toml"), &aloha).unwrap();
    std::fs::write(dir.path().join("b.toml"), &other).unwrap();
    let sweep = |model: &str, shard: &str, out: &str| {
        selfheal(
            &[
                "sweep",
                "--model",
                model,
                "--metric",
                "peak_n",
                "--grid",
                "qr=0.05:0.15:4",
                "--shard",
                shard,
                "--out",
                out,
            ],
            dir.path(),
        )
    };
    assert!(sweep("a.toml", "1/2", "s1.csv").status.success());
    assert!(sweep("b.toml", "2/2", "s2.csv").status.success());
    let r = selfheal(&["merge", "s1.csv", "s2.csv", "--out", "m.csv"], dir.path());
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && e.contains("model_definition"), "{e}");
    assert!(!dir.path().join("m.csv").exists());
}

/// `simulate --data`: the readings against a run, nothing fitted. At the fitted 2007 scenario
/// it reproduces the χ² and RMSE that calibration wrote into the file (another code path: the
/// fit's own residuals); its printed χ², RMSE and RMS log error are the sums of the residual
/// file's rows; and it refuses a scenario without `start` and a reading after the run.
#[test]
fn simulate_compares_a_run_with_readings() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let fitted = format!("{data}/skype2007_fitted.toml");
    let csv = format!("{data}/skype2007_online.csv");
    let text = std::fs::read_to_string(&fitted).unwrap();
    let header = text.lines().find(|l| l.contains("RMSE")).unwrap();
    let number_after = |key: &str, s: &str| -> f64 {
        let rest = &s[s.find(key).unwrap() + key.len()..];
        rest.trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (rmse_fit, chi2_fit) = (number_after("RMSE", header), number_after("chi2", header));
    let until = text
        .lines()
        .next()
        .and_then(|l| l.split("until ").nth(1))
        .map(|s| s.trim_end_matches('.').to_string())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = selfheal(
        &[
            "simulate",
            &fitted,
            "--data",
            &csv,
            "--until",
            &until,
            "--residuals",
            "r.csv",
            "--out",
            "s.csv",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let last = stderr.lines().last().unwrap();
    let (chi2, rmse) = (number_after("chi2", last), number_after("RMSE", last));
    assert!(
        (chi2 - chi2_fit).abs() <= 1e-4 * chi2_fit,
        "{last} vs {header}"
    );
    assert!((rmse - rmse_fit).abs() <= 1.0, "{last} vs {header}");
    // The summary line is the residual file's rows summed.
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(dir.path().join("r.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    let n = rows.len() as f64;
    let sum_z2: f64 = rows.iter().map(|r| ((r[2] - r[1]) / r[3]).powi(2)).sum();
    let sq: f64 = rows.iter().map(|r| (r[2] - r[1]).powi(2)).sum();
    let lg: f64 = rows.iter().map(|r| (r[2] / r[1]).ln().powi(2)).sum();
    assert!((sum_z2 - chi2).abs() <= 1e-4 * chi2, "{sum_z2} vs {last}");
    assert!(((sq / n).sqrt() - rmse).abs() <= 1.0, "{last}");
    let log = number_after("RMS log error", last);
    assert!(((lg / n).sqrt() - log).abs() <= 1e-4, "{last}");
    // A scenario without `start`, and readings after the run's end.
    let e = refused(&["simulate", "--data", &csv], &[]);
    assert!(e.contains("--data") && e.contains("start"), "{e}");
    let e = refused(
        &["simulate", "s.toml", "--data", &csv],
        &[("s.toml", "start = 2007-08-16T00:00:00Z\nt_end = 600\n")],
    );
    assert!(
        e.contains("after the run's end") && e.contains("t_end >="),
        "{e}"
    );
}

#[test]
fn daily_scenarios_list_their_cycles_and_are_refused_where_not_followed() {
    let daily = "t_end = 2880\n[daily]\nsign_on = [0.55, 0.45, 0.4, 0.38, 0.4, 0.5, 0.65, 0.8, 0.95, 1.05, 1.1, 1.12, 1.15, 1.15, 1.15, 1.2, 1.25, 1.35, 1.45, 1.5, 1.45, 1.3, 1.0, 0.75]\n";
    let files = [("d.toml", daily)];
    let line = refused(
        &[
            "continue",
            "sn_capacity",
            "d.toml",
            "--from",
            "500",
            "--to",
            "900",
        ],
        &files,
    );
    assert!(
        line.contains("daily cycle") && line.contains("remove [daily]"),
        "{line}"
    );
    let line = refused(&["critical-shock", "d.toml"], &files);
    assert!(line.contains("pass --by-hour"), "{line}");
    let line = refused(&["critical-shock", "--by-hour"], &[]);
    assert!(line.contains("needs a scenario with [daily]"), "{line}");
    // equilibria lists the daily cycles: the healthy one starts where simulate starts.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.toml"), daily).unwrap();
    let out = selfheal(&["equilibria", "d.toml"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|r| r[3] == "true"), "{csv}");
    let out = selfheal(&["simulate", "d.toml", "--dt", "2880"], dir.path());
    let sim = String::from_utf8(out.stdout).unwrap();
    let first: Vec<&str> = sim.lines().nth(1).unwrap().split(',').collect();
    let (a, b): (f64, f64) = (rows[0][0].parse().unwrap(), first[1].parse().unwrap());
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

#[test]
fn tipping_map_refuses_bad_axes_and_writes_its_csv_and_figure() {
    let base = ["tipping-map", "--p1", "sn_capacity=600:2000:3"];
    let with =
        |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    for (more, want) in [
        (&["--p2", "shock=0:0.5:3"][..], "not one"),
        (&["--p2", "dedicated=-1:1e-4:3"][..], "dedicated"),
        (
            &["--p2", "sn_capacity=500:900:3"][..],
            "two different parameters",
        ),
        (&["--p2", "nosuch=1:2:3"][..], "nosuch"),
        (
            &["--p2", "dedicated=1e-6:1e-4:3", "--log", "retry"][..],
            "--log retry",
        ),
        (
            &["--p2", "dedicated=0:1e-4:3", "--log", "dedicated"][..],
            "> 0",
        ),
        (
            &["--p2", "dedicated=1e-6:1e-4:3", "--tol", "0.5"][..],
            "tol",
        ),
        (
            &["--p2", "dedicated=1e-6:1e-4:3", "--shock", "0.3"][..],
            "--shock",
        ),
        (
            &["--p2", "dedicated=1e-6:1e-4:3", "--figure", "m.txt"][..],
            ".svg or .png",
        ),
        (
            &[
                "--p2",
                "dedicated=1e-6:1e-4:3",
                "--log",
                "dedicated",
                "--figure",
                "m.png",
            ][..],
            "both logarithmic or both linear",
        ),
    ] {
        let args = with(more);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = refused(&args, &[]);
        assert!(e.contains(want), "{more:?}: {e}");
    }
    // A small map: the CSV's header and states, the figure, and an existing output kept.
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "tipping-map",
        "--p1",
        "sn_capacity=400:5000:3",
        "--p2",
        "dedicated=1e-6:1e-3:4",
        "--log",
        "sn_capacity",
        "--log",
        "dedicated",
        "--out",
        "m.csv",
        "--figure",
        "m.png",
    ];
    let out = selfheal(&args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "sn_capacity,dedicated,critical_shock,recovers,collapses,state,trials,error"
    );
    assert_eq!(lines.len(), 1 + 12);
    let states: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(5).unwrap())
        .collect();
    assert!(
        states.contains(&"always_down") && states.contains(&"bistable"),
        "{states:?}"
    );
    assert!(std::fs::metadata(dir.path().join("m.png")).unwrap().len() > 1000);
    let again = selfheal(&args, dir.path());
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("m.csv")).unwrap(),
        csv
    );
}
