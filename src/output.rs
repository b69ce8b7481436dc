//! Outputs: trajectory CSV and files written whole or not at all.

use crate::error::Error;
use crate::model::Model;
use crate::scenario::Scenario;
use crate::simulate::Simulation;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses an existing `path` unless `force`.
pub fn check_target(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists; pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same directory that is renamed over it only
/// once `write` has succeeded: a failure or a crash never leaves half a file, and an existing
/// file is replaced only with `force`.
pub fn write_atomic(
    path: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    check_target(path, force)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| io_err(path, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(path, e))?;
        check_target(path, force)?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a sampled trajectory as CSV: `t`, the states, then the model's extra columns
/// (`t,peers,supernodes,queue,offline,utilisation` for the reference model). With `absolute`,
/// populations are user counts instead of fractions.
pub fn trajectory_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    scenario: &Scenario,
    sim: &Simulation<N>,
    dt: f64,
    absolute: bool,
) -> Result<(), Error> {
    let mut w = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
    let extras = model.extra_columns();
    let mut header = vec!["t".to_string()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(extras.iter().map(|(n, _)| n.to_string()));
    w.write_record(&header).map_err(csv_err)?;
    let scale = if absolute { scenario.population } else { 1.0 };
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for (t, x) in sim.sample(dt) {
        row.clear();
        row.push(format!("{t}"));
        row.extend(x.iter().map(|v| format!("{}", v * scale)));
        let p = scenario.params_at(t);
        for ((_, is_pop), v) in extras.iter().zip(model.extra_values(&x, &p)) {
            row.push(format!("{}", if *is_pop { v * scale } else { v }));
        }
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush()
        .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))?;
    Ok(())
}
