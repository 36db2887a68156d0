//! Documentation and manifests that must stay true to the code.

//! (The README's table of error codes is checked against the code in `src/cli/exit.rs`.)

use std::fs;

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
