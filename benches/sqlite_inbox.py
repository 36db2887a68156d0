"""What a SQLite inbox would cost per message, for comparison with the hub's journal.

The hub keeps a session's queued replies in DATA/inbox.journal (an append-only file of JSON
lines; src/hub/journal.rs). This measures the alternative the design considered: the same
message kept in SQLite (WAL) and acknowledged, one transaction each, at three synchronous
levels, beside a bare append of the journal's record. Run: python3 benches/sqlite_inbox.py
(Python's own sqlite3; nothing to install). The journal's own cost, through its Rust code, is
measured by: cargo test --release --lib journal_cost -- --ignored --nocapture
"""
import sqlite3, time, os, tempfile, json
d = tempfile.mkdtemp()
msg = json.dumps({"type":"reply","message_id":"msg-mx5abc-123","ask_id":"ask-mx5abc-122","from":"backend-api","thread_id":"ask-mx5abc-122","text":"x"*200})
for sync in ["OFF","NORMAL","FULL"]:
    db = sqlite3.connect(os.path.join(d, f"inbox-{sync}.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute(f"PRAGMA synchronous={sync}")
    db.execute("CREATE TABLE inbox(seq INTEGER PRIMARY KEY, session TEXT, message TEXT)")
    n = 5000
    t = time.perf_counter()
    for i in range(n):
        db.execute("INSERT INTO inbox(seq, session, message) VALUES (?,?,?)", (i, "s1", msg))
    keep = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for i in range(n):
        db.execute("DELETE FROM inbox WHERE seq <= ?", (i,))
    ack = (time.perf_counter() - t) / n
    print(f"sqlite WAL synchronous={sync}: keep {keep*1e6:.1f} us, ack {ack*1e6:.1f} us per message")
f = open(os.path.join(d, "j"), "ab", buffering=0)
line = (json.dumps({"k":"keep","session":"s1","seq":1,"bytes":200,"message":json.loads(msg)})+"\n").encode()
t = time.perf_counter()
for i in range(5000): f.write(line)
print(f"python append write(): {(time.perf_counter()-t)/5000*1e6:.1f} us per record ({len(line)} bytes)")
