//! Typed errors: each names the culprit and, where it helps, the allowed range.

use thiserror::Error;

/// Everything that can go wrong in the library. Messages name the culprit in the library's
/// own terms (a parameter, a file, a row), never a command-line flag: the command line adds
/// those. Match on the variants to branch; new variants may be added.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter (or scenario quantity) outside its valid range.
    #[error("`{name}` = {} is out of range: must be {range}", number(*.value))]
    OutOfRange {
        /// Name of the parameter or quantity.
        name: String,
        /// The offending value.
        value: f64,
        /// The allowed range in words.
        range: String,
    },
    /// A parameter name the model does not have.
    #[error("unknown parameter `{name}`{}", hint_text(.hint))]
    UnknownParam {
        /// The name given.
        name: String,
        /// The nearest valid name, if any is close.
        hint: Option<String>,
    },
    /// A key a scenario file may not contain.
    #[error("unknown key `{key}` in {table}{}", hint_text(.hint))]
    UnknownKey {
        /// The key given.
        key: String,
        /// Where it was found.
        table: String,
        /// The nearest valid key, if any is close.
        hint: Option<String>,
    },
    /// A malformed scenario or other invalid input.
    #[error("{0}")]
    Invalid(String),
    /// Text that does not parse: a scenario, a data file, a value; with where it was found.
    #[error("{}{message}", location(.file, .line))]
    Parse {
        /// The file, if the text came from one.
        file: Option<String>,
        /// The line (1-based; in a CSV file the row as a spreadsheet counts it, the header
        /// being line 1), if known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// An output that exists and was not to be replaced.
    #[error("{path} already exists")]
    Exists {
        /// The file.
        path: String,
        /// Whether the existing file is an interrupted run of the same job that can be
        /// completed instead of replaced.
        resumable: bool,
    },
    /// An error with what was being done when it happened (a file, a sweep row, an argument).
    #[error("{context}: {source}")]
    Context {
        /// Where or what.
        context: String,
        /// The error itself.
        source: Box<Error>,
    },
    /// A feature the model does not provide.
    #[error("{0}")]
    Unsupported(String),
    /// A file that could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The solver could not continue: step size, step count, non-finite state or stiffness.
    #[error("{method} failed at t = {t} min (state {state:?}): {reason}")]
    Solver {
        /// The method that failed.
        method: String,
        /// Time reached.
        t: f64,
        /// State reached.
        state: Vec<f64>,
        /// What happened.
        reason: SolverFailure,
    },
    /// The model has no stable equilibrium at these parameters (it may oscillate), so there is
    /// no state to start from or to settle on.
    #[error("no stable equilibrium with these parameters: the model has no state to rest in (it may oscillate)")]
    NoStableEquilibrium,
    /// Every stable equilibrium serves fewer than half of the users who want service: the
    /// network is down at these parameters whatever happens.
    #[error("no healthy state: the network is down with these parameters (the best stable state serves {best_service:.4} of the users who want service; healthy needs at least 0.5)")]
    NoHealthyState {
        /// Service level of the best stable state.
        best_service: f64,
    },
    /// Newton's method did not converge.
    #[error("Newton did not converge: {0}")]
    Newton(String),
}

/// Why an integration stopped early.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolverFailure {
    /// The step size fell below what floating point can resolve.
    #[error("step size underflow (h = {0:e})")]
    StepSizeTooSmall(f64),
    /// More steps than allowed.
    #[error("more than {0} steps; raise the step limit or loosen the tolerances")]
    TooManySteps(usize),
    /// The right-hand side returned inf or NaN.
    #[error("the right-hand side is not finite")]
    NonFinite,
    /// An explicit method detected stiffness.
    #[error("the problem is stiff here; use a stiff method (rosenbrock, rodas4 or auto)")]
    Stiff,
    /// The linear system of an implicit stage is singular.
    #[error("singular iteration matrix")]
    Singular,
}

impl Error {
    /// A parse error at `line` of `file`.
    pub(crate) fn parse_at(file: &str, line: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            file: Some(file.to_string()),
            line: Some(line),
            message: message.into(),
        }
    }

    /// This error with `context` (a file, a row, an argument) in front of its message.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error beneath any added context.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// Whether a write failed because the reader went away (`| head`): not a failure of the
    /// writer.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self.root(), Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A write to `target` that failed.
    pub(crate) fn write(target: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            path: target.into(),
            source,
        }
    }

    /// A CSV write to `target` that failed: I/O errors keep their kind.
    pub(crate) fn csv_write(target: impl Into<String>, e: csv::Error) -> Error {
        let target = target.into();
        match e.into_kind() {
            csv::ErrorKind::Io(source) => Error::Io {
                path: target,
                source,
            },
            other => Error::Invalid(format!("{target}: writing CSV: {other:?}")),
        }
    }
}

fn location(file: &Option<String>, line: &Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{f} line {l}: "),
        (Some(f), None) => format!("{f}: "),
        (None, Some(l)) => format!("line {l}: "),
        (None, None) => String::new(),
    }
}

/// A number as people read it: plain where that is short, else in scientific notation.
pub(crate) fn number(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn hint_text(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" (did you mean `{h}`?)"),
        None => String::new(),
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_letters_suggest_the_intended_name() {
        let names = ["retry", "give_up", "sign_on"];
        assert_eq!(suggest("retyr", names.into_iter()), Some("retry".into()));
        assert_eq!(suggest("zzzzzzzz", names.into_iter()), None);
    }
}
