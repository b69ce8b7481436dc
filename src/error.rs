//! Typed errors: each names the culprit and, where it helps, the allowed range.

use std::borrow::Cow;
use thiserror::Error;

/// Everything that can go wrong in the library. Messages name the culprit in the library's
/// own terms (a parameter, a file, a row), never a command-line flag: the command line adds
/// those. Each message is one line: text it quotes from the user (a key, a value, a cell, a
/// path) has its line breaks and other control characters written as escapes (`\n`). Match
/// on the variants to branch; new variants may be added.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter (or scenario quantity) outside its valid range.
    #[error("`{}` = {} is out of range: must be {}", one_line(.name), number(*.value), one_line(.range))]
    OutOfRange {
        /// Name of the parameter or quantity.
        name: String,
        /// The offending value.
        value: f64,
        /// The allowed range in words.
        range: String,
    },
    /// A parameter name the model does not have.
    #[error("{}", unknown_param(.name, .hint))]
    UnknownParam {
        /// The name given.
        name: String,
        /// The nearest valid name, if any is close.
        hint: Option<String>,
    },
    /// A key a scenario file may not contain.
    #[error("unknown key `{}` in {}{}", one_line(.key), one_line(.table), hint_text(.hint))]
    UnknownKey {
        /// The key given.
        key: String,
        /// Where it was found.
        table: String,
        /// The nearest valid key, if any is close.
        hint: Option<String>,
    },
    /// A malformed scenario or other invalid input.
    #[error("{}", one_line(.0))]
    Invalid(String),
    /// Text that does not parse: a scenario, a data file, a value; with where it was found.
    #[error("{}{}", location(.file, .line), one_line(.message))]
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
    #[error("{} already exists", one_line(.path))]
    Exists {
        /// The file.
        path: String,
        /// Whether the existing file is an interrupted run of the same job that can be
        /// completed instead of replaced.
        resumable: bool,
    },
    /// An error with what was being done when it happened (a file, a sweep row, an argument).
    #[error("{}: {source}", one_line(.context))]
    Context {
        /// Where or what.
        context: String,
        /// The error itself.
        source: Box<Error>,
    },
    /// A feature the model does not provide.
    #[error("{}", one_line(.0))]
    Unsupported(String),
    /// A file that could not be read or written.
    #[error("{}: {}", one_line(.path), one_line(&.source.to_string()))]
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
    #[error("Newton did not converge: {}", one_line(.0))]
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
        (Some(f), Some(l)) => format!("{} line {l}: ", one_line(f)),
        (Some(f), None) => format!("{}: ", one_line(f)),
        (None, Some(l)) => format!("line {l}: "),
        (None, None) => String::new(),
    }
}

/// `text` on one line: line breaks (`\n`, `\r`, U+2028, U+2029) and other control characters
/// written as Rust escapes, so that user text a message quotes (a multi-line TOML string, a CSV
/// cell with a line break, a file name) cannot break the one line an error prints.
///
/// ```
/// assert_eq!(selfheal::error::one_line("a\nb"), r"a\nb");
/// ```
pub fn one_line(text: &str) -> Cow<'_, str> {
    let breaks = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !text.contains(breaks) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if breaks(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A number as people read it: plain where that is short, else in scientific notation.
pub(crate) fn number(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn unknown_param(name: &str, hint: &Option<String>) -> String {
    if name.trim().is_empty() {
        "a parameter name is empty: give NAME (see `selfheal params`)".into()
    } else {
        format!("unknown parameter `{}`{}", one_line(name), hint_text(hint))
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

    #[test]
    fn quoted_line_breaks_stay_on_one_line() {
        let e = Error::Invalid("`t_end` must be a number, got string `\"a\nb\r\"`".into());
        assert_eq!(
            e.to_string(),
            r#"`t_end` must be a number, got string `"a\nb\r"`"#
        );
        let e = Error::parse_at("a\u{2028}b.csv", 2, "cell `1\t2`").context("x\ny");
        assert_eq!(e.to_string(), r"x\ny: a\u{2028}b.csv line 2: cell `1\t2`");
        assert_eq!(one_line("plain é"), "plain é");
    }
}
