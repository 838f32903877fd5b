//! The models folder (`data_dir()/models`) and its `checksums.json`: the SHA-256 of every file,
//! recorded when the file first validated, so `models verify` notices a file that changed since.

use super::{Catalogue, ModelEntry, ModelError, Validated, validate_file};
use crate::restore::network::GpenConfig;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What `checksums.json` records about one file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
    pub bytes: u64,
    /// The configuration a generator validated as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<GpenConfig>,
    /// What an add-on validated as ("RetinaFace ResNet-50").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl Record {
    pub fn new(sha256: String, bytes: u64, validated: &Validated) -> Self {
        let config = match validated.kind {
            super::ModelKind::Generator(c) => Some(c),
            _ => None,
        };
        let network = config.is_none().then(|| validated.description.clone());
        Record { sha256, bytes, config, network }
    }
}

/// File name -> record.
pub type Checksums = BTreeMap<String, Record>;

/// The folder holding the weights files.
#[derive(Debug, Clone)]
pub struct ModelStore {
    pub dir: PathBuf,
}

/// One catalogue entry as `models list` shows it.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    pub entry: ModelEntry,
    pub path: PathBuf,
    pub installed: bool,
    /// The recorded checksum, when the file validated once.
    pub record: Option<Record>,
    /// A `.part` of an interrupted download, with its size.
    pub partial: Option<u64>,
}

/// The outcome of verifying one file.
#[derive(Debug, Clone)]
pub struct Verified {
    pub path: PathBuf,
    /// What the file validated as.
    pub validated: Validated,
    pub sha256: String,
    /// True when the hash matched a recorded one.
    pub had_record: bool,
    /// True when no hash was recorded and one is recorded now (files in the models folder only).
    pub recorded_now: bool,
}

impl Default for ModelStore {
    fn default() -> Self {
        ModelStore::new(crate::paths::data_dir().join("models"))
    }
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelStore { dir: dir.into() }
    }

    pub fn path_of(&self, entry: &ModelEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    pub fn part_of(&self, entry: &ModelEntry) -> PathBuf {
        self.dir.join(format!("{}.part", entry.file))
    }

    pub fn checksums_path(&self) -> PathBuf {
        self.dir.join("checksums.json")
    }

    pub fn ensure_dir(&self) -> Result<(), ModelError> {
        std::fs::create_dir_all(&self.dir).map_err(ModelError::io(&self.dir))
    }

    /// The recorded checksums; an absent file is an empty record, a damaged one an error.
    pub fn checksums(&self) -> Result<Checksums, ModelError> {
        let path = self.checksums_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                ModelError::Other(format!("{} is damaged ({e}); delete it and run `gpen-studio models verify`", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checksums::new()),
            Err(error) => Err(ModelError::Io { path, error }),
        }
    }

    /// Records (or replaces) the checksum of `file`, written atomically.
    pub fn record(&self, file: &str, record: Record) -> Result<(), ModelError> {
        self.ensure_dir()?;
        let mut all = self.checksums()?;
        all.insert(file.to_string(), record);
        let path = self.checksums_path();
        let text = serde_json::to_string_pretty(&all).expect("checksums serialize") + "\n";
        crate::paths::write_atomically(&path, |tmp| std::fs::write(tmp, &text)).map_err(ModelError::io(&path))
    }

    /// Every catalogue entry with what is on disk.
    pub fn status(&self, catalogue: &Catalogue) -> Result<Vec<ModelStatus>, ModelError> {
        let sums = self.checksums()?;
        Ok(catalogue
            .entries
            .iter()
            .map(|entry| {
                let path = self.path_of(entry);
                ModelStatus {
                    installed: path.is_file(),
                    record: sums.get(&entry.file).cloned(),
                    partial: std::fs::metadata(self.part_of(entry)).ok().map(|m| m.len()),
                    path,
                    entry: entry.clone(),
                }
            })
            .collect())
    }

    /// Validates `path` (the catalogue's configuration when its file name is a catalogue file),
    /// hashes it and compares with the recorded hash; a file without a record gets one.
    pub fn verify(&self, catalogue: &Catalogue, path: &Path) -> Result<Verified, ModelError> {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let entry = catalogue.by_file(&file);
        let recorded = if path.parent() == Some(self.dir.as_path()) { self.checksums()?.remove(&file) } else { None };
        let (sha256, bytes) = sha256_file(path)?;
        if let Some(r) = &recorded
            && r.sha256 != sha256
        {
            return Err(ModelError::HashMismatch { path: path.into(), recorded: r.sha256.clone(), actual: sha256 });
        }
        let validated = validate_file(path, entry.map(|e| e.name.as_str()), entry.map(|e| e.kind))?;
        let had_record = recorded.is_some();
        let recorded_now = !had_record && path.parent() == Some(self.dir.as_path());
        if recorded_now {
            self.record(&file, Record::new(sha256.clone(), bytes, &validated))?;
        }
        Ok(Verified { path: path.into(), validated, sha256, had_record, recorded_now })
    }

    /// The files `models verify` checks by default: installed catalogue files, and any other file
    /// with a recorded checksum.
    pub fn installed_files(&self, catalogue: &Catalogue) -> Result<Vec<PathBuf>, ModelError> {
        let mut files: Vec<PathBuf> = catalogue.entries.iter().map(|e| self.path_of(e)).filter(|p| p.is_file()).collect();
        for file in self.checksums()?.keys() {
            let path = self.dir.join(file);
            if !files.contains(&path) {
                files.push(path);
            }
        }
        Ok(files)
    }

    /// Validates `source` as `name` (a catalogue entry), or as the entry its file name or its
    /// configuration identifies, then copies it into the store atomically and records its hash.
    pub fn import(&self, catalogue: &Catalogue, source: &Path, name: Option<&str>) -> Result<(ModelEntry, PathBuf), ModelError> {
        if !source.is_file() {
            return Err(ModelError::Other(format!("{} is not a file", source.display())));
        }
        let by_name = match name {
            Some(n) => Some(catalogue.find(n)?),
            None => source.file_name().and_then(|f| catalogue.entries.iter().find(|e| e.matches(&f.to_string_lossy()))),
        };
        let (entry, validated) = match by_name {
            Some(entry) => (entry, validate_file(source, Some(&entry.name), Some(entry.kind))?),
            None => {
                let validated = validate_file(source, None, None)?;
                let config = validated.description.clone();
                let candidates: Vec<&ModelEntry> = catalogue.entries.iter().filter(|e| e.kind == validated.kind).collect();
                match candidates.as_slice() {
                    [one] => (*one, validated),
                    [] => {
                        return Err(ModelError::Other(format!(
                            "{} is a valid {config}, but no catalogue model has that configuration; \
                             use it directly with --weights FILE",
                            source.display()
                        )));
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(|e| e.name.as_str()).collect();
                        return Err(ModelError::Other(format!(
                            "{} is a valid {config}, which could be any of {}; say which with --as NAME",
                            source.display(),
                            names.join(", ")
                        )));
                    }
                }
            }
        };
        let (sha256, bytes) = sha256_file(source)?;
        self.ensure_dir()?;
        let dest = self.path_of(entry);
        if crate::paths::same_file(source, &dest) {
            return Err(ModelError::Other(format!("{} is already the installed file", source.display())));
        }
        crate::paths::write_atomically(&dest, |tmp| std::fs::copy(source, tmp).map(|_| ())).map_err(ModelError::io(&dest))?;
        let (copied, _) = sha256_file(&dest)?;
        if copied != sha256 {
            let _ = std::fs::remove_file(&dest);
            return Err(ModelError::Other(format!("{} changed while it was copied; try again", source.display())));
        }
        self.record(&entry.file, Record::new(sha256, bytes, &validated))?;
        Ok((entry.clone(), dest))
    }
}

/// SHA-256 (lower-case hex) and length of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ModelError> {
    let mut f = std::fs::File::open(path).map_err(ModelError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(ModelError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let hex = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let (hex, n) = sha256_file(&p).unwrap();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(n, 3);
    }

    #[test]
    fn checksums_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("models"));
        assert!(store.checksums().unwrap().is_empty());
        let r = Record { sha256: "00".into(), bytes: 1, config: Some(GpenConfig::BFR_256), network: None };
        store.record("a.pth", r.clone()).unwrap();
        assert_eq!(store.checksums().unwrap()["a.pth"], r);
        let addon = Record { sha256: "11".into(), bytes: 2, config: None, network: Some("RetinaFace ResNet-50".into()) };
        store.record("b.pth", addon.clone()).unwrap();
        assert_eq!(store.checksums().unwrap()["b.pth"], addon);
        // A file written before add-ons existed (a generator record) still reads.
        std::fs::write(store.checksums_path(), r#"{"c.pth": {"sha256": "22", "bytes": 3, "config": {"size": 256, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 1, "narrow": 0.5}}}"#).unwrap();
        assert_eq!(store.checksums().unwrap()["c.pth"].config, Some(GpenConfig::BFR_256));
    }
}
