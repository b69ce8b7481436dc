//! The progress line of long jobs on a terminal: `job: done/total (pct %), elapsed, ETA`,
//! redrawn at most ten times a second on standard error; nothing when standard error is not a
//! terminal or with `--quiet`.

use selfheal::progress::Sink;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Line {
    started: Instant,
    last: Option<Instant>,
    job: String,
}

pub struct Terminal(Mutex<Line>);

impl Terminal {
    /// Installs the terminal line unless `quiet` or standard error is not a terminal.
    pub fn install(quiet: bool) {
        if quiet || !std::io::stderr().is_terminal() {
            return;
        }
        selfheal::progress::install(Box::new(Terminal(Mutex::new(Line {
            started: Instant::now(),
            last: None,
            job: String::new(),
        }))));
    }
}

impl Sink for Terminal {
    fn update(&self, job: &str, done: usize, total: usize) {
        let Ok(mut line) = self.0.lock() else { return };
        let now = Instant::now();
        if line.job != job {
            line.job = job.to_string();
            line.started = now;
            line.last = None;
        }
        if line
            .last
            .is_some_and(|t| now - t < Duration::from_millis(100) && done < total)
        {
            return;
        }
        line.last = Some(now);
        let el = (now - line.started).as_secs_f64();
        let eta = if done > 0 && done < total {
            format!(
                ", about {:.0} s left",
                el / done as f64 * (total - done) as f64
            )
        } else {
            String::new()
        };
        let pct = 100.0 * done as f64 / total.max(1) as f64;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{job}: {done}/{total} ({pct:.0} %), {el:.0} s{eta}"
        );
        let _ = err.flush();
    }

    fn finish(&self, _job: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}
