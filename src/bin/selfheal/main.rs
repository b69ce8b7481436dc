//! The `selfheal` command line: parse, call the library, print. One module per command (its
//! flags and its `run`); what every command shares is in `args`. Everything a command
//! computes or writes lives in the library.

mod args;
mod calibrate;
mod continuation;
mod equilibria;
mod map;
mod params;
mod progress;
mod report;
mod simulate;
mod stochastic;
mod sweep;
mod tipping;

use clap::{Parser, Subcommand};
use selfheal::Error;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "selfheal",
    version,
    about = "Login storms and self-healing in peer-to-peer overlays: simulate, find the tipping point"
)]
struct Cli {
    /// No progress line for long jobs (it is drawn only when standard error is a terminal).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario and write its trajectory as CSV.
    Simulate(Box<simulate::SimulateArgs>),
    /// Print a model's parameter table (the reference model's, or --model FILE's).
    Params(params::ParamsArgs),
    /// Find every equilibrium and its stability (CSV, most peers first).
    Equilibria(Box<equilibria::EquilibriaArgs>),
    /// The smallest instantaneous reboot fraction after which the network does not recover.
    CriticalShock(Box<tipping::CriticalShockArgs>),
    /// The critical shock over a grid of two parameters, followed from cell to cell (CSV: the
    /// parameters, critical_shock, the bracket recovers/collapses, state).
    TippingMap(Box<map::TippingMapArgs>),
    /// For a reboot fraction above f*, the shortest spread of the wave that is still absorbed.
    CriticalWindow(Box<tipping::CriticalWindowArgs>),
    /// Continue every equilibrium branch in one parameter; locate folds and Hopf points.
    Continue(Box<continuation::ContinueArgs>),
    /// The smallest step in a parameter that brings a collapsed network back.
    Rescue(Box<tipping::RescueArgs>),
    /// Folds met in P1, each continued in the plane (P1, P2). A fold curve bounds the bistable
    /// region only where it ends a stable branch (see `continue`, which prints the bistable
    /// interval with its fold and Hopf edges).
    FoldCurve(Box<continuation::PlaneArgs>),
    /// Hopf points met in P1, each continued in the plane (P1, P2) until the frequency vanishes
    /// (a Bogdanov–Takens point) or the curve leaves the ranges; Bautin points (where the Hopf
    /// point turns from sub- to supercritical) are located on the way.
    HopfCurve(Box<continuation::PlaneArgs>),
    /// Run many scenarios (a grid or a sample) and write one CSV row of metrics per scenario.
    Sweep(Box<sweep::SweepArgs>),
    /// Join the shards of a sweep into exactly the file a single run writes.
    Merge(sweep::MergeArgs),
    /// Simulate, find equilibria, f* and tipping points, and write CSVs, figures and report.md.
    Report(Box<report::ReportArgs>),
    /// Stochastic runs of the scenario with a finite population (Gillespie or tau-leaping).
    Stochastic(Box<stochastic::StochasticArgs>),
    /// Fit chosen parameters of a scenario to observed online users; write the fitted scenario.
    Calibrate(Box<calibrate::CalibrateArgs>),
}

/// Parses the command line; negative numbers reach the range checks (see
/// [`args::join_negative_values`]).
fn parse_cli() -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args::join_negative_values(std::env::args_os().collect()))
}

/// The one line an error prints: the library's message, with the flag that fixes it where
/// there is one.
fn describe(e: &Error) -> String {
    match e {
        Error::Exists {
            resumable: false, ..
        } => format!("{e}; pass --force to replace it"),
        Error::Exists {
            resumable: true, ..
        } => format!("{e}; pass --resume to complete it or --force to replace it"),
        Error::Context { context, source } => format!(
            "{}: {}",
            selfheal::error::one_line(context),
            describe(source)
        ),
        e => e.to_string(),
    }
}

/// Output piped into a reader that stops early (`selfheal … | head`): printing to the closed
/// pipe ends the run quietly, as a killed-by-SIGPIPE tool would (exit 141, temporaries
/// removed), instead of a panic message.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            selfheal::files::remove_temporaries();
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line naming the culprit; `--help` has the rest.
            let text = e.render().to_string();
            // clap's first paragraph, on one line (a missing argument is named on the lines
            // below the first).
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            if first.is_empty() {
                eprintln!("error: invalid arguments");
            } else {
                eprintln!("{}", first.join(" "));
            }
            return ExitCode::from(2);
        }
    };
    progress::Terminal::install(cli.quiet);
    quiet_on_closed_stdout();
    // Interrupted (Ctrl-C, SIGTERM, SIGHUP): no temporary file is left behind; outputs not yet
    // moved into place are simply not written.
    let _ = ctrlc::set_handler(|| {
        selfheal::files::remove_temporaries();
        eprintln!("\ninterrupted: temporary files removed; outputs not yet complete were not written (a sweep keeps its rows so far: --resume goes on)");
        std::process::exit(130);
    });
    let result = match cli.command {
        Command::Simulate(a) => simulate::run(&a),
        Command::Params(a) => params::run(&a),
        Command::Equilibria(a) => equilibria::run(&a),
        Command::CriticalShock(a) => tipping::run_critical_shock(&a),
        Command::TippingMap(a) => map::run(&a),
        Command::CriticalWindow(a) => tipping::run_critical_window(&a),
        Command::Continue(a) => continuation::run_continue(&a),
        Command::Rescue(a) => tipping::run_rescue(&a),
        Command::FoldCurve(a) => continuation::run_fold_curve(&a),
        Command::HopfCurve(a) => continuation::run_hopf_curve(&a),
        Command::Sweep(a) => sweep::run(&a),
        Command::Merge(a) => sweep::run_merge(&a),
        Command::Report(a) => report::run(&a),
        Command::Stochastic(a) => stochastic::run(&a),
        Command::Calibrate(a) => calibrate::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`| head`) is not an error of ours.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}
