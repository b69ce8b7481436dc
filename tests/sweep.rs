//! Sweeps: row order, determinism across threads, resume after a kill, shards and merge, and the
//! refusals.

use selfheal::analysis::healthy_state;
use selfheal::model::{Model, P2p};
use selfheal::scenario::Scenario;
use selfheal::simulate::{simulate, SimOptions};
use selfheal::sweep::{Axis, Design, Metric, Range, RowCache, Sampler, Sweep, WARM_BLOCK};
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::selfheal;

fn ok(args: &[&str], dir: &Path) -> String {
    let out = selfheal(args, dir);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

/// Lowest peers over `[0, t_end]` after an instantaneous wave `f` at t = 0 from the healthy
/// state, by classical fixed-step RK4 on the model's right-hand side (no library solver), every
/// step inspected.
fn rk4_min_peers(p: &[f64], f: f64, t_end: f64, h: f64) -> f64 {
    let healthy = healthy_state(&P2p, p).unwrap().equilibrium;
    assert!(P2p.rhs(0.0, &healthy, p).amax() < 1e-14);
    let x = P2p.reboot_jump(&healthy, p, f, f).unwrap();
    let mut lowest = x[0];
    common::rk4_each(p, x, t_end, h, |_, x| lowest = lowest.min(x[0]));
    lowest
}

fn refused(args: &[&str], dir: &Path) -> String {
    let out = selfheal(args, dir);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    err.trim_end().to_string()
}

#[test]
fn grid_rows_come_first_axis_slowest_and_match_single_simulations() {
    let base = Scenario::new(&P2p);
    let axes = vec![
        Axis::parse("shock=0.2:0.6:3", &base).unwrap(),
        Axis::parse("sn_capacity=800:1200:2", &base).unwrap(),
    ];
    let sweep = Sweep::new(&P2p, base.clone(), Design::Grid(axes), vec![Metric::Min(0)]).unwrap();
    let mut rows = vec![];
    sweep
        .run(0..sweep.len(), 2, |i, r| {
            rows.push((i, r.to_vec()));
            Ok(())
        })
        .unwrap();
    let want = [
        (0.2, 800.0),
        (0.2, 1200.0),
        (0.4, 800.0),
        (0.4, 1200.0),
        (0.6, 800.0),
        (0.6, 1200.0),
    ];
    assert_eq!(rows.len(), 6);
    for ((i, r), (f, k)) in rows.iter().zip(want) {
        assert_eq!(r[0].parse::<f64>().unwrap(), f, "row {i}");
        assert_eq!(r[1].parse::<f64>().unwrap(), k, "row {i}");
        // The metric equals a plain simulation of the same scenario ...
        let mut sc = base.clone();
        sc.shock = Some(selfheal::scenario::Shock::instantaneous(f));
        sc.params.set("sn_capacity", k).unwrap();
        let m = simulate(&P2p, &sc, &SimOptions::default())
            .unwrap()
            .summary
            .min_peers;
        let got = r[2].parse::<f64>().unwrap();
        // (Rows past the first of a block start from a healthy state found by Newton from
        // the block's first row's, which agrees with the full search's to its convergence
        // tolerance, not bit for bit.)
        assert!((got - m).abs() <= 1e-12 * m, "row {i}: {got} vs {m}");
        // ... and agrees with an independent integrator: RK4 at step 0.01 min, every step
        // inspected (agreement seen: 2e-9 relative; the default tolerance is rtol 1e-6).
        let want = rk4_min_peers(sc.params.values(), f, sc.t_end, 0.01);
        assert!(
            (got - want).abs() < 1e-6 * want,
            "row {i}: min_peers {got} vs RK4 {want}"
        );
        assert_eq!(r[3], "ok");
    }
}

#[test]
fn log_axes_and_single_points() {
    let base = Scenario::new(&P2p);
    let mut a = Axis::parse("dedicated=1e-6:1e-2:5", &base).unwrap();
    a.set_log().unwrap();
    let v: Vec<f64> = (0..5).map(|j| a.value(j)).collect();
    // Decimal grids read back as decimals: every value prints as the number it stands for.
    assert_eq!(v, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2], "{v:?}");
    let lin = Axis::parse("shock=0.1:0.9:9", &base).unwrap();
    let text: Vec<String> = (0..9).map(|j| format!("{}", lin.value(j))).collect();
    assert_eq!(
        text,
        ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    );
    let fine = Axis::parse("retry=0:0.3:31", &base).unwrap();
    for j in 0..31 {
        assert_eq!(
            format!("{}", fine.value(j)),
            format!("{}", j as f64 / 100.0)
        );
    }
    let one = Axis::parse("retry=2:2:1", &base).unwrap();
    assert_eq!(one.value(0), 2.0);
    // Descending axes walk down.
    let down = Axis::parse("sn_capacity=1000:300:8", &base).unwrap();
    assert_eq!((down.value(0), down.value(7)), (1000.0, 300.0));
    assert!(Axis::parse("retry=2:3:1", &base).is_err());
    assert!(Axis::parse("retry=1:2:0", &base).is_err());
    let mut z = Axis::parse("dedicated=0:1e-3:4", &base).unwrap();
    assert!(z.set_log().is_err());
}

#[test]
fn latin_hypercube_uses_every_stratum_once_and_points_depend_only_on_seed_and_row() {
    let base = Scenario::new(&P2p);
    let ranges = vec![
        Range::parse("shock=0:0.9", &base).unwrap(),
        Range::parse("sn_capacity=300:3000", &base).unwrap(),
    ];
    let n = 200;
    let d = Design::Sample {
        sampler: Sampler::Lhs,
        n,
        ranges: ranges.clone(),
        seed: 7,
    };
    for (dim, r) in ranges.iter().enumerate() {
        let mut seen = vec![false; n];
        for i in 0..n {
            let u = (d.point(i)[dim] - r.lo) / (r.hi - r.lo);
            let s = (u * n as f64) as usize;
            assert!(!seen[s], "stratum {s} of {} twice", r.name);
            seen[s] = true;
        }
    }
    // Same seed, same points: a design built anew from the same text, asked in the opposite
    // order, gives every row's point bit for bit.
    let again = Design::Sample {
        sampler: Sampler::Lhs,
        n,
        ranges: vec![
            Range::parse("shock=0:0.9", &base).unwrap(),
            Range::parse("sn_capacity=300:3000", &base).unwrap(),
        ],
        seed: 7,
    };
    let backwards: Vec<Vec<f64>> = (0..n).rev().map(|i| again.point(i)).collect();
    for (i, p) in backwards.iter().rev().enumerate() {
        assert_eq!(d.point(i), *p, "row {i}");
    }
    // ... and so does another process that computes only the last shard's rows (180..200 of
    // 200): a row's point depends on the seed and the row alone, not on the rows before it.
    let dir = tempfile::tempdir().unwrap();
    ok(
        &[
            "sweep",
            "--sample",
            "lhs",
            "--n",
            "200",
            "--range",
            "shock=0:0.9",
            "--range",
            "sn_capacity=300:3000",
            "--seed",
            "7",
            "--metric",
            "n_equilibria",
            "--shard",
            "10/10",
            "--out",
            "s.csv",
        ],
        dir.path(),
    );
    let text = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 20);
    for (j, row) in rows.iter().enumerate() {
        assert_eq!(*row, d.point(180 + j), "row {}", 180 + j);
    }
    // Another seed, other points: every row differs in every column.
    let other = Design::Sample {
        sampler: Sampler::Lhs,
        n,
        ranges,
        seed: 8,
    };
    for i in 0..n {
        let (a, b) = (d.point(i), other.point(i));
        assert!(a[0] != b[0] && a[1] != b[1], "row {i}: {a:?} {b:?}");
    }
}

#[test]
fn output_is_byte_identical_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &'static str, threads: &'static str| {
        vec![
            "sweep",
            "--sample",
            "sobol",
            "--n",
            "300",
            "--range",
            "shock=0.2:0.6",
            "--range",
            "sn_capacity=600:3000",
            "--metric",
            "outcome,min_peers,peak_queue,n_equilibria",
            "--out",
            out,
            "--threads",
            threads,
        ]
    };
    ok(&args("one.csv", "1"), dir.path());
    ok(&args("two.csv", "2"), dir.path());
    let a = std::fs::read(dir.path().join("one.csv")).unwrap();
    let b = std::fs::read(dir.path().join("two.csv")).unwrap();
    assert_eq!(a, b);
    assert_eq!(String::from_utf8(a).unwrap().lines().count(), 301);
}

#[test]
fn resume_after_a_kill_completes_exactly_the_missing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "sweep",
        "--grid",
        "shock=0.05:0.95:4000",
        "--metric",
        "outcome,min_peers,recovery_time",
        "--threads",
        "2",
    ];
    let mut full = args.to_vec();
    full.extend(["--out", "full.csv"]);
    ok(&full, dir.path());
    let mut part = args.to_vec();
    part.extend(["--out", "part.csv"]);
    // Kill -9 part-way (if the run is quicker than the kill, resume simply has nothing to do).
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(&part)
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(120));
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever the kill left, cut a row in half as a crash inside a write would.
    let path = dir.path().join("part.csv");
    let text = std::fs::read(&path).unwrap();
    if text.len() > 200 {
        std::fs::write(&path, &text[..text.len() - 7]).unwrap();
    }
    // Without --resume (or --force) the existing file is refused and kept.
    let e = refused(&part, dir.path());
    assert!(e.contains("--resume"), "{e}");
    let mut resume = part.clone();
    resume.push("--resume");
    ok(&resume, dir.path());
    let a = std::fs::read(dir.path().join("full.csv")).unwrap();
    let b = std::fs::read(&path).unwrap();
    assert!(a == b, "resumed file differs from the uninterrupted run");
    // Resuming a finished file computes nothing and changes nothing.
    ok(&resume, dir.path());
    assert_eq!(std::fs::read(&path).unwrap(), a);
}

#[test]
fn resuming_a_file_of_another_sweep_says_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        &[
            "sweep",
            "--grid",
            "shock=0.1:0.5:5",
            "--metric",
            "outcome",
            "--out",
            "s.csv",
        ],
        dir.path(),
    );
    let e = refused(
        &[
            "sweep",
            "--grid",
            "shock=0.1:0.5:6",
            "--metric",
            "outcome",
            "--out",
            "s.csv",
            "--resume",
        ],
        dir.path(),
    );
    assert!(
        e.contains("different sweep")
            && e.contains("count: ")
            && e.contains("in the file")
            && !e.contains('{'),
        "{e}"
    );
    let e = refused(
        &[
            "sweep",
            "--grid",
            "shock=0.1:0.5:5",
            "--metric",
            "min_peers",
            "--out",
            "s.csv",
            "--resume",
        ],
        dir.path(),
    );
    assert!(e.contains("metrics"), "{e}");
}

#[test]
fn shards_from_several_processes_merge_into_the_single_run_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "sweep",
        "--sample",
        "lhs",
        "--n",
        "250",
        "--range",
        "shock=0.1:0.7",
        "--seed",
        "3",
        "--metric",
        "outcome,min_peers",
    ];
    let mut single = base.to_vec();
    single.extend(["--out", "single.csv"]);
    ok(&single, dir.path());
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let mut a: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            a.extend([
                "--shard".into(),
                format!("{k}/3"),
                "--out".into(),
                format!("part{k}.csv"),
                "--threads".into(),
                "1".into(),
            ]);
            Command::new(env!("CARGO_BIN_EXE_selfheal"))
                .args(&a)
                .current_dir(dir.path())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    ok(
        &[
            "merge",
            "part3.csv",
            "part1.csv",
            "part2.csv",
            "--out",
            "merged.csv",
        ],
        dir.path(),
    );
    let a = std::fs::read(dir.path().join("single.csv")).unwrap();
    let b = std::fs::read(dir.path().join("merged.csv")).unwrap();
    assert!(a == b, "merged shards differ from the single run");
    // The merged file's fingerprint is the single run's: it can be resumed like one.
    let fa = std::fs::read(dir.path().join("single.csv.sweep.json")).unwrap();
    let fb = std::fs::read(dir.path().join("merged.csv.sweep.json")).unwrap();
    assert_eq!(fa, fb);
    // Merged into a device: the same bytes, and no fingerprint beside it.
    ok(
        &[
            "merge",
            "part1.csv",
            "part2.csv",
            "part3.csv",
            "--out",
            "/dev/null",
        ],
        dir.path(),
    );
    assert!(!Path::new("/dev/null.sweep.json").exists());
    // A missing shard is refused.
    let e = refused(
        &["merge", "part1.csv", "part2.csv", "--out", "m2.csv"],
        dir.path(),
    );
    assert!(e.contains("shard 3/3 is missing"), "{e}");
}

#[test]
fn bad_sweeps_are_refused_with_one_line_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "sweep",
                "--grid",
                "shock=0.1:0.5:0",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
            ],
            "COUNT must be at least 1",
        ),
        (
            &[
                "sweep",
                "--grid",
                "dedicated=0:1e-3:3",
                "--log",
                "dedicated",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
            ],
            "START and STOP > 0",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0.1:0.5:3",
                "--metric",
                "outcom",
                "--out",
                "x.csv",
            ],
            "did you mean `outcome`",
        ),
        (
            &[
                "sweep",
                "--grid",
                "retyr=1:2:3",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
            ],
            "did you mean `retry`",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0.1:0.5:3",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
                "--shard",
                "4/3",
            ],
            "1 <= K <= N",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0.1:0.5:3",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
                "--shard",
                "0/3",
            ],
            "1 <= K <= N",
        ),
        (
            &[
                "sweep",
                "--grid",
                "shock=0.1:0.5:3",
                "--metric",
                "outcome",
                "--out",
                "no/such/dir/x.csv",
            ],
            "no/such/dir",
        ),
        (
            &[
                "sweep",
                "--sample",
                "sobol",
                "--n",
                "0",
                "--range",
                "shock=0:1",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
            ],
            "--n <N>': must be a whole number at least 1",
        ),
        (
            &[
                "sweep",
                "--sample",
                "halton",
                "--n",
                "5",
                "--range",
                "shock=0:1",
                "--metric",
                "outcome",
                "--out",
                "x.csv",
            ],
            "unknown sampler",
        ),
    ];
    for (args, want) in cases {
        let e = refused(args, dir.path());
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!dir.path().join("x.csv").exists(), "{args:?} left a file");
    }
}

#[test]
fn failing_rows_record_their_error_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // shock 1.0 is out of range: that row fails, the others are computed.
    ok(
        &[
            "sweep",
            "--grid",
            "shock=0.5:1.0:2",
            "--metric",
            "outcome",
            "--out",
            "f.csv",
        ],
        dir.path(),
    );
    let text = std::fs::read_to_string(dir.path().join("f.csv")).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[1].ends_with(",ok"), "{text}");
    assert!(
        rows[2].contains("shock.fraction") && rows[2].contains("[0, 1)"),
        "{text}"
    );
}

#[test]
fn rows_reach_the_sink_once_each_in_order_and_a_failing_sink_stops_the_run() {
    let base = Scenario::new(&P2p);
    // Costs vary along the axis (recovering and collapsing rows), so blocks finish out of order.
    let axes = vec![Axis::parse("shock=0.05:0.95:700", &base).unwrap()];
    let sweep = Sweep::new(&P2p, base, Design::Grid(axes), vec![Metric::Min(0)]).unwrap();
    let collect = |range: std::ops::Range<usize>, threads| {
        let mut rows = vec![];
        sweep
            .run(range, threads, |i, r| {
                rows.push((i, r.to_vec()));
                Ok(())
            })
            .unwrap();
        rows
    };
    let one = collect(0..700, 1);
    assert_eq!(
        one.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..700).collect::<Vec<_>>()
    );
    for threads in [2, 3] {
        assert_eq!(collect(0..700, threads), one, "threads {threads}");
    }
    // A sub-range is exactly that slice of the whole.
    assert_eq!(collect(123..456, 2), one[123..456].to_vec());
    assert!(collect(5..5, 2).is_empty());

    // The sink's error comes back and no row is handed on after it.
    let mut seen = vec![];
    let err = sweep
        .run(0..700, 2, |i, _| {
            seen.push(i);
            if i == 300 {
                Err(selfheal::Error::Invalid("disk full".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(seen, (0..=300).collect::<Vec<_>>());
}

#[test]
fn devices_and_pipes_take_rows_in_place_and_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["sweep", "--grid", "shock=0.2:0.6:3", "--metric", "outcome"];
    // /dev/null: written in place, no fingerprint beside it, nothing to resume.
    let mut a = args.to_vec();
    a.extend(["--out", "/dev/null"]);
    ok(&a, dir.path());
    assert!(!Path::new("/dev/null.sweep.json").exists());
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null must stay a device");
    a.push("--resume");
    let e = refused(&a, dir.path());
    assert!(
        e.contains("/dev/null") && e.contains("not a regular file"),
        "{e}"
    );

    // A named pipe gets the same bytes a file would.
    let mut f = args.to_vec();
    f.extend(["--out", "rows.csv"]);
    ok(&f, dir.path());
    let want = std::fs::read_to_string(dir.path().join("rows.csv")).unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let mut p = args.to_vec();
        p.extend(["--out", "pipe"]);
        ok(&p, dir.path());
        assert_eq!(reader.join().unwrap(), want);
        assert!(!dir.path().join("pipe.sweep.json").exists());
    }

    // A directory is refused and left alone.
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let mut d = args.to_vec();
    d.extend(["--out", "out", "--force"]);
    let e = refused(&d, dir.path());
    assert!(e.contains("is a directory"), "{e}");
    assert!(dir.path().join("out").is_dir());
}

#[test]
fn log_sampled_ranges_spread_points_evenly_over_decades() {
    let sc = Scenario::new(&P2p);
    for sampler in [Sampler::Random, Sampler::Lhs, Sampler::Sobol] {
        let mut r = Range::parse("retry=1e-3:1e3", &sc).unwrap();
        r.set_log().unwrap();
        let d = Design::Sample {
            sampler,
            n: 600,
            ranges: vec![r],
            seed: 3,
        };
        // Six decades: about 100 points in each, whatever the sampler.
        let mut per_decade = [0usize; 6];
        for i in 0..600 {
            let v = d.point(i)[0];
            assert!((1e-3..=1e3).contains(&v), "{v}");
            per_decade[((v.log10() + 3.0).floor() as usize).min(5)] += 1;
        }
        for c in per_decade {
            assert!((60..=140).contains(&c), "{sampler:?}: {per_decade:?}");
        }
    }
    let mut r = Range::parse("retry=0:1", &sc).unwrap();
    assert!(r.set_log().is_err(), "a log range needs positive ends");
}

/// Header and rows of a sweep of `list` over shock fractions 0.1 to 0.6 from `model`'s defaults.
fn shock_sweep<M: Model<3>>(model: &M, list: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let base = Scenario::new(model);
    let axis = Axis::parse("shock=0.1:0.6:6", &base).unwrap();
    let metrics = Metric::parse_list(list, &model.states()).unwrap();
    let sweep = Sweep::new(model, base, Design::Grid(vec![axis]), metrics).unwrap();
    let mut out = vec![];
    sweep
        .run(0..sweep.len(), 1, |_, r| {
            out.push(r.to_vec());
            Ok(())
        })
        .unwrap();
    (sweep.header(), out)
}

#[test]
fn a_sweep_of_the_reference_model_file_gives_the_built_in_models_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/p2p.toml");
    let file = selfheal::modelfile::ModelFile::load(Path::new(path)).unwrap();
    let list = "outcome,min_peers,t_min_peers,peak_queue,min_service_level,recovery_time";
    let builtin = shock_sweep(&P2p, list);
    let from_file = shock_sweep(&file.typed::<3>().unwrap(), list);
    assert_eq!(builtin.0, from_file.0);
    let mut collapsed = 0;
    for (a, b) in builtin.1.iter().zip(&from_file.1) {
        assert_eq!(a[1], b[1], "outcomes differ: {a:?} vs {b:?}");
        collapsed += usize::from(a[1] == "collapsed");
        for k in [2, 4, 5] {
            let (x, y): (f64, f64) = (a[k].parse().unwrap(), b[k].parse().unwrap());
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-6), "{a:?} vs {b:?}");
        }
    }
    assert!(collapsed > 0 && collapsed < 6, "both outcomes must occur");
}

/// Warm-started rows: a row's healthy state by Newton from its block's first row's. On a grid
/// through the fold of the healthy branch (none below sn_capacity 530.9 at the defaults) and on
/// seeded Latin-hypercube samples of three parameters, every row agrees with a plain
/// simulation (full equilibrium search) of its scenario; rows without a healthy state always
/// fall back to the full search, as do rows whose anchor has none; warm starts are taken
/// where both have one; and the rows are the same strings whatever the threads and wherever a
/// range starts.
#[test]
fn warm_started_rows_agree_with_the_full_search_and_fall_back_where_they_must() {
    let mut base = Scenario::new(&P2p);
    base.shock = Some(selfheal::scenario::Shock::instantaneous(0.3));
    let grid = Design::Grid(vec![Axis::parse("sn_capacity=300:1500:97", &base).unwrap()]);
    let mut designs = vec![grid];
    for seed in [3, 11] {
        let ranges = vec![
            Range::parse("sn_capacity=450:3000", &base).unwrap(),
            Range::parse("retry=1:10", &base).unwrap(),
            Range::parse("shock=0:0.6", &base).unwrap(),
        ];
        designs.push(Design::sample(Sampler::Lhs, 80, ranges, &[], seed).unwrap());
    }
    let metrics = vec![Metric::Outcome, Metric::Min(0), Metric::RecoveryTime];
    let (mut accepted, mut declined, mut down_rows) = (0, 0, 0);
    for design in designs {
        let sweep = Sweep::new(&P2p, base.clone(), design, metrics.clone()).unwrap();
        let mut cache = RowCache::default();
        let mut rows = vec![];
        for i in 0..sweep.len() {
            let before = cache.warm_starts();
            let row = sweep.row(i, &mut cache);
            let after = cache.warm_starts();
            let (took, fell) = (
                after.accepted - before.accepted,
                after.declined - before.declined,
            );
            let sc = sweep.scenario(i).unwrap();
            let plain = simulate(&P2p, &sc, &SimOptions::default()).unwrap().summary;
            let k = row.len() - 4;
            assert_eq!(row[k], plain.outcome.name(), "row {i}: {row:?}");
            let got: f64 = row[k + 1].parse().unwrap();
            assert!(
                (got - plain.min_peers).abs() <= 1e-9 * plain.min_peers.max(1e-12),
                "row {i}: min_peers {got} vs {}",
                plain.min_peers
            );
            assert_eq!(
                row[k + 2].is_empty(),
                plain.recovery_time.is_none(),
                "row {i}"
            );
            let anchor = sweep.scenario(i - i % WARM_BLOCK).unwrap();
            let anchor_healthy = selfheal::equilibria::rest_state(&P2p, anchor.params.values())
                .unwrap()
                .healthy;
            if i % WARM_BLOCK == 0 {
                assert_eq!((took, fell), (0, 0), "row {i} is an anchor");
            } else if !plain.start_healthy || !anchor_healthy {
                down_rows += usize::from(!plain.start_healthy);
                assert_eq!((took, fell), (0, 1), "row {i} must fall back");
                assert_eq!(
                    row.last().unwrap(),
                    if plain.start_healthy { "ok" } else { "down" }
                );
            } else {
                assert_eq!(took + fell, 1, "row {i}");
            }
            rows.push(row);
        }
        accepted += cache.warm_starts().accepted;
        declined += cache.warm_starts().declined;
        // The same strings on two threads, and from a range that starts inside a block.
        for (threads, start) in [(2, 0), (1, WARM_BLOCK / 2 + 1)] {
            let mut again = vec![];
            sweep
                .run(start..sweep.len(), threads, |_, r| {
                    again.push(r.to_vec());
                    Ok(())
                })
                .unwrap();
            assert_eq!(again, rows[start..], "threads {threads}, from row {start}");
        }
    }
    assert!(down_rows >= 10, "rows below the fold: {down_rows}");
    assert!(accepted >= 150, "warm starts taken: {accepted}");
    assert!(declined >= down_rows, "declined: {declined}");
}

/// Past the fold of slotted ALOHA's good state only the jammed state is left, and Newton from
/// the good state of the block's first row can reach it: a stable equilibrium that is not
/// healthy. Those rows must fall back to the full search and say `down`, as a plain simulation
/// of their scenario does.
#[test]
fn a_warm_start_that_reaches_the_jammed_state_of_aloha_is_declined() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/aloha.toml");
    let file = selfheal::modelfile::ModelFile::load(Path::new(path)).unwrap();
    let model = file.typed::<1>().unwrap();
    let base = Scenario::new(&model);
    let design = Design::Grid(vec![Axis::parse("qa=0.001:0.008:64", &base).unwrap()]);
    let metrics = Metric::parse_list("outcome,min_n", &model.states()).unwrap();
    let sweep = Sweep::new(&model, base, design, metrics).unwrap();
    let mut cache = RowCache::default();
    let mut jammed_past_fold = 0;
    for i in 0..sweep.len() {
        let before = cache.warm_starts();
        let row = sweep.row(i, &mut cache);
        let fell = cache.warm_starts().declined - before.declined;
        let plain = simulate(&model, &sweep.scenario(i).unwrap(), &SimOptions::default())
            .unwrap()
            .summary;
        assert_eq!(row[1], plain.outcome.name(), "row {i}: {row:?}");
        // The lowest backlog of an undisturbed run is its starting state less the integrator's
        // drift (rtol 1e-6): starts a few roundings apart drift differently, by up to ~1e-6.
        let got: f64 = row[2].parse().unwrap();
        assert!(
            (got - plain.min_peers).abs() <= 1e-5 * plain.min_peers,
            "row {i}: min_n {got} vs {}",
            plain.min_peers
        );
        let status = if plain.start_healthy { "ok" } else { "down" };
        assert_eq!(row[3], status, "row {i}");
        if !plain.start_healthy && i < WARM_BLOCK {
            // The anchor (row 0) has a good state; this row has none.
            assert_eq!(fell, 1, "row {i} must fall back");
            jammed_past_fold += 1;
        }
    }
    assert!(
        jammed_past_fold >= 3,
        "rows past the fold in the first block: {jammed_past_fold}"
    );
}
