//! Keeping a result's EXIF true to it: IFD0's `Software` names the program that wrote it, and the
//! resolution IFD0 records (when it records one) is the result's, not the original's (an upscaled
//! photo has more dots per inch). The EXIF block is a TIFF structure whose entries point at values
//! by absolute offset; rather than move anything, a new IFD0 — the old entries with these replaced
//! — is appended after the block and the header pointed at it, so every value the original points
//! at stays where it is.

const SOFTWARE: u16 = 0x0131;
const X_RESOLUTION: u16 = 0x011A;
const Y_RESOLUTION: u16 = 0x011B;
const RESOLUTION_UNIT: u16 = 0x0128;
const ASCII: u16 = 2;
const SHORT: u16 = 3;
const RATIONAL: u16 = 5;

/// `exif` with IFD0's `Software` set to `software` and, when IFD0 records a resolution, that
/// resolution set to `density` (per inch); without an EXIF block, a minimal one holding only
/// `Software`. A block that cannot be parsed comes back unchanged (the photo's own data wins).
pub fn with_software(exif: Option<Vec<u8>>, software: &str, density: Option<super::Density>) -> Vec<u8> {
    match exif {
        Some(block) => append_ifd0(&block, software, density).unwrap_or(block),
        None => {
            let mut block = b"II*\0".to_vec();
            block.extend_from_slice(&8u32.to_le_bytes());
            let ours = [NewEntry::ascii(SOFTWARE, software)];
            write_ifd(&mut block, &[], &ours, 0, true);
            block
        }
    }
}

/// An entry written by us: its type, count and value (in native form; put in the block's order
/// when written).
struct NewEntry {
    tag: u16,
    kind: u16,
    count: u32,
    value: Value,
}

enum Value {
    Ascii(Vec<u8>),
    Short(u16),
    Rational(u32, u32),
}

impl NewEntry {
    fn ascii(tag: u16, text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        NewEntry { tag, kind: ASCII, count: bytes.len() as u32, value: Value::Ascii(bytes) }
    }

    /// The value's bytes in the block's order.
    fn bytes(&self, little: bool) -> Vec<u8> {
        let u16b = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        match &self.value {
            Value::Ascii(b) => b.clone(),
            Value::Short(v) => u16b(*v).to_vec(),
            Value::Rational(n, d) => [u32b(*n), u32b(*d)].concat(),
        }
    }
}

/// An EXIF block read as the TIFF structure it is: its byte order, its fields by offset, and the
/// entries (12 bytes each) of its directories.
struct Tiff<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let little = match bytes.get(..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Tiff { bytes, little })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    /// Where IFD0 starts.
    fn ifd0(&self) -> Option<usize> {
        Some(self.u32_at(4)? as usize)
    }

    /// The offsets of the entries of the directory at `ifd`.
    fn entries(&self, ifd: usize) -> Option<impl Iterator<Item = usize>> {
        Some((0..self.u16_at(ifd)? as usize).map(move |i| ifd + 2 + 12 * i))
    }

    /// An entry's (tag, type, count).
    fn entry(&self, at: usize) -> Option<(u16, u16, usize)> {
        Some((self.u16_at(at)?, self.u16_at(at + 2)?, self.u32_at(at + 4)? as usize))
    }

    /// The `len` bytes of an entry's value: in the entry when they fit in 4, else where it points.
    fn value(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        let start = if len <= 4 { at + 8 } else { self.u32_at(at + 8)? as usize };
        self.bytes.get(start..start + len)
    }
}

fn append_ifd0(block: &[u8], software: &str, density: Option<super::Density>) -> Option<Vec<u8>> {
    let tiff = Tiff::parse(block)?;
    let ifd0 = tiff.ifd0()?;
    let count = tiff.u16_at(ifd0)? as usize;
    let mut ours = vec![NewEntry::ascii(SOFTWARE, software)];
    let mut kept = Vec::with_capacity(count);
    for at in tiff.entries(ifd0)? {
        let tag = tiff.u16_at(at)?;
        match (tag, density) {
            (SOFTWARE, _) => {}
            // Hundredths of a dot per inch, like the TIFF results.
            (X_RESOLUTION, Some(d)) => ours.push(NewEntry { tag, kind: RATIONAL, count: 1, value: Value::Rational(dpi100(d.x), 100) }),
            (Y_RESOLUTION, Some(d)) => ours.push(NewEntry { tag, kind: RATIONAL, count: 1, value: Value::Rational(dpi100(d.y), 100) }),
            (RESOLUTION_UNIT, Some(_)) => ours.push(NewEntry { tag, kind: SHORT, count: 1, value: Value::Short(2) }),
            _ => kept.push((tag, block.get(at..at + 12)?)),
        }
    }
    let next = tiff.u32_at(ifd0 + 2 + 12 * count)?;
    let mut out = block.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let at = out.len() as u32;
    out[4..8].copy_from_slice(&if tiff.little { at.to_le_bytes() } else { at.to_be_bytes() });
    write_ifd(&mut out, &kept, &ours, next, tiff.little);
    Some(out)
}

fn dpi100(dpi: f64) -> u32 {
    (dpi * 100.0).round().clamp(1.0, u32::MAX as f64) as u32
}

/// Appends an IFD of `kept` entries (tag, 12 raw bytes) and `ours`, in tag order, linking to
/// `next`; values of ours longer than four bytes follow the IFD.
fn write_ifd(out: &mut Vec<u8>, kept: &[(u16, &[u8])], ours: &[NewEntry], next: u32, little: bool) {
    let u16b = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let u32b = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let count = kept.len() + ours.len();
    let mut data_at = (out.len() + 2 + 12 * count + 4) as u32;
    let mut data = Vec::new();
    let mut entries: Vec<(u16, Vec<u8>)> = kept.iter().map(|(tag, raw)| (*tag, raw.to_vec())).collect();
    for entry in ours {
        let mut raw = Vec::with_capacity(12);
        raw.extend_from_slice(&u16b(entry.tag));
        raw.extend_from_slice(&u16b(entry.kind));
        raw.extend_from_slice(&u32b(entry.count));
        let mut value = entry.bytes(little);
        if value.len() <= 4 {
            value.resize(4, 0);
            raw.extend_from_slice(&value);
        } else {
            raw.extend_from_slice(&u32b(data_at));
            if value.len() % 2 == 1 {
                value.push(0);
            }
            data_at += value.len() as u32;
            data.extend_from_slice(&value);
        }
        entries.push((entry.tag, raw));
    }
    entries.sort_by_key(|(tag, _)| *tag);
    out.extend_from_slice(&u16b(count as u16));
    for (_, raw) in &entries {
        out.extend_from_slice(raw);
    }
    out.extend_from_slice(&u32b(next));
    out.extend_from_slice(&data);
}

/// The text (ASCII) entries of IFD0 — description, artist, copyright, make, model, date — as
/// (tag, text), for a TIFF result, whose own first directory is where TIFF keeps them. `Software`
/// is left out: the result names its own. An unreadable block gives none.
pub fn ifd0_texts(block: &[u8]) -> Vec<(u16, String)> {
    ifd0_texts_of(block).unwrap_or_default()
}

fn ifd0_texts_of(block: &[u8]) -> Option<Vec<(u16, String)>> {
    let tiff = Tiff::parse(block)?;
    let mut texts = Vec::new();
    for at in tiff.entries(tiff.ifd0()?)? {
        let (tag, kind, count) = tiff.entry(at)?;
        if kind != ASCII || tag == SOFTWARE || count == 0 {
            continue;
        }
        let Some(bytes) = tiff.value(at, count) else { continue };
        let text = String::from_utf8_lossy(bytes.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        if !text.is_empty() {
            texts.push((tag, text));
        }
    }
    Some(texts)
}

/// An entry of EXIF's own directory, its value in little-endian order (the TIFF results' order).
pub struct SubEntry {
    pub tag: u16,
    /// The TIFF field type (BYTE 1, ASCII 2, SHORT 3, LONG 4, RATIONAL 5, ...).
    pub kind: u16,
    pub data: Vec<u8>,
}

/// EXIF's own directory — exposure, lens, the date taken — for a TIFF result's Exif directory.
/// Entries that point into other structures (the interoperability directory, maker notes with
/// offsets of their own) are left out; an unreadable block gives none.
pub fn exif_ifd_entries(block: &[u8]) -> Vec<SubEntry> {
    exif_ifd_entries_of(block).unwrap_or_default()
}

const EXIF_IFD: u16 = 0x8769;
const INTEROP_IFD: u16 = 0xA005;
const MAKER_NOTE: u16 = 0x927C;

fn exif_ifd_entries_of(block: &[u8]) -> Option<Vec<SubEntry>> {
    let tiff = Tiff::parse(block)?;
    let exif_ifd = tiff.entries(tiff.ifd0()?)?.find_map(|at| (tiff.u16_at(at)? == EXIF_IFD).then(|| tiff.u32_at(at + 8)).flatten())?;
    let mut entries = Vec::new();
    for at in tiff.entries(exif_ifd as usize)? {
        let (tag, kind, count) = tiff.entry(at)?;
        // Bytes per element, and the size of the units whose byte order is swapped.
        let (size, unit) = match kind {
            1 | 2 | 6 | 7 => (1, 1),
            3 | 8 => (2, 2),
            4 | 9 | 11 => (4, 4),
            5 | 10 => (8, 4),
            12 => (8, 8),
            _ => continue,
        };
        if matches!(tag, INTEROP_IFD | MAKER_NOTE) || count == 0 {
            continue;
        }
        let Some(raw) = tiff.value(at, size * count) else { continue };
        let mut data = raw.to_vec();
        if !tiff.little && unit > 1 {
            data.chunks_mut(unit).for_each(<[u8]>::reverse);
        }
        entries.push(SubEntry { tag, kind, data });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IFD0 with ImageDescription, XResolution 72/1 and ResolutionUnit inch, in either byte order.
    fn block(little: bool) -> Vec<u8> {
        let u16b = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut b = if little { b"II*\0".to_vec() } else { b"MM\0*".to_vec() };
        b.extend_from_slice(&u32b(8));
        b.extend_from_slice(&u16b(3));
        let data = 8 + 2 + 3 * 12 + 4;
        for (tag, kind, count, value) in [
            (0x010E, ASCII, 9, u32b(data)),
            (X_RESOLUTION, RATIONAL, 1, u32b(data + 10)),
            (RESOLUTION_UNIT, SHORT, 1, [u16b(2), [0, 0]].concat().try_into().unwrap()),
        ] {
            b.extend_from_slice(&u16b(tag));
            b.extend_from_slice(&u16b(kind));
            b.extend_from_slice(&u32b(count));
            b.extend_from_slice(&value);
        }
        b.extend_from_slice(&u32b(0));
        b.extend_from_slice(b"grandma.\0\0");
        b.extend_from_slice(&[u32b(72), u32b(1)].concat());
        b
    }

    #[test]
    fn software_is_set_and_a_recorded_resolution_becomes_the_result_s() {
        for little in [true, false] {
            let edited = with_software(Some(block(little)), "gpen-studio 9", Some(super::super::Density { x: 600.0, y: 600.0 }));
            let exif = exif::Reader::new().read_raw(edited).unwrap();
            let field = |tag| exif.get_field(tag, exif::In::PRIMARY).map(|f| f.display_value().to_string());
            assert_eq!(field(exif::Tag::Software).as_deref(), Some("\"gpen-studio 9\""), "little {little}");
            assert_eq!(field(exif::Tag::ImageDescription).as_deref(), Some("\"grandma.\""), "little {little}");
            assert_eq!(field(exif::Tag::XResolution).as_deref(), Some("600"), "little {little}");
            assert_eq!(field(exif::Tag::ResolutionUnit).as_deref(), Some("inch"), "little {little}");
        }
        // No EXIF: only Software.
        let fresh = exif::Reader::new().read_raw(with_software(None, "gpen-studio 9", None)).unwrap();
        assert_eq!(fresh.fields().count(), 1);
    }
}
