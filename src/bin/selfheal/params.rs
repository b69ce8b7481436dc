//! `selfheal params`: the reference model's parameter table.

use crate::args::significant;
use selfheal::model::{Model, P2p};
use selfheal::Error;
use std::io::Write;

pub fn run() -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let specs = P2p.params();
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
