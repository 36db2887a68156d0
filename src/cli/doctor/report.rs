//! How `relay doctor` prints its checks: one line each with a mark a person spots at once (in
//! colour on a terminal, unless `NO_COLOR` is set), the fix indented under it; or one JSON
//! document for scripts.

use std::io::IsTerminal;

use serde::Serialize;

use crate::cli::output::printable;
use crate::cli::{
    doctor::{Check, Status},
    output,
};

/// The `--json` document, fields in this order.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    checks: &'a [Check],
}

pub(super) fn print(checks: &[Check], json: bool) {
    if json {
        let ok = checks.iter().all(|c| c.status != Status::Fail);
        output::print_json(&Report { ok, checks });
    } else {
        out!("{}", text(checks, use_colour()));
    }
}

/// Colour only for a person: stdout is a terminal and `NO_COLOR` (no-color.org) is not set.
fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn text(checks: &[Check], colour: bool) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for check in checks {
        let (mark, code) = match check.status {
            Status::Pass => ("ok  ", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        let mark = if colour {
            format!("\x1b[{code}m{mark}\x1b[0m")
        } else {
            mark.to_owned()
        };
        // Details can quote what sessions said of themselves (a name, a reason).
        text.push_str(&format!(
            "{mark}  {:<width$}  {}\n",
            check.name,
            printable(&check.detail, false)
        ));
        if let Some(fix) = &check.fix {
            text.push_str(&format!("      fix: {}\n", printable(fix, false)));
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    text.push_str(&match (failed, warned) {
        (0, 0) => "all checks passed\n".to_owned(),
        (0, w) => format!("no failures, {w} warning(s)\n"),
        (f, w) => format!("{f} check(s) failed, {w} warning(s)\n"),
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_is_a_line_with_its_fix_indented_under_it() {
        let checks = [
            Check::pass("hub", "running"),
            Check::fail("data-dir", "mode 0755", "chmod 700 /d"),
        ];
        assert_eq!(
            text(&checks, false),
            "ok    hub       running\n\
             FAIL  data-dir  mode 0755\n      fix: chmod 700 /d\n\
             1 check(s) failed, 0 warning(s)\n"
        );
        assert!(text(&checks, true).contains("\x1b[31mFAIL\x1b[0m  data-dir"));
    }
}
