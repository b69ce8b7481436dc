//! What several test files share: running the `selfheal` binary.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `selfheal ARGS` in `dir` and returns what it did.
pub fn selfheal(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}
