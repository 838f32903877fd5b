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
