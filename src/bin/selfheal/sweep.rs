//! `selfheal sweep` and `merge`: many scenarios, one CSV row of metrics each; shards joined.

use crate::args::{at_least_one_usize, thread_count, whole_number, ScenarioArgs};
use clap::Args;
use selfheal::analysis::tipping::TippingOptions;
use selfheal::model::Model;
use selfheal::sweep::{merge, run_to_file, Axis, Design, Metric, Range, RunFile, Shard, Sweep};
use selfheal::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// A grid axis NAME=START:STOP:COUNT (repeatable; the first axis varies slowest).
    #[arg(
        long = "grid",
        value_name = "NAME=START:STOP:COUNT",
        allow_hyphen_values = true
    )]
    grid: Vec<String>,
    /// Space this grid axis, or sample this range, logarithmically (repeatable).
    #[arg(long = "log", value_name = "NAME")]
    log: Vec<String>,
    /// Sample instead of a grid: lhs, sobol or random.
    #[arg(long, value_name = "METHOD", conflicts_with = "grid")]
    sample: Option<String>,
    /// Number of sample points.
    #[arg(long, value_name = "N", requires = "sample", value_parser = at_least_one_usize)]
    n: Option<usize>,
    /// A sampled range NAME=LO:HI (repeatable).
    #[arg(
        long = "range",
        value_name = "NAME=LO:HI",
        allow_hyphen_values = true,
        requires = "sample"
    )]
    range: Vec<String>,
    /// Seed of the sample.
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = whole_number)]
    seed: u64,
    /// Metrics, comma-separated: outcome, min_STATE, t_min_STATE, recovery_time, peak_STATE,
    /// min_service_level, peak_utilisation, critical_shock, critical_window, n_equilibria
    /// (STATE: a state of the model, e.g. min_peers, peak_queue).
    #[arg(long, value_name = "LIST")]
    metric: String,
    /// The CSV to write (its fingerprint goes beside it as FILE.sweep.json).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Worker threads (0: every core).
    #[arg(long, value_name = "T", default_value_t = 0, value_parser = thread_count)]
    threads: usize,
    /// Compute only the K-th of N deterministic parts.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Complete an interrupted run of the same sweep.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The shard files, in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged CSV.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
}

impl SweepArgs {
    fn design(&self, sc: &selfheal::scenario::Scenario) -> Result<Design, Error> {
        let Some(method) = &self.sample else {
            if self.grid.is_empty() {
                return Err(Error::Invalid(
                    "sweep needs --grid NAME=START:STOP:COUNT or --sample METHOD".into(),
                ));
            }
            let axes = self
                .grid
                .iter()
                .map(|g| Axis::parse(g, sc).map_err(|e| e.context("--grid")))
                .collect::<Result<Vec<_>, _>>()?;
            return Design::grid(axes, &self.log).map_err(|e| e.context("--log"));
        };
        let n = self
            .n
            .ok_or_else(|| Error::Invalid("--sample needs --n N".into()))?;
        let ranges = self
            .range
            .iter()
            .map(|r| Range::parse(r, sc).map_err(|e| e.context("--range")))
            .collect::<Result<Vec<_>, _>>()?;
        let sampler = method.parse().map_err(|e: Error| e.context("--sample"))?;
        Design::sample(sampler, n, ranges, &self.log, self.seed).map_err(|e| e.context("--log"))
    }
}

pub fn run(args: &SweepArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, _state| run_with(&m, args))
}

fn run_with<M: Model<N> + Sync, const N: usize>(model: &M, args: &SweepArgs) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (sc, solve) = args.scenario.build_with(model)?;
    let design = args.design(&sc)?;
    let metrics = Metric::parse_for(&args.metric, model, sc.params.values())
        .map_err(|e| e.context("--metric"))?;
    let shard = args
        .shard
        .as_deref()
        .map(Shard::parse)
        .transpose()
        .map_err(|e| e.context("--shard"))?;
    let mut sweep = Sweep::new(model, sc, design, metrics)?;
    sweep.sim.solve = solve;
    sweep.tipping = TippingOptions::new(solve, sweep.tipping.tol, sweep.tipping.scan);
    let mode = if args.resume {
        RunFile::Resume
    } else if args.force {
        RunFile::Force
    } else {
        RunFile::Fresh
    };
    let started = std::time::Instant::now();
    let written = run_to_file(&sweep, &args.out, mode, shard, args.threads)?;
    let el = started.elapsed().as_secs_f64();
    eprintln!(
        "{written} rows computed in {el:.2} s ({:.0} rows/s); {} rows in the sweep{}",
        written as f64 / el.max(1e-9),
        sweep.len(),
        shard.map_or(String::new(), |s| format!(", shard {}/{}", s.k, s.n))
    );
    Ok(())
}

pub fn run_merge(args: &MergeArgs) -> Result<(), Error> {
    let rows = merge(&args.shards, &args.out, args.force)?;
    eprintln!("{rows} rows merged into {}", args.out.display());
    Ok(())
}
