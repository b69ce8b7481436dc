//! Sweep files: rows appended in order and flushed whole, a fingerprint beside the CSV, resume,
//! shards and their merge.

use super::Sweep;
use crate::error::Error;
use crate::model::Model;
use nalgebra::{Const, DimMin};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The `K`-th of `N` deterministic parts of a sweep (K from 1): rows
/// `[⌊(K−1)·R/N⌋, ⌊K·R/N⌋)` of `R`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 1.
    pub k: usize,
    /// How many parts.
    pub n: usize,
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || Error::Invalid(format!("shard `{text}`: expected K/N with 1 <= K <= N"));
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    /// The rows of this shard out of `total`.
    pub fn rows(&self, total: usize) -> std::ops::Range<usize> {
        let at = |j: usize| ((j as u128 * total as u128) / self.n as u128) as usize;
        at(self.k - 1)..at(self.k)
    }
}

/// What identifies a sweep's output: its full definition, the row count and the shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint(pub Value);

impl Fingerprint {
    /// The fingerprint of a sweep (and shard).
    pub fn of<M: Model<N>, const N: usize>(sweep: &Sweep<'_, M, N>, shard: Option<Shard>) -> Self
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        let mut fp = json!({
            "format": "selfheal-sweep-1",
            "selfheal_version": env!("CARGO_PKG_VERSION"),
            "model": sweep.model.name(),
            "scenario": sweep.base().to_json(),
            "design": sweep.design(),
            "metrics": sweep.metric_names(),
            "simulation": sweep.sim,
            "tipping": { "tol": sweep.tipping.tol, "scan": sweep.tipping.scan, "solve": sweep.tipping.solve },
            "rows": sweep.len(),
            "shard": shard.map(|s| format!("{}/{}", s.k, s.n)),
        });
        // A model file's definition: the same name with other equations is another sweep.
        if let (Some(d), Some(obj)) = (sweep.model.definition(), fp.as_object_mut()) {
            obj.insert("model_definition".into(), json!(d));
        }
        Fingerprint(fp)
    }

    /// The file beside a sweep's CSV that holds its fingerprint.
    pub fn path_for(csv: &Path) -> PathBuf {
        let mut name = csv.as_os_str().to_owned();
        name.push(".sweep.json");
        PathBuf::from(name)
    }

    fn read(csv: &Path) -> Result<Self, Error> {
        let side = Self::path_for(csv);
        let text = std::fs::read_to_string(&side).map_err(|e| {
            Error::Io {
                path: side.display().to_string(),
                source: e,
            }
            .context(format!(
                "{}: no readable sweep fingerprint beside it",
                csv.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map(Fingerprint)
            .map_err(|e| Error::Parse {
                file: Some(side.display().to_string()),
                line: Some(e.line()),
                message: e.to_string(),
            })
    }

    fn write(&self, csv: &Path) -> Result<(), Error> {
        let side = Self::path_for(csv);
        crate::files::write_atomic(&side, true, |w| {
            serde_json::to_writer_pretty(&mut *w, &self.0)
                .map_err(|e| Error::Invalid(format!("{}: {e}", side.display())))?;
            writeln!(w).map_err(|e| Error::write(side.display().to_string(), e))
        })
    }

    /// The first place where two fingerprints differ, as `key: this vs that`.
    pub fn difference(&self, other: &Fingerprint) -> Option<String> {
        /// A leaf as a person reads it: strings without quotes, numbers and flags as they are.
        /// Tables and lists are summarised by their fields or length, not printed as JSON.
        fn plain(v: &Value) -> String {
            match v {
                Value::String(s) => s.clone(),
                Value::Null => "nothing".into(),
                Value::Object(m) => {
                    let fields: Vec<String> = m
                        .iter()
                        .filter(|(_, v)| !matches!(v, Value::Object(_) | Value::Array(_)))
                        .map(|(k, v)| format!("{k} = {}", plain(v)))
                        .collect();
                    if fields.is_empty() {
                        "a table".into()
                    } else {
                        format!("({})", fields.join(", "))
                    }
                }
                Value::Array(a) if a.len() == 1 => plain(&a[0]),
                Value::Array(a) => format!("{} entries", a.len()),
                other => other.to_string(),
            }
        }
        fn walk(path: &str, a: &Value, b: &Value) -> Option<String> {
            let join = |k: &str| {
                if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                }
            };
            match (a, b) {
                (Value::Object(x), Value::Object(y)) => {
                    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    keys.into_iter().find_map(|k| {
                        walk(
                            &join(k),
                            x.get(k).unwrap_or(&Value::Null),
                            y.get(k).unwrap_or(&Value::Null),
                        )
                    })
                }
                (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                    .iter()
                    .zip(y)
                    .enumerate()
                    .find_map(|(i, (u, v))| walk(&format!("{path}[{}]", i + 1), u, v)),
                (Value::Array(x), Value::Array(y)) => Some(format!(
                    "{path}: {} entries in the file, {} now",
                    x.len(),
                    y.len()
                )),
                _ if a == b => None,
                _ => Some(format!(
                    "{path}: {} in the file, {} now",
                    plain(a),
                    plain(b)
                )),
            }
        }
        walk("", &self.0, &other.0)
    }
}

/// How to treat an existing output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFile {
    /// Refuse an existing file.
    Fresh,
    /// Compute exactly the rows it lacks (it must come from the same sweep).
    Resume,
    /// Start again, replacing it.
    Force,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// One CSV record as bytes.
fn record(fields: &[String]) -> Result<Vec<u8>, Error> {
    let mut w = csv::WriterBuilder::new().from_writer(vec![]);
    w.write_record(fields)
        .map_err(|e| Error::csv_write("a sweep row", e))?;
    w.into_inner()
        .map_err(|e| Error::write("a sweep row", e.into_error()))
}

/// Counts the complete rows after the header and cuts off a partial last line; `None` for a
/// file without a complete header (it is then written anew).
fn complete_rows(path: &Path, header: &[u8]) -> Result<Option<usize>, Error> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| io(path, e))?;
    if n == 0 || (line.last() != Some(&b'\n') && header.starts_with(&line)) {
        return Ok(None);
    }
    if line != header {
        return Err(Error::Invalid(format!(
            "{}: its header differs from this sweep's; it was written by a different sweep",
            path.display()
        )));
    }
    let mut good_len = n as u64;
    let mut rows = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io(path, e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        good_len += n as u64;
        rows += 1;
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    file.set_len(good_len).map_err(|e| io(path, e))?;
    Ok(Some(rows))
}

/// Runs a sweep (or one shard of it) into a CSV file, appending rows in order and flushing them
/// whole; with `Resume`, only the rows the file lacks. Returns the number of rows computed.
pub fn run_to_file<M: Model<N>, const N: usize>(
    sweep: &Sweep<'_, M, N>,
    path: &Path,
    mode: RunFile,
    shard: Option<Shard>,
    threads: usize,
) -> Result<usize, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    // Every refusal before the file is touched.
    super::check_threads(threads)?;
    // Through a link, the file it points to: its lock and fingerprint sit beside it, so a run
    // through the link and one on the file itself cannot both write it.
    let resolved;
    let path = if crate::files::is_special(path) {
        path
    } else {
        resolved = crate::files::real_target(path)?;
        resolved.as_path()
    };
    let total = sweep.len();
    let range = shard.map_or(0..total, |s| s.rows(total));
    let fingerprint = Fingerprint::of(sweep, shard);
    let header = record(&sweep.header())?;
    let target = Target::open(path, mode, &fingerprint, &header, range.len())?;
    let Target {
        mut file,
        done,
        special,
        _hold,
    } = target;
    let start = range.start + done;
    let mut written = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    sweep.run(start..range.end, threads, |i, row| {
        buf.extend(record(row)?);
        written += 1;
        // Whole chunks reach the file in one write.
        if written.is_multiple_of(256) || i + 1 == range.end {
            file.write_all(&buf).map_err(|e| io(path, e))?;
            file.flush().map_err(|e| io(path, e))?;
            buf.clear();
            crate::progress::update("sweep rows", done + written, range.len());
        }
        Ok(())
    })?;
    if !buf.is_empty() {
        file.write_all(&buf).map_err(|e| io(path, e))?;
        file.flush().map_err(|e| io(path, e))?;
    }
    crate::progress::finish("sweep rows");
    if !special {
        file.sync_all().map_err(|e| io(path, e))?;
    }
    Ok(written)
}

/// The file a sweep writes into, opened for its rows: positioned after the `done` rows an
/// earlier run completed (with `Resume`) or after a fresh header, under the hold that keeps
/// other runs out (none for a device or pipe, which takes the rows as they come).
struct Target {
    file: File,
    done: usize,
    special: bool,
    _hold: Option<crate::files::Hold>,
}

impl Target {
    /// Opens `path` for a sweep with `fingerprint` and `header` that has `rows` rows: refuses a
    /// directory, an existing file without `Resume` or `Replace`, a file of another sweep, or
    /// one holding more rows than the sweep; writes the fingerprint beside a regular file.
    fn open(
        path: &Path,
        mode: RunFile,
        fingerprint: &Fingerprint,
        header: &[u8],
        rows: usize,
    ) -> Result<Self, Error> {
        crate::files::refuse_directory(path)?;
        // A device, FIFO or socket (`/dev/stdout`, a pipe) takes the rows as they come: nothing
        // is replaced, there is nothing to resume, and no fingerprint goes beside it.
        let special = crate::files::is_special(path);
        if special && mode == RunFile::Resume {
            return Err(Error::Invalid(format!(
                "{} is not a regular file; only the file an earlier run wrote can be completed",
                path.display()
            )));
        }
        let exists = path.exists() && !special;
        if exists && mode == RunFile::Fresh {
            return Err(Error::Exists {
                path: path.display().to_string(),
                resumable: true,
            });
        }
        // One writer at a time: the check of what is there and every row appended happen
        // under the hold (two `--resume` runs on one file would otherwise both append the
        // missing rows).
        let hold = if special {
            None
        } else {
            Some(crate::files::hold(path)?)
        };
        let done = if exists && mode == RunFile::Resume {
            Self::completed(path, fingerprint, header, rows)?
        } else {
            None
        };
        let file = match done {
            Some(_) => {
                fingerprint.write(path)?;
                let mut f = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| io(path, e))?;
                f.seek(SeekFrom::End(0)).map_err(|e| io(path, e))?;
                f
            }
            None => {
                let mut f = if special {
                    OpenOptions::new().write(true).open(path)
                } else {
                    fingerprint.write(path)?;
                    File::create(path)
                }
                .map_err(|e| io(path, e))?;
                f.write_all(header).map_err(|e| io(path, e))?;
                f.flush().map_err(|e| io(path, e))?;
                f
            }
        };
        Ok(Self {
            file,
            done: done.unwrap_or(0),
            special,
            _hold: hold,
        })
    }

    /// The complete rows an earlier run of the same sweep left in `path` (`None` when there is
    /// no complete header to append to).
    fn completed(
        path: &Path,
        fingerprint: &Fingerprint,
        header: &[u8],
        rows: usize,
    ) -> Result<Option<usize>, Error> {
        let old = Fingerprint::read(path)?;
        if let Some(diff) = old.difference(fingerprint) {
            return Err(Error::Invalid(format!(
                "{} was written by a different sweep ({diff}); write to another file or replace it",
                path.display()
            )));
        }
        let done = complete_rows(path, header)?;
        if let Some(d) = done {
            if d > rows {
                return Err(Error::Invalid(format!(
                    "{} holds {d} rows, more than this sweep's {rows}",
                    path.display()
                )));
            }
        }
        Ok(done)
    }
}

/// Joins complete shards into exactly the file a single run writes, with its fingerprint.
pub fn merge(shards: &[PathBuf], out: &Path, force: bool) -> Result<usize, Error> {
    if shards.is_empty() {
        return Err(Error::Invalid("merge needs at least one shard".into()));
    }
    // The merged file must not replace one of its own inputs (a shard or its fingerprint).
    if let Ok(target) = out.canonicalize() {
        for s in shards
            .iter()
            .flat_map(|s| [s.clone(), Fingerprint::path_for(s)])
        {
            if s.canonicalize().is_ok_and(|c| c == target) {
                return Err(Error::Invalid(format!(
                    "{} is an input of the merge (a shard or its fingerprint); write the merge elsewhere",
                    s.display()
                )));
            }
        }
    }
    let mut parts = vec![];
    for path in shards {
        let fp = Fingerprint::read(path)?;
        let shard = fp.0["shard"]
            .as_str()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} is not a shard (its fingerprint names no shard)",
                    path.display()
                ))
            })
            .and_then(Shard::parse)?;
        parts.push((shard, fp, path.clone()));
    }
    parts.sort_by_key(|(s, _, _)| s.k);
    let n = parts[0].0.n;
    let mut base = parts[0].1.clone();
    base.0["shard"] = Value::Null;
    for (k, (s, fp, path)) in parts.iter().enumerate() {
        if s.n != n {
            return Err(Error::Invalid(format!(
                "{} is shard {}/{}, but {} is shard {}/{n}",
                path.display(),
                s.k,
                s.n,
                parts[0].2.display(),
                parts[0].0.k
            )));
        }
        let mut mine = fp.clone();
        mine.0["shard"] = Value::Null;
        if let Some(diff) = mine.difference(&base) {
            return Err(Error::Invalid(format!(
                "{} comes from a different sweep than {} ({diff})",
                path.display(),
                parts[0].2.display()
            )));
        }
        if s.k != k + 1 {
            return Err(Error::Invalid(format!(
                "shard {}/{n} is missing or given twice",
                k + 1
            )));
        }
    }
    if parts.len() != n {
        return Err(Error::Invalid(format!(
            "shard {}/{n} is missing",
            parts.len() + 1
        )));
    }
    let total = base.0["rows"].as_u64().unwrap_or(0) as usize;
    let mut header: Option<Vec<u8>> = None;
    let mut bodies = vec![];
    for (s, _, path) in &parts {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let cut = bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        let (h, body) = bytes.split_at(cut);
        match &header {
            None => header = Some(h.to_vec()),
            Some(h0) if h0 != h => {
                return Err(Error::Invalid(format!(
                    "{}: header differs from the first shard's",
                    path.display()
                )))
            }
            _ => {}
        }
        let rows = body.iter().filter(|b| **b == b'\n').count();
        let want = s.rows(total).len();
        if rows != want || body.last().is_some_and(|b| *b != b'\n') {
            return Err(Error::Invalid(format!(
                "{} holds {rows} complete rows of {want}: complete that shard first",
                path.display()
            )));
        }
        bodies.push(body.to_vec());
    }
    crate::files::write_atomic(out, force, |w| {
        let err = |e: std::io::Error| Error::Io {
            path: out.display().to_string(),
            source: e,
        };
        w.write_all(header.as_deref().unwrap_or_default())
            .map_err(err)?;
        for b in &bodies {
            w.write_all(b).map_err(err)?;
        }
        Ok(())
    })?;
    // No fingerprint beside a device or pipe (there is no file to resume).
    if !crate::files::is_special(out) {
        base.write(out)?;
    }
    Ok(total)
}
