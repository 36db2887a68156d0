//! Turning hub events into `notifications/claude/channel` pushes.
//!
//! Claude Code renders a push as `<channel source="plugin:relay:relay" k="v" ...>CONTENT</channel>`.
//! Its `meta` must be a map of strings whose keys are identifiers (`[A-Za-z_][A-Za-z0-9_]*`; any
//! other key is dropped silently, a non-string value once crashed a client) and must never hold
//! `source`, which Claude Code adds itself. The content is the peer's text, verbatim: untrusted
//! data, never instructions.

use std::collections::BTreeMap;

use rmcp::model::{CustomNotification, ServerNotification};
use serde_json::json;

use crate::client::Event;

/// The method Claude Code listens on.
pub(crate) const METHOD: &str = "notifications/claude/channel";

/// The content and meta of the push for `event`.
pub(crate) fn push_for(event: &Event) -> (String, BTreeMap<&'static str, String>) {
    let mut meta = BTreeMap::new();
    let message_id = match event {
        Event::Ask(delivery) | Event::Reply(delivery) => &delivery.message_id,
        Event::AskFailed(failure) => &failure.message_id,
        Event::Undelivered(undelivered) => &undelivered.message_id,
    };
    if !message_id.is_empty() {
        meta.insert("message_id", message_id.clone());
    }
    let content = match event {
        Event::Ask(ask) => {
            meta.insert("kind", "ask".to_owned());
            meta.insert("from", ask.from.clone());
            meta.insert("ask_id", ask.ask_id.clone());
            meta.insert("thread_id", ask.thread_id.clone());
            if let Some(broadcast_id) = &ask.broadcast_id {
                meta.insert("broadcast_id", broadcast_id.clone());
            }
            ask.text.clone()
        }
        Event::Reply(reply) => {
            meta.insert("kind", "reply".to_owned());
            meta.insert("from", reply.from.clone());
            meta.insert("ask_id", reply.ask_id.clone());
            meta.insert("thread_id", reply.thread_id.clone());
            if let Some(broadcast_id) = &reply.broadcast_id {
                meta.insert("broadcast_id", broadcast_id.clone());
            }
            reply.text.clone()
        }
        Event::AskFailed(failure) => {
            meta.insert("kind", "error".to_owned());
            meta.insert("ask_id", failure.ask_id.clone());
            meta.insert("code", failure.code.as_str().to_owned());
            meta.insert("to", failure.to.clone());
            meta.insert("thread_id", failure.thread_id.clone());
            if let Some(broadcast_id) = &failure.broadcast_id {
                meta.insert("broadcast_id", broadcast_id.clone());
            }
            failure.message.clone()
        }
        Event::Undelivered(undelivered) => {
            meta.insert("kind", "undelivered".to_owned());
            meta.insert("ask_id", undelivered.ask_id.clone());
            meta.insert("to", undelivered.to.clone());
            undelivered.message.clone()
        }
    };
    (content, meta)
}

/// The JSON-RPC notification for `event`.
pub(crate) fn notification_for(event: &Event) -> ServerNotification {
    let (content, meta) = push_for(event);
    ServerNotification::CustomNotification(CustomNotification::new(
        METHOD,
        Some(json!({ "content": content, "meta": meta })),
    ))
}

/// `[A-Za-z_][A-Za-z0-9_]*`: the only meta keys Claude Code keeps (it drops others silently).
pub(crate) fn is_meta_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        errors::ErrorCode,
        protocol::{AskFailure, Delivery},
    };

    #[test]
    fn meta_keys_are_identifiers_and_never_source() {
        let delivery = Delivery {
            message_id: "m".into(),
            ask_id: "a".into(),
            from: "alpha".into(),
            thread_id: "t".into(),
            broadcast_id: Some("b".into()),
            text: "</channel> \"quoted\"\nnext line ü".into(),
        };
        let failure = AskFailure {
            message_id: "m".into(),
            ask_id: "a".into(),
            to: "beta".into(),
            thread_id: "t".into(),
            broadcast_id: None,
            code: ErrorCode::Timeout,
            message: "m".into(),
        };
        for event in [
            Event::Ask(delivery.clone()),
            Event::Reply(delivery),
            Event::AskFailed(failure),
        ] {
            let (_, meta) = push_for(&event);
            for key in meta.keys() {
                assert!(is_meta_key(key), "{key}");
                assert_ne!(*key, "source");
            }
        }
    }

    #[test]
    fn content_is_the_text_verbatim() {
        let text = "</channel> \"quoted\"\nnext line ü";
        let event = Event::Ask(Delivery {
            message_id: "m".into(),
            ask_id: "a".into(),
            from: "alpha".into(),
            thread_id: "a".into(),
            broadcast_id: None,
            text: text.into(),
        });
        assert_eq!(push_for(&event).0, text);
    }
}
