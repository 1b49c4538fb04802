//! SSH key pairs for the keychain (TrueNAS `keychaincredential` of type `SSH_KEY_PAIR`):
//! reading the private keys admins bring (OpenSSH's own format, PEM PKCS#1 RSA, PKCS#8
//! RSA and Ed25519), deriving and checking their public keys, and generating new Ed25519
//! pairs. The store keeps the private key encrypted at rest like every secret; nothing
//! here writes a key to disk.
//!
//! Formats: OpenSSH's `openssh-key-v1` (PROTOCOL.key), the SSH wire encoding of public
//! keys (RFC 4253 §6.6, RFC 8709), DER as PKCS#1 (RFC 8017 A.1.2) and PKCS#8 (RFC 5208,
//! RFC 8410) write them.

use crate::error::{Error, Kind, Result};
use base64::Engine as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A key pair as the keychain stores it (TrueNAS `attributes`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// OpenSSH private key text (PEM armour), or `None` for a public key only.
    pub private_key: Option<String>,
    /// `TYPE BASE64 [COMMENT]`, one line.
    pub public_key: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_key", &self.private_key.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key)
            .finish()
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::usage(msg)
}

const PASSPHRASE: &str = "the private key is protected by a passphrase, which cloudsync cannot type in unattended runs: \
                          remove it with `ssh-keygen -p -N '' -f KEYFILE` and add the key again";

/// SSH wire strings and integers.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Result<u32> {
        if self.0.len() < 4 {
            return Err(bad("the key is cut short"));
        }
        let (h, t) = self.0.split_at(4);
        self.0 = t;
        Ok(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }
    fn string(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return Err(bad("the key is cut short"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// An unsigned big-endian integer as an SSH `mpint`.
fn put_mpint(out: &mut Vec<u8>, n: &[u8]) {
    let n = &n[n.iter().position(|b| *b != 0).unwrap_or(n.len())..];
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = Vec::with_capacity(n.len() + 1);
        v.push(0);
        v.extend_from_slice(n);
        put_string(out, &v);
    } else {
        put_string(out, n);
    }
}

/// The body of a PEM block labelled `label`, and whether it carries encryption headers.
fn pem_body(text: &str, label: &str) -> Option<(Vec<u8>, bool)> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let inner = &text[start..stop];
    let encrypted = inner.contains("Proc-Type:") && inner.contains("ENCRYPTED");
    let b64: String = inner.lines().filter(|l| !l.contains(':')).flat_map(|l| l.trim().chars()).collect();
    Some((B64.decode(b64).ok()?, encrypted))
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let short = || bad("the key's DER encoding is cut short");
    let (&tag, rest) = input.split_first().ok_or_else(short)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(short)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("the key's DER encoding is not valid"));
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(short());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn der_expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8])> {
    let (tag, body, rest) = der(input)?;
    if tag != want {
        return Err(bad("the key's DER encoding is not a private key"));
    }
    Ok((body, rest))
}

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];

/// The ECDSA curves SSH names (`nistp256`, `nistp384`); P-521 is refused with a sentence
/// (ring cannot sign with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn ssh_name(self) -> &'static str {
        match self {
            Curve::P256 => "nistp256",
            Curve::P384 => "nistp384",
        }
    }

    fn algorithm(self) -> &'static str {
        match self {
            Curve::P256 => "ecdsa-sha2-nistp256",
            Curve::P384 => "ecdsa-sha2-nistp384",
        }
    }

    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    fn signing(self) -> &'static ring::signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    fn of_ssh_name(name: &[u8]) -> Result<Curve> {
        match name {
            b"nistp256" => Ok(Curve::P256),
            b"nistp384" => Ok(Curve::P384),
            b"nistp521" => Err(p521()),
            _ => Err(bad(format!("the ECDSA curve {} is not known", String::from_utf8_lossy(name)))),
        }
    }

    fn of_oid(oid: &[u8]) -> Result<Curve> {
        match oid {
            OID_P256 => Ok(Curve::P256),
            OID_P384 => Ok(Curve::P384),
            OID_P521 => Err(p521()),
            _ => Err(bad("the EC key's curve is not one SSH uses")),
        }
    }
}

fn p521() -> Error {
    Error::new(
        Kind::Unsupported,
        "ECDSA keys on the P-521 curve cannot sign in to SSH servers yet: use an Ed25519, RSA, or P-256/P-384 ECDSA key",
    )
}

fn ecdsa_public_blob(curve: Curve, q: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_string(&mut b, curve.algorithm().as_bytes());
    put_string(&mut b, curve.ssh_name().as_bytes());
    put_string(&mut b, q);
    b
}

/// SEC 1 `ECPrivateKey` (PEM `EC PRIVATE KEY`, and inside PKCS#8): curve, scalar and
/// public point. `outer_curve` is PKCS#8's, where the inner one may be left out.
fn sec1_key(der_key: &[u8], outer_curve: Option<Curve>) -> Result<(Curve, Vec<u8>, Vec<u8>)> {
    let (seq, _) = der_expect(der_key, 0x30)?;
    let (_version, rest) = der_expect(seq, 0x02)?;
    let (d, mut rest) = der_expect(rest, 0x04)?;
    let mut curve = outer_curve;
    let mut q = None;
    while !rest.is_empty() {
        let (tag, body, more) = der(rest)?;
        match tag {
            0xA0 => curve = Some(Curve::of_oid(der_expect(body, 0x06)?.0)?),
            0xA1 => {
                let (bits, _) = der_expect(body, 0x03)?;
                q = Some(bits.get(1..).ok_or_else(|| bad("the EC public key is empty"))?.to_vec());
            }
            _ => {}
        }
        rest = more;
    }
    let curve = curve.ok_or_else(|| bad("the EC private key does not name its curve"))?;
    let q = q.ok_or_else(|| bad("the EC private key does not carry its public key"))?;
    Ok((curve, d.to_vec(), q))
}

/// A signer from an ECDSA scalar and point (the pair is checked by ring).
fn ecdsa_signer(curve: Curve, d: &[u8], q: &[u8]) -> Result<Signer> {
    let n = curve.scalar_len();
    let d: Vec<u8> = d.iter().copied().skip_while(|b| *b == 0).collect();
    if d.len() > n {
        return Err(bad("the ECDSA private key is longer than its curve allows"));
    }
    let mut fixed = vec![0u8; n - d.len()];
    fixed.extend_from_slice(&d);
    let kp = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        curve.signing(),
        &fixed,
        q,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|_| bad("the ECDSA private key's public part does not belong to its private part"))?;
    Ok(Signer::Ecdsa(kp, curve))
}

fn rsa_public_blob(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_string(&mut b, b"ssh-rsa");
    put_mpint(&mut b, e);
    put_mpint(&mut b, n);
    b
}

fn ed25519_public_blob(public: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_string(&mut b, b"ssh-ed25519");
    put_string(&mut b, public);
    b
}

/// PKCS#1 `RSAPrivateKey`: the public blob.
fn pkcs1_public(der_key: &[u8]) -> Result<Vec<u8>> {
    let (seq, _) = der_expect(der_key, 0x30)?;
    let (_version, rest) = der_expect(seq, 0x02)?;
    let (n, rest) = der_expect(rest, 0x02)?;
    let (e, _) = der_expect(rest, 0x02)?;
    Ok(rsa_public_blob(n, e))
}

fn ed25519_public(seed: &[u8]) -> Result<Vec<u8>> {
    let kp = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| bad("the Ed25519 private key is not valid"))?;
    use ring::signature::KeyPair as _;
    Ok(kp.public_key().as_ref().to_vec())
}

/// PKCS#8 `PrivateKeyInfo` (RSA, Ed25519 or ECDSA): the public blob, and the Ed25519 seed.
fn pkcs8_public(der_key: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let (seq, _) = der_expect(der_key, 0x30)?;
    let (_version, rest) = der_expect(seq, 0x02)?;
    let (alg, rest) = der_expect(rest, 0x30)?;
    let (oid, params) = der_expect(alg, 0x06)?;
    let (key, _) = der_expect(rest, 0x04)?;
    match oid {
        OID_RSA => Ok((pkcs1_public(key)?, None)),
        OID_EC_PUBLIC_KEY => {
            let curve = Curve::of_oid(der_expect(params, 0x06)?.0)?;
            let (curve, _, q) = sec1_key(key, Some(curve))?;
            Ok((ecdsa_public_blob(curve, &q), None))
        }
        OID_ED25519 => {
            let (seed, _) = der_expect(key, 0x04)?;
            if seed.len() != 32 {
                return Err(bad("the Ed25519 private key is not 32 bytes"));
            }
            Ok((ed25519_public_blob(&ed25519_public(seed)?), Some(seed.to_vec())))
        }
        _ => Err(bad("only RSA, Ed25519 and ECDSA keys are supported in PKCS#8 form")),
    }
}

/// `openssh-key-v1`: the public blob (checked against the private part when unencrypted).
fn openssh_public(bin: &[u8]) -> Result<Vec<u8>> {
    let magic = b"openssh-key-v1\0";
    let body = bin.strip_prefix(&magic[..]).ok_or_else(|| bad("not an OpenSSH private key"))?;
    let mut w = Wire(body);
    let cipher = w.string()?;
    let _kdf = w.string()?;
    let _kdf_options = w.string()?;
    if w.u32()? != 1 {
        return Err(bad("an OpenSSH key file with more than one key is not supported"));
    }
    let public = w.string()?.to_vec();
    if cipher != b"none" {
        return Err(Error::usage(PASSPHRASE));
    }
    let mut p = Wire(w.string()?);
    if p.u32()? != p.u32()? {
        return Err(bad("the OpenSSH private key is damaged (its check numbers differ)"));
    }
    let ty = p.string()?;
    let mut pw = Wire(&public);
    if pw.string()? != ty {
        return Err(bad("the OpenSSH private key's public and private parts are of different types"));
    }
    if ty == b"ssh-ed25519" {
        let public_key = p.string()?;
        let secret = p.string()?;
        if secret.len() != 64
            || ed25519_public(&secret[..32])? != public_key
            || secret[32..] != *public_key
            || public != ed25519_public_blob(public_key)
        {
            return Err(bad("the OpenSSH private key's public part does not belong to its private part"));
        }
    }
    if ty.starts_with(b"ecdsa-sha2-") {
        let curve = Curve::of_ssh_name(p.string()?)?;
        let q = p.string()?;
        let d = p.string()?;
        if public != ecdsa_public_blob(curve, q) || curve.algorithm().as_bytes() != ty {
            return Err(bad("the OpenSSH private key's public part does not belong to its private part"));
        }
        ecdsa_signer(curve, d, q)?;
    }
    Ok(public)
}

/// `a mod m` for unsigned big-endian integers (bitwise long division; RSA's dP and dQ).
fn big_mod(a: &[u8], m: &[u8]) -> Vec<u8> {
    let m: Vec<u8> = m.iter().copied().skip_while(|b| *b == 0).collect();
    let mut r: Vec<u8> = vec![0; m.len() + 1];
    let ge = |r: &[u8]| {
        let (hi, lo) = r.split_at(1);
        hi[0] != 0 || lo >= m.as_slice()
    };
    for byte in a {
        for bit in (0..8).rev() {
            // r = r * 2 + bit
            let mut carry = (byte >> bit) & 1;
            for x in r.iter_mut().rev() {
                let next = *x >> 7;
                *x = (*x << 1) | carry;
                carry = next;
            }
            if ge(&r) {
                let mut borrow = 0i16;
                for (i, x) in r.iter_mut().enumerate().rev() {
                    let sub = if i == 0 { 0 } else { m[i - 1] as i16 };
                    let mut v = *x as i16 - sub - borrow;
                    borrow = if v < 0 { 1 } else { 0 };
                    if v < 0 {
                        v += 256;
                    }
                    *x = v as u8;
                }
            }
        }
    }
    r
}

/// A private key that signs SSH user-authentication requests.
pub enum Signer {
    Ed25519(ring::signature::Ed25519KeyPair),
    /// With its `ssh-rsa` public blob; signs `rsa-sha2-512`.
    Rsa(ring::signature::RsaKeyPair, Vec<u8>),
    /// `ecdsa-sha2-nistp256` / `-nistp384`.
    Ecdsa(ring::signature::EcdsaKeyPair, Curve),
}

impl Signer {
    pub fn algorithm(&self) -> &'static str {
        match self {
            Signer::Ed25519(_) => "ssh-ed25519",
            Signer::Rsa(..) => "rsa-sha2-512",
            Signer::Ecdsa(_, c) => c.algorithm(),
        }
    }

    pub fn public_blob(&self) -> Vec<u8> {
        use ring::signature::KeyPair as _;
        match self {
            Signer::Ed25519(k) => ed25519_public_blob(k.public_key().as_ref()),
            Signer::Rsa(_, blob) => blob.clone(),
            Signer::Ecdsa(k, c) => ecdsa_public_blob(*c, k.public_key().as_ref()),
        }
    }

    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            Signer::Ed25519(k) => Ok(k.sign(data).as_ref().to_vec()),
            Signer::Rsa(k, _) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA512, &ring::rand::SystemRandom::new(), data, &mut sig)
                    .map_err(|_| Error::other("RSA signing failed"))?;
                Ok(sig)
            }
            Signer::Ecdsa(k, c) => {
                // RFC 5656: the signature blob is mpint r, mpint s.
                let sig =
                    k.sign(&ring::rand::SystemRandom::new(), data).map_err(|_| Error::other("ECDSA signing failed"))?;
                let (r, s) = sig.as_ref().split_at(c.scalar_len());
                let mut out = Vec::new();
                put_mpint(&mut out, r);
                put_mpint(&mut out, s);
                Ok(out)
            }
        }
    }
}

fn ed25519_signer(seed: &[u8]) -> Result<Signer> {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .map(Signer::Ed25519)
        .map_err(|_| bad("the Ed25519 private key is not valid"))
}

/// The signer of a private key in any supported format.
pub fn signer(private_key: &str) -> Result<Signer> {
    public_of(private_key)?; // the format checks and the passphrase refusal
    let rsa_err = |_| bad("the RSA private key is not valid");
    if let Some((bin, _)) = pem_body(private_key, "OPENSSH PRIVATE KEY") {
        let mut w = Wire(&bin[b"openssh-key-v1\0".len()..]);
        for _ in 0..3 {
            w.string()?;
        }
        w.u32()?;
        let public = w.string()?.to_vec();
        let mut p = Wire(w.string()?);
        p.u32()?;
        p.u32()?;
        let ty = p.string()?;
        return match ty {
            b"ssh-ed25519" => {
                p.string()?;
                ed25519_signer(&p.string()?[..32])
            }
            b"ssh-rsa" => {
                let strip = |x: &[u8]| x.iter().copied().skip_while(|b| *b == 0).collect::<Vec<u8>>();
                let n = strip(p.string()?);
                let e = strip(p.string()?);
                let d = strip(p.string()?);
                let iqmp = strip(p.string()?);
                let pp = strip(p.string()?);
                let q = strip(p.string()?);
                let minus_one = |x: &[u8]| {
                    let mut v = x.to_vec();
                    if let Some(last) = v.last_mut() {
                        *last = last.wrapping_sub(1); // p and q are odd
                    }
                    v
                };
                let dp = strip(&big_mod(&d, &minus_one(&pp)));
                let dq = strip(&big_mod(&d, &minus_one(&q)));
                let components = ring::rsa::KeyPairComponents {
                    public_key: ring::rsa::PublicKeyComponents { n: n.as_slice(), e: e.as_slice() },
                    d: d.as_slice(),
                    p: pp.as_slice(),
                    q: q.as_slice(),
                    dP: dp.as_slice(),
                    dQ: dq.as_slice(),
                    qInv: iqmp.as_slice(),
                };
                let kp = ring::signature::RsaKeyPair::from_components(&components).map_err(rsa_err)?;
                Ok(Signer::Rsa(kp, public))
            }
            ty if ty.starts_with(b"ecdsa-sha2-") => {
                let curve = Curve::of_ssh_name(p.string()?)?;
                let q = p.string()?.to_vec();
                ecdsa_signer(curve, p.string()?, &q)
            }
            other => Err(Error::new(
                Kind::Unsupported,
                format!(
                    "{} keys cannot sign in to SSH servers yet: use an Ed25519, RSA or ECDSA key",
                    String::from_utf8_lossy(other)
                ),
            )),
        };
    }
    if let Some((bin, _)) = pem_body(private_key, "RSA PRIVATE KEY") {
        let kp = ring::signature::RsaKeyPair::from_der(&bin).map_err(rsa_err)?;
        return Ok(Signer::Rsa(kp, pkcs1_public(&bin)?));
    }
    if let Some((bin, _)) = pem_body(private_key, "EC PRIVATE KEY") {
        let (curve, d, q) = sec1_key(&bin, None)?;
        return ecdsa_signer(curve, &d, &q);
    }
    let (bin, _) = pem_body(private_key, "PRIVATE KEY").ok_or_else(|| bad("not a private key"))?;
    match pkcs8_public(&bin)? {
        (_, Some(seed)) => ed25519_signer(&seed),
        (blob, None) if type_name(&blob)?.starts_with("ecdsa-") => {
            let (seq, _) = der_expect(&bin, 0x30)?;
            let (_, rest) = der_expect(seq, 0x02)?;
            let (alg, rest) = der_expect(rest, 0x30)?;
            let (_, params) = der_expect(alg, 0x06)?;
            let outer = Curve::of_oid(der_expect(params, 0x06)?.0)?;
            let (key, _) = der_expect(rest, 0x04)?;
            let (curve, d, q) = sec1_key(key, Some(outer))?;
            ecdsa_signer(curve, &d, &q)
        }
        (blob, None) => {
            let kp = ring::signature::RsaKeyPair::from_pkcs8(&bin).map_err(rsa_err)?;
            Ok(Signer::Rsa(kp, blob))
        }
    }
}

fn type_name(blob: &[u8]) -> Result<String> {
    Ok(String::from_utf8_lossy(Wire(blob).string()?).into_owned())
}

/// The public key line of a private key in any supported format.
pub fn public_of(private_key: &str) -> Result<String> {
    let blob = if let Some((bin, _)) = pem_body(private_key, "OPENSSH PRIVATE KEY") {
        openssh_public(&bin)?
    } else if let Some((bin, encrypted)) = pem_body(private_key, "RSA PRIVATE KEY") {
        if encrypted {
            return Err(Error::usage(PASSPHRASE));
        }
        pkcs1_public(&bin)?
    } else if pem_body(private_key, "ENCRYPTED PRIVATE KEY").is_some() {
        return Err(Error::usage(PASSPHRASE));
    } else if let Some((bin, encrypted)) = pem_body(private_key, "EC PRIVATE KEY") {
        if encrypted {
            return Err(Error::usage(PASSPHRASE));
        }
        let (curve, d, q) = sec1_key(&bin, None)?;
        ecdsa_signer(curve, &d, &q)?;
        ecdsa_public_blob(curve, &q)
    } else if let Some((bin, _)) = pem_body(private_key, "PRIVATE KEY") {
        pkcs8_public(&bin)?.0
    } else {
        return Err(bad(
            "the private key is not in a format cloudsync reads (OpenSSH, PEM RSA or EC, or PKCS#8 RSA/Ed25519/ECDSA)",
        ));
    };
    Ok(format!("{} {}", type_name(&blob)?, B64.encode(&blob)))
}

/// The `TYPE BASE64` of a public key line (the comment dropped), checked.
pub fn parse_public(line: &str) -> Result<(String, Vec<u8>)> {
    let mut parts = line.split_whitespace();
    let (Some(ty), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(bad("a public key is written `TYPE BASE64 [COMMENT]` (one line of an authorized_keys file)"));
    };
    let blob = B64.decode(b64).map_err(|_| bad("the public key's base64 is not valid"))?;
    if type_name(&blob)? != ty {
        return Err(bad("the public key's type does not match its contents"));
    }
    Ok((ty.to_string(), blob))
}

/// Check what an admin gives for a key pair (TrueNAS: a private key, a public key or
/// both, which must belong together) and complete the public key from the private one.
pub fn check(private_key: Option<&str>, public_key: Option<&str>) -> Result<KeyPair> {
    let private_key = private_key.map(str::trim).filter(|s| !s.is_empty());
    let public_key = public_key.map(str::trim).filter(|s| !s.is_empty());
    match (private_key, public_key) {
        (None, None) => Err(bad("a key pair needs a private key, a public key or both")),
        (None, Some(p)) => {
            parse_public(p)?;
            Ok(KeyPair { private_key: None, public_key: p.to_string() })
        }
        (Some(k), given) => {
            let derived = public_of(k)?;
            if let Some(p) = given
                && parse_public(p)?.1 != parse_public(&derived)?.1
            {
                return Err(bad("the public key does not belong to the private key"));
            }
            let mut key = k.to_string();
            key.push('\n');
            Ok(KeyPair { private_key: Some(key), public_key: given.unwrap_or(&derived).to_string() })
        }
    }
}

/// A new Ed25519 key pair in OpenSSH's format (what `ssh-keygen -t ed25519 -N ''` writes).
pub fn generate(comment: &str) -> Result<KeyPair> {
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Error::new(Kind::Other, "cannot generate a key: no randomness"))?;
    let (_, seed) = pkcs8_public(doc.as_ref())?;
    let seed = zeroize::Zeroizing::new(seed.ok_or_else(|| Error::other("ring made no Ed25519 seed"))?);
    let public = ed25519_public(&seed)?;
    let blob = ed25519_public_blob(&public);
    let mut check = [0u8; 4];
    getrandom::getrandom(&mut check).map_err(|_| Error::other("no randomness"))?;
    let mut private = zeroize::Zeroizing::new(Vec::new());
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, &public);
    let mut secret = zeroize::Zeroizing::new(seed.to_vec());
    secret.extend_from_slice(&public);
    put_string(&mut private, &secret);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = zeroize::Zeroizing::new(b"openssh-key-v1\0".to_vec());
    for s in [&b"none"[..], b"none", b""] {
        put_string(&mut file, s);
    }
    file.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut file, &blob);
    put_string(&mut file, &private);
    let b64 = zeroize::Zeroizing::new(B64.encode(&*file));
    let mut text = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        text.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        text.push('\n');
    }
    text.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    let mut public_key = format!("ssh-ed25519 {}", B64.encode(&blob));
    if !comment.is_empty() {
        public_key.push(' ');
        public_key.push_str(comment);
    }
    Ok(KeyPair { private_key: Some(text), public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_read_back_and_check() {
        let kp = generate("cloudsync@nas").unwrap();
        let private = kp.private_key.clone().unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(
            kp.public_key.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA")
                && kp.public_key.ends_with(" cloudsync@nas")
        );
        assert_eq!(parse_public(&public_of(&private).unwrap()).unwrap(), parse_public(&kp.public_key).unwrap());
        let checked = check(Some(&private), Some(&kp.public_key)).unwrap();
        assert_eq!(checked.public_key, kp.public_key);
        let other = generate("").unwrap();
        let e = check(Some(&private), Some(&other.public_key)).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        assert!(format!("{kp:?}").contains("<redacted>") && !format!("{kp:?}").contains("PRIVATE"));
        assert_ne!(generate("").unwrap().public_key, other.public_key);
    }

    #[test]
    fn damaged_and_protected_keys_are_refused_with_a_sentence() {
        let kp = generate("").unwrap();
        let private = kp.private_key.unwrap();
        // Flip a byte of the private block: the check numbers or the key no longer agree.
        let lines: Vec<&str> = private.lines().collect();
        let mut bin = B64.decode(lines[1..lines.len() - 1].concat()).unwrap();
        let n = bin.len();
        bin[n - 40] ^= 0x55;
        let damaged =
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n", B64.encode(&bin));
        assert!(public_of(&damaged).is_err(), "{:?}", public_of(&damaged));
        let e = public_of("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----").unwrap_err();
        assert!(e.to_string().contains("passphrase"), "{e}");
        assert!(public_of("ssh-rsa AAAA").is_err());
        assert!(check(None, None).is_err());
        assert!(check(None, Some("ssh-ed25519 !!!")).is_err());
        assert!(check(None, Some(&kp.public_key)).unwrap().private_key.is_none());
    }

    #[test]
    fn big_remainders() {
        let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
        assert_eq!(strip(big_mod(&[0x01, 0x00], &[0x07])), [(256u32 % 7) as u8]);
        assert_eq!(strip(big_mod(&[0xff, 0xff, 0xff], &[0x01, 0x00])), [0xff]);
        assert_eq!(strip(big_mod(&[0x12, 0x34, 0x56, 0x78, 0x9a], &[0x0b, 0xcd, 0xef])), {
            let a: u64 = 0x123456789a;
            let m: u64 = 0x0bcdef;
            let r = a % m;
            strip(r.to_be_bytes().to_vec())
        });
        assert!(strip(big_mod(&[0x05], &[0x05])).is_empty());
    }

    #[test]
    fn generated_keys_sign() {
        let kp = generate("").unwrap();
        let s = signer(kp.private_key.as_deref().unwrap()).unwrap();
        assert_eq!(s.algorithm(), "ssh-ed25519");
        let (_, blob) = parse_public(&kp.public_key).unwrap();
        assert_eq!(s.public_blob(), blob);
        let sig = s.sign(b"data").unwrap();
        let public = &blob[blob.len() - 32..];
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public).verify(b"data", &sig).unwrap();
    }

    #[test]
    fn mpints_are_minimal_and_positive() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0, 0, 0x80, 1]);
        assert_eq!(v, [0, 0, 0, 3, 0, 0x80, 1]);
        let mut v = Vec::new();
        put_mpint(&mut v, &[0, 0x01, 0x00, 0x01]);
        assert_eq!(v, [0, 0, 0, 3, 1, 0, 1]);
    }
}
