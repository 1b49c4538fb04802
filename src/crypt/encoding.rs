//! The three file-name encodings of rclone crypt (spec §7): base32hex lower-case unpadded,
//! base64 URL-safe unpadded and base32768.
//!
//! Decoders reproduce Go's decoders (`encoding/base32`, `encoding/base64`,
//! `Max-Sum/base32768`) rather than a strict RFC reading: they skip CR/LF, accept non-zero
//! trailing bits and report the same error offsets, so that a name is accepted or rejected
//! exactly as rclone would, and logs match.

use base64::Engine as _;

use super::CryptError;

// ---------------------------------------------------------------------------------------------
// base32hex

const B32_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// Go's `base32.HexEncoding` decode map: upper case only, since rclone upper-cases first.
const B32_DECODE: [u8; 256] = {
    let mut map = [0xFFu8; 256];
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut i = 0;
    while i < 32 {
        map[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    map
};

/// base32hex, lower case, without `=` padding.
pub(crate) fn base32_encode(src: &[u8]) -> String {
    let mut out = String::with_capacity((src.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in src {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32_ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(B32_ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// rclone's case-insensitive base32 decoding: reject a trailing `=`, upper-case, re-pad to a
/// multiple of 8 (counted on the original length, as rclone does) and decode as Go would.
pub(crate) fn base32_decode(s: &str) -> Result<Vec<u8>, CryptError> {
    if s.ends_with('=') {
        return Err(CryptError::BadBase32Encoding);
    }
    let equals = s.len().div_ceil(8) * 8 - s.len();
    let mut buf = Vec::with_capacity(s.len() + equals);
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        // Go's strings.ToUpper uses simple case mapping, under which exactly two non-ASCII
        // letters become ASCII: dotless i and long s. They must decode as 'I' and 'S'.
        let up = match c {
            'ı' => 'I',
            'ſ' => 'S',
            c => c.to_ascii_uppercase(),
        };
        buf.extend_from_slice(up.encode_utf8(&mut utf8).as_bytes());
    }
    buf.extend(std::iter::repeat_n(b'=', equals));
    buf.retain(|&b| b != b'\r' && b != b'\n');
    go_base32hex_decode(&buf).map_err(CryptError::IllegalBase32)
}

/// A port of Go's padded base32 `decode`; the error is the offending byte offset.
fn go_base32hex_decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let olen = src.len();
    let mut out = Vec::with_capacity(olen * 5 / 8);
    let mut rest = src;
    let mut end = false;
    while !rest.is_empty() && !end {
        let mut dbuf = [0u8; 8];
        let mut dlen = 8;
        let mut j = 0;
        while j < 8 {
            let Some((&c, tail)) = rest.split_first() else {
                // Input ended inside a quantum: padding is missing.
                return Err(olen - j);
            };
            rest = tail;
            if c == b'=' && j >= 2 && rest.len() < 8 {
                if rest.len() + j < 8 - 1 {
                    return Err(olen);
                }
                for k in 0..(8 - 1 - j) {
                    if rest.len() > k && rest[k] != b'=' {
                        return Err(olen - rest.len() + k - 1);
                    }
                }
                dlen = j;
                end = true;
                // 1, 3 and 6 characters cannot carry a whole byte (RFC 4648 §6).
                if dlen == 1 || dlen == 3 || dlen == 6 {
                    return Err(olen - rest.len() - 1);
                }
                break;
            }
            let v = B32_DECODE[usize::from(c)];
            if v == 0xFF {
                return Err(olen - rest.len() - 1);
            }
            dbuf[j] = v;
            j += 1;
        }
        let bytes = [
            dbuf[0] << 3 | dbuf[1] >> 2,
            dbuf[1] << 6 | dbuf[2] << 1 | dbuf[3] >> 4,
            dbuf[3] << 4 | dbuf[4] >> 1,
            dbuf[4] << 7 | dbuf[5] << 2 | dbuf[6] >> 3,
            dbuf[6] << 5 | dbuf[7],
        ];
        let n = match dlen {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            _ => 1,
        };
        out.extend_from_slice(&bytes[..n]);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// base64 (URL-safe, unpadded)

const B64_DECODE: [u8; 256] = {
    let mut map = [0xFFu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        map[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    map
};

/// base64 URL-safe alphabet without padding (Go's `RawURLEncoding`).
pub(crate) fn base64_encode(src: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(src)
}

/// A port of Go's `RawURLEncoding.DecodeString`: CR/LF skipped, `=` is an ordinary bad byte,
/// trailing bits not checked. The error is the offending byte offset.
pub(crate) fn base64_decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(src.len() * 3 / 4);
    let mut si = 0;
    loop {
        let mut dbuf = [0u8; 4];
        let mut dlen = 4;
        let mut j = 0;
        while j < 4 {
            let Some(&c) = src.get(si) else {
                match j {
                    0 => return Ok(out),
                    1 => return Err(si - j),
                    _ => {}
                }
                dlen = j;
                break;
            };
            si += 1;
            let v = B64_DECODE[usize::from(c)];
            if v != 0xFF {
                dbuf[j] = v;
                j += 1;
            } else if c != b'\n' && c != b'\r' {
                return Err(si - 1);
            }
        }
        let val = u32::from(dbuf[0]) << 18 | u32::from(dbuf[1]) << 12 | u32::from(dbuf[2]) << 6 | u32::from(dbuf[3]);
        let bytes = val.to_be_bytes();
        out.extend_from_slice(&bytes[1..dlen]);
        if dlen < 4 {
            return Ok(out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// base32768

/// The 1028 block-start characters in ascending order: 4 for table B, then 1024 for table A.
const TABLE: &str = concat!(
    "ƀɀɠʀ",
    "ҠԀڀڠݠހ߀ကႠᄀᄠᅀᆀᇠሀሠበዠጠᎠᏀᐠᑀᑠᒀᒠᓀᓠᔀᔠᕀᕠᖀᖠᗀᗠᘀᘠᙀᚠᛀកᠠᡀᣀᦀ᧠ᨠᯀᰀᴀ⇠⋀⍀⍠⎀⎠⏀␀─┠╀╠▀",
    "■◀◠☀☠♀♠⚀⚠⛀⛠✀✠❀➀➠⠀⠠⡀⡠⢀⢠⣀⣠⤀⤠⥀⥠⦠⨠⩀⪀⪠⫠⬀⬠⭀ⰀⲀⲠⳀⴀⵀ⺠⻀㇀㐀㐠㑀㑠㒀㒠㓀㓠㔀㔠㕀㕠㖀㖠㗀㗠㘀㘠",
    "㙀㙠㚀㚠㛀㛠㜀㜠㝀㝠㞀㞠㟀㟠㠀㠠㡀㡠㢀㢠㣀㣠㤀㤠㥀㥠㦀㦠㧀㧠㨀㨠㩀㩠㪀㪠㫀㫠㬀㬠㭀㭠㮀㮠㯀㯠㰀㰠㱀㱠㲀㲠㳀㳠㴀㴠㵀㵠㶀㶠㷀㷠㸀㸠",
    "㹀㹠㺀㺠㻀㻠㼀㼠㽀㽠㾀㾠㿀㿠䀀䀠䁀䁠䂀䂠䃀䃠䄀䄠䅀䅠䆀䆠䇀䇠䈀䈠䉀䉠䊀䊠䋀䋠䌀䌠䍀䍠䎀䎠䏀䏠䐀䐠䑀䑠䒀䒠䓀䓠䔀䔠䕀䕠䖀䖠䗀䗠䘀䘠",
    "䙀䙠䚀䚠䛀䛠䜀䜠䝀䝠䞀䞠䟀䟠䠀䠠䡀䡠䢀䢠䣀䣠䤀䤠䥀䥠䦀䦠䧀䧠䨀䨠䩀䩠䪀䪠䫀䫠䬀䬠䭀䭠䮀䮠䯀䯠䰀䰠䱀䱠䲀䲠䳀䳠䴀䴠䵀䵠䶀䷀䷠一丠乀",
    "习亀亠什仠伀传佀你侀侠俀俠倀倠偀偠傀傠僀僠儀儠兀兠冀冠净几刀删剀剠劀加勀勠匀匠區占厀厠叀叠吀吠呀呠咀咠哀哠唀唠啀啠喀喠嗀嗠嘀嘠噀",
    "噠嚀嚠囀因圀圠址坠垀垠埀埠堀堠塀塠墀墠壀壠夀夠奀奠妀妠姀姠娀娠婀婠媀媠嫀嫠嬀嬠孀孠宀宠寀寠尀尠局屠岀岠峀峠崀崠嵀嵠嶀嶠巀巠帀帠幀",
    "幠庀庠廀廠开张彀彠往徠忀忠怀怠恀恠悀悠惀惠愀愠慀慠憀憠懀懠戀戠所扠技抠拀拠挀挠捀捠掀掠揀揠搀搠摀摠撀撠擀擠攀攠敀敠斀斠旀无昀映晀",
    "晠暀暠曀曠最朠杀杠枀枠柀柠栀栠桀桠梀梠检棠椀椠楀楠榀榠槀槠樀樠橀橠檀檠櫀櫠欀欠歀歠殀殠毀毠氀氠汀池沀沠泀泠洀洠浀浠涀涠淀淠渀渠湀",
    "湠満溠滀滠漀漠潀潠澀澠激濠瀀瀠灀灠炀炠烀烠焀焠煀煠熀熠燀燠爀爠牀牠犀犠狀狠猀猠獀獠玀玠珀珠琀琠瑀瑠璀璠瓀瓠甀甠畀畠疀疠痀痠瘀瘠癀",
    "癠皀皠盀盠眀眠着睠瞀瞠矀矠砀砠础硠碀碠磀磠礀礠祀祠禀禠秀秠稀稠穀穠窀窠竀章笀笠筀筠简箠節篠簀簠籀籠粀粠糀糠紀素絀絠綀綠緀締縀縠繀",
    "繠纀纠绀绠缀缠罀罠羀羠翀翠耀耠聀聠肀肠胀胠脀脠腀腠膀膠臀臠舀舠艀艠芀芠苀苠茀茠荀荠莀莠菀菠萀萠葀葠蒀蒠蓀蓠蔀蔠蕀蕠薀薠藀藠蘀蘠虀",
    "虠蚀蚠蛀蛠蜀蜠蝀蝠螀螠蟀蟠蠀蠠血衠袀袠裀裠褀褠襀襠覀覠觀觠言訠詀詠誀誠諀諠謀謠譀譠讀讠诀诠谀谠豀豠貀負賀賠贀贠赀赠趀趠跀跠踀踠蹀",
    "蹠躀躠軀軠輀輠轀轠辀辠迀迠退造遀遠邀邠郀郠鄀鄠酀酠醀醠釀釠鈀鈠鉀鉠銀銠鋀鋠錀錠鍀鍠鎀鎠鏀鏠鐀鐠鑀鑠钀钠铀铠销锠镀镠門閠闀闠阀阠陀",
    "陠隀隠雀雠需霠靀靠鞀鞠韀韠頀頠顀顠颀颠飀飠餀餠饀饠馀馠駀駠騀騠驀驠骀骠髀髠鬀鬠魀魠鮀鮠鯀鯠鰀鰠鱀鱠鲀鲠鳀鳠鴀鴠鵀鵠鶀鶠鷀鷠鸀鸠鹀",
    "鹠麀麠黀黠鼀鼠齀齠龀龠ꀀꀠꁀꁠꂀꂠꃀꃠꄀꄠꅀꅠꆀꆠꇀꇠꈀꈠꉀꉠꊀꊠꋀꋠꌀꌠꍀꍠꎀꎠꏀꏠꐀꐠꑀꑠ꒠ꔀꔠꕀꕠꖀꖠꗀꗠꙀꚠꛀ꜀꜠ꝀꞀꡀ",
);

/// Decodes the UTF-8 of [`TABLE`] (all 2- and 3-byte sequences) at compile time.
const fn table_units() -> [u16; 1028] {
    let bytes = TABLE.as_bytes();
    let mut units = [0u16; 1028];
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() && n < 1028 {
        let b = bytes[i] as u16;
        if b >= 0xE0 {
            units[n] = (b & 0x0F) << 12 | (bytes[i + 1] as u16 & 0x3F) << 6 | (bytes[i + 2] as u16 & 0x3F);
            i += 3;
        } else {
            units[n] = (b & 0x1F) << 6 | (bytes[i + 1] as u16 & 0x3F);
            i += 2;
        }
        n += 1;
    }
    units
}

const UNITS: [u16; 1028] = table_units();

/// Characters below the first table-A block start are table-B ("trailing") characters.
const SPLITTER: u16 = UNITS[4];

const NO_BLOCK: u16 = 0xFFFD;

/// Block number (unit >> 5) → the value of the block's first character, as in Max-Sum's map.
const DECODE_32768: [u16; 2048] = {
    let mut map = [NO_BLOCK; 2048];
    let mut i = 0;
    while i < 1028 {
        let value = if i < 4 { i } else { i - 4 };
        map[(UNITS[i] >> 5) as usize] = (value as u16) << 5;
        i += 1;
    }
    map
};

fn push_unit(out: &mut String, unit: u16) {
    // Every table character is a BMP scalar value (the table hash test pins the table), so
    // the replacement character is never produced.
    out.push(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER));
}

fn encode15(v: u16) -> u16 {
    let v = v & 0x7FFF;
    UNITS[4 + usize::from(v >> 5)] | (v & 31)
}

fn encode7(v: u8) -> u16 {
    let v = u16::from(v & 0x7F);
    UNITS[usize::from(v >> 5)] | (v & 31)
}

/// base32768 as `Max-Sum/base32768` `SafeEncoding` writes it: 15 bits per character, a final
/// 1..7 bits padded with 1-bits into a table-B character.
pub(crate) fn base32768_encode(src: &[u8]) -> String {
    let mut out = String::with_capacity((src.len() * 8).div_ceil(15) * 3);
    let mut left: u8 = 0;
    let mut leftn: u32 = 0;
    let mut i = 0;
    while i < src.len() {
        let mut chunk = u16::from(left) << (15 - leftn);
        chunk |= u16::from(src[i]) << (7 - leftn);
        if leftn < 7 && i + 1 < src.len() {
            chunk |= u16::from(src[i + 1]) >> (1 + leftn);
            left = src[i + 1] & ((1u16 << (1 + leftn)) - 1) as u8;
            leftn += 1;
            i += 2;
        } else {
            chunk |= (1 << (7 - leftn)) - 1;
            left = 0;
            leftn = 0;
            i += 1;
        }
        push_unit(&mut out, encode15(chunk));
    }
    if leftn > 0 {
        let last = (left << (7 - leftn)) | ((1u8 << (7 - leftn)) - 1);
        push_unit(&mut out, encode7(last));
    }
    out
}

/// A port of `Max-Sum/base32768` `DecodeString`. The error is the UTF-16 unit index of the
/// offending character (its message doubles it). A trailing table-B character ends the input:
/// anything after it is ignored, as in Go.
pub(crate) fn base32768_decode(s: &str) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(s.len() / 3 * 15 / 8 + 1);
    let mut left: u8 = 0;
    let mut leftn: u32 = 0;
    let units = s.encode_utf16().filter(|&u| u != u16::from(b'\r') && u != u16::from(b'\n'));
    for (idx, unit) in units.enumerate() {
        let trailing = unit < SPLITTER;
        let block = DECODE_32768[usize::from(unit >> 5)];
        if block == NO_BLOCK {
            return Err(idx);
        }
        let d = block | (unit & 31);
        if trailing {
            if leftn > 0 {
                out.push(left << (8 - leftn) | (d >> (leftn - 1)) as u8);
            }
            return Ok(out);
        }
        if leftn > 0 {
            out.push(left << (8 - leftn) | (d >> (7 + leftn)) as u8);
            out.push((d >> (leftn - 1)) as u8);
            left = (d as u8) & ((1u8 << (leftn - 1)) - 1);
            leftn -= 1;
        } else {
            out.push((d >> 7) as u8);
            left = (d as u8) & 0x7F;
            leftn = 7;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn base32768_table_hash() {
        let digest = Sha256::digest(TABLE.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "8897399869a5489eeca1edbef899cfbb444d455e29a0e6306f8c234555721b02");
        assert_eq!(TABLE.chars().count(), 1028);
        let chars: Vec<u32> = TABLE.chars().map(u32::from).collect();
        for (i, c) in chars.iter().enumerate() {
            assert_eq!(*c, u32::from(UNITS[i]));
            assert_eq!(c & 31, 0, "block start {c:#x} not aligned");
            assert!(i == 0 || chars[i - 1] < *c, "table not sorted at {i}");
        }
        assert_eq!(SPLITTER, 0x04A0);
        assert_eq!(UNITS[1027], 0xA840);
    }

    #[test]
    fn base32_round_trip_all_lengths() {
        for len in 0..100usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = base32_encode(&data);
            assert_eq!(enc.len(), (len * 8).div_ceil(5));
            assert_eq!(base32_decode(&enc).unwrap(), data);
            assert_eq!(base32_decode(&enc.to_uppercase()).unwrap(), data);
            let enc = base64_encode(&data);
            assert_eq!(base64_decode(enc.as_bytes()).unwrap(), data);
            let enc = base32768_encode(&data);
            assert_eq!(enc.encode_utf16().count(), (len * 8).div_ceil(15));
            assert_eq!(base32768_decode(&enc).unwrap(), data);
        }
    }

    #[test]
    fn go_quirks() {
        // Go skips CR/LF inside base64 and base32 input.
        assert_eq!(base64_decode(b"MT\nIz").unwrap(), b"123");
        // rclone counts CR/LF when re-padding base32, so only eight of them keep it aligned.
        assert_eq!(base32_decode("64p\r\n\r\n\r\n\r\n36").unwrap(), b"123");
        assert_eq!(base32_decode("64p\r\n36"), Err(CryptError::IllegalBase32(6)));
        // Non-zero trailing bits are accepted (Go's decoders are not strict).
        assert_eq!(base64_decode(b"MR").unwrap(), b"1");
        assert_eq!(base32_decode("65").unwrap(), b"1");
        // A lone final character cannot carry a byte.
        assert_eq!(base64_decode(b"MTIzN"), Err(4));
        assert_eq!(base32_decode("6"), Err(CryptError::IllegalBase32(1)));
        assert_eq!(base32_decode("64p"), Err(CryptError::IllegalBase32(3)));
        // Go upper-cases dotless i and long s to ASCII letters.
        // Padding is counted on the original bytes, so only eight of them stay aligned.
        assert_eq!(base32_decode("ſſſſſſſſ").unwrap(), base32_decode("ssssssss").unwrap());
        assert!(base32_decode("ıı").is_err());
        // A trailing base32768 character ends the input.
        assert_eq!(base32768_decode("㻙ɟ㻙").unwrap(), b"12");
        // Characters outside the BMP are surrogate pairs, never valid.
        assert_eq!(base32768_decode("㻙😀"), Err(1));
    }
}
