//! What the window remembers between sessions: only what the user chose in it (the model, device,
//! output, memory ratio, face path, upscaling and the identity guard), not the run's wiring. Everything else a run
//! needs (limits, preview size, faces given, add-on paths) starts from the engine's defaults each
//! time, so a setting the window cannot show never sticks from an old session.

use super::state::UiSettings;
use crate::config::{DetectorChoice, MaskChoice, RunConfig};
use crate::device::{DeviceChoice, Precision};
use crate::photo::OutputFormat;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The key the settings are stored under (eframe's storage).
pub const SETTINGS_KEY: &str = "saved-settings";
/// Where versions before it stored the whole run configuration; read once to carry the choices over.
pub const OLD_SETTINGS_KEY: &str = "settings";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedSettings {
    pub weights: PathBuf,
    pub device: DeviceChoice,
    pub precision: Precision,
    pub strength: f32,
    pub out_dir: PathBuf,
    pub format: OutputFormat,
    /// The JPEG quality, kept while another format is chosen.
    pub jpeg_quality: u8,
    pub save_faces: bool,
    pub strip_metadata: bool,
    pub overwrite: bool,
    pub memory_ratio: f64,
    pub batch_override: Option<usize>,
    pub detector: DetectorChoice,
    pub mask: MaskChoice,
    /// The face parser's input size, when the user gave one (the released 512 otherwise).
    pub parser_size: Option<u32>,
    pub upscale: Option<u32>,
    /// The identity guard's floor (off: `None`) and what it does below it.
    pub identity_floor: Option<f32>,
    pub identity_guard: crate::identity::GuardMode,
    /// Folders are searched in their sub-folders too.
    pub recursive: bool,
}

impl Default for SavedSettings {
    fn default() -> Self {
        SavedSettings::from(&UiSettings::default())
    }
}

impl From<&UiSettings> for SavedSettings {
    fn from(s: &UiSettings) -> Self {
        let r = &s.run;
        SavedSettings {
            weights: r.weights.clone(),
            device: r.device,
            precision: r.precision,
            strength: r.strength,
            out_dir: r.out_dir.clone(),
            format: r.format,
            jpeg_quality: s.jpeg_quality,
            save_faces: r.save_faces,
            strip_metadata: r.strip_metadata,
            overwrite: r.overwrite,
            memory_ratio: r.memory_ratio,
            batch_override: r.batch_override,
            detector: r.detector,
            mask: r.mask,
            parser_size: r.parser_size,
            upscale: r.upscale,
            identity_floor: r.identity_floor,
            identity_guard: r.identity_guard,
            recursive: s.recursive,
        }
    }
}

impl From<SavedSettings> for UiSettings {
    fn from(s: SavedSettings) -> Self {
        let run = RunConfig {
            weights: s.weights,
            device: s.device,
            precision: s.precision,
            strength: s.strength,
            out_dir: s.out_dir,
            format: s.format,
            save_faces: s.save_faces,
            strip_metadata: s.strip_metadata,
            overwrite: s.overwrite,
            memory_ratio: s.memory_ratio,
            batch_override: s.batch_override,
            detector: s.detector,
            mask: s.mask,
            parser_size: s.parser_size,
            upscale: s.upscale,
            identity_floor: s.identity_floor,
            identity_guard: s.identity_guard,
            ..UiSettings::default().run
        };
        UiSettings { run, jpeg_quality: s.jpeg_quality, recursive: s.recursive }
    }
}

/// The settings a window starts with: the saved ones, else an older version's (their choices
/// only), else the defaults.
pub fn load(storage: Option<&dyn eframe::Storage>) -> UiSettings {
    let Some(storage) = storage else { return UiSettings::default() };
    if let Some(saved) = eframe::get_value::<SavedSettings>(storage, SETTINGS_KEY) {
        return saved.into();
    }
    eframe::get_value::<UiSettings>(storage, OLD_SETTINGS_KEY).map(|old| SavedSettings::from(&old).into()).unwrap_or_default()
}

/// Stores what the user chose.
pub fn save(storage: &mut dyn eframe::Storage, settings: &UiSettings) {
    eframe::set_value(storage, SETTINGS_KEY, &SavedSettings::from(settings));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choices_survive_a_round_trip_and_the_wiring_starts_from_the_defaults() {
        let mut chosen = UiSettings::default();
        chosen.run.weights = "/models/GPEN-BFR-1024.pth".into();
        chosen.run.memory_ratio = 0.55;
        chosen.run.upscale = Some(2);
        chosen.run.mask = MaskChoice::Rectangle;
        chosen.run.identity_floor = Some(0.7);
        chosen.run.identity_guard = crate::identity::GuardMode::Flag;
        chosen.jpeg_quality = 77;
        chosen.recursive = false;
        // Wiring a run set up and the window never shows: not remembered.
        chosen.run.preview_side = 0;
        chosen.run.aligned = true;
        let text = serde_json::to_string(&SavedSettings::from(&chosen)).unwrap();
        let back: UiSettings = serde_json::from_str::<SavedSettings>(&text).unwrap().into();
        let defaults = UiSettings::default().run;
        assert_eq!((back.run.preview_side, back.run.aligned), (defaults.preview_side, defaults.aligned));
        let expected = UiSettings { run: RunConfig { preview_side: defaults.preview_side, aligned: false, ..chosen.run }, ..chosen };
        assert_eq!(back, expected);
    }

    #[test]
    fn an_older_file_keeps_the_fields_it_has() {
        let back: SavedSettings = serde_json::from_str(r#"{"memory_ratio": 0.3, "unknown": 1}"#).unwrap();
        assert_eq!((back.memory_ratio, back.recursive), (0.3, SavedSettings::default().recursive));
    }

    /// eframe's storage in memory.
    #[derive(Default)]
    struct Memory(std::collections::HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.into(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn an_older_version_s_settings_carry_their_choices_over_once() {
        let mut storage = Memory::default();
        let mut old = UiSettings::default();
        old.run.memory_ratio = 0.4;
        old.run.preview_side = 0;
        eframe::set_value(&mut storage, OLD_SETTINGS_KEY, &old);
        let carried = load(Some(&storage));
        assert_eq!((carried.run.memory_ratio, carried.run.preview_side), (0.4, UiSettings::default().run.preview_side));
        let mut changed = carried.clone();
        changed.run.memory_ratio = 0.6;
        save(&mut storage, &changed);
        assert_eq!(load(Some(&storage)), changed, "the new settings win over the old version's");
        assert_eq!(load(None), UiSettings::default());
    }
}
