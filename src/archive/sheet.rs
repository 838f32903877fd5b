//! The review sheet of a run's reports (`report sheet`): one self-contained HTML page of every face
//! — before | after thumbnails, its identity, strength and what happened to it — for an archivist to
//! look at the faces that need a look first: those the guard softened, those that failed, those
//! below the floor, then the rest from the least to the most alike. Thumbnails are JPEG files beside
//! the page (`faces/`); each face links to its photo (the result, or the input when none was
//! written).

use super::report::{FaceRecord, FaceResult, PhotoOutcome, PhotoRecord};
use image::RgbImage;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Side of a face thumbnail, in pixels.
pub const THUMB: u32 = 160;

/// Why a face is where it is in the sheet (sheets list them in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Softened,
    Failed,
    BelowFloor,
    Measured,
    Unmeasured,
}

impl Rank {
    fn of(face: &FaceRecord) -> Rank {
        match (&face.identity, face.result) {
            (Some(i), _) if i.softened => Rank::Softened,
            (_, FaceResult::Failed | FaceResult::NotWritten) => Rank::Failed,
            (Some(i), _) if i.below_floor => Rank::BelowFloor,
            (Some(_), _) => Rank::Measured,
            (None, _) => Rank::Unmeasured,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Rank::Softened => "softened",
            Rank::Failed => "failed",
            Rank::BelowFloor => "below the floor",
            Rank::Measured => "measured",
            Rank::Unmeasured => "not measured",
        }
    }
}

/// One face of the sheet, with the photo it is on.
#[derive(Debug, Clone)]
pub struct SheetFace<'a> {
    pub photo: &'a PhotoRecord,
    pub index: usize,
    pub face: &'a FaceRecord,
    pub rank: Rank,
}

/// Every face of `photos` that a run tried (restored, failed or not written), in sheet order: by
/// rank, then the least alike first, then by photo and face.
pub fn ordered(photos: &[PhotoRecord]) -> Vec<SheetFace<'_>> {
    let mut faces: Vec<SheetFace> = photos
        .iter()
        .filter(|p| matches!(p.outcome, PhotoOutcome::Restored | PhotoOutcome::Failed))
        .flat_map(|p| p.faces.iter().enumerate().map(move |(index, face)| SheetFace { photo: p, index, face, rank: Rank::of(face) }))
        .collect();
    let similarity = |f: &SheetFace| f.face.identity.map_or(f32::INFINITY, |i| i.similarity);
    faces.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(similarity(a).total_cmp(&similarity(b)))
            .then(a.photo.input.cmp(&b.photo.input))
            .then(a.index.cmp(&b.index))
    });
    faces
}

/// The square around a face box (with a margin), in a `w` x `h` image, as `(x, y, side)`.
fn square(bbox: [f32; 4], scale: f32, w: u32, h: u32) -> Option<(u32, u32, u32)> {
    let [x1, y1, x2, y2] = bbox.map(|v| v * scale);
    let side = ((x2 - x1).max(y2 - y1) * 1.3).max(1.0);
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let x0 = (cx - side / 2.0).max(0.0) as u32;
    let y0 = (cy - side / 2.0).max(0.0) as u32;
    let side = (side as u32).min(w.saturating_sub(x0)).min(h.saturating_sub(y0));
    (side > 0).then_some((x0, y0, side))
}

/// The thumbnail of a face box in `image` (box in `scale`-times smaller pixels).
pub fn thumbnail(image: &RgbImage, bbox: [f32; 4], scale: f32) -> Option<RgbImage> {
    let (x, y, side) = square(bbox, scale, image.width(), image.height())?;
    let crop = image::imageops::crop_imm(image, x, y, side, side).to_image();
    Some(image::imageops::resize(&crop, THUMB, THUMB, image::imageops::FilterType::Triangle))
}

/// Text for HTML: `&`, `<`, `>` and quotes escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A `file://` link to `path` (absolute), with the characters URLs reserve escaped.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(b as char),
            _ => {
                let _ = write!(url, "%{b:02X}");
            }
        }
    }
    url
}

/// What the sheet says of a face: its identity, strength and result.
fn describe(f: &SheetFace) -> String {
    let mut parts = Vec::new();
    if let Some(i) = f.face.identity {
        if i.softened {
            parts.push(format!(
                "identity {:.3} → {:.3}; strength {:.2} → {:.2}",
                i.similarity, i.final_similarity, i.asked_strength, i.strength
            ));
        } else {
            parts.push(format!("identity {:.3}; strength {:.2}", i.similarity, i.strength));
        }
    }
    match f.face.result {
        FaceResult::Restored => {}
        FaceResult::Failed => parts.push("not restored".into()),
        FaceResult::NotWritten => parts.push("restored, but the photo was not written".into()),
    }
    if let Some(r) = &f.face.reason {
        parts.push(r.clone());
    }
    parts.join("; ")
}

/// The page for `faces`; `thumbs[i]` are the (before, after) thumbnail file names of face `i`
/// relative to the page (`None` where the image could not be read).
pub fn html(faces: &[SheetFace], thumbs: &[(Option<String>, Option<String>)], title: &str) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for f in faces {
        *counts.entry(f.rank).or_insert(0usize) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {}", r.label())).collect();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body{{font-family:sans-serif;background:#1c1c1c;color:#ddd;margin:1em}}\n\
         .face{{display:inline-block;vertical-align:top;margin:6px;padding:6px;background:#2a2a2a;width:{w}px}}\n\
         .face img{{width:{h}px;height:{h}px}} .missing{{display:inline-block;width:{h}px;height:{h}px;background:#111}}\n\
         .softened{{border-left:4px solid #f0b43c}} .failed{{border-left:4px solid #f05a50}}\n\
         .below-the-floor{{border-left:4px solid #f05a50}} .measured{{border-left:4px solid #50dc78}}\n\
         .face p{{font-size:12px;margin:4px 0}} a{{color:#9cf}}\n</style></head><body>\n\
         <h1>{t}</h1>\n<p>{n} faces: {s}. Worst first: softened by the identity guard, failed, below the floor, \
         then from the least to the most alike.</p>\n<div id=\"faces\">\n",
        t = escape(title),
        w = 2 * (THUMB / 2) + 16,
        h = THUMB / 2,
        n = faces.len(),
        s = escape(&summary.join(", ")),
    );
    for (k, (f, (before, after))) in faces.iter().zip(thumbs).enumerate() {
        let photo = f.photo;
        let target = if photo.outcome == PhotoOutcome::Restored { &photo.output } else { &photo.input };
        let img = |file: &Option<String>, alt: &str| match file {
            Some(name) => format!("<img src=\"{}\" alt=\"{alt}\">", escape(name)),
            None => format!("<span class=\"missing\" title=\"{alt}: none\"></span>"),
        };
        let _ = writeln!(
            page,
            "<div class=\"face {cls}\" id=\"face-{k}\" data-rank=\"{rank}\" data-similarity=\"{sim}\">\
             {b}{a}<p><a href=\"{url}\">{name}</a> face {i}</p><p>{what}</p></div>",
            cls = f.rank.label().replace(' ', "-"),
            rank = f.rank.label(),
            sim = f.face.identity.map_or(String::new(), |i| format!("{:.4}", i.similarity)),
            b = img(before, "before"),
            a = img(after, "after"),
            url = escape(&file_url(target)),
            name = escape(&photo.rel.display().to_string()),
            i = f.index,
            what = escape(&describe(f)),
        );
    }
    // Once loaded, the page says how many thumbnails it could show (a moved or deleted thumbnail
    // is named rather than left as a broken image), and records both counts on <body>.
    page.push_str(
        "</div>\n<script>\nwindow.addEventListener('load', () => {\n\
         const imgs = [...document.querySelectorAll('#faces img')];\n\
         const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0));\n\
         document.body.dataset.shown = imgs.length - broken.length;\n\
         document.body.dataset.broken = broken.length;\n\
         if (broken.length) {\n\
         const p = document.createElement('p');\n\
         p.textContent = broken.length + ' thumbnails could not be shown (moved or deleted?)';\n\
         document.body.insertBefore(p, document.getElementById('faces'));\n\
         }\n});\n</script>\n</body></html>\n",
    );
    page
}

/// Writes the sheet of `photos` into `dir`: `index.html` and `faces/NNNNN_{before,after}.jpg`.
/// Each photo is read once; a photo that cannot be read leaves its thumbnails out (the face is
/// still listed). Returns the page's path and how many faces it lists.
pub fn write(photos: &[PhotoRecord], dir: &Path, title: &str, limit: Option<usize>) -> std::io::Result<(PathBuf, usize)> {
    let mut faces = ordered(photos);
    if let Some(n) = limit {
        faces.truncate(n);
    }
    let thumbs_dir = dir.join("faces");
    std::fs::create_dir_all(&thumbs_dir)?;
    let mut thumbs = vec![(None, None); faces.len()];
    // Faces grouped by photo, so each image is decoded once.
    let mut by_photo: std::collections::BTreeMap<&Path, Vec<usize>> = Default::default();
    for (k, f) in faces.iter().enumerate() {
        by_photo.entry(f.photo.input.as_path()).or_default().push(k);
    }
    let limits = crate::photo::ReadLimits::default();
    for ks in by_photo.values() {
        let photo = faces[ks[0]].photo;
        let before = crate::photo::read_photo(&photo.input, &limits).ok().map(|p| p.pixels);
        let after = (photo.outcome == PhotoOutcome::Restored).then(|| crate::photo::read_photo(&photo.output, &limits).ok()).flatten();
        for &k in ks {
            let bbox = faces[k].face.bbox;
            let save = |img: Option<RgbImage>, what: &str| -> std::io::Result<Option<String>> {
                let Some(img) = img else { return Ok(None) };
                let name = format!("faces/{k:05}_{what}.jpg");
                let path = dir.join(&name);
                crate::paths::write_atomically(&path, |tmp| img.save_with_format(tmp, image::ImageFormat::Jpeg))?;
                Ok(Some(name))
            };
            let b = before.as_ref().and_then(|img| thumbnail(img, bbox, 1.0));
            // Faces are reported in the input's pixels; an upscaled result is larger by its factor.
            let a = match (&after, &before) {
                (Some(out), Some(inp)) => thumbnail(&out.pixels, bbox, out.pixels.width() as f32 / inp.width() as f32),
                (Some(out), None) => thumbnail(&out.pixels, bbox, 1.0),
                _ => None,
            };
            thumbs[k] = (save(b, "before")?, save(a, "after")?);
        }
    }
    let page = dir.join("index.html");
    let html = html(&faces, &thumbs, title);
    crate::paths::write_atomically(&page, |tmp| std::fs::write(tmp, &html))?;
    Ok((page, faces.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FaceIdentity;

    fn face(identity: Option<(f32, bool, bool)>, result: FaceResult) -> FaceRecord {
        FaceRecord {
            bbox: [0.0, 0.0, 10.0, 10.0],
            score: 0.9,
            result,
            reason: None,
            identity: identity.map(|(similarity, below_floor, softened)| FaceIdentity {
                asked_strength: 1.0,
                similarity,
                strength: if softened { 0.5 } else { 1.0 },
                final_similarity: similarity,
                below_floor,
                softened,
            }),
        }
    }

    fn photo(name: &str, outcome: PhotoOutcome, faces: Vec<FaceRecord>) -> PhotoRecord {
        PhotoRecord {
            input: format!("/in/{name}").into(),
            rel: name.into(),
            output: format!("/out/{name}").into(),
            outcome,
            reason: None,
            faces,
        }
    }

    #[test]
    fn softened_failed_and_least_alike_faces_come_first() {
        let photos = vec![
            photo(
                "a.png",
                PhotoOutcome::Restored,
                vec![face(Some((0.9, false, false)), FaceResult::Restored), face(None, FaceResult::Restored)],
            ),
            photo(
                "b.png",
                PhotoOutcome::Failed,
                vec![face(Some((0.7, false, false)), FaceResult::NotWritten), face(None, FaceResult::Failed)],
            ),
            photo(
                "c.png",
                PhotoOutcome::Restored,
                vec![face(Some((0.3, true, true)), FaceResult::Restored), face(Some((0.5, false, false)), FaceResult::Restored)],
            ),
            photo("d.png", PhotoOutcome::NoFaces, vec![]),
            photo("e.png", PhotoOutcome::Restored, vec![face(Some((0.4, true, false)), FaceResult::Restored)]),
        ];
        let order: Vec<(String, usize, Rank)> =
            ordered(&photos).iter().map(|f| (f.photo.rel.display().to_string(), f.index, f.rank)).collect();
        let want = [
            ("c.png", 0, Rank::Softened),
            ("b.png", 0, Rank::Failed),
            ("b.png", 1, Rank::Failed),
            ("e.png", 0, Rank::BelowFloor),
            ("c.png", 1, Rank::Measured),
            ("a.png", 0, Rank::Measured),
            ("a.png", 1, Rank::Unmeasured),
        ];
        assert_eq!(order, want.map(|(n, i, r)| (n.to_string(), i, r)));
    }

    #[test]
    fn the_page_escapes_names_and_links_each_face_to_its_photo() {
        let photos = vec![photo("<b>&.png", PhotoOutcome::Restored, vec![face(Some((0.3, true, true)), FaceResult::Restored)])];
        let faces = ordered(&photos);
        let page = html(&faces, &[(Some("faces/00000_before.jpg".into()), None)], "Run <1>");
        assert!(page.contains("&lt;b&gt;&amp;.png</a> face 0") && page.contains("<title>Run &lt;1&gt;</title>"), "{page}");
        assert!(page.contains("href=\"file:///out/%3Cb%3E%26.png\""), "{page}");
        assert!(page.contains("identity 0.300 → 0.300; strength 1.00 → 0.50"), "{page}");
        assert!(page.contains("class=\"missing\""), "a face without an after image is still listed");
    }

    #[test]
    fn thumbnails_stay_inside_the_image() {
        let img = RgbImage::from_pixel(50, 40, image::Rgb([9, 9, 9]));
        let t = thumbnail(&img, [40.0, 30.0, 60.0, 50.0], 1.0).unwrap();
        assert_eq!(t.dimensions(), (THUMB, THUMB));
        assert!(thumbnail(&img, [100.0, 100.0, 120.0, 120.0], 1.0).is_none());
    }
}
