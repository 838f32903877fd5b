//! The paste mask of each restored face. GPEN shapes it with its face parser run on the *restored*
//! face (`FaceEnhancement.process`), so masks are made on the GPU stage right after the batch that
//! restored the faces, batched the same way; without a parser the finish stage uses the feathered
//! rectangle ([`crate::pipeline::paste::crop_mask`]).

pub mod parser;

use crate::error::RunError;
use image::RgbImage;

pub trait FaceMasker {
    /// How the output names this mask.
    fn describe(&self) -> String;
    /// One mask per restored crop (S x S), at the crop size S: values in [0, 1], row-major.
    /// Out-of-memory comes back as [`RunError::OutOfMemory`], so the caller can split the batch.
    fn masks(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, RunError>;
    /// Returns cached device memory after an out-of-memory error.
    fn release_cache(&self) {}
}

/// GPEN's paste mask (`FaceEnhancement.process`): the parser's face mask of the restored face at the
/// parser's size, `mask_postprocess` there (26 px border cleared, blurred twice), then resized to
/// the crop size (float bilinear); the warp into the photo is the paste's.
pub struct ParsedMask {
    parser: crate::mask::parser::FaceParser,
    crop: u32,
}

impl ParsedMask {
    pub fn new(parser: crate::mask::parser::FaceParser, crop: u32) -> Self {
        ParsedMask { parser, crop }
    }

    /// Loads ParseNet from `path` at `size` (`None`: the released file's 512) for crops of `crop` px.
    pub fn load(path: &std::path::Path, size: Option<u32>, crop: u32, device: tch::Device) -> Result<Self, crate::error::SetupError> {
        use crate::error::{ConfigError, SetupError};
        crate::mask::parser::FaceParser::load(path, size, device).map(|p| ParsedMask::new(p, crop)).map_err(|e| match e {
            // A parser whose size nobody gave is the user's to fix (its message names the option).
            crate::mask::parser::ParseError::UnknownSize { .. } => SetupError::Config(ConfigError::BadValue(e.to_string())),
            other => SetupError::Load(other.to_string()),
        })
    }

    pub fn parser(&self) -> &crate::mask::parser::FaceParser {
        &self.parser
    }
}

impl FaceMasker for ParsedMask {
    fn describe(&self) -> String {
        format!("face-parsing mask (ParseNet, {} px)", self.parser.size())
    }

    fn masks(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, RunError> {
        use crate::mask::parser::{ParseError, mask};
        let owned: Vec<RgbImage> = faces.iter().map(|f| (*f).clone()).collect();
        let parsed = self.parser.parse(&owned).map_err(|e| match e {
            ParseError::Run(run) => run,
            other => RunError::Torch(other.to_string()),
        })?;
        let p = self.parser.size();
        Ok(parsed
            .iter()
            .map(|m| {
                let post = mask::mask_postprocess(&mask::mask_to_unit(m), p as usize, p as usize, mask::MASK_BORDER);
                if p == self.crop { post } else { crate::imgproc::resize_linear_f32(&post, p, p, self.crop, self.crop) }
            })
            .collect())
    }

    fn release_cache(&self) {
        if self.parser.device().is_cuda() {
            let _ = crate::sys::memory::empty_cache();
        }
    }
}
