//! The inbox journal: what waits in sessions' inboxes, kept on disk so that it survives the hub
//! (a crash, `relay hub restart`, an upgrade).
//!
//! `DATA/inbox.journal` (0600 in the 0700 data directory) is an append-only file of JSON lines,
//! one `write` per record, so a crash loses at most the line being written (a torn last line is
//! skipped on replay). It records what happens to the inboxes of Claude Code sessions: a message
//! kept, a page acknowledged, the session leaving and coming back, its inbox expiring. A new hub
//! replays it into its inboxes, then writes it anew holding only what is still waiting, and does
//! so again whenever the file has grown well past that.
//!
//! Only answers and failure notices are kept. A question waiting in an inbox belongs to an ask,
//! and asks end with the hub: each asker's channel reports its pending asks as `hub_unreachable`
//! when its connection drops, so a question that outlived them must never be shown.
//!
//! Records are written without `fsync`: they survive the hub process dying, which is what the
//! journal is for, and a write costs a few microseconds (docs/benchmarks.md); a machine that loses
//! power loses its sessions too.

use std::{
    collections::{BTreeMap, HashMap},
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, Write},
    os::unix::fs::OpenOptionsExt,
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    hub::inbox::{Inboxes, ORPHAN_GRACE, Owner, Queued},
    paths::DataDir,
    protocol::{FromHub, unix_ms},
};

/// The journal's format; a file of another version is set aside, not misread.
const FORMAT: u32 = 1;

/// Compact once this many records were written beyond what is still waiting.
const COMPACT_SLACK: u64 = 10_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Record {
    /// The first line: which format follows.
    Journal { format: u32 },
    /// A message kept in `session`'s inbox.
    Keep {
        session: String,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        bytes: usize,
        message: FromHub,
    },
    /// Every message of `session` up to `seq` was acknowledged.
    Ack { session: String, upto: u64 },
    /// The session's channel left at `at_ms` (Unix milliseconds).
    Away { session: String, at_ms: u64 },
    /// The session's channel came back.
    Back { session: String },
    /// The session's inbox expired: nothing of it is left.
    Expired { session: String },
}

/// One session's inbox as the journal tells it.
#[derive(Default)]
struct Told {
    messages: BTreeMap<u64, Queued>,
    away_since_ms: Option<u64>,
}

pub(super) struct Journal {
    path: PathBuf,
    file: File,
    /// Records written since the file last held only what is waiting.
    written: u64,
}

impl Journal {
    /// Opens the journal of `data`, puts what it holds back into `inboxes`, and writes it anew.
    pub(super) fn open(data: &DataDir, inboxes: &mut Inboxes, now: Instant) -> io::Result<Journal> {
        let path = data.root().join("inbox.journal");
        let told = replay(&path);
        let wall_now = unix_ms();
        let mut restored = 0;
        for (session, told) in told {
            let away_since = match told.away_since_ms {
                // Gone before the hub stopped: its grace runs from then.
                Some(at_ms) => {
                    let away = Duration::from_millis(wall_now.saturating_sub(at_ms));
                    now.checked_sub(away.min(ORPHAN_GRACE)).unwrap_or(now)
                }
                // Connected when the hub stopped: it gets the whole grace to reconnect.
                None => now,
            };
            restored += told.messages.len();
            let messages = told.messages.into_values().collect();
            inboxes.restore(Owner::Session(session), messages, away_since);
        }
        if restored > 0 {
            tracing::info!(count = restored, "inbox_journal_replayed");
        }
        let mut journal = Journal {
            file: open_append(&path)?,
            path,
            written: 0,
        };
        journal.compact(inboxes)?;
        Ok(journal)
    }

    pub(super) fn keep(&mut self, session: &str, queued: &Queued) {
        if matches!(queued.message, FromHub::Ask(_)) {
            return;
        }
        let sender = match &queued.sender {
            Some(Owner::Session(id)) => Some(id.clone()),
            _ => None,
        };
        self.append(&Record::Keep {
            session: session.to_owned(),
            seq: queued.seq,
            sender,
            bytes: queued.bytes,
            message: queued.message.clone(),
        });
    }

    pub(super) fn ack(&mut self, session: &str, upto: u64) {
        self.append(&Record::Ack {
            session: session.to_owned(),
            upto,
        });
    }

    pub(super) fn away(&mut self, session: &str) {
        self.append(&Record::Away {
            session: session.to_owned(),
            at_ms: unix_ms(),
        });
    }

    pub(super) fn back(&mut self, session: &str) {
        self.append(&Record::Back {
            session: session.to_owned(),
        });
    }

    pub(super) fn expired(&mut self, session: &str) {
        self.append(&Record::Expired {
            session: session.to_owned(),
        });
    }

    /// Writes the journal anew when it has grown well past what still waits.
    pub(super) fn compact_if_grown(&mut self, inboxes: &Inboxes) {
        if self.written < COMPACT_SLACK + inboxes.total() as u64 {
            return;
        }
        if let Err(e) = self.compact(inboxes) {
            tracing::error!(error = %e, "inbox_journal_compact_failed");
        }
    }

    /// Replaces the file with one holding only what waits in the sessions' inboxes now.
    fn compact(&mut self, inboxes: &Inboxes) -> io::Result<()> {
        let fresh = self.path.with_extension("journal.new");
        let mut lines = encode(&Record::Journal { format: FORMAT });
        for (session, inbox) in inboxes.sessions() {
            for queued in inbox.queued() {
                if matches!(queued.message, FromHub::Ask(_)) {
                    continue;
                }
                lines.extend(encode(&Record::Keep {
                    session: session.clone(),
                    seq: queued.seq,
                    sender: match &queued.sender {
                        Some(Owner::Session(id)) => Some(id.clone()),
                        _ => None,
                    },
                    bytes: queued.bytes,
                    message: queued.message.clone(),
                }));
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&fresh)?;
        file.write_all(&lines)?;
        file.sync_all()?;
        fs::rename(&fresh, &self.path)?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }

    /// One record, one `write`. A failed write is logged: the message is still delivered from
    /// memory, it just would not survive the hub.
    fn append(&mut self, record: &Record) {
        if let Err(e) = self.file.write_all(&encode(record)) {
            tracing::error!(error = %e, "inbox_journal_write_failed");
        }
        self.written += 1;
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn encode(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("journal records always serialize");
    line.push(b'\n');
    line
}

/// What the journal at `path` says waits in each session's inbox. A missing file says nothing;
/// an unreadable line (the torn last line of a crash) is skipped; a file of another format is
/// set aside under another name and logged.
fn replay(path: &PathBuf) -> HashMap<String, Told> {
    let mut told: HashMap<String, Told> = HashMap::new();
    let Ok(file) = File::open(path) else {
        return told;
    };
    let mut skipped = 0;
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else {
            skipped += 1;
            continue;
        };
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            skipped += 1;
            continue;
        };
        match record {
            Record::Journal { format } if format != FORMAT => {
                let aside = path.with_extension(format!("journal.format-{format}"));
                tracing::warn!(format, aside = %aside.display(), "inbox_journal_other_format");
                let _ = fs::rename(path, aside);
                return HashMap::new();
            }
            Record::Journal { .. } => {}
            Record::Keep {
                session,
                seq,
                sender,
                bytes,
                message,
            } => {
                let queued = Queued::new(seq, message, sender.map(Owner::Session), bytes);
                told.entry(session)
                    .or_default()
                    .messages
                    .insert(seq, queued);
            }
            Record::Ack { session, upto } => {
                if let Some(told) = told.get_mut(&session) {
                    told.messages.retain(|seq, _| *seq > upto);
                }
            }
            Record::Away { session, at_ms } => {
                told.entry(session).or_default().away_since_ms = Some(at_ms)
            }
            Record::Back { session } => {
                if let Some(told) = told.get_mut(&session) {
                    told.away_since_ms = None;
                }
            }
            Record::Expired { session } => {
                told.remove(&session);
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(lines = skipped, "inbox_journal_lines_skipped");
    }
    told.retain(|_, told| !told.messages.is_empty());
    told
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Delivery;

    fn reply(n: u64) -> FromHub {
        FromHub::Reply(Delivery {
            message_id: format!("m{n}"),
            ask_id: format!("a{n}"),
            from: "beta".into(),
            thread_id: format!("a{n}"),
            broadcast_id: None,
            text: format!("answer {n}"),
        })
    }

    fn kept_in(inboxes: &Inboxes, session: &str) -> Vec<FromHub> {
        inboxes
            .get(&Owner::Session(session.into()))
            .map(|inbox| inbox.queued().map(|q| q.message.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn what_was_kept_and_not_acknowledged_comes_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let now = Instant::now();
        let mut inboxes = Inboxes::default();
        let mut journal = Journal::open(&data, &mut inboxes, now).unwrap();
        for n in 1..=3 {
            journal.keep(
                "s1",
                &Queued::new(n, reply(n), Some(Owner::Session("s9".into())), 8),
            );
        }
        journal.ack("s1", 1);
        journal.keep("s2", &Queued::new(4, reply(4), None, 8));
        journal.expired("s2");
        // A question is never journaled: its ask ends with the hub.
        let question = FromHub::Ask(Delivery {
            message_id: "m5".into(),
            ask_id: "a5".into(),
            from: "alpha".into(),
            thread_id: "a5".into(),
            broadcast_id: None,
            text: "q".into(),
        });
        journal.keep("s1", &Queued::new(5, question, None, 1));
        journal.away("s1");
        drop(journal);
        // A crash tore the last line.
        let path = dir.path().join("inbox.journal");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"k\":\"keep\",\"sess").unwrap();

        let mut restored = Inboxes::default();
        let _journal = Journal::open(&data, &mut restored, now).unwrap();
        assert_eq!(kept_in(&restored, "s1"), [reply(2), reply(3)]);
        assert!(kept_in(&restored, "s2").is_empty());
        let sender = restored
            .get(&Owner::Session("s1".into()))
            .unwrap()
            .queued()
            .next()
            .unwrap()
            .sender
            .clone();
        assert_eq!(sender, Some(Owner::Session("s9".into())));
        assert!(restored.next_expiry().is_some(), "it waits for its session");
        assert!(restored.next_seq() > 3, "new messages sort after the old");

        // Written anew: only what waits, and it replays the same again.
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let mut again = Inboxes::default();
        Journal::open(&data, &mut again, now).unwrap();
        assert_eq!(kept_in(&again, "s1"), [reply(2), reply(3)]);
    }

    /// What the journal costs per queued message: a keep and its acknowledgement, each one
    /// encoded record and one `write`. A measurement, not a check (docs/benchmarks.md):
    /// `cargo test --release --lib journal_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run it by name"]
    fn journal_cost() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let mut inboxes = Inboxes::default();
        let mut journal = Journal::open(&data, &mut inboxes, Instant::now()).unwrap();
        let text = "x".repeat(200);
        let rounds = 20_000u64;
        let started = std::time::Instant::now();
        for n in 1..=rounds {
            let message = FromHub::Reply(Delivery {
                message_id: format!("msg-mx5abc-{n}"),
                ask_id: format!("ask-mx5abc-{n}"),
                from: "backend-api".into(),
                thread_id: format!("ask-mx5abc-{n}"),
                broadcast_id: None,
                text: text.clone(),
            });
            journal.keep(
                "6f1c2d3e-0000-4000-8000-1234567890ab",
                &Queued::new(n, message, None, 200),
            );
            journal.ack("6f1c2d3e-0000-4000-8000-1234567890ab", n);
        }
        let per = started.elapsed() / rounds as u32;
        let bytes = fs::metadata(dir.path().join("inbox.journal"))
            .unwrap()
            .len()
            / rounds;
        println!(
            "journal: keep + acknowledge {per:?} per message, {bytes} bytes written per message"
        );
    }

    #[test]
    fn a_journal_of_another_format_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        fs::write(
            dir.path().join("inbox.journal"),
            "{\"k\":\"journal\",\"format\":99}\n",
        )
        .unwrap();
        let mut inboxes = Inboxes::default();
        Journal::open(&data, &mut inboxes, Instant::now()).unwrap();
        assert_eq!(inboxes.total(), 0);
        assert!(dir.path().join("inbox.journal.format-99").exists());
    }
}
