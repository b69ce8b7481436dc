//! Progress of long jobs — sweep rows, stochastic runs, calibration starts, the report's
//! steps — handed to a process-wide sink that an application installs once (the command line
//! installs one that draws a line on a terminal). Without a sink nothing is reported and the
//! calls cost one atomic load. Utility layer: the library never writes to a terminal itself.

use std::sync::OnceLock;

/// Where progress goes.
pub trait Sink: Send + Sync {
    /// `done` of `total` units of `job` are finished (called from any thread, possibly often:
    /// a sink throttles its own drawing).
    fn update(&self, job: &str, done: usize, total: usize);
    /// `job` is over (its line can be cleared).
    fn finish(&self, job: &str);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the process-wide sink; `false` if one was installed before (it stays).
pub fn install(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Reports progress of `job` to the sink, if any.
pub fn update(job: &str, done: usize, total: usize) {
    if let Some(s) = SINK.get() {
        s.update(job, done, total);
    }
}

/// Reports the end of `job` to the sink, if any.
pub fn finish(job: &str) {
    if let Some(s) = SINK.get() {
        s.finish(job);
    }
}
