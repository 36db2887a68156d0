//! A real `nats-server` for a test: on a free loopback port, with its own files, stopped by its
//! pid when dropped. It can be stopped and started again on the same port, as a server that goes
//! down and comes back.

use std::{
    fs,
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{KillOnDrop, wait_for};

/// Where Debian's package puts the server (`apt-get install nats-server`; `.ci/run` does).
const NATS_SERVER: &str = "/usr/sbin/nats-server";

pub struct NatsServer {
    process: Option<KillOnDrop>,
    port: u16,
    /// The server's configuration file, when it has one.
    config: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// A server without authentication on a free loopback port, or `None` when there is no
    /// `nats-server` to run: `test` is then skipped, or fails under CI.
    pub fn start(test: &str) -> Option<NatsServer> {
        NatsServer::with_config(test, "")
    }

    /// A server whose configuration file holds `config` (e.g. an `authorization { .. }` block),
    /// on a free loopback port; `None` as for [`NatsServer::start`].
    pub fn with_config(test: &str, config: &str) -> Option<NatsServer> {
        if !Path::new(NATS_SERVER).exists() {
            crate::skip_unless_ci(
                test,
                "nats-server",
                &format!("no {NATS_SERVER} (bash .ci/install-packages.sh installs Debian's)"),
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir for nats-server");
        let config = (!config.is_empty()).then(|| {
            let path = dir.path().join("nats.conf");
            fs::write(&path, config).expect("write nats.conf");
            path
        });
        let mut server = NatsServer {
            process: None,
            port: free_port(),
            config,
            dir,
        };
        server.resume();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("the server runs").pid()
    }

    /// Kills the server (SIGKILL, by pid): every client loses it at once.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on its port, and waits until it accepts connections.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "the server runs already");
        let mut command = Command::new(NATS_SERVER);
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-l")
            .arg(self.dir.path().join("nats.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        self.process = Some(KillOnDrop::spawn(&mut command, "nats-server"));
        let port = self.port;
        wait_for("nats-server to accept connections", || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
