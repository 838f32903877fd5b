//! Adding metadata blocks to an encoded file: a PNG chunk, placed before the image data. The
//! encoders write the pixels; what they have no setter for is spliced in here, byte for byte as the
//! format defines it (length, type, data, CRC-32).

/// `png` with a `kind` chunk holding `data`, before the first `IDAT`; chunks of that kind the
/// encoder wrote are dropped first (there is one of each). A file that is not a whole PNG comes back
/// as it was.
pub fn with_png_chunk(png: Vec<u8>, kind: [u8; 4], data: &[u8]) -> Vec<u8> {
    const SIGNATURE: usize = 8;
    let mut out = Vec::with_capacity(png.len() + data.len() + 12);
    out.extend_from_slice(&png[..SIGNATURE.min(png.len())]);
    let mut at = SIGNATURE;
    let mut placed = false;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + 12 + len;
        if end > png.len() {
            return png;
        }
        let this = &png[at + 4..at + 8];
        if this == b"IDAT" && !placed {
            push_chunk(&mut out, kind, data);
            placed = true;
        }
        if this != kind {
            out.extend_from_slice(&png[at..end]);
        }
        at = end;
    }
    if placed { out } else { png }
}

fn push_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&kind);
    crc.update(data);
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// The data of a PNG `iTXt` chunk holding `text` under `keyword`, uncompressed, no language.
pub fn itxt(keyword: &str, text: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(keyword.len() + text.len() + 5);
    data.extend_from_slice(keyword.as_bytes());
    data.extend_from_slice(&[0, 0, 0, 0, 0]);
    data.extend_from_slice(text);
    data
}

/// `jpeg` with an APPn segment (`marker` 0xE0–0xEF) holding `data`, after the application
/// segments the encoder wrote (JFIF, EXIF, ICC) and before the image's tables. `None` when `data`
/// does not fit a segment (64 KiB) or the file does not start like a JPEG.
pub fn with_jpeg_segment(jpeg: &[u8], marker: u8, data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(data.len() + 2).ok()?;
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    while jpeg.get(at) == Some(&0xFF) && (0xE0..=0xEF).contains(jpeg.get(at + 1)?) {
        at += 2 + u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]) as usize;
    }
    let mut out = Vec::with_capacity(jpeg.len() + data.len() + 4);
    out.extend_from_slice(jpeg.get(..at)?);
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&jpeg[at..]);
    Some(out)
}

/// `webp` (a lossless WebP as the encoder writes it: `VP8L` alone, or `VP8X` first) with an `XMP `
/// chunk at its end and the extended header's XMP flag set (a `VP8X` header is made for a file that
/// had none). `None` for a file of another layout.
pub fn with_webp_xmp(webp: &[u8], xmp: &[u8]) -> Option<Vec<u8>> {
    const XMP_FLAG: u8 = 0x04;
    const ALPHA_FLAG: u8 = 0x10;
    if webp.get(..4)? != b"RIFF" || webp.get(8..12)? != b"WEBP" {
        return None;
    }
    let first = webp.get(12..16)?;
    let mut body = Vec::with_capacity(webp.len() + xmp.len() + 30);
    match first {
        b"VP8X" => {
            body.extend_from_slice(webp.get(12..)?);
            body[8] |= XMP_FLAG;
        }
        b"VP8L" => {
            // The VP8L header: signature 0x2f, then width-1 and height-1 (14 bits each) and the
            // alpha bit, packed little-endian.
            let bits = u32::from_le_bytes(webp.get(21..25)?.try_into().ok()?);
            let (w, h, alpha) = ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, (bits >> 28) & 1 == 1);
            body.extend_from_slice(b"VP8X");
            body.extend_from_slice(&10u32.to_le_bytes());
            body.push(XMP_FLAG | if alpha { ALPHA_FLAG } else { 0 });
            body.extend_from_slice(&[0, 0, 0]);
            body.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
            body.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
            body.extend_from_slice(webp.get(12..)?);
        }
        _ => return None,
    }
    body.extend_from_slice(b"XMP ");
    body.extend_from_slice(&u32::try_from(xmp.len()).ok()?.to_le_bytes());
    body.extend_from_slice(xmp);
    if xmp.len() % 2 == 1 {
        body.push(0);
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(body.len() + 4).ok()?.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Some(out)
}
