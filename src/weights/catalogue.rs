//! The weights gpen-studio knows: GPEN's generators (file name, where to get it, and the
//! configuration a good file must have, gpen.md §1) and the optional add-ons of GPEN's own face
//! path, its RetinaFace detector and ParseNet face parser. Tests build their own catalogue pointing
//! at a local server.

use crate::restore::network::GpenConfig;

/// The authors' download location (`README.md`, `weights/README.md` of yangxy/GPEN).
pub const OSS_BASE: &str = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models";

/// The ModelScope repository that is the only source of GPEN-BFR-1024 and GPEN-BFR-2048.
pub const MODELSCOPE_REPO: &str = "damo/cv_gpen_image-portrait-enhancement-hires";

/// What a GPEN generator was trained to do. Colorization and inpainting checkpoints have the shapes
/// of a face restorer (BFR-1024), so the task comes from the catalogue name, the file name or the
/// user (`--task`), never from the shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Task {
    #[default]
    Restore,
    /// A grey aligned face in, its colours out (GPEN-Colorization-1024).
    Colorize,
    /// An aligned face with a masked region in, the region filled (GPEN-Inpainting-1024).
    Inpaint,
    /// A colour parsing map in, a face drawn from it (GPEN-Seg2face-512; inputs in [0, 1]).
    Seg2Face,
}

impl Task {
    /// The task a file name names, as GPEN's release names its files; `None` for a name that says
    /// nothing (a renamed file).
    pub fn of_name(name: &str) -> Option<Task> {
        let n = name.to_ascii_lowercase();
        if n.contains("colorization") || n.contains("colorize") {
            Some(Task::Colorize)
        } else if n.contains("inpainting") || n.contains("inpaint") {
            Some(Task::Inpaint)
        } else if n.contains("seg2face") {
            Some(Task::Seg2Face)
        } else if n.contains("bfr") || n.contains("restor") {
            Some(Task::Restore)
        } else {
            None
        }
    }
}

impl std::str::FromStr for Task {
    type Err = crate::error::ConfigError;
    fn from_str(s: &str) -> Result<Self, crate::error::ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "restore" => Ok(Task::Restore),
            "colorize" => Ok(Task::Colorize),
            "inpaint" => Ok(Task::Inpaint),
            "seg2face" => Ok(Task::Seg2Face),
            other => {
                Err(crate::error::ConfigError::BadValue(format!("unknown task '{other}'; one of: restore, colorize, inpaint, seg2face")))
            }
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Restore => "restore",
            Task::Colorize => "colorize",
            Task::Inpaint => "inpaint",
            Task::Seg2Face => "seg2face",
        })
    }
}

/// What a weights file is.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ModelKind {
    /// A GPEN generator of this configuration.
    Generator(GpenConfig),
    /// RetinaFace (GPEN's face detector).
    Detector,
    /// ParseNet (GPEN's face parser, for the paste mask).
    FaceParser,
    /// RRDBNet background super-resolution (GPEN's RealESRNet, Real-ESRGAN) of this scale.
    Upscaler { scale: u32 },
    /// ArcFace IR-SE (GPEN's identity network, for the identity guard).
    Identity,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelKind::Generator(c) => write!(f, "{c}"),
            ModelKind::Detector => write!(f, "face detector (RetinaFace)"),
            ModelKind::FaceParser => write!(f, "face parser (ParseNet)"),
            ModelKind::Upscaler { scale } => write!(f, "background SR ×{scale} (RRDBNet)"),
            ModelKind::Identity => write!(f, "identity network (ArcFace IR-SE)"),
        }
    }
}

/// One known weights file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// What users type: `GPEN-BFR-512` (matched without case, with or without `GPEN-` and `.pth`).
    pub name: String,
    /// File name in the models folder.
    pub file: String,
    /// Direct download URL; `None` when the file must be fetched by hand (see `manual`).
    pub url: Option<String>,
    /// How to get the file without `models download` (always set for entries without a URL).
    pub manual: Option<String>,
    /// What the file must load as.
    pub kind: ModelKind,
    /// What the model does.
    pub task: String,
}

impl ModelEntry {
    /// An entry downloadable from `url`.
    pub fn downloadable(name: &str, file: &str, url: &str, config: GpenConfig, task: &str) -> Self {
        ModelEntry {
            name: name.into(),
            file: file.into(),
            url: Some(url.into()),
            manual: None,
            kind: ModelKind::Generator(config),
            task: task.into(),
        }
    }

    /// An optional add-on (detector or parser) downloadable from `url`.
    pub fn addon(name: &str, file: &str, url: &str, kind: ModelKind, task: &str) -> Self {
        ModelEntry { name: name.into(), file: file.into(), url: Some(url.into()), manual: None, kind, task: task.into() }
    }

    /// The generator configuration, for generators.
    pub fn config(&self) -> Option<GpenConfig> {
        match self.kind {
            ModelKind::Generator(c) => Some(c),
            _ => None,
        }
    }

    /// A generator's task, from its catalogue name.
    pub fn gpen_task(&self) -> Option<Task> {
        self.config().map(|_| Task::of_name(&self.name).unwrap_or_default())
    }

    /// An optional add-on rather than a generator.
    pub fn is_addon(&self) -> bool {
        self.config().is_none()
    }

    /// True when `query` names this entry: `GPEN-BFR-512`, `bfr-512`, `GPEN-BFR-512.pth`, any case.
    pub fn matches(&self, query: &str) -> bool {
        let norm = |s: &str| {
            let s = s.trim().to_ascii_lowercase();
            let s = s.strip_suffix(".pth").unwrap_or(&s).to_string();
            s.strip_prefix("gpen-").map(str::to_string).unwrap_or(s)
        };
        norm(query) == norm(&self.name) || norm(query) == norm(&self.file)
    }
}

/// The set of known weights files.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    pub entries: Vec<ModelEntry>,
}

impl Catalogue {
    pub fn new(entries: Vec<ModelEntry>) -> Self {
        Catalogue { entries }
    }

    /// GPEN's released generators.
    pub fn builtin() -> Self {
        let oss = |name: &str, config: GpenConfig, task: &str| {
            ModelEntry::downloadable(name, &format!("{name}.pth"), &format!("{OSS_BASE}/{name}.pth"), config, task)
        };
        let modelscope = |name: &str, hub_file: &str, config: GpenConfig, task: &str| ModelEntry {
            name: name.into(),
            file: format!("{name}.pth"),
            url: None,
            manual: Some(format!(
                "{name} is published only on ModelScope: install the `modelscope` Python package, run\n  \
                 python -c \"from modelscope import snapshot_download; print(snapshot_download('{MODELSCOPE_REPO}'))\"\n\
                 and import the file it prints the folder of:\n  \
                 gpen-studio models import --as {name} <folder>/{hub_file}\n\
                 (usually ~/.cache/modelscope/hub/{MODELSCOPE_REPO}/{hub_file})"
            )),
            kind: ModelKind::Generator(config),
            task: task.into(),
        };
        let addon = |name: &str, kind: ModelKind, task: &str| {
            ModelEntry::addon(name, &format!("{name}.pth"), &format!("{OSS_BASE}/{name}.pth"), kind, task)
        };
        Catalogue::new(vec![
            oss("GPEN-BFR-256", GpenConfig::BFR_256, "face restoration, fast, lower quality"),
            oss("GPEN-BFR-512", GpenConfig::BFR_512, "face restoration (recommended, the default)"),
            modelscope("GPEN-BFR-1024", "pytorch_model.pt", GpenConfig::BFR_1024, "face restoration, high resolution"),
            modelscope("GPEN-BFR-2048", "pytorch_model-2048.pt", GpenConfig::BFR_2048, "face restoration of selfies, 2048 px"),
            oss("GPEN-Colorization-1024", GpenConfig::BFR_1024, "colorizes grey faces"),
            oss("GPEN-Inpainting-1024", GpenConfig::BFR_1024, "fills in masked parts of faces"),
            oss("GPEN-Seg2face-512", GpenConfig::BFR_512, "draws a face from a segmentation map (inputs in [0, 1])"),
            addon(
                "RetinaFace-R50",
                ModelKind::Detector,
                "optional: GPEN's own face detector; faces are found as the authors' pipeline finds them \
                 (without it: MTCNN)",
            ),
            addon(
                "realesrnet_x1",
                ModelKind::Upscaler { scale: 1 },
                "optional: GPEN's RealESRNet at ×1 (cleans the background, keeps its size); restore --upscale 1",
            ),
            addon(
                "realesrnet_x2",
                ModelKind::Upscaler { scale: 2 },
                "optional: GPEN's RealESRNet ×2 background upscaler (the authors' default); restore --upscale 2",
            ),
            addon(
                "realesrnet_x4",
                ModelKind::Upscaler { scale: 4 },
                "optional: GPEN's RealESRNet ×4 background upscaler; restore --upscale 4",
            ),
            ModelEntry::addon(
                "RealESRGAN_x4plus",
                "RealESRGAN_x4plus.pth",
                "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
                ModelKind::Upscaler { scale: 4 },
                "optional: Real-ESRGAN's ×4 upscaler (sharper, wider network); restore --upscale 4 --sr-weights FILE",
            ),
            addon(
                "ParseNet-latest",
                ModelKind::FaceParser,
                "optional: GPEN's face parser; each face is pasted through a face-shaped mask (skin, hair, \
                 ears, neck), so no box shows around it (without it: a feathered rectangle)",
            ),
            ModelEntry::addon(
                "ArcFace-IR-SE50",
                crate::identity::IDENTITY_FILE,
                &format!("{OSS_BASE}/{}", crate::identity::IDENTITY_FILE),
                ModelKind::Identity,
                "optional: GPEN's identity network (ArcFace IR-SE-50); each restored face's likeness to the \
                 original is measured and reported, and with --identity-floor faces that drift are softened",
            ),
        ])
    }

    /// The entry `query` names, or an error listing the known names.
    pub fn find(&self, query: &str) -> Result<&ModelEntry, super::ModelError> {
        self.entries
            .iter()
            .find(|e| e.matches(query))
            .ok_or_else(|| super::ModelError::UnknownModel { name: query.into(), known: self.names().join(", ") })
    }

    /// The entry whose file name is `file`.
    pub fn by_file(&self, file: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|e| e.file == file)
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_loosely() {
        let c = Catalogue::builtin();
        for q in ["GPEN-BFR-512", "bfr-512", "gpen-bfr-512.pth", " BFR-512 "] {
            assert_eq!(c.find(q).unwrap().file, "GPEN-BFR-512.pth", "{q}");
        }
        assert!(c.find("bfr-999").unwrap_err().to_string().contains("GPEN-BFR-256"));
    }

    #[test]
    fn every_entry_has_a_source() {
        for e in Catalogue::builtin().entries {
            assert!(e.url.is_some() != e.manual.is_some(), "{}: a URL or a manual instruction", e.name);
            if let Some(config) = e.config() {
                assert!(config.validate().is_ok());
            }
            if let Some(url) = &e.url {
                assert!(url.starts_with("https://") && url.ends_with(&e.file), "{url}");
            }
        }
        let c = Catalogue::builtin();
        assert!(c.find("bfr-1024").unwrap().manual.as_ref().unwrap().contains("models import --as GPEN-BFR-1024"));
        assert_eq!(c.find("seg2face-512").unwrap().config(), Some(GpenConfig::BFR_512));
        assert_eq!(c.find("RetinaFace-R50").unwrap().file, crate::config::RETINAFACE_FILE);
        assert_eq!(c.find("parsenet-latest.pth").unwrap().file, crate::config::PARSENET_FILE);
        assert!(c.find("ParseNet-latest").unwrap().is_addon());
        assert_eq!(c.find("colorization-1024").unwrap().gpen_task(), Some(Task::Colorize));
        assert_eq!(c.find("inpainting-1024").unwrap().gpen_task(), Some(Task::Inpaint));
        assert_eq!(c.find("seg2face-512").unwrap().gpen_task(), Some(Task::Seg2Face));
        assert_eq!(c.find("bfr-512").unwrap().gpen_task(), Some(Task::Restore));
        assert_eq!(c.find("realesrnet_x2").unwrap().kind, ModelKind::Upscaler { scale: 2 });
        assert_eq!(c.find("arcface-ir-se50").unwrap().file, "model_ir_se50.pth");
        assert_eq!(c.find("model_ir_se50.pth").unwrap().kind, ModelKind::Identity);
    }
}
