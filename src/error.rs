//! Typed errors: each names the culprit and, where it helps, the allowed range.

use thiserror::Error;

/// Everything that can go wrong in the library.
#[derive(Debug, Error)]
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
    #[error("the problem is stiff here; use --method rosenbrock (or auto)")]
    Stiff,
    /// The linear system of an implicit stage is singular.
    #[error("singular iteration matrix")]
    Singular,
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
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_letters_suggest_the_intended_name() {
        let names = ["retry", "give_up", "sign_on"];
        assert_eq!(suggest("retyr", names.into_iter()), Some("retry".into()));
        assert_eq!(suggest("zzzzzzzz", names.into_iter()), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
