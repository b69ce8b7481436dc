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

/// Whether `path` exists and is neither a regular file nor a directory: a device such as
/// `/dev/null` or `/dev/stdout`, a FIFO or a socket. Such targets are written in place.
pub(crate) fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Refuses a directory where a file is to be written.
pub(crate) fn refuse_directory(path: &Path) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a directory; give a file name",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses an existing `path` unless `force` (devices, FIFOs and sockets are not refused:
/// writing to them replaces nothing).
pub fn check_target(path: &Path, force: bool) -> Result<(), Error> {
    refuse_directory(path)?;
    if is_special(path) {
        return Ok(());
    }
    if !force && path.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists; pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// Checks every output of one command before any work: each may be written
/// ([`check_target`]), its directory exists, and no file is named twice (links followed), so
/// that a command writes all its outputs or none.
pub fn check_targets(paths: &[&Path], force: bool) -> Result<(), Error> {
    let mut seen: Vec<PathBuf> = vec![];
    for p in paths {
        check_target(p, force)?;
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = dir.canonicalize().map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let real = p
            .canonicalize()
            .unwrap_or_else(|_| dir.join(p.file_name().unwrap_or_default()));
        if seen.contains(&real) {
            return Err(Error::Invalid(format!(
                "{} is named as two outputs of one command",
                p.display()
            )));
        }
        seen.push(real);
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same directory that is renamed over it only
/// once `write` has succeeded: a failure or a crash never leaves half a file, and an existing
/// file is replaced only with `force`. A symbolic link is followed (the file it points to is
/// replaced, not the link); a device, FIFO or socket (`/dev/null`, `/dev/stdout`) is written
/// in place, never replaced.
pub fn write_atomic(
    path: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    check_target(path, force)?;
    if is_special(path) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        return w.flush().map_err(|e| io_err(path, e));
    }
    // Replace what a link points to, not the link.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path).map_err(|e| io_err(path, e))?;
            resolved.as_path()
        }
        _ => path,
    };
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

fn csv_error(e: csv::Error) -> Error {
    Error::Invalid(format!("writing CSV: {e}"))
}

/// Writes equilibria as CSV: the states, then
/// `stable,max_real_eig,kind,unstable_dims,residual,eigenvalues,service_level` (the last empty
/// when the model defines no service level).
pub fn equilibria_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    eq: &[crate::analysis::Equilibrium<N>],
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header: Vec<String> = model.states().iter().map(|s| s.name.to_string()).collect();
    header.extend(
        [
            "stable",
            "max_real_eig",
            "kind",
            "unstable_dims",
            "residual",
            "eigenvalues",
            "service_level",
        ]
        .map(String::from),
    );
    csv.write_record(&header).map_err(csv_error)?;
    for e in eq {
        let eigs: Vec<String> = e
            .stability
            .eigenvalues
            .iter()
            .map(|l| {
                if l.im == 0.0 {
                    format!("{:e}", l.re)
                } else {
                    format!("{:e}{:+e}i", l.re, l.im)
                }
            })
            .collect();
        let mut row: Vec<String> = e.x.iter().map(|v| format!("{v}")).collect();
        row.extend([
            format!("{}", e.kind == crate::analysis::Kind::Stable),
            format!("{:e}", e.stability.max_real),
            e.describe(),
            format!("{}", e.stability.unstable_dims),
            format!("{:e}", e.residual),
            eigs.join(" "),
            model
                .service_level(&e.x)
                .map_or(String::new(), |v| format!("{v}")),
        ]);
        csv.write_record(&row).map_err(csv_error)?;
    }
    csv.flush()
        .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
}

/// Writes a continuation as CSV: the parameter, the states, then
/// `stable,point,branch,max_real_eig,omega,l1`; one row per accepted step of every branch,
/// `point` set (`fold`, `hopf`) on located special points, `omega` (the critical pair's
/// imaginary part) and `l1` (the first Lyapunov coefficient) on Hopf points only.
pub fn continuation_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    c: &crate::analysis::continuation::Continuation<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![c.param.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["stable", "point", "branch", "max_real_eig", "omega", "l1"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (b, br) in c.branches.iter().enumerate() {
        for pt in &br.points {
            let mut row = vec![format!("{}", pt.mu)];
            row.extend(pt.x.iter().map(|v| format!("{v}")));
            row.extend([
                format!("{}", pt.stable),
                pt.special.map_or(String::new(), |s| s.name().to_string()),
                format!("{}", b + 1),
                format!("{:e}", pt.max_real),
                pt.hopf.map_or(String::new(), |h| format!("{}", h.omega)),
                pt.hopf.map_or(String::new(), |h| format!("{:e}", h.l1)),
            ]);
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush()
        .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
}

/// Writes fold curves as CSV: the two parameters, the states, then `point,curve`; one row per
/// step of every curve, `point` set on located codimension-two points (`cusp`, `bt`, `zh`).
pub fn fold_curve_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    fc: &crate::analysis::codim2::FoldCurves<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![fc.p1.clone(), fc.p2.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["point", "curve"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (c, curve) in fc.curves.iter().enumerate() {
        for pt in &curve.points {
            let mut row = vec![format!("{}", pt.mu1), format!("{}", pt.mu2)];
            row.extend(pt.x.iter().map(|v| format!("{v}")));
            row.push(pt.special.map_or(String::new(), |s| s.name().to_string()));
            row.push(format!("{}", c + 1));
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush()
        .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
}

/// Writes Hopf curves in two parameters as CSV: the two parameters, the states, then
/// `omega,l1,point,curve`; one row per point of every curve, in order along it, `point` set
/// (`bautin`, `bt`) on located codimension-two points, `l1` empty where it is not defined (at a
/// Bogdanov–Takens point).
pub fn hopf_curve_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    hc: &crate::analysis::hopf_curve::HopfCurves<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![hc.p1.clone(), hc.p2.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["omega", "l1", "point", "curve"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (c, curve) in hc.curves.iter().enumerate() {
        for pt in &curve.points {
            let mut row = vec![format!("{}", pt.mu1), format!("{}", pt.mu2)];
            row.extend(pt.x.iter().map(|v| format!("{v}")));
            row.extend([
                format!("{}", pt.omega),
                pt.l1.map_or(String::new(), |l| format!("{l:e}")),
                pt.kind.map_or(String::new(), |k| k.name().to_string()),
                format!("{}", c + 1),
            ]);
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush()
        .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn devices_are_written_in_place_and_links_followed() {
        // Writing to /dev/null must never replace the device with a regular file.
        write_atomic(Path::new("/dev/null"), false, |w| {
            w.write_all(b"x").map_err(|e| Error::Invalid(e.to_string()))
        })
        .unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(m.file_type().is_char_device());

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.csv");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, true, |w| {
            w.write_all(b"new")
                .map_err(|e| Error::Invalid(e.to_string()))
        })
        .unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let e = write_atomic(dir.path(), true, |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
