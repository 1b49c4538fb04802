//! TLS for FTPS (rustls, ring): the server's certificate is checked against the web's
//! root authorities, or, for a NAS's own self-signed certificate, against the SHA-256
//! fingerprint the credential pins (`tls_fingerprint`). A certificate that fails either
//! check is refused with its fingerprint in the message, so the admin can compare it with
//! the server's and pin it.
//!
//! Each control connection gets its own session store, which its data connections resume
//! from: servers that require the data connection's TLS session to be the control
//! connection's (vsftpd `require_ssl_reuse=YES`, FileZilla Server) accept nothing else,
//! and a store shared between connections would offer another connection's session.

use super::conn::Stream;
use crate::error::{Error, Kind, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest as _;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// How the session is secured (the credential's `tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain FTP (TrueNAS's only mode).
    Off,
    /// `AUTH TLS` on the ordinary port, then everything encrypted (FTPES).
    Explicit,
    /// TLS from the first byte (port 990, FTPS).
    Implicit,
}

impl TlsMode {
    pub fn parse(s: &str) -> Result<TlsMode> {
        match s.to_ascii_uppercase().as_str() {
            "" | "OFF" => Ok(TlsMode::Off),
            "EXPLICIT" => Ok(TlsMode::Explicit),
            "IMPLICIT" => Ok(TlsMode::Implicit),
            other => Err(Error::usage(format!("unknown FTP tls mode {other:?}: OFF, EXPLICIT or IMPLICIT"))),
        }
    }
}

/// `AB:CD:…` (upper-case hex pairs), as `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    let d = sha2::Sha256::digest(der);
    d.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A fingerprint as an admin may paste it: hex with or without colons or spaces.
pub fn parse_fingerprint(s: &str) -> Result<Option<[u8; 32]>> {
    let hex: String = s.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect();
    if hex.is_empty() {
        return Ok(None);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(&hex, &mut out).map_err(|_| {
        Error::usage("tls_fingerprint must be the certificate's SHA-256 fingerprint: 64 hex digits (colons allowed)")
    })?;
    Ok(Some(out))
}

#[derive(Debug)]
struct Verifier {
    pin: Option<[u8; 32]>,
    webpki: Arc<dyn ServerCertVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// The fingerprint of the last certificate refused, for the error message.
    refused: Arc<Mutex<Option<String>>>,
}

/// A remote's TLS settings, or one connection's (with its own session store).
#[derive(Clone)]
pub struct Settings {
    pub cfg: Arc<rustls::ClientConfig>,
    refused: Arc<Mutex<Option<String>>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = sha2::Sha256::digest(end_entity.as_ref());
        let result = match self.pin {
            Some(pin) if got.as_slice() == pin => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::General("the certificate is not the pinned one".into())),
            None => self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
        };
        if result.is_err()
            && let Ok(mut r) = self.refused.lock()
        {
            *r = Some(fingerprint(end_entity.as_ref()));
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS settings of a remote: roots or pin, TLS 1.2 only when `tls12` (servers that
/// cannot resume TLS 1.3 sessions on data connections).
pub fn config(pin: Option<[u8; 32]>, tls12: bool) -> Result<Settings> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::other(format!("TLS roots: {e}")))?;
    let refused = Arc::new(Mutex::new(None));
    let verifier = Arc::new(Verifier { pin, webpki, provider: provider.clone(), refused: refused.clone() });
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12 { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::other(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Settings { cfg: Arc::new(cfg), refused })
}

/// A copy of `base` with a session store of its own.
pub fn per_connection(base: &Settings) -> Settings {
    let mut c = (*base.cfg).clone();
    c.resumption = rustls::client::Resumption::in_memory_sessions(16);
    Settings { cfg: Arc::new(c), refused: base.refused.clone() }
}

/// Wrap `tcp` in a TLS client session and complete the handshake.
pub(crate) fn wrap(tls: &Settings, name: &ServerName<'static>, mut tcp: TcpStream, shown: &str) -> Result<Stream> {
    let mut conn = rustls::ClientConnection::new(tls.cfg.clone(), name.clone())
        .map_err(|e| Error::new(Kind::Protocol, format!("TLS with {shown}: {e}")))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(handshake_error(tls, shown, e));
        }
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

fn handshake_error(tls: &Settings, shown: &str, e: std::io::Error) -> Error {
    let cert_problem = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).is_some_and(|r| {
        matches!(r, rustls::Error::InvalidCertificate(_))
            || matches!(r, rustls::Error::General(m) if m.contains("pinned"))
    });
    if cert_problem {
        let fp = tls.refused.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "unknown".into());
        return Error::new(
            Kind::Permission,
            format!(
                "the FTP server {shown} presented a TLS certificate that is not trusted ({e}); its SHA-256 \
                 fingerprint is {fp}: if that is your server's certificate, set tls_fingerprint to it"
            ),
        );
    }
    let kind = if e.kind() == std::io::ErrorKind::InvalidData { Kind::Protocol } else { Kind::Network };
    Error::new(kind, format!("TLS handshake with {shown} failed: {e}")).with_retryable(kind == Kind::Network)
}
