//! This hub's sessions reaching sessions of other hosts: the asks, broadcast shares and replies
//! that [`super::asking`] recorded and routed afar are sent to the other hosts' hubs here, and
//! their clients answered when those hubs have.
//!
//! An ask for another host is pending from the moment it is recorded, so its deadline runs and
//! a failure (its host gone) can end it; but its caller learns of it only once its host said it
//! was made. What comes for it before that waits (`State::unconfirmed`) and follows the answer,
//! in order. A host that refuses, or cannot be reached, withdraws the ask: it never was.

use futures_util::future::join_all;

use crate::{
    ask::{ConnId, PendingAsk},
    errors::{ErrorCode, RelayError},
    hub::{
        federation::wire::{AskAnswer, AskBatch, RemoteReply, ReplyAnswer},
        handle::{Hub, State},
        handlers::response,
        outbox::Outbox,
        remote::address,
        texts,
    },
    protocol::{Asked, BroadcastAsk, Broadcasted, Replied},
};

/// Asks of one question for sessions of one other host.
pub(crate) struct Share {
    pub(crate) host: String,
    pub(crate) batch: AskBatch,
}

/// An ask for a session of another host, recorded and not yet sent.
pub(crate) struct AskAfar {
    /// The asking session's connection.
    pub(crate) caller: ConnId,
    pub(crate) share: Share,
}

/// A broadcast: made here already, and its shares for other hosts not yet sent.
pub(crate) struct BroadcastAfar {
    pub(crate) caller: ConnId,
    pub(crate) here: Broadcasted,
    pub(crate) shares: Vec<Share>,
}

/// A reply to an ask a session of another host made, taken and not yet sent.
pub(crate) struct ReplyAfar {
    pub(crate) ask: PendingAsk,
    pub(crate) reply: RemoteReply,
}

impl Hub {
    /// Sends `afar` and answers request `id` on `outbox`.
    pub(super) async fn send_ask(self, outbox: Outbox, id: u64, afar: AskAfar) {
        let AskAfar { caller, share } = afar;
        let answers = self.send_share(&share).await;
        let ask = &share.batch.asks[0];
        let mut state = self.state();
        let asked = match answers.map(|mut answers| answers.remove(0)) {
            Ok(AskAnswer::Asked { delivery }) => Ok(Asked {
                ask_id: ask.ask_id.clone(),
                thread_id: ask.thread_id.clone(),
                delivery,
            }),
            Ok(AskAnswer::Refused { code, message }) => Err(refused(code, message)),
            Err(e) => Err(e),
        };
        let made = asked.is_ok();
        if !made {
            state.asks.withdraw(&ask.ask_id);
        }
        outbox.send_line(response(id, asked));
        release(&mut state, caller, &ask.ask_id, made);
    }

    /// Sends the shares of `afar` to their hosts, all at once, and answers request `id` on
    /// `outbox` with the whole broadcast. A host that refused or could not be reached has its
    /// sessions listed as skipped.
    pub(super) async fn send_broadcast(self, outbox: Outbox, id: u64, afar: BroadcastAfar) {
        let BroadcastAfar {
            caller,
            mut here,
            shares,
        } = afar;
        let local: Vec<String> = here.asks.iter().map(|ask| ask.ask_id.clone()).collect();
        let answers = join_all(shares.iter().map(|share| self.send_share(share))).await;
        let mut state = self.state();
        let mut settled = Vec::new();
        for (share, answers) in shares.iter().zip(answers) {
            for (i, ask) in share.batch.asks.iter().enumerate() {
                let to = address(&ask.to, &share.host);
                let made = match &answers {
                    Ok(answers) => match &answers[i] {
                        AskAnswer::Asked { delivery } => {
                            here.asks.push(BroadcastAsk {
                                ask_id: ask.ask_id.clone(),
                                to,
                                delivery: *delivery,
                            });
                            true
                        }
                        AskAnswer::Refused { code, .. } => {
                            tracing::info!(ask_id = %ask.ask_id, code = %code, "broadcast_share_refused");
                            here.skipped.push(to);
                            false
                        }
                    },
                    Err(e) => {
                        if i == 0 {
                            tracing::warn!(host = %share.host, code = %e.code, "broadcast_share_not_sent");
                        }
                        here.skipped.push(to);
                        false
                    }
                };
                if !made {
                    state.asks.withdraw(&ask.ask_id);
                }
                settled.push((ask.ask_id.as_str(), made));
            }
        }
        outbox.send_line(response(id, Ok(here)));
        for ask_id in &local {
            release(&mut state, caller, ask_id, true);
        }
        for (ask_id, made) in settled {
            release(&mut state, caller, ask_id, made);
        }
    }

    /// Sends `afar`, a reply to a session of another host, and answers request `id` on
    /// `outbox`. When the asker's host cannot be reached, or its inbox is full, the ask stays
    /// answerable, so the reply can be sent again.
    pub(super) async fn send_reply(self, outbox: Outbox, id: u64, afar: ReplyAfar) {
        let ReplyAfar { ask, reply } = afar;
        let host = ask
            .asked_from
            .as_ref()
            .expect("a reply afar is for a session of another host")
            .host
            .clone();
        let federation = self
            .federation()
            .expect("only a federated hub replies afar");
        let subject = federation.subjects().reply(&host);
        let answer = federation
            .request::<ReplyAnswer>(subject, &reply, &host)
            .await;
        let mut state = self.state();
        let (replied, answerable) = match answer {
            Ok(Some(ReplyAnswer::Delivered)) => (Ok(Replied {}), false),
            // The asker's inbox is full: the ask stays answerable there, so it does here.
            Ok(Some(ReplyAnswer::Refused { code, message })) => {
                (Err(refused(code, message)), code == ErrorCode::InboxFull)
            }
            Ok(None) => (Err(texts::host_not_listening(&ask.caller_name)), false),
            Err(e) => {
                tracing::warn!(ask_id = %ask.ask_id, host = %host, "reply_afar_not_sent");
                (Err(e), true)
            }
        };
        if answerable {
            state.asks.restore(ask);
            self.wake_deadline_task();
        }
        outbox.send_line(response(id, replied));
    }

    /// Sends one share to its host's hub and reads what became of each of its asks.
    async fn send_share(&self, share: &Share) -> Result<Vec<AskAnswer>, RelayError> {
        let federation = self.federation().expect("only a federated hub asks afar");
        let subject = federation.subjects().ask(&share.host);
        let count = share.batch.asks.len();
        match federation
            .request::<Vec<AskAnswer>>(subject, &share.batch, &share.host)
            .await?
        {
            None => Err(texts::host_not_listening(&format!("host {}", share.host))),
            Some(answers) if answers.len() == count => Ok(answers),
            Some(answers) => Err(RelayError::bad_msg(format!(
                "the hub of {} answered {} asks of {count}",
                share.host,
                answers.len()
            ))),
        }
    }
}

/// The caller on `caller` has been answered about ask `ask_id`: what waited for that answer goes
/// to it now, if the ask was `made`.
fn release(state: &mut State, caller: ConnId, ask_id: &str, made: bool) {
    let held = state.unconfirmed.remove(ask_id).unwrap_or_default();
    if made {
        for held in held {
            state.deliver(caller, &held.event, held.bytes, held.sender);
        }
    }
}

/// The longest refusal of another hub passed on to a client.
const MAX_REFUSAL_BYTES: usize = 2048;

/// Another hub's refusal, as its client is told it: that hub's words, bounded.
fn refused(code: ErrorCode, mut message: String) -> RelayError {
    if message.len() > MAX_REFUSAL_BYTES {
        let mut end = MAX_REFUSAL_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    RelayError::new(code, message)
}
