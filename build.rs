//! Reads `.ci/claude-versions`, the Claude Code versions the relay is tested against, so that
//! one line there is all it takes to test another CLI:
//! - `RELAY_TESTED_CLAUDE` (e.g. `2.1.197 2.1.332`) for `relay doctor`'s range check;
//! - `$OUT_DIR/claude_versions.rs`, one `claude_cli_tests!` line per version, which
//!   `tests/claude_cli.rs` includes to run every real-CLI test once per version.

use std::{env, fs, path::Path};

const LIST: &str = ".ci/claude-versions";

fn main() {
    println!("cargo::rerun-if-changed={LIST}");
    let text = fs::read_to_string(LIST).unwrap_or_else(|e| panic!("cannot read {LIST}: {e}"));
    let versions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert!(!versions.is_empty(), "{LIST} lists no version");
    for version in &versions {
        let parts: Vec<&str> = version.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|part| part.parse::<u32>().is_ok()),
            "{LIST}: {version:?} is not a version like 2.1.332"
        );
    }
    println!(
        "cargo::rustc-env=RELAY_TESTED_CLAUDE={}",
        versions.join(" ")
    );
    let modules: String = versions
        .iter()
        .map(|version| {
            let module = format!("v{}", version.replace('.', "_"));
            format!("claude_cli_tests!({module}, \"{version}\");\n")
        })
        .collect();
    let out =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("claude_versions.rs");
    fs::write(out, modules).expect("write claude_versions.rs");
}
