//! `selfheal continue`, `fold-curve` and `hopf-curve`: branches of equilibria in one
//! parameter, and fold and Hopf curves in two.

use crate::args::{ms, parse_range, significant, OutputArgs, ScenarioArgs, Unused};
use clap::Args;
use selfheal::analysis::bistable::bistable_intervals;
use selfheal::analysis::codim2::{fold_curves, Plane};
use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
use selfheal::analysis::hopf::Located;
use selfheal::analysis::hopf_curve::hopf_curves;
use selfheal::model::Model;
use selfheal::output::{continuation_csv, fold_curve_csv, hopf_curve_csv, Num};
use selfheal::scenario::Scenario;
use selfheal::Error;

#[derive(Args)]
pub struct ContinueArgs {
    /// The parameter to vary.
    param: String,
    /// Start value (branches start from every equilibrium here).
    #[arg(long, value_name = "A")]
    from: f64,
    /// End value (either side of A).
    #[arg(long, value_name = "B")]
    to: f64,
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of the commands that trace curves in the plane of two parameters (`fold-curve`,
/// `hopf-curve`).
#[derive(Args)]
pub struct PlaneArgs {
    /// The parameter in which the points (folds or Hopf points) are first found.
    #[arg(id = "P1", value_name = "P1")]
    p1: String,
    /// The second parameter.
    #[arg(id = "P2", value_name = "P2")]
    p2: String,
    /// Range of P1 in which to find the points, A:B.
    #[arg(long = "p1", id = "p1_range", value_name = "A:B", value_parser = parse_range, allow_hyphen_values = true)]
    p1_range: (f64, f64),
    /// Range of P2 over which to follow them, C:D (must contain the current value of P2).
    #[arg(long = "p2", id = "p2_range", value_name = "C:D", value_parser = parse_range, allow_hyphen_values = true)]
    p2_range: (f64, f64),
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

impl PlaneArgs {
    /// The scenario and the plane, with the output checked.
    fn prepare<M: Model<N>, const N: usize>(
        &self,
        model: &M,
        command: &str,
    ) -> Result<(Scenario, Plane), Error> {
        let (sc, _) = self
            .scenario
            .build_for_with(model, command, Unused::PARAMETERS_ONLY)?;
        let k1 = sc.params.index(&self.p1)?;
        let k2 = sc.params.index(&self.p2)?;
        self.output.check()?;
        Ok((sc, Plane::new(k1, self.p1_range, k2, self.p2_range)))
    }
}

pub fn run_continue(args: &ContinueArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, state| continue_with(&m, args, &state))
}

fn continue_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &ContinueArgs,
    state: &dyn Fn(&[f64]) -> String,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (sc, _) = args
        .scenario
        .build_for_with(model, "continue", Unused::PARAMETERS_ONLY)?;
    let k = sc.params.index(&args.param)?;
    args.output.check()?;
    let started = std::time::Instant::now();
    let c = continue_equilibria(
        model,
        sc.params.values(),
        k,
        args.from,
        args.to,
        &ContinuationOptions::default(),
    )
    .map_err(flags_of_range)?;
    let elapsed = ms(started);
    args.output.write(|w| continuation_csv(w, model, &c))?;
    for (b, p) in c.special_points() {
        // Hopf points: frequency, first Lyapunov coefficient and criticality.
        let hopf = p.hopf.map_or(String::new(), |h| {
            format!(
                "; ω = {}/min, l1 = {:+.1e}: {}{}",
                significant(h.omega, 4),
                h.l1,
                h.criticality.name(),
                if h.located == Located::RegulaFalsi {
                    ", located by regula falsi"
                } else {
                    ""
                }
            )
        });
        eprintln!(
            "{} at {} = {} on branch {} ({}{hopf})",
            p.special.map_or("", |s| s.name()),
            c.param,
            Num(p.mu),
            b + 1,
            state(p.x.as_slice()),
        );
    }
    let mut incomplete = 0;
    for (b, br) in c.branches.iter().enumerate() {
        if !br.end.complete() {
            incomplete += 1;
            eprintln!(
                "branch {} {} (its points so far are in the CSV)",
                b + 1,
                br.end.describe(&c.param)
            );
        }
    }
    match bistable_intervals(model, &c) {
        Ok(b) if b.is_empty() => eprintln!("bistable: nowhere in the range"),
        Ok(b) => {
            for i in b {
                eprintln!(
                    "bistable for {} in ({} [{}], {} [{}])",
                    c.param,
                    Num(i.lo.mu),
                    i.lo.describe(),
                    Num(i.hi.mu),
                    i.hi.describe()
                );
            }
        }
        Err(e) => eprintln!("bistable region: {e}"),
    }
    eprintln!(
        "{} branches, {} steps; {elapsed:.2} ms",
        c.branches.len(),
        c.steps,
    );
    // Partial output is written and explained, but not passed off as a complete answer.
    if incomplete > 0 {
        return Err(Error::Invalid(format!(
            "{incomplete} of {} branches were not followed to the end of the range (see above)",
            c.branches.len()
        )));
    }
    Ok(())
}

/// The continuation's range ends as the flags that set them.
fn flags_of_range(e: Error) -> Error {
    match e {
        Error::OutOfRange { name, value, range } => {
            let name = match name.rsplit_once(' ') {
                Some((param, end @ ("from" | "to"))) => format!("{param} --{end}"),
                _ => name,
            };
            Error::OutOfRange { name, value, range }
        }
        e => e,
    }
}

/// Computes curves in the plane of `args` and writes their CSV; returns them with the time
/// the computation took (ms).
fn traced<T, M: Model<N>, const N: usize>(
    model: &M,
    command: &str,
    args: &PlaneArgs,
    compute: impl FnOnce(&[f64], &Plane, &ContinuationOptions) -> Result<T, Error>,
    csv: impl FnOnce(&mut dyn std::io::Write, &T) -> Result<(), Error>,
) -> Result<(T, f64), Error> {
    let (sc, plane) = args.prepare(model, command)?;
    let started = std::time::Instant::now();
    let curves = compute(sc.params.values(), &plane, &ContinuationOptions::default())?;
    let elapsed = ms(started);
    args.output.write(|w| csv(w, &curves))?;
    Ok((curves, elapsed))
}

pub fn run_fold_curve(args: &PlaneArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, _state| fold_curve_with(&m, args))
}

fn fold_curve_with<M: Model<N>, const N: usize>(model: &M, args: &PlaneArgs) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (fc, elapsed) = traced(
        model,
        "fold-curve",
        args,
        |p, plane, opts| fold_curves(model, p, plane, opts),
        |w, fc| fold_curve_csv(w, model, fc),
    )?;
    for pt in fc.special_points() {
        eprintln!(
            "{} at {} = {}, {} = {}",
            pt.special.map_or("", |s| s.name()),
            fc.p1,
            pt.mu1,
            fc.p2,
            pt.mu2
        );
    }
    eprintln!(
        "{} fold curves, {} steps; {elapsed:.2} ms",
        fc.curves.len(),
        fc.steps,
    );
    Ok(())
}

pub fn run_hopf_curve(args: &PlaneArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, state| hopf_curve_with(&m, args, &state))
}

fn hopf_curve_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &PlaneArgs,
    state: &dyn Fn(&[f64]) -> String,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (hc, elapsed) = traced(
        model,
        "hopf-curve",
        args,
        |p, plane, opts| hopf_curves(model, p, plane, opts),
        |w, hc| hopf_curve_csv(w, model, hc),
    )?;
    for (c, pt) in hc.special_points() {
        let kind = pt.kind.map_or("", |k| k.name());
        let omega = if pt.omega > 0.0 {
            format!("; ω = {:.4}/min", pt.omega)
        } else {
            String::new()
        };
        eprintln!(
            "{kind} at {} = {}, {} = {} on curve {} ({}{omega})",
            hc.p1,
            pt.mu1,
            hc.p2,
            pt.mu2,
            c + 1,
            state(pt.x.as_slice()),
        );
    }
    for (c, curve) in hc.curves.iter().enumerate() {
        eprintln!(
            "curve {}: {} points, ends: {}, {}",
            c + 1,
            curve.points.len(),
            curve.ends[0].name(),
            curve.ends[1].name()
        );
    }
    for mu in &hc.unstarted {
        eprintln!(
            "no curve could be started from the Hopf point at {} = {mu}",
            hc.p1
        );
    }
    eprintln!(
        "{} Hopf curves, {} steps; {elapsed:.2} ms",
        hc.curves.len(),
        hc.steps,
    );
    Ok(())
}
