//! What a session would see: a `notifications/claude/channel` push rendered the way Claude Code
//! puts it into the transcript, `<channel source="plugin:relay:relay" k1="v1" ...>CONTENT</channel>`.
//!
//! Claude Code's rules (see the reference on Claude Code, section 1): `source` comes first and is
//! `plugin:<plugin>:<server>` for a plugin's server; the meta keys follow in the order they
//! arrive, each value entity-escaped; a key that is not an identifier is dropped silently; the
//! content is not escaped, except that `</channel` is neutralised to `<\/channel`; the content
//! sits on its own lines between the tags.

use serde_json::{Map, Value};

use crate::channel::notify::is_meta_key;

/// The `source` Claude Code gives the pushes of the `relay` server of the `relay` plugin
/// (`.claude-plugin/plugin.json`).
pub(super) const SOURCE: &str = "plugin:relay:relay";

/// One push as a session receives it, and as its transcript shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Push {
    /// The meta as sent (string values only).
    pub meta: Map<String, Value>,
    pub content: String,
    pub rendered: String,
}

impl Push {
    /// Reads the `params` of a push. A meta value that is not a string is refused: Claude Code
    /// requires strings (a number once crashed a client), so the channel must never send one.
    pub(super) fn from_params(params: &Value) -> Result<Push, String> {
        let content = params["content"]
            .as_str()
            .ok_or_else(|| format!("a push without string content: {params}"))?
            .to_owned();
        let meta = params["meta"]
            .as_object()
            .ok_or_else(|| format!("a push without a meta object: {params}"))?
            .clone();
        let mut attributes = Vec::new();
        for (key, value) in &meta {
            let value = value
                .as_str()
                .ok_or_else(|| format!("push meta {key:?} is not a string: {params}"))?;
            attributes.push((key.as_str(), value));
        }
        let rendered = render(&attributes, &content);
        Ok(Push {
            meta,
            content,
            rendered,
        })
    }

    /// A meta value, or `""` when the push has none.
    pub(super) fn meta_str(&self, key: &str) -> &str {
        self.meta.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// The transcript text for a push with `meta` (in arrival order) and `content`.
pub(super) fn render(meta: &[(&str, &str)], content: &str) -> String {
    let mut text = format!("<channel source=\"{}\"", escape_attribute(SOURCE));
    for (key, value) in meta.iter().filter(|(key, _)| is_meta_key(key)) {
        text.push_str(&format!(" {key}=\"{}\"", escape_attribute(value)));
    }
    text.push_str(">\n");
    text.push_str(&content.replace("</channel", "<\\/channel"));
    text.push_str("\n</channel>");
    text
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn source_comes_first_then_the_meta_in_order() {
        assert_eq!(
            render(&[("kind", "ask"), ("from", "frontend")], "hello"),
            "<channel source=\"plugin:relay:relay\" kind=\"ask\" from=\"frontend\">\nhello\n</channel>"
        );
    }

    #[test]
    fn attributes_are_escaped_and_content_only_neutralises_the_closing_tag() {
        let rendered = render(&[("from", "a\"b<c>&d")], "x </channel> \"y\" & <b>");
        assert_eq!(
            rendered,
            "<channel source=\"plugin:relay:relay\" from=\"a&quot;b&lt;c&gt;&amp;d\">\nx <\\/channel> \"y\" & <b>\n</channel>"
        );
    }

    #[test]
    fn keys_that_are_not_identifiers_are_dropped() {
        let rendered = render(&[("ask-id", "1"), ("2nd", "2"), ("_ok", "3")], "c");
        assert_eq!(
            rendered,
            "<channel source=\"plugin:relay:relay\" _ok=\"3\">\nc\n</channel>"
        );
    }

    #[test]
    fn pushes_with_a_non_string_meta_value_are_refused() {
        let params = json!({"content": "c", "meta": {"ask_id": 7}});
        let error = Push::from_params(&params).unwrap_err();
        assert!(error.contains("ask_id"), "{error}");
        let params = json!({"content": "c", "meta": {"kind": "ask"}});
        let push = Push::from_params(&params).unwrap();
        assert_eq!(push.meta_str("kind"), "ask");
        assert_eq!(push.meta_str("from"), "");
        assert!(
            push.rendered
                .starts_with("<channel source=\"plugin:relay:relay\" kind=\"ask\">")
        );
    }
}
