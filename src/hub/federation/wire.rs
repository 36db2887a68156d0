//! What hubs say to each other over NATS, and on which subjects.
//!
//! Every message is one JSON object. Subjects, under the federation's prefix `P`:
//!
//! | subject | kind | what |
//! |---|---|---|
//! | `P.presence` | publish, every hub | a hub arriving, beating (every second) or leaving |
//! | `P.peers` | publish, every hub | a session of a hub joined, left or was renamed |
//! | `P.roster.HOST` | request | the sessions of hub `HOST`, whole |
//! | `P.ask.HOST` | request | asks (one, or a broadcast's share) for sessions of `HOST` |
//! | `P.reply.HOST` | request | the reply to an ask a session of `HOST` made |
//! | `P.failed.HOST` | publish | the target of an ask a session of `HOST` made left |
//! | `P.withdrawn.HOST` | publish | the caller of an ask for a session of `HOST` left |
//!
//! A host's `epoch` changes when its hub restarts, and its `version` counts the changes of its
//! roster, so a hub that missed one (or a restart) asks for the whole roster again.

use serde::{Deserialize, Serialize};

use crate::{
    errors::ErrorCode,
    protocol::{DeliveryMode, PeerInfo},
};

/// The subjects of one federation.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn presence(&self) -> String {
        format!("{}.presence", self.prefix)
    }

    pub(crate) fn peers(&self) -> String {
        format!("{}.peers", self.prefix)
    }

    pub(crate) fn roster(&self, host: &str) -> String {
        format!("{}.roster.{host}", self.prefix)
    }

    pub(crate) fn ask(&self, host: &str) -> String {
        format!("{}.ask.{host}", self.prefix)
    }

    pub(crate) fn reply(&self, host: &str) -> String {
        format!("{}.reply.{host}", self.prefix)
    }

    pub(crate) fn failed(&self, host: &str) -> String {
        format!("{}.failed.{host}", self.prefix)
    }

    pub(crate) fn withdrawn(&self, host: &str) -> String {
        format!("{}.withdrawn.{host}", self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PresenceKind {
    Hello,
    Heartbeat,
    Bye,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Presence {
    pub(crate) host: String,
    pub(crate) epoch: String,
    pub(crate) kind: PresenceKind,
    pub(crate) version: u64,
}

/// The sessions of one hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Roster {
    pub(crate) host: String,
    pub(crate) epoch: String,
    pub(crate) version: u64,
    pub(crate) peers: Vec<PeerInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub(crate) enum Change {
    Joined { peer: PeerInfo },
    Left { name: String },
    Renamed { old: String, new: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerChange {
    pub(crate) host: String,
    pub(crate) epoch: String,
    pub(crate) version: u64,
    #[serde(flatten)]
    pub(crate) change: Change,
}

/// One question from one session of another host, for one or more sessions of the receiving
/// hub (a broadcast's share): the question travels once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AskBatch {
    pub(crate) from_host: String,
    /// The asking session's name on its own hub.
    pub(crate) from: String,
    pub(crate) question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) broadcast_id: Option<String>,
    pub(crate) timeout_secs: u64,
    pub(crate) asks: Vec<RemoteAsk>,
}

/// The question of a batch, for one session of the receiving hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RemoteAsk {
    pub(crate) ask_id: String,
    pub(crate) to: String,
    pub(crate) thread_id: String,
}

/// What became of one ask of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum AskAnswer {
    Asked { delivery: DeliveryMode },
    Refused { code: ErrorCode, message: String },
}

/// The reply to an ask that a session of the receiving hub made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RemoteReply {
    pub(crate) from_host: String,
    pub(crate) ask_id: String,
    /// The replying session's name on its own hub.
    pub(crate) from: String,
    pub(crate) text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum ReplyAnswer {
    Delivered,
    Refused { code: ErrorCode, message: String },
}

/// A session of `from_host` that took part in an ask between it and the receiving hub left. On
/// `P.failed` it was the target of an ask a session of the receiving hub made: that ask fails,
/// it will never be answered. On `P.withdrawn` it was the caller of an ask for a session of the
/// receiving hub: the question is withdrawn from its target's inbox if it still waits there
/// unseen, and a reply to it is told its asker left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PartyLeft {
    pub(crate) from_host: String,
    /// The ask's id at its caller's hub.
    pub(crate) ask_id: String,
}
