//! Files written whole or not at all: the checks every command makes before any work (no
//! clobbering without `force`, no directory where a file goes, no file named twice) and the
//! atomic write through a temporary file in the target's directory. Utility layer: no
//! knowledge of models or results.

use crate::error::Error;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files and directories alive in this process, for [`remove_temporaries`].
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary path on the list that [`remove_temporaries`] clears; off the list when dropped
/// (by then it was moved into place or removed by its owner).
pub(crate) struct Temporary(PathBuf);

impl Temporary {
    pub(crate) fn register(path: &Path) -> Self {
        if let Ok(mut list) = TEMPORARIES.lock() {
            list.push(path.to_path_buf());
        }
        Self(path.to_path_buf())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Ok(mut list) = TEMPORARIES.lock() {
            if let Some(i) = list.iter().position(|p| *p == self.0) {
                list.swap_remove(i);
            }
        }
    }
}

/// Removes every temporary file and staging directory that this process's writes have open:
/// for a program that is interrupted (Ctrl-C, SIGTERM) and exits at once, so that no hidden
/// `.NAME.*.tmp` or `.report.*` is left behind. Outputs already moved into place stay.
pub fn remove_temporaries() {
    let list = match TEMPORARIES.lock() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    for p in list.iter() {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `path` with every symbolic link in its last component followed, dangling ones included
/// (a link to a file not yet written resolves to that file), at most 40 deep.
fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(target) => p = parent_dir(&p).join(target),
                Err(_) => break,
            },
            _ => break,
        }
    }
    p
}

/// Where writing `path` lands: links followed ([`follow_links`]), the directory made
/// canonical.
pub(crate) fn real_target(path: &Path) -> Result<PathBuf, Error> {
    let p = follow_links(path);
    let dir = parent_dir(&p);
    let dir = dir.canonicalize().map_err(|e| io_err(&dir, e))?;
    Ok(match p.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Whether `path` exists and is neither a regular file nor a directory: a device such as
/// `/dev/null` or `/dev/stdout`, a FIFO or a socket. Such targets are written in place.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Refuses a directory where a file is to be written.
pub(crate) fn refuse_directory(path: &Path) -> Result<(), Error> {
    // `out/` names a directory even when none exists (the path would drop the slash).
    let text = path.as_os_str().to_string_lossy();
    if path.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(Error::Invalid(format!(
            "{} is a directory; give a file name",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses an existing `path` unless `force` ([`Error::Exists`]); devices, FIFOs and sockets
/// are not refused: writing to them replaces nothing.
pub fn check_target(path: &Path, force: bool) -> Result<(), Error> {
    refuse_directory(path)?;
    if is_special(path) {
        return Ok(());
    }
    if !force && path.exists() {
        return Err(Error::Exists {
            path: path.display().to_string(),
            resumable: false,
        });
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
        let real = real_target(p)?;
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

/// Refuses an output that is one of a command's inputs (links followed), naming both.
pub fn refuse_inputs(outputs: &[&Path], inputs: &[&Path], command: &str) -> Result<(), Error> {
    for out in outputs {
        let Ok(target) = real_target(out) else {
            continue;
        };
        for input in inputs {
            if real_target(input).is_ok_and(|r| r == target) {
                return Err(Error::Invalid(format!(
                    "{} is an input of {command} ({}); write it elsewhere",
                    out.display(),
                    input.display()
                )));
            }
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` through a temporary file in the same directory that takes its place only
/// once `write` has succeeded: a failure or a crash never leaves half a file. Without `force`
/// the temporary file is moved in only if nothing is there by then (an atomic no-clobber
/// rename, so a file created meanwhile by another process is not replaced either). A symbolic
/// link is followed (the file it points to is replaced, not the link); a device, FIFO or
/// socket (`/dev/null`, `/dev/stdout`) is written in place, never replaced.
pub fn write_atomic(
    path: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    stage(path, force, write)?.commit()
}

/// A file written to its temporary twin and not yet moved into place ([`stage`]); dropped
/// without [`Staged::commit`], the temporary file is removed and nothing is written.
pub struct Staged {
    tmp: Option<tempfile::NamedTempFile>,
    path: PathBuf,
    force: bool,
    _registered: Option<Temporary>,
}

impl Staged {
    /// Moves the file into place (see [`write_atomic`]).
    pub fn commit(self) -> Result<(), Error> {
        let Some(tmp) = self.tmp else {
            return Ok(());
        };
        let path = self.path.as_path();
        let persisted = if self.force {
            tmp.persist(path)
        } else {
            tmp.persist_noclobber(path)
        };
        // On failure the temporary file is removed when the error drops it.
        persisted.map(|_| ()).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists {
                    path: path.display().to_string(),
                    resumable: false,
                }
            } else {
                io_err(path, e.error)
            }
        })
    }
}

/// The first half of [`write_atomic`]: `write` fills a temporary file beside `path`, which
/// [`Staged::commit`] moves into place. A command with several outputs stages them all and
/// commits them only when every one was written, so that it writes all its outputs or none. A
/// device, FIFO or socket is written at once (nothing can be taken back there): stage those
/// last.
pub fn stage(
    path: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<Staged, Error> {
    check_target(path, force)?;
    if is_special(path) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        w.flush().map_err(|e| io_err(path, e))?;
        return Ok(Staged {
            tmp: None,
            path: path.to_path_buf(),
            force,
            _registered: None,
        });
    }
    // Replace what a link points to (even a file not yet written), not the link.
    let resolved = real_target(path)?;
    let path = resolved.as_path();
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", path.display())))?;
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Created as any new file is (0666 less the umask), not owner-only; a file replaced keeps
    // its permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(parent_dir(path))
        .map_err(|e| io_err(path, e))?;
    let registered = Temporary::register(tmp.path());
    if let Ok(m) = std::fs::metadata(path) {
        let _ = tmp.as_file().set_permissions(m.permissions());
    }
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| io_err(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| io_err(path, e))?;
    Ok(Staged {
        tmp: Some(tmp),
        path: resolved,
        force,
        _registered: Some(registered),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    /// A second hold on a file fails at once, naming the file and the lock, while the first
    /// lives (locks belong to open files, so this holds within one process as between two);
    /// once the first is dropped the file can be held again.
    #[test]
    fn a_held_file_cannot_be_held_twice() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.csv");
        let first = hold(&out).unwrap();
        let e = hold(&out).unwrap_err().to_string();
        assert!(
            e.contains("s.csv is being written by another run") && e.contains("s.csv.lock"),
            "{e}"
        );
        drop(first);
        let _again = hold(&out).unwrap();
    }

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

    #[test]
    fn a_file_created_during_the_write_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        // Another process creates the target after the checks, while we are writing.
        let e = write_atomic(&target, false, |w| {
            std::fs::write(&target, "theirs").unwrap();
            w.write_all(b"ours").map_err(|e| Error::write("test", e))
        })
        .unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // With force it is replaced.
        write_atomic(&target, true, |w| {
            w.write_all(b"ours").map_err(|e| Error::write("test", e))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "ours");
    }
}

/// An exclusive hold on a file being written in place (a sweep's CSV, appended to by
/// `--resume`): the lock file `FILE.lock` beside it, locked by the operating system for as
/// long as the value lives and released when the process ends, however it ends. The lock
/// file itself stays (removing it could let a third run lock a new file while a second holds
/// the old one).
#[derive(Debug)]
pub(crate) struct Hold {
    _file: std::fs::File,
}

/// Takes the exclusive hold on `path`, or fails at once naming the file when another run
/// holds it.
pub(crate) fn hold(path: &Path) -> Result<Hold, Error> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| Error::Io {
            path: lock.display().to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Hold { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Invalid(format!(
            "{} is being written by another run (it holds {}); wait for it to finish or write elsewhere",
            path.display(),
            lock.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            path: lock.display().to_string(),
            source,
        }),
    }
}
