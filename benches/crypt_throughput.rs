//! Encryption and decryption throughput of the rclone crypt content format on one core
//! (XSalsa20-Poly1305, 64 KiB blocks), streamed through the same readers the transfers
//! use. Not a test: `cargo bench --bench crypt_throughput` (scripts/bench runs it).

use cloudsync::crypt::Keys;
use cloudsync::crypt::content::{DecryptReader, EncryptReader, Nonce};
use std::io::{Read, Write};
use std::time::Instant;

const MIB: usize = 1 << 20;

/// Read everything from `r` through a 128 KiB buffer (what a transfer does), counting.
fn drain(mut r: impl Read) -> u64 {
    let mut buf = vec![0u8; 128 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => n += k as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    // `cargo test --all-targets` runs this too (without `--bench`): then a 1 MiB smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let default = if benching { 512 } else { 1 };
    let mb: usize = std::env::var("CRYPT_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let keys = Keys::derive("benchmark password", "benchmark salt").expect("keys");
    let plain: Vec<u8> = (0..mb * MIB).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2]).collect();

    // Encrypt: plaintext in memory -> EncryptReader -> drained.
    let (t, c) = (Instant::now(), cpu_seconds());
    let n = drain(EncryptReader::with_nonce(&plain[..], &keys, Nonce([7u8; 24])));
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    println!(
        "encrypt  {mb} MiB in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} MiB/s per core ({n} bytes out)",
        mb as f64 / cpu
    );

    // Decrypt the same ciphertext.
    let mut cipher = Vec::with_capacity(n as usize);
    let mut enc = EncryptReader::with_nonce(&plain[..], &keys, Nonce([7u8; 24]));
    std::io::copy(&mut enc, &mut cipher).expect("encrypt");
    let (t, c) = (Instant::now(), cpu_seconds());
    let out = drain(DecryptReader::new(&cipher[..], &keys).expect("header"));
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    assert_eq!(out as usize, plain.len());
    println!("decrypt  {mb} MiB in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} MiB/s per core", mb as f64 / cpu);
    let _ = std::io::stdout().flush();
}
