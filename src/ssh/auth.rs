//! SSH user authentication (RFC 4252, RFC 4256): the `ssh-userauth` service, then a
//! key from the keychain, the password, or keyboard-interactive answered with the
//! password (servers with `PasswordAuthentication no` but PAM prompts).

use super::transport::Transport;
use super::wire::{Reader, Writer, msg, protocol};
use crate::error::{Error, Kind, Result};

/// How to prove who we are.
pub enum Credentials<'a> {
    Password(&'a str),
    /// An OpenSSH private key text (the keychain's), with the password as a fallback.
    Key {
        private_key: &'a str,
        password: Option<&'a str>,
    },
}

fn failure_methods(m: &[u8]) -> Vec<String> {
    Reader(&m[1..]).name_list().unwrap_or_default()
}

fn refused(user: &str, shown: &str, methods: &[String]) -> Error {
    Error::new(
        Kind::Permission,
        format!(
            "the SSH server {shown} refused the user name {user:?} with that password or key (it accepts: {})",
            if methods.is_empty() { "nothing".to_string() } else { methods.join(", ") }
        ),
    )
}

/// Wait for the answer to a user-auth request: `Ok(true)` success, `Ok(false)` failure
/// (the methods the server still accepts in `methods`).
fn answer(t: &mut Transport, methods: &mut Vec<String>) -> Result<Option<Vec<u8>>> {
    loop {
        let m = t.recv()?;
        match m[0] {
            msg::USERAUTH_BANNER => continue,
            msg::USERAUTH_SUCCESS => return Ok(None),
            msg::USERAUTH_FAILURE => {
                *methods = failure_methods(&m);
                return Ok(Some(m));
            }
            msg::USERAUTH_INFO_REQUEST => return Ok(Some(m)),
            61..=79 => return Ok(Some(m)),
            other => return Err(protocol(format!("message {other} during authentication"))),
        }
    }
}

fn request(user: &str, method: &str) -> Writer {
    let mut w = Writer::new(msg::USERAUTH_REQUEST);
    w.string(user.as_bytes()).string(b"ssh-connection").string(method.as_bytes());
    w
}

fn password(t: &mut Transport, user: &str, pass: &str, methods: &mut Vec<String>) -> Result<bool> {
    let mut w = request(user, "password");
    w.bool(false).string(pass.as_bytes());
    t.send(&w.0)?;
    Ok(answer(t, methods)?.is_none())
}

fn keyboard_interactive(t: &mut Transport, user: &str, pass: &str, methods: &mut Vec<String>) -> Result<bool> {
    let mut w = request(user, "keyboard-interactive");
    w.string(b"").string(b"");
    t.send(&w.0)?;
    // Answer each round's prompts with the password (empty rounds with nothing), at
    // most a few rounds: a server that keeps asking is refused.
    for _ in 0..4 {
        let Some(m) = answer(t, methods)? else { return Ok(true) };
        if m[0] != msg::USERAUTH_INFO_REQUEST {
            return Ok(false);
        }
        let mut r = Reader(&m[1..]);
        r.string()?;
        r.string()?;
        r.string()?;
        let prompts = r.u32()?.min(16);
        let mut w = Writer::new(msg::USERAUTH_INFO_RESPONSE);
        w.u32(prompts);
        for _ in 0..prompts {
            r.string()?;
            r.bool()?;
            w.string(pass.as_bytes());
        }
        t.send(&w.0)?;
    }
    Ok(false)
}

fn public_key(t: &mut Transport, user: &str, private_key: &str, methods: &mut Vec<String>) -> Result<bool> {
    let signer = crate::keychain::signer(private_key)?;
    let (alg, blob) = (signer.algorithm(), signer.public_blob());
    let mut w = request(user, "publickey");
    w.bool(true).string(alg.as_bytes()).string(&blob);
    let mut signed = Writer::default();
    signed.string(t.session_id());
    signed.raw(&w.0);
    let sig = signer.sign(&signed.0)?;
    let mut sw = Writer::default();
    sw.string(alg.as_bytes()).string(&sig);
    w.string(&sw.0);
    t.send(&w.0)?;
    Ok(answer(t, methods)?.is_none())
}

/// Authenticate `user` on a fresh transport.
pub fn authenticate(t: &mut Transport, shown: &str, user: &str, creds: &Credentials<'_>) -> Result<()> {
    t.send(Writer::new(msg::SERVICE_REQUEST).string(b"ssh-userauth").0.as_slice())?;
    let m = t.recv()?;
    if m[0] != msg::SERVICE_ACCEPT {
        return Err(protocol("the server did not accept the authentication service"));
    }
    // `none` tells which methods the server takes.
    t.send(&request(user, "none").0)?;
    let mut methods = Vec::new();
    if answer(t, &mut methods)?.is_none() {
        return Ok(());
    }
    let offers = |m: &Vec<String>, name: &str| m.iter().any(|x| x == name);
    let pass = match creds {
        Credentials::Password(p) => Some(*p),
        Credentials::Key { private_key, password } => {
            if offers(&methods, "publickey") && public_key(t, user, private_key, &mut methods)? {
                return Ok(());
            }
            *password
        }
    };
    if let Some(p) = pass {
        if offers(&methods, "password") && password(t, user, p, &mut methods)? {
            return Ok(());
        }
        if offers(&methods, "keyboard-interactive") && keyboard_interactive(t, user, p, &mut methods)? {
            return Ok(());
        }
    }
    Err(refused(user, shown, &methods))
}
