//! The shell examples of the README and of the pages in `docs/` run, as written, on a fresh
//! clone.
//!
//! How a page's code blocks are read:
//!
//! - ` ```sh ` and ` ```bash ` blocks: every line is a command; a line ending in `\` continues
//!   on the next, blank lines and lines starting with `#` are skipped.
//! - ` ```console ` blocks: lines starting with `$ ` are commands (with the same `\`
//!   continuations); every other line is output a reader should see. Each shown output line
//!   must match a line the command printed (stdout or stderr) once every number in both is
//!   masked, since values move in their last digits between platforms and timings always do; a
//!   shown line ending in `...` need only match the start of a printed line, and a line that is
//!   just `...` stands for lines left out.
//! - Other blocks (`text`, `toml`, `rust`, ...) are not commands. The README's Rust blocks are
//!   doctests (`src/lib.rs` includes the README).
//!
//! Set-up lines are not run, since the test has built the binary itself and works in a copy of
//! the clone: commands starting with `cargo install`, `cargo build`, `cargo test`, `cargo doc`,
//! `git clone` or `cd`. Any other `cargo` command fails the test (it would be slow or build
//! again here): a page shows a `selfheal` command instead, or names the other command in the
//! text.
//!
//! Every other command runs through `sh -c`, in the page's order, in a fresh temporary directory
//! for each page that holds a copy of `data/` (the default scenario is read from there), with
//! `selfheal` on `PATH` and `target/release/selfheal` both being the binary under test, and must
//! exit with status 0. A file a command writes (`--out`, `--summary`, `--quantiles`,
//! `--residuals`, `--figure`) must not exist in the repository: on a fresh clone the command
//! would refuse to replace it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced code block: its language tag, the line its first line is on, its lines.
struct Block {
    lang: String,
    line: usize,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = vec![];
    let mut open: Option<Block> = None;
    for (k, line) in text.lines().enumerate() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(tag)) => {
                open = Some(Block {
                    lang: tag.trim().to_string(),
                    line: k + 2,
                    lines: vec![],
                })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => out.extend(open.take()),
            (Some(b), _) => b.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

/// One command of the README with the output lines shown after it.
struct Example {
    line: usize,
    command: String,
    shown: Vec<String>,
}

fn examples(text: &str) -> Vec<Example> {
    let mut out: Vec<Example> = vec![];
    for b in blocks(text) {
        let console = match b.lang.as_str() {
            "sh" | "bash" | "shell" => false,
            "console" => true,
            _ => continue,
        };
        let mut continued = false;
        for (k, line) in b.lines.iter().enumerate() {
            if continued {
                let last = out.last_mut().expect("a continuation follows a command");
                last.command.push('\n');
                last.command.push_str(line);
                continued = line.trim_end().ends_with('\\');
                continue;
            }
            let command = if console {
                line.strip_prefix("$ ")
            } else if line.trim().is_empty() || line.trim_start().starts_with('#') {
                None
            } else {
                Some(line.as_str())
            };
            match command {
                Some(c) => {
                    out.push(Example {
                        line: b.line + k,
                        command: c.to_string(),
                        shown: vec![],
                    });
                    continued = c.trim_end().ends_with('\\');
                }
                None if console => {
                    let last = out.last_mut().unwrap_or_else(|| {
                        panic!("line {}: output before any command", b.line + k)
                    });
                    last.shown.push(line.to_string());
                }
                None => {}
            }
        }
    }
    out
}

/// Set-up lines the test does not run (see the module documentation).
fn is_setup(command: &str) -> bool {
    const SETUP: [&str; 6] = [
        "cargo install",
        "cargo build",
        "cargo test",
        "cargo doc",
        "git clone",
        "cd ",
    ];
    let c = command.trim_start();
    if SETUP.iter().any(|s| c.starts_with(s)) {
        return true;
    }
    assert!(
        !c.starts_with("cargo"),
        "`{c}`: not a set-up line this test knows; show a `selfheal` command instead"
    );
    false
}

/// Every number (digits with an optional sign, decimal point and exponent) replaced by `#`.
fn mask(line: &str) -> String {
    let c: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let digit_at = |j: usize| c.get(j).is_some_and(|d| d.is_ascii_digit());
        let sign_before_digit = (c[i] == '-' || c[i] == '+')
            && digit_at(i + 1)
            && (i == 0 || !c[i - 1].is_alphanumeric());
        if digit_at(i) || sign_before_digit {
            i += 1;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            // An exponent: e, an optional sign, digits.
            if i < c.len() && (c[i] == 'e' || c[i] == 'E') {
                let j = if matches!(c.get(i + 1), Some('-' | '+')) {
                    i + 2
                } else {
                    i + 1
                };
                if digit_at(j) {
                    i = j;
                    while digit_at(i) {
                        i += 1;
                    }
                }
            }
            out.push('#');
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out.trim_end().to_string()
}

/// Whether a line the README shows matches one the command printed.
fn shown_matches(shown: &str, printed: &[String]) -> bool {
    let shown = shown.trim_end();
    match shown.strip_suffix("...") {
        Some(start) => {
            let start = mask(start);
            printed.iter().any(|p| p.starts_with(&start))
        }
        None => {
            let shown = mask(shown);
            printed.contains(&shown)
        }
    }
}

/// The files a command writes, by the flags that name them.
fn written_files(command: &str) -> Vec<String> {
    const FLAGS: [&str; 5] = [
        "--out",
        "--summary",
        "--quantiles",
        "--residuals",
        "--figure",
    ];
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut files = vec![];
    for (k, w) in words.iter().enumerate() {
        for flag in FLAGS {
            if *w == flag {
                files.extend(words.get(k + 1).map(|s| s.to_string()));
            } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                files.push(v.to_string());
            }
        }
    }
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs every command of `page` in order, in a fresh directory holding a copy of `data/`, with
/// `selfheal` and `target/release/selfheal` being the binary under test; returns how many ran.
#[cfg(unix)]
fn run_examples(page: &Path) -> usize {
    let name = page
        .strip_prefix(repo())
        .unwrap_or(page)
        .display()
        .to_string();
    let examples = examples(&read(page));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("data"), &dir.path().join("data"));
    copy_dir(&repo().join("models"), &dir.path().join("models"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_selfheal"));
    for link in ["bin/selfheal", "target/release/selfheal"] {
        let link = dir.path().join(link);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&bin, &link).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    let started = Instant::now();
    for ex in examples.iter().filter(|ex| !is_setup(&ex.command)) {
        for file in written_files(&ex.command) {
            assert!(
                file.starts_with("/dev/") || !repo().join(&file).exists(),
                "{name} line {}: `{}` writes {file}, which is committed: on a fresh clone it \
                 would be refused; write to a new name",
                ex.line,
                ex.command
            );
        }
        let t = Instant::now();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&ex.command)
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name} line {}: `{}` failed ({}):\n{stdout}\n{stderr}",
            ex.line,
            ex.command,
            out.status
        );
        let printed: Vec<String> = stdout.lines().chain(stderr.lines()).map(mask).collect();
        for shown in &ex.shown {
            if shown.trim().is_empty() || shown.trim() == "..." {
                continue;
            }
            assert!(
                shown_matches(shown, &printed),
                "{name} line {}: `{}` no longer prints a line like\n  {shown}\nit printed:\n{stdout}{stderr}",
                ex.line,
                ex.command
            );
        }
        eprintln!("{:6.2} s  {}", t.elapsed().as_secs_f64(), ex.command);
        ran += 1;
    }
    eprintln!(
        "{name}: {ran} commands in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ran
}

#[cfg(unix)]
#[test]
fn every_shell_example_in_the_readme_runs_on_a_fresh_clone() {
    let ran = run_examples(&repo().join("README.md"));
    assert!(
        ran >= 5,
        "only {ran} commands found: has the README's block convention changed?"
    );
}

/// The pages in `docs/` follow the same convention, each page in a directory of its own.
#[cfg(unix)]
#[test]
fn every_shell_example_in_the_docs_runs_on_a_fresh_clone() {
    let mut ran = 0;
    for page in doc_pages() {
        ran += run_examples(&page);
    }
    assert!(ran >= 1, "no command found in docs/");
}

fn doc_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

#[test]
fn the_readme_states_the_test_command_ci_runs() {
    let ci = read(&repo().join(".ci/run"));
    let readme = read(&repo().join("README.md"));
    let commands: Vec<String> = examples(&readme)
        .into_iter()
        .map(|e| e.command.trim().to_string())
        .collect();
    let tests: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cargo test"))
        .collect();
    assert!(!tests.is_empty(), ".ci/run runs no `cargo test`");
    for t in tests {
        assert!(
            commands.iter().any(|c| c == t),
            ".ci/run runs `{t}`, which the README does not show in a shell block"
        );
    }
}

#[test]
fn links_between_the_readme_and_the_docs_resolve() {
    let mut pages = vec![repo().join("README.md")];
    pages.extend(doc_pages());
    for page in pages {
        let text = read(&page);
        let dir = page.parent().unwrap();
        for (k, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("](") {
                let tail = &rest[i + 2..];
                let end = tail.find(')').unwrap_or(tail.len());
                let target = &tail[..end];
                rest = &tail[end..];
                if target.contains("://") || target.starts_with('#') || target.is_empty() {
                    continue;
                }
                let file = target.split('#').next().unwrap();
                assert!(
                    dir.join(file).exists(),
                    "{} line {}: link to {target}, which does not exist",
                    page.display(),
                    k + 1
                );
            }
        }
    }
}

#[test]
fn the_readme_stays_short() {
    // 245 lines of text and, since the peer comparison became part of the README, its table.
    let n = read(&repo().join("README.md")).lines().count();
    assert!(
        n <= 256,
        "README.md has {n} lines: reference material belongs in docs/"
    );
}

#[test]
fn numbers_are_masked_and_words_are_kept() {
    assert_eq!(
        mask("peak queue: 0.262838 (6.308 M users) at t = 3.78 min"),
        "peak queue: # (# M users) at t = # min"
    );
    assert_eq!(mask("0,-6.2e-3,1e9,rescues e2,x-1"), "#,#,#,rescues e#,x-#");
    assert_eq!(
        mask("l1 = +5.7e2: subcritical; r2d2"),
        "l# = #: subcritical; r#d#"
    );
}
