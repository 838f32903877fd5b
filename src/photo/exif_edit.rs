//! Saying in a result's EXIF which program wrote it (the `Software` tag of IFD0). The EXIF block is
//! a TIFF structure whose entries point at values by absolute offset; rather than move anything,
//! a new IFD0 — the old entries, the new `Software` — is appended after the block and the header
//! pointed at it, so every value the original points at stays where it is.

const SOFTWARE: u16 = 0x0131;
const ASCII: u16 = 2;

/// `exif` with IFD0's `Software` set to `software`; without an EXIF block, a minimal one holding
/// only that. A block that cannot be parsed comes back unchanged (the photo's own data wins).
pub fn with_software(exif: Option<Vec<u8>>, software: &str) -> Vec<u8> {
    match exif {
        Some(block) => append_ifd0(&block, software).unwrap_or(block),
        None => {
            let mut block = b"II*\0".to_vec();
            block.extend_from_slice(&8u32.to_le_bytes());
            write_ifd(&mut block, &[], software, 0, true);
            block
        }
    }
}

fn append_ifd0(block: &[u8], software: &str) -> Option<Vec<u8>> {
    let little = match block.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = block.get(at..at + 2)?.try_into().ok()?;
        Some(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = block.get(at..at + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let ifd0 = u32_at(4)? as usize;
    let count = u16_at(ifd0)? as usize;
    let mut kept = Vec::with_capacity(count);
    for i in 0..count {
        let at = ifd0 + 2 + 12 * i;
        let tag = u16_at(at)?;
        if tag != SOFTWARE {
            kept.push((tag, block.get(at..at + 12)?));
        }
    }
    let next = u32_at(ifd0 + 2 + 12 * count)?;
    let mut out = block.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let at = out.len() as u32;
    out[4..8].copy_from_slice(&if little { at.to_le_bytes() } else { at.to_be_bytes() });
    write_ifd(&mut out, &kept, software, next, little);
    Some(out)
}

/// Appends an IFD of `kept` entries (tag, 12 raw bytes) and `Software`, in tag order, linking to
/// `next`; the string follows the IFD.
fn write_ifd(out: &mut Vec<u8>, kept: &[(u16, &[u8])], software: &str, next: u32, little: bool) {
    let u16b = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let u32b = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let start = out.len();
    let count = kept.len() + 1;
    let text_at = (start + 2 + 12 * count + 4) as u32;
    let mut text = software.as_bytes().to_vec();
    text.push(0);
    let mut ours = Vec::with_capacity(12);
    ours.extend_from_slice(&u16b(SOFTWARE));
    ours.extend_from_slice(&u16b(ASCII));
    ours.extend_from_slice(&u32b(text.len() as u32));
    if text.len() <= 4 {
        let mut inline = text.clone();
        inline.resize(4, 0);
        ours.extend_from_slice(&inline);
    } else {
        ours.extend_from_slice(&u32b(text_at));
    }
    let mut all: Vec<(u16, &[u8])> = kept.to_vec();
    all.push((SOFTWARE, &ours));
    all.sort_by_key(|(tag, _)| *tag);
    out.extend_from_slice(&u16b(count as u16));
    for (_, entry) in &all {
        out.extend_from_slice(entry);
    }
    out.extend_from_slice(&u32b(next));
    if text.len() > 4 {
        out.extend_from_slice(&text);
    }
}

/// The text (ASCII) entries of IFD0 — description, artist, copyright, make, model, date — as
/// (tag, text), for a TIFF result, whose own first directory is where TIFF keeps them. `Software`
/// is left out: the result names its own. An unreadable block gives none.
pub fn ifd0_texts(block: &[u8]) -> Vec<(u16, String)> {
    ifd0_texts_of(block).unwrap_or_default()
}

fn ifd0_texts_of(block: &[u8]) -> Option<Vec<(u16, String)>> {
    let little = match block.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = block.get(at..at + 2)?.try_into().ok()?;
        Some(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = block.get(at..at + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let ifd0 = u32_at(4)? as usize;
    let mut texts = Vec::new();
    for i in 0..u16_at(ifd0)? as usize {
        let at = ifd0 + 2 + 12 * i;
        let (tag, kind, count) = (u16_at(at)?, u16_at(at + 2)?, u32_at(at + 4)? as usize);
        if kind != ASCII || tag == SOFTWARE || count == 0 {
            continue;
        }
        let start = if count <= 4 { at + 8 } else { u32_at(at + 8)? as usize };
        let Some(bytes) = block.get(start..start + count) else { continue };
        let text = String::from_utf8_lossy(bytes.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        if !text.is_empty() {
            texts.push((tag, text));
        }
    }
    Some(texts)
}
