//! `selfheal params`: a model's parameter table (the reference model's by default).

use crate::args::significant;
use clap::Args;
use selfheal::model::{Model, P2p, ParamSpec};
use selfheal::modelfile::ModelFile;
use selfheal::Error;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct ParamsArgs {
    /// Model file (TOML) whose parameters to list instead of the built-in model's.
    #[arg(long, value_name = "FILE.toml")]
    model: Option<PathBuf>,
}

pub fn run(args: &ParamsArgs) -> Result<(), Error> {
    match &args.model {
        Some(path) => table(ModelFile::load(path)?.params()),
        None => table(P2p.params()),
    }
}

fn table(specs: &[ParamSpec]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let w = specs.iter().map(|s| s.name.len()).max().unwrap_or(4);
    let mut line = |s: String| {
        writeln!(out, "{s}").map_err(|e| Error::Io {
            path: "standard output".into(),
            source: e,
        })
    };
    line(format!(
        "{:w$}  {:4}  {:8}  {:>10}  {:18}  meaning",
        "name", "sym", "unit", "default", "range"
    ))?;
    for s in specs {
        line(format!(
            "{:w$}  {:4}  {:8}  {:>10}  {:18}  {}",
            s.name,
            s.symbol,
            s.unit,
            significant(s.default, 6),
            s.range_text(),
            s.meaning
        ))?;
    }
    Ok(())
}
