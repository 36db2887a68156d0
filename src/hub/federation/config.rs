//! Whether, and how, a hub joins a federation: read from its environment and its data
//! directory, with the credentials kept out of every place others can read.
//!
//! - `RELAY_NATS_URL` (else `url` in `DATA/federation.json`): the NATS server. Without one the
//!   hub does not federate and no NATS code runs. A URL holding credentials is refused: they
//!   would show in process lists and logs.
//! - `RELAY_HOST` (else `host` in the settings file, else the machine's host name, slugged):
//!   this hub's name in the federation; a remote session is `name@host`.
//! - `RELAY_NATS_PREFIX` (else `prefix`, else `relay`): the subjects' namespace.
//! - `RELAY_NATS_CREDENTIALS` (else `credentials`): a JSON file with `user` and `password`, or
//!   `token`, or `nkey_seed`, or `creds_file` (a NATS `.creds` file), and optionally `tls_ca`.
//!   It, and a `.creds` file it names, must belong to this user and be readable by nobody else
//!   (mode 0600 or stricter); otherwise the hub refuses to federate and says why.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::paths::DataDir;

/// The subjects' namespace when none is given.
pub(crate) const DEFAULT_PREFIX: &str = "relay";

/// The longest host name.
const MAX_HOST_LEN: usize = 64;

/// A federation to join.
#[derive(Debug, Clone)]
pub(crate) struct FederationConfig {
    /// The server, without credentials.
    pub(crate) url: String,
    pub(crate) host: String,
    pub(crate) prefix: String,
    pub(crate) credentials: Option<Credentials>,
}

/// How the hub proves who it is to the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) auth: Auth,
    pub(crate) tls_ca: Option<PathBuf>,
}

#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
    NkeySeed(String),
    CredsFile(PathBuf),
}

/// Never prints a secret.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::UserPassword(..) => "user and password",
            Auth::Token(_) => "token",
            Auth::NkeySeed(_) => "nkey seed",
            Auth::CredsFile(_) => "creds file",
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: Option<String>,
    host: Option<String>,
    prefix: Option<String>,
    credentials: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    nkey_seed: Option<String>,
    creds_file: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
}

/// The federation settings file in `data`.
pub(crate) fn settings_file(data: &DataDir) -> PathBuf {
    data.root().join("federation.json")
}

/// The federation to join, `None` when none is configured, or why the configuration is refused.
pub(crate) fn from_env(data: &DataDir) -> Result<Option<FederationConfig>, String> {
    let file = settings_file(data);
    let settings = match fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str::<Settings>(&text)
            .map_err(|e| format!("{} is not valid federation settings: {e}", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let env = |key: &str| {
        std::env::var(key)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let Some(url) = env("RELAY_NATS_URL").or(settings.url) else {
        return Ok(None);
    };
    let url = checked_url(url.trim())?;
    let host = match env("RELAY_HOST").or(settings.host) {
        Some(host) => checked_host(host.trim())?,
        None => machine_host()?,
    };
    let prefix = env("RELAY_NATS_PREFIX")
        .or(settings.prefix)
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    let prefix = checked_prefix(prefix.trim())?;
    let credentials = env("RELAY_NATS_CREDENTIALS")
        .map(PathBuf::from)
        .or(settings.credentials)
        .map(|path| read_credentials(&path))
        .transpose()?;
    Ok(Some(FederationConfig {
        url,
        host,
        prefix,
        credentials,
    }))
}

/// The URL, refused when it carries credentials.
fn checked_url(url: &str) -> Result<String, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(
            "RELAY_NATS_URL holds credentials, which the relay refuses there (they would show in \
             process lists and logs): put them in a credentials file (RELAY_NATS_CREDENTIALS)"
                .to_owned(),
        );
    }
    if url.is_empty() {
        return Err("RELAY_NATS_URL is empty".to_owned());
    }
    Ok(url.to_owned())
}

/// A host name: 1 to 64 of `[a-z0-9-]`, as a slug of anything longer or odder.
pub(crate) fn checked_host(host: &str) -> Result<String, String> {
    let slug = slug::slugify(host);
    let slug = slug[..slug.len().min(MAX_HOST_LEN)]
        .trim_end_matches('-')
        .to_owned();
    if slug.is_empty() {
        return Err(format!(
            "{host:?} cannot be a host name: use letters, digits and '-'"
        ));
    }
    Ok(slug)
}

/// Whether `host` is a host name as [`checked_host`] makes them: what another hub says is its
/// host must be one, to be a subject's token and half of a `name@host`.
pub(crate) fn is_host_name(host: &str) -> bool {
    checked_host(host).is_ok_and(|checked| checked == host)
}

fn checked_prefix(prefix: &str) -> Result<String, String> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(format!(
            "{prefix:?} cannot be a subject prefix: use tokens of letters, digits, '-' and '_' joined by '.'"
        ));
    }
    Ok(prefix.to_owned())
}

/// The machine's host name, slugged.
fn machine_host() -> Result<String, String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::process::Command::new("hostname")
                .output()
                .ok()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .ok_or("cannot tell this machine's host name: set RELAY_HOST")?;
    checked_host(name.trim())
}

/// Refuses a file that is not this user's own or that others may read.
fn private(path: &Path, what: &str) -> Result<(), String> {
    let meta = fs::metadata(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return Err(format!(
            "the {what} {} belongs to uid {}, not to this user (uid {uid}): refused",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the {what} {} has mode {:04o}, open to other users: refused; make it private with `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    Ok(())
}

fn read_credentials(path: &Path) -> Result<Credentials, String> {
    private(path, "credentials file")?;
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?;
    let file: CredentialsFile = serde_json::from_str(&text).map_err(|_| {
        // serde's message could quote the file's text: say only what is expected.
        format!(
            "the credentials file {} is not JSON of user and password, token, nkey_seed or creds_file (and tls_ca)",
            path.display()
        )
    })?;
    let auth = match (
        file.user,
        file.password,
        file.token,
        file.nkey_seed,
        file.creds_file,
    ) {
        (Some(user), Some(password), None, None, None) => Auth::UserPassword(user, password),
        (None, None, Some(token), None, None) => Auth::Token(token),
        (None, None, None, Some(seed), None) => Auth::NkeySeed(seed),
        (None, None, None, None, Some(creds)) => {
            private(&creds, "creds file")?;
            Auth::CredsFile(creds)
        }
        (None, None, None, None, None) => Auth::None,
        _ => {
            return Err(format!(
                "the credentials file {} must hold one of: user and password, token, nkey_seed, creds_file",
                path.display()
            ));
        }
    };
    Ok(Credentials {
        auth,
        tls_ca: file.tls_ca,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn credentials_in_the_url_are_refused() {
        assert!(checked_url("nats://127.0.0.1:4222").is_ok());
        assert!(checked_url("tls://nats.example:4222/x").is_ok());
        let refused = checked_url("nats://alice:secret@127.0.0.1:4222").unwrap_err();
        assert!(refused.contains("holds credentials"), "{refused}");
        assert!(!refused.contains("secret"), "never repeats them: {refused}");
    }

    #[test]
    fn host_names_are_slugs() {
        assert_eq!(checked_host("Build Box.local").unwrap(), "build-box-local");
        assert!(checked_host("!!!").is_err());
        assert_eq!(checked_host(&"x".repeat(100)).unwrap().len(), MAX_HOST_LEN);
    }

    #[test]
    fn a_credentials_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nats.json");
        fs::write(&file, r#"{"token":"s3cret"}"#).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let refused = read_credentials(&file).unwrap_err();
        assert!(refused.contains("mode 0644"), "{refused}");
        assert!(!refused.contains("s3cret"));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_credentials(&file).unwrap().auth,
            Auth::Token(_)
        ));
        fs::write(&file, r#"{"token":"a","user":"b"}"#).unwrap();
        assert!(read_credentials(&file).is_err(), "one way only");
        fs::write(&file, r#"{"tokn":"s3cret"}"#).unwrap();
        let unreadable = read_credentials(&file).unwrap_err();
        assert!(!unreadable.contains("s3cret"), "{unreadable}");
    }
}
