//! XSalsa20 as NaCl secretbox uses it (spec §5.3): HSalsa20 turns the key and the first 16
//! nonce bytes into a subkey, Salsa20/20 under that subkey and the last 8 nonce bytes gives
//! the keystream, whose first 32 bytes key Poly1305 and whose bytes from 32 on encrypt.
//!
//! This is most of the CPU a crypt transfer costs, so the keystream is generated eight
//! blocks at a time: with AVX2 (AVX-512VL adds a native rotate) each 256-bit register holds
//! one state word of eight consecutive blocks; other x86-64 CPUs run two rounds of four
//! blocks in SSE2 registers; elsewhere a portable scalar core runs the same batches. Both are checked against each other and against the `salsa20` crate.

use zeroize::Zeroize;

/// "expand 32-byte k" as four little-endian words.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// Keystream bytes one batch covers: eight 64-byte blocks.
const BATCH: usize = 512;
/// Keystream bytes that key Poly1305 and encrypt nothing.
const MAC_KEY: usize = 32;

/// The Salsa20 input state of one secretbox: subkey, nonce tail, counter words 8-9 zero.
pub(super) struct XSalsa20 {
    input: [u32; 16],
    engine: Engine,
}

impl Drop for XSalsa20 {
    fn drop(&mut self) {
        self.input.zeroize();
    }
}

/// Which core generates batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Scalar,
    /// Four blocks per 128-bit register; SSE2 is part of every x86-64 CPU, including the
    /// Atom and Celeron parts of many NAS boxes, which have no AVX.
    #[cfg(target_arch = "x86_64")]
    Sse2,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Engine {
    fn best() -> Engine {
        #[cfg(target_arch = "x86_64")]
        {
            // std caches the CPUID answer: this is an atomic load after the first call.
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                return Engine::Avx512;
            }
            if is_x86_feature_detected!("avx2") {
                return Engine::Avx2;
            }
            return Engine::Sse2;
        }
        #[allow(unreachable_code)]
        Engine::Scalar
    }
}

fn words<const N: usize>(bytes: &[u8]) -> [u32; N] {
    std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")))
}

impl XSalsa20 {
    /// The keystream of `key` and the 24-byte `nonce`.
    pub(super) fn new(key: &[u8; 32], nonce: &[u8; 24]) -> XSalsa20 {
        Self::with_engine(key, nonce, Engine::best())
    }

    fn with_engine(key: &[u8; 32], nonce: &[u8; 24], engine: Engine) -> XSalsa20 {
        let mut k: [u32; 8] = words(key);
        let n: [u32; 4] = words(&nonce[..16]);
        let mut h = [
            SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], n[0], n[1], //
            n[2], n[3], SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3],
        ];
        k.zeroize();
        for _ in 0..10 {
            double_round(&mut h);
        }
        let tail: [u32; 2] = words(&nonce[16..]);
        // HSalsa20's output is words 0, 5, 10, 15, 6, 7, 8, 9 of the permuted state.
        let input = [
            SIGMA[0], h[0], h[5], h[10], h[15], SIGMA[1], tail[0], tail[1], //
            0, 0, SIGMA[2], h[6], h[7], h[8], h[9], SIGMA[3],
        ];
        h.zeroize();
        XSalsa20 { input, engine }
    }

    /// Keystream bytes 0..32: the one-time Poly1305 key.
    pub(super) fn poly1305_key(&self) -> [u8; 32] {
        let mut block = [0u8; 64];
        scalar_xor_block(&self.input, 0, &mut block);
        let mut key = [0u8; 32];
        key.copy_from_slice(&block[..MAC_KEY]);
        block.zeroize();
        key
    }

    /// XORs keystream bytes 32.. into `data` (encrypts or decrypts it).
    pub(super) fn apply_after_key(&self, data: &mut [u8]) {
        // The first batch starts 32 bytes into block 0; it goes through a staging buffer.
        let head = data.len().min(BATCH - MAC_KEY);
        let mut stage = [0u8; BATCH];
        stage[MAC_KEY..MAC_KEY + head].copy_from_slice(&data[..head]);
        self.xor_batch(0, &mut stage, MAC_KEY + head);
        data[..head].copy_from_slice(&stage[MAC_KEY..MAC_KEY + head]);

        let mut counter = (BATCH / 64) as u64;
        let mut chunks = data[head..].chunks_exact_mut(BATCH);
        for chunk in &mut chunks {
            self.xor_batch(counter, chunk.try_into().expect("a batch"), BATCH);
            counter += (BATCH / 64) as u64;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            stage = [0u8; BATCH];
            stage[..rest.len()].copy_from_slice(rest);
            self.xor_batch(counter, &mut stage, rest.len());
            rest.copy_from_slice(&stage[..rest.len()]);
        }
        stage.zeroize();
    }

    /// XORs eight keystream blocks from block `counter` into `buf`, of which only the first
    /// `used` bytes matter (the scalar core skips blocks past them).
    fn xor_batch(&self, counter: u64, buf: &mut [u8; BATCH], used: usize) {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Engine::best` chose these only where the CPU has the features.
            Engine::Avx512 => unsafe { x86::xor_batch_avx512(&self.input, counter, buf) },
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2 => unsafe { x86::xor_batch_avx2(&self.input, counter, buf) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 is part of the x86-64 baseline.
            Engine::Sse2 => unsafe { x86::xor_batch_sse2(&self.input, counter, buf) },
            Engine::Scalar => {
                for (i, block) in buf[..used.div_ceil(64) * 64].chunks_exact_mut(64).enumerate() {
                    scalar_xor_block(&self.input, counter.wrapping_add(i as u64), block.try_into().expect("64"));
                }
            }
        }
    }
}

#[inline(always)]
fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[b] ^= x[a].wrapping_add(x[d]).rotate_left(7);
    x[c] ^= x[b].wrapping_add(x[a]).rotate_left(9);
    x[d] ^= x[c].wrapping_add(x[b]).rotate_left(13);
    x[a] ^= x[d].wrapping_add(x[c]).rotate_left(18);
}

/// A column round then a row round.
#[inline(always)]
fn double_round(x: &mut [u32; 16]) {
    quarter(x, 0, 4, 8, 12);
    quarter(x, 5, 9, 13, 1);
    quarter(x, 10, 14, 2, 6);
    quarter(x, 15, 3, 7, 11);
    quarter(x, 0, 1, 2, 3);
    quarter(x, 5, 6, 7, 4);
    quarter(x, 10, 11, 8, 9);
    quarter(x, 15, 12, 13, 14);
}

/// XORs Salsa20 block `counter` of `input` into `block`. (Stack copies of the state are
/// not wiped here, per block; the key material's owner wipes its copy on drop.)
fn scalar_xor_block(input: &[u32; 16], counter: u64, block: &mut [u8; 64]) {
    let mut s = *input;
    s[8] = counter as u32;
    s[9] = (counter >> 32) as u32;
    let mut x = s;
    for _ in 0..10 {
        double_round(&mut x);
    }
    for (i, out) in block.chunks_exact_mut(4).enumerate() {
        let data = u32::from_le_bytes(out.try_into().expect("4 bytes"));
        out.copy_from_slice(&(data ^ x[i].wrapping_add(s[i])).to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Salsa20's 20 rounds (spec order: a column round, then a row round, ten times) over
    /// the registers `$x`, with lane-wise `$add` and `$xor` and the rotate macro `$rotl`.
    macro_rules! rounds {
        ($x:ident, $add:ident, $xor:ident, $rotl:ident) => {
            macro_rules! q {
                ($a:expr, $b:expr, $c:expr, $d:expr) => {
                    $x[$b] = $xor($x[$b], $rotl!($add($x[$a], $x[$d]), 7));
                    $x[$c] = $xor($x[$c], $rotl!($add($x[$b], $x[$a]), 9));
                    $x[$d] = $xor($x[$d], $rotl!($add($x[$c], $x[$b]), 13));
                    $x[$a] = $xor($x[$a], $rotl!($add($x[$d], $x[$c]), 18));
                };
            }
            for _ in 0..10 {
                q!(0, 4, 8, 12);
                q!(5, 9, 13, 1);
                q!(10, 14, 2, 6);
                q!(15, 3, 7, 11);
                q!(0, 1, 2, 3);
                q!(5, 6, 7, 4);
                q!(10, 11, 8, 9);
                q!(15, 12, 13, 14);
            }
        };
    }

    /// The eight-block core, written once over a rotate: lane `j` of register `i` is state
    /// word `i` of block `counter + j`. After the rounds, two 8×8 transposes turn the
    /// registers into the blocks' 32-byte halves, which are XORed into `buf` in place.
    macro_rules! batch {
        ($name:ident, $features:literal, $rotl:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(input: &[u32; 16], counter: u64, buf: &mut [u8; super::BATCH]) {
                let mut s = [_mm256_setzero_si256(); 16];
                for (reg, &word) in s.iter_mut().zip(input) {
                    *reg = _mm256_set1_epi32(word as i32);
                }
                let c: [u64; 8] = std::array::from_fn(|j| counter.wrapping_add(j as u64));
                let lo = |j: usize| c[j] as u32 as i32;
                let hi = |j: usize| (c[j] >> 32) as u32 as i32;
                s[8] = _mm256_setr_epi32(lo(0), lo(1), lo(2), lo(3), lo(4), lo(5), lo(6), lo(7));
                s[9] = _mm256_setr_epi32(hi(0), hi(1), hi(2), hi(3), hi(4), hi(5), hi(6), hi(7));

                let mut x = s;
                rounds!(x, _mm256_add_epi32, _mm256_xor_si256, $rotl);
                for (reg, init) in x.iter_mut().zip(&s) {
                    *reg = _mm256_add_epi32(*reg, *init);
                }
                let low = transpose(&x[..8]);
                let high = transpose(&x[8..]);
                let p = buf.as_mut_ptr() as *mut __m256i;
                for j in 0..8 {
                    // SAFETY: `buf` is 512 bytes, so 16 unaligned 32-byte accesses stay in it.
                    unsafe {
                        let a = p.add(2 * j);
                        _mm256_storeu_si256(a, _mm256_xor_si256(_mm256_loadu_si256(a), low[j]));
                        let b = p.add(2 * j + 1);
                        _mm256_storeu_si256(b, _mm256_xor_si256(_mm256_loadu_si256(b), high[j]));
                    }
                }
            }
        };
    }

    macro_rules! rotl_avx2 {
        ($v:expr, $n:literal) => {{
            let v = $v;
            _mm256_or_si256(_mm256_slli_epi32::<$n>(v), _mm256_srli_epi32::<{ 32 - $n }>(v))
        }};
    }

    macro_rules! rotl_avx512 {
        ($v:expr, $n:literal) => {
            _mm256_rol_epi32::<$n>($v)
        };
    }

    batch!(xor_batch_avx2, "avx2", rotl_avx2);
    batch!(xor_batch_avx512, "avx2,avx512f,avx512vl", rotl_avx512);

    macro_rules! rotl_sse2 {
        ($v:expr, $n:literal) => {{
            let v = $v;
            _mm_or_si128(_mm_slli_epi32::<$n>(v), _mm_srli_epi32::<{ 32 - $n }>(v))
        }};
    }

    /// The same batch as two runs of four blocks, lane `j` of register `i` being word `i` of
    /// block `counter + j`; 4×4 transposes give each block's four 16-byte quarters.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn xor_batch_sse2(input: &[u32; 16], counter: u64, buf: &mut [u8; super::BATCH]) {
        for half in 0..2u64 {
            let mut s = [_mm_setzero_si128(); 16];
            for (reg, &word) in s.iter_mut().zip(input) {
                *reg = _mm_set1_epi32(word as i32);
            }
            let c: [u64; 4] = std::array::from_fn(|j| counter.wrapping_add(4 * half + j as u64));
            s[8] = _mm_setr_epi32(c[0] as i32, c[1] as i32, c[2] as i32, c[3] as i32);
            s[9] = _mm_setr_epi32((c[0] >> 32) as i32, (c[1] >> 32) as i32, (c[2] >> 32) as i32, (c[3] >> 32) as i32);
            let mut x = s;
            rounds!(x, _mm_add_epi32, _mm_xor_si128, rotl_sse2);
            for (reg, init) in x.iter_mut().zip(&s) {
                *reg = _mm_add_epi32(*reg, *init);
            }
            let base = buf.as_mut_ptr().wrapping_add(256 * half as usize) as *mut __m128i;
            for quarter in 0..4 {
                let r = &x[4 * quarter..4 * quarter + 4];
                let t0 = _mm_unpacklo_epi32(r[0], r[1]);
                let t1 = _mm_unpackhi_epi32(r[0], r[1]);
                let t2 = _mm_unpacklo_epi32(r[2], r[3]);
                let t3 = _mm_unpackhi_epi32(r[2], r[3]);
                let cols = [
                    _mm_unpacklo_epi64(t0, t2),
                    _mm_unpackhi_epi64(t0, t2),
                    _mm_unpacklo_epi64(t1, t3),
                    _mm_unpackhi_epi64(t1, t3),
                ];
                for (j, col) in cols.into_iter().enumerate() {
                    // SAFETY: block j of this half starts at byte 256·half + 64·j of the
                    // 512-byte `buf`; its quarter is 16 bytes inside it.
                    unsafe {
                        let p = base.add(4 * j + quarter);
                        _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), col));
                    }
                }
            }
        }
    }

    /// Rows `r[i]` (word `i` of blocks 0..8) to columns (words 0..8 of block `j`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(r: &[__m256i]) -> [__m256i; 8] {
        {
            let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
            let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
            let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
            let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
            let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
            let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
            let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
            let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
            let u0 = _mm256_unpacklo_epi64(t0, t2);
            let u1 = _mm256_unpackhi_epi64(t0, t2);
            let u2 = _mm256_unpacklo_epi64(t1, t3);
            let u3 = _mm256_unpackhi_epi64(t1, t3);
            let u4 = _mm256_unpacklo_epi64(t4, t6);
            let u5 = _mm256_unpackhi_epi64(t4, t6);
            let u6 = _mm256_unpacklo_epi64(t5, t7);
            let u7 = _mm256_unpackhi_epi64(t5, t7);
            [
                _mm256_permute2x128_si256::<0x20>(u0, u4),
                _mm256_permute2x128_si256::<0x20>(u1, u5),
                _mm256_permute2x128_si256::<0x20>(u2, u6),
                _mm256_permute2x128_si256::<0x20>(u3, u7),
                _mm256_permute2x128_si256::<0x31>(u0, u4),
                _mm256_permute2x128_si256::<0x31>(u1, u5),
                _mm256_permute2x128_si256::<0x31>(u2, u6),
                _mm256_permute2x128_si256::<0x31>(u3, u7),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salsa20::cipher::{KeyIvInit, StreamCipher};

    fn engines() -> Vec<Engine> {
        let mut all = vec![Engine::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            all.push(Engine::Sse2);
            if is_x86_feature_detected!("avx2") {
                all.push(Engine::Avx2);
            }
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                all.push(Engine::Avx512);
            }
        }
        all
    }

    fn pattern(seed: u64, n: usize) -> Vec<u8> {
        crate::crypt::pseudo_random(n, seed)
    }

    #[test]
    fn matches_the_salsa20_crate_for_every_engine_and_length() {
        let lengths = [0, 1, 31, 32, 33, 63, 64, 65, 447, 448, 479, 480, 481, 511, 512, 513, 992, 993, 1000, 4096];
        let lengths = lengths.into_iter().chain([65_535, 65_536, 65_537, 200_003]);
        for (round, len) in lengths.enumerate() {
            let key: [u8; 32] = pattern(round as u64 + 1, 32).try_into().unwrap();
            let nonce: [u8; 24] = pattern(round as u64 + 100, 24).try_into().unwrap();
            let plain = pattern(round as u64 + 1000, len);
            // Reference: the crate's keystream over 32 MAC-key bytes followed by the data.
            let mut want = vec![0u8; MAC_KEY];
            want.extend_from_slice(&plain);
            salsa20::XSalsa20::new((&key).into(), (&nonce).into()).apply_keystream(&mut want);
            for engine in engines() {
                let x = XSalsa20::with_engine(&key, &nonce, engine);
                assert_eq!(x.poly1305_key()[..], want[..MAC_KEY], "{engine:?} key, len {len}");
                let mut got = plain.clone();
                x.apply_after_key(&mut got);
                assert!(got == want[MAC_KEY..], "{engine:?} differs at len {len}");
            }
        }
    }

    #[test]
    fn the_block_counter_carries_into_its_high_word() {
        // Block counters past 2^32 only occur in a 256 GiB secretbox, which the format never
        // makes, but the batch must still agree with the scalar core across the carry.
        let input = XSalsa20::with_engine(&[7; 32], &[9; 24], Engine::Scalar).input;
        let start = u64::from(u32::MAX) - 3;
        let mut want = [0u8; BATCH];
        for (i, block) in want.chunks_exact_mut(64).enumerate() {
            scalar_xor_block(&input, start + i as u64, block.try_into().unwrap());
        }
        for engine in engines() {
            let x = XSalsa20 { input, engine };
            let mut got = [0u8; BATCH];
            x.xor_batch(start, &mut got, BATCH);
            assert_eq!(got, want, "{engine:?}");
        }
    }

    #[test]
    fn xsalsa20_known_answer() {
        // The XSalsa20 vector from the NaCl distribution (tests/stream3.c / stream4.c): key
        // "firstkey", nonce "nonceprefix"; the first 32 keystream bytes as hex.
        let key: [u8; 32] = [
            0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19, 0x7a, 0x9a, 0x46, 0xc7, //
            0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2, 0x06, 0xc4, 0xee, 0x08, 0x44, 0xf6, 0x83, 0x89,
        ];
        let nonce: [u8; 24] = [
            0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc, 0x73, 0xd6, //
            0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
        ];
        let want: [u8; 32] = [
            0xee, 0xa6, 0xa7, 0x25, 0x1c, 0x1e, 0x72, 0x91, 0x6d, 0x11, 0xc2, 0xcb, 0x21, 0x4d, 0x3c, 0x25, //
            0x25, 0x39, 0x12, 0x1d, 0x8e, 0x23, 0x4e, 0x65, 0x2d, 0x65, 0x1f, 0xa4, 0xc8, 0xcf, 0xf8, 0x80,
        ];
        for engine in engines() {
            assert_eq!(XSalsa20::with_engine(&key, &nonce, engine).poly1305_key(), want, "{engine:?}");
        }
    }
}
