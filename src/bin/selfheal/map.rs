//! `selfheal tipping-map`: the critical shock over a grid of two parameters, followed from
//! cell to cell.

use crate::args::{thread_count, whole_usize, OutputArgs, ScenarioArgs, Unused};
use clap::Args;
use selfheal::analysis::tipping::TippingOptions;
use selfheal::analysis::tipping_map::{shock_map, MapAxis};
use selfheal::model::Model;
use selfheal::sweep::Axis;
use selfheal::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct TippingMapArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// The first parameter: one line of the map per value (NAME=START:STOP:COUNT).
    #[arg(long, value_name = "NAME=START:STOP:COUNT", allow_hyphen_values = true)]
    p1: String,
    /// The second parameter, followed along each line (NAME=START:STOP:COUNT).
    #[arg(long, value_name = "NAME=START:STOP:COUNT", allow_hyphen_values = true)]
    p2: String,
    /// Space this axis logarithmically (repeatable; a figure needs both or neither).
    #[arg(long = "log", value_name = "NAME")]
    log: Vec<String>,
    /// Width of each cell's bracket of f* (absolute).
    #[arg(long, value_name = "T", default_value = "1e-4")]
    tol: f64,
    /// Scan resolution where a cell is analysed in full: shocks k/K for k = 0..K.
    #[arg(long, value_name = "K", default_value_t = 20, value_parser = whole_usize)]
    scan: usize,
    /// Worker threads (0: every core); each takes whole lines, so the map is the same for any
    /// number.
    #[arg(long, value_name = "T", default_value_t = 0, value_parser = thread_count)]
    threads: usize,
    /// The figure of the map (.svg or .png).
    #[arg(long, value_name = "FILE")]
    figure: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: &TippingMapArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, _state| run_with(&m, args))
}

fn run_with<M: Model<N>, const N: usize>(model: &M, args: &TippingMapArgs) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let unused = Unused {
        wave: true,
        t_end: true,
        ..Unused::default()
    };
    let (sc, solve) = args.scenario.build_for_with(model, "tipping-map", unused)?;
    let axis = |text: &str, flag: &str| -> Result<Axis, Error> {
        let mut a = Axis::parse(text, &sc).map_err(|e| e.context(flag))?;
        if args.log.iter().any(|n| n == &a.name) {
            a.set_log().map_err(|e| e.context("--log"))?;
        }
        Ok(a)
    };
    let (x, y) = (axis(&args.p1, "--p1")?, axis(&args.p2, "--p2")?);
    if let Some(name) = args.log.iter().find(|n| **n != x.name && **n != y.name) {
        return Err(Error::Invalid(format!(
            "--log {name}: not an axis of the map (the axes are {} and {})",
            x.name, y.name
        )));
    }
    let (mx, my) = (
        MapAxis::from_axis(&x).map_err(|e| e.context("--p1"))?,
        MapAxis::from_axis(&y).map_err(|e| e.context("--p2"))?,
    );
    args.output.check()?;
    if let Some(f) = &args.figure {
        selfheal::files::check_target(f, args.output.force)?;
        crate::args::check_figure_name(f)?;
        if x.log != y.log {
            return Err(Error::Invalid(
                "--figure: the map's axes must be both logarithmic or both linear (--log both names or neither)".into(),
            ));
        }
    }
    let opts = TippingOptions::new(solve, args.tol, args.scan);
    let started = std::time::Instant::now();
    let map = shock_map(model, sc.params.values(), &mx, &my, &opts, args.threads)?;
    let elapsed = started.elapsed().as_secs_f64();
    // The figure first: if it cannot be written, no CSV is either.
    if let Some(path) = &args.figure {
        draw(model, &map, x.log, path)?;
    }
    args.output.write(|w| {
        let mut csv = csv::Writer::from_writer(w);
        for row in map.csv_rows([&x.name, &y.name]) {
            csv.write_record(&row)
                .map_err(|e| Error::Invalid(format!("writing the rows: {e}")))?;
        }
        csv.flush()
            .map_err(|e| Error::Invalid(format!("writing the rows: {e}")))
    })?;
    let [bistable, down, heals, failed] = map.counts();
    let (continued, bracketed) = map.continued();
    let cells = map.cells.len();
    eprintln!(
        "{cells} cells: {bistable} bistable (f* certified to {}), {down} always down, {heals} always heal{}",
        args.tol,
        if failed > 0 {
            format!(", {failed} failed (their rows say why)")
        } else {
            String::new()
        }
    );
    eprintln!(
        "{continued} cells continued from their neighbour's healthy state ({bracketed} with the bracket continued too), {} analysed in full; {} trials, {} steps; {elapsed:.2} s",
        cells - continued,
        map.trials(),
        map.stats.steps
    );
    Ok(())
}

#[cfg(feature = "plot")]
fn draw<M: Model<N>, const N: usize>(
    model: &M,
    map: &selfheal::analysis::tipping_map::ShockMap,
    log: bool,
    path: &std::path::Path,
) -> Result<(), Error> {
    selfheal::plot::Figure::new(selfheal::plot::Plot::TippingMap(
        selfheal::report::shock_map_figure(model, map, log),
    ))
    .save(path)
}

#[cfg(not(feature = "plot"))]
fn draw<M: Model<N>, const N: usize>(
    _: &M,
    _: &selfheal::analysis::tipping_map::ShockMap,
    _: bool,
    _: &std::path::Path,
) -> Result<(), Error> {
    Err(Error::Unsupported(
        "--figure needs the `plot` feature".into(),
    ))
}
