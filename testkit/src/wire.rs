//! A raw connection to the hub's socket that speaks the wire protocol by hand: for what no
//! well-behaved channel would send (malformed lines, wrong protocols, peers that stop reading).

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
};

use serde_json::{Value, json};

use crate::{PROMPTLY, world::World};

/// A connection to a world's hub. Reads fail the test after [`PROMPTLY`] of silence.
pub struct RawPeer {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl RawPeer {
    pub fn connect(world: &World) -> RawPeer {
        let stream = UnixStream::connect(world.socket()).expect("connect to hub");
        stream.set_read_timeout(Some(PROMPTLY)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        RawPeer {
            stream,
            reader,
            next_id: 0,
        }
    }

    /// How long a read waits before it fails the test (at first [`PROMPTLY`]): longer for an
    /// event that comes after a known delay, such as a peer being dropped for not reading.
    pub fn set_read_timeout(&mut self, timeout: std::time::Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to hub");
    }

    pub fn send(&mut self, message: &Value) {
        self.send_raw(format!("{message}\n").as_bytes());
    }

    /// The next line from the hub, parsed; `None` when the hub closed the connection.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("hub writes JSON lines")),
            Err(e) => panic!("reading from hub: {e}"),
        }
    }

    /// Says hello with the current protocol, as a peer whose pushes are shown, and returns the
    /// hub's answer.
    pub fn hello(&mut self, name: &str) -> Value {
        self.send(&json!({"id": 1, "op": "hello", "protocol": 2, "version": "test", "name": name, "pushes": "on"}));
        self.read().expect("answer to hello")
    }

    /// Sends `op` (a request without its id) and returns the response, skipping events.
    pub fn request(&mut self, mut op: Value) -> Value {
        let id = 1000 + self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        self.send(&op);
        loop {
            let message = self.read().expect("the hub answers");
            if message["id"] == id {
                return message;
            }
        }
    }

    /// True once the hub has closed this connection: reads until end of stream, or until the
    /// reset a peer gets when the hub closed with some of its bytes unread (the rest of a line
    /// over the limit, which the hub does not read). Either way everything the hub wrote before
    /// closing has been read by then; a read that times out is false.
    pub fn closed_by_hub(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}
