//! `selfheal simulate`: one scenario run, its trajectory as CSV and its summary.

use crate::args::{ms, ScenarioArgs};
use clap::Args;
use selfheal::calibrate::{compare, residual_rows_csv, Comparison};
use selfheal::files::{check_targets, is_special, stage};
use selfheal::model::Model;
use selfheal::output::trajectory_csv;
use selfheal::scenario::Scenario;
use selfheal::simulate::{simulate, SimOptions, Simulation};
use selfheal::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Output interval (minutes).
    #[arg(long, value_name = "D", default_value_t = 10.0)]
    dt: f64,
    /// Populations as user counts (fraction × population) instead of fractions.
    #[arg(long)]
    absolute: bool,
    /// Write the CSV here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
    /// Also write the summary as JSON (scenario, tolerances, method, version, results).
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
    /// Compare the run with observed online users (CSV `time,online_users[,sigma,note,source]`,
    /// as `calibrate` reads it; needs the scenario's `start`): every reading, χ², RMSE and
    /// RMS log error, nothing fitted.
    #[arg(long, value_name = "FILE.csv")]
    data: Option<PathBuf>,
    /// With --data: write each reading against the model (`time,t,observed,model,sigma,z`).
    #[arg(long, value_name = "FILE.csv", requires = "data")]
    residuals: Option<PathBuf>,
    /// With --data: relative error added to every reading without a `sigma`
    /// (docs/calibration.md).
    #[arg(long, value_name = "R", default_value_t = 0.05, requires = "data")]
    rel_error: f64,
    /// With --data: only readings at or after this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME", requires = "data")]
    from: Option<String>,
    /// With --data: only readings at or before this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME", requires = "data")]
    until: Option<String>,
}

pub fn run(args: &SimulateArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, state| run_with(&m, args, &state))
}

fn run_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &SimulateArgs,
    state: &dyn Fn(&[f64]) -> String,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (sc, solve) = args.scenario.build_with(model)?;
    // Refuse clobbering, missing directories and one file named twice before any work.
    let targets: Vec<&Path> = [&args.out, &args.summary, &args.residuals]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_targets(&targets, args.force)?;
    let opts = SimOptions {
        solve,
        dt: args.dt,
        ..Default::default()
    };
    // The readings are read (and refused) before any work.
    let readings = match &args.data {
        Some(path) => Some(
            crate::calibrate::readings_for(
                model,
                &sc,
                path,
                args.rel_error,
                (args.from.as_deref(), args.until.as_deref()),
                "--data: comparing with readings",
            )?
            .1,
        ),
        None => None,
    };
    let started = std::time::Instant::now();
    let sim: Simulation<N> = simulate(model, &sc, &opts)?;
    let comparison = match &readings {
        Some(r) => Some(compare(model, &sc, &sim, r)?),
        None => None,
    };
    let elapsed = ms(started);
    let write_csv = |w: &mut dyn Write| trajectory_csv(w, model, &sc, &sim, args.dt, args.absolute);
    let summary = match &args.summary {
        Some(_) => Some(
            serde_json::to_string_pretty(&sim.summary_json(model, &sc, &opts))
                .map_err(|e| Error::Invalid(format!("the summary as JSON: {e}")))?,
        ),
        None => None,
    };
    let write_summary = |w: &mut dyn Write| {
        writeln!(w, "{}", summary.as_deref().unwrap_or_default()).map_err(|e| Error::Io {
            path: "the summary".into(),
            source: e,
        })
    };
    // Both files are written before either is moved into place (devices, which cannot be
    // taken back, last): a failure leaves neither.
    let csv_special = args.out.as_deref().is_some_and(is_special);
    let mut staged = vec![];
    if !csv_special {
        if let Some(path) = &args.out {
            staged.push(stage(path, args.force, write_csv)?);
        }
    }
    if let Some(path) = &args.summary {
        staged.push(stage(path, args.force, write_summary)?);
    }
    if let (Some(path), Some(c)) = (&args.residuals, &comparison) {
        staged.push(stage(path, args.force, |w| {
            residual_rows_csv(w, &c.residuals)
        })?);
    }
    if csv_special {
        if let Some(path) = &args.out {
            staged.push(stage(path, args.force, write_csv)?);
        }
    }
    for s in staged {
        s.commit()?;
    }
    if args.out.is_none() {
        write_csv(&mut std::io::stdout().lock())?;
    }
    print_summary(model, &sc, &opts, &sim, elapsed, state);
    if let Some(c) = &comparison {
        print_comparison(c);
    }
    Ok(())
}

/// Every reading against the run, then χ², RMSE and the RMS log error.
fn print_comparison(c: &Comparison) {
    let n = c.residuals.len();
    eprintln!("readings against the model ({n}):");
    eprintln!(
        "  {:<22} {:>14} {:>14} {:>14} {:>8}",
        "time", "observed", "model", "model-observed", "z"
    );
    for r in &c.residuals {
        eprintln!(
            "  {:<22} {:>14.0} {:>14.0} {:>14.0} {:>8.2}",
            r.time,
            r.observed,
            r.model,
            r.model - r.observed,
            r.z
        );
    }
    let log = c.rms_log_error.map_or("- (no positive pair)".into(), |v| {
        format!("{v:.4} over {} readings", c.n_log)
    });
    eprintln!(
        "chi2 {:.4} over {n} readings; RMSE {:.0} users; RMS log error {log}",
        c.chi2, c.rmse
    );
}

fn print_summary<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    opts: &SimOptions,
    sim: &Simulation<N>,
    elapsed_ms: f64,
    state: &dyn Fn(&[f64]) -> String,
) {
    let s = &sim.summary;
    let states = model.states();
    let names = states.each_ref().map(|st| st.name.as_ref());
    let watched = names[model.watched()];
    // Counts as the model speaks of them: millions of users for fractions of a user base.
    let users = |x: f64| {
        if model.fractions() {
            format!("{:.3} M users", x * sc.population / 1e6)
        } else {
            let n = crate::args::significant(x * sc.population, 6);
            let s = if n == "1" { "" } else { "s" };
            format!("{n} individual{s}")
        }
    };
    // Times in the model's unit: an abbreviation as it is ("min"), a word plural ("minutes").
    let unit = match model.time_unit() {
        u if ["s", "ms", "min", "h", "d"].contains(&u) || u.ends_with('s') => u.to_string(),
        u => format!("{u}s"),
    };
    eprintln!(
        "scenario: {} (t_end {} {unit}, method {}, rtol {:e}, atol {:e})",
        sc.name, sc.t_end, opts.solve.method, opts.solve.tol.rtol, opts.solve.tol.atol
    );
    if s.start_healthy {
        eprintln!(
            "healthy state: {} (service level {:.4})",
            state(&s.healthy),
            s.service_level
        );
    } else {
        eprintln!(
            "no healthy state: the network is down at these parameters; best stable state: {} (service level {:.4} < {})",
            state(&s.healthy),
            s.service_level,
            model.healthy_level()
        );
    }
    eprintln!(
        "lowest {watched}: {:.6} ({}) at t = {:.2} {unit}",
        s.min_peers,
        users(s.min_peers),
        s.t_min_peers
    );
    for (i, name) in names.iter().enumerate() {
        if i != model.watched() {
            eprintln!(
                "peak {name}: {:.6} ({}) at t = {:.2} {unit}",
                s.peaks[i].0,
                users(s.peaks[i].0),
                s.peaks[i].1
            );
        }
    }
    match s.peak_utilisation {
        Some((u, t)) if u.is_finite() => {
            eprintln!("peak utilisation: {u:.4} at t = {t:.2} {unit}")
        }
        Some((_, t)) => eprintln!(
            "peak utilisation: unbounded from t = {t:.2} {unit} (no serving capacity left)"
        ),
        None => {}
    }
    if let Some((level, t)) = s.min_service_level {
        eprintln!("lowest service level: {level:.6} at t = {t:.2} {unit}");
    }
    match s.recovery_time {
        Some(t) => eprintln!("recovery time: {t:.2} {unit}"),
        None if s.down && !s.start_healthy => {
            eprintln!("recovery time: none (no healthy state to return to)")
        }
        None => eprintln!("recovery time: none ({watched} never returned to 95% of healthy)"),
    }
    if s.down {
        eprintln!("the final parameters have no healthy state: the network is down whatever the trajectory does");
    }
    match s.settled_at {
        Some(t) => eprintln!(
            "outcome: {} (settled by t = {t:.1} {unit})",
            s.outcome.name()
        ),
        None => eprintln!(
            "outcome: {} (not settled within {} {unit} after t_end)",
            s.outcome.name(),
            opts.settle_horizon
        ),
    }
    let st = &s.stats;
    eprintln!(
        "solver (run and settle check): {} steps, {} rejected, {} rhs evaluations, {} jacobians, {} LU; {elapsed_ms:.2} ms",
        st.steps, st.rejected, st.rhs_evals, st.jac_evals, st.lu_decomps,
    );
}
