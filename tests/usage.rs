//! `relay-hub --help` and `relay-channel --help` say what the program is, what it takes and which
//! environment variables it reads, as the README's Configuration table lists them.

use std::process::{Command, Output, Stdio};

const HUB_EXE: &str = env!("CARGO_BIN_EXE_relay-hub");
const CHANNEL_EXE: &str = env!("CARGO_BIN_EXE_relay-channel");

/// Runs `exe ARG` with an empty environment (no HOME, no data directory: asking for help must
/// need neither) and stdin from nowhere.
fn run(exe: &str, arg: &str) -> Output {
    Command::new(exe)
        .arg(arg)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

/// The variables of the README's Configuration table whose "used by" column names `user`.
fn readme_variables(user: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("the README has a Configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    let variables: Vec<String> = table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let used_by = cells.get(2)?;
            used_by
                .split(',')
                .any(|who| who.trim() == user)
                .then(|| variable.to_owned())
        })
        .collect();
    assert!(
        !variables.is_empty(),
        "no README variable is used by {user}"
    );
    variables
}

#[test]
fn help_says_what_each_program_is_takes_and_reads() {
    for (exe, program, user, arguments) in [
        (
            HUB_EXE,
            "relay-hub",
            "hub",
            &["--foreground", "--status", "--stop", "--version"][..],
        ),
        (
            CHANNEL_EXE,
            "relay-channel",
            "channel",
            &["hook", "--version"][..],
        ),
    ] {
        for flag in ["--help", "-h"] {
            let output = run(exe, flag);
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(output.status.code(), Some(0), "{program} {flag}: {stdout}");
            assert!(output.stderr.is_empty(), "{program} {flag} wrote to stderr");
            assert!(
                stdout.starts_with(&format!("{program} {}: ", env!("CARGO_PKG_VERSION"))),
                "{stdout}"
            );
            assert!(stdout.contains(&format!("usage: {program} [")), "{stdout}");
            for argument in arguments.iter().chain(&["-h, --help"]) {
                assert!(
                    stdout.contains(&format!("\n  {argument} ")),
                    "{argument}: {stdout}"
                );
            }
            for variable in readme_variables(user) {
                assert!(
                    stdout.contains(&format!("\n  {variable} ")),
                    "{variable}: {stdout}"
                );
            }
        }
    }
}

/// Two modes at once are refused before anything is done, rather than the last one winning.
#[test]
fn relay_hub_refuses_two_modes_at_once() {
    let output = Command::new(HUB_EXE)
        .args(["--status", "--stop"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run relay-hub");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.starts_with("relay-hub: --status and --stop cannot be given together; usage: "),
        "{stderr}"
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error_that_points_to_help() {
    for (exe, program) in [(HUB_EXE, "relay-hub"), (CHANNEL_EXE, "relay-channel")] {
        let output = run(exe, "--frobnicate");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{program}: {stderr}");
        assert!(output.stdout.is_empty(), "{program} wrote to stdout");
        assert!(
            stderr.starts_with(&format!(
                "{program}: unknown argument \"--frobnicate\"; usage: "
            )) && stderr.contains("--help says more"),
            "{stderr}"
        );
    }
}
