//! Documentation and manifests that must stay true to the code.

use std::fs;

use claude_relay::{cli::exit, errors::ErrorCode};

#[test]
fn the_readme_lists_every_error_code_with_its_meaning_and_exit_status() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in ErrorCode::ALL {
        let row = format!(
            "| `{}` | {} | {} |",
            code.as_str(),
            code.meaning(),
            exit::for_error(code)
        );
        assert!(readme.contains(&row), "README lacks the row: {row}");
    }
}

#[test]
fn the_plugin_version_is_the_crate_version() {
    let manifest = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.claude-plugin/plugin.json"
    ))
    .unwrap();
    let plugin: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(plugin["name"], "relay");
    assert_eq!(
        plugin["mcpServers"]["relay"]["command"],
        "${CLAUDE_PLUGIN_ROOT}/bin/relay-channel"
    );
}
