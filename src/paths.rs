//! Where gpen-studio keeps its files, and safe writing of outputs.

use std::path::{Path, PathBuf};

/// The user's data directory for gpen-studio (`$XDG_DATA_HOME/gpen-studio`, else
/// `~/.local/share/gpen-studio`): downloaded weights live in its `models/` folder.
pub fn data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share")
}

/// The user's configuration directory for gpen-studio (`$XDG_CONFIG_HOME/gpen-studio`, else
/// `~/.config/gpen-studio`): settings and memory calibrations live here.
pub fn config_dir() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

/// `$VAR/gpen-studio` when the XDG variable is set and not empty, else `~/<home_default>/gpen-studio`.
fn xdg_dir(var: &str, home_default: &str) -> PathBuf {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_default)))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("gpen-studio")
}

/// The weights used when `--weights` is not given: `GPEN-BFR-512.pth` in the data directory.
pub fn default_weights() -> PathBuf {
    data_dir().join("models").join("GPEN-BFR-512.pth")
}

/// A file of the models folder (`<data dir>/models/<file>`).
pub fn model_file(file: &str) -> PathBuf {
    data_dir().join("models").join(file)
}

/// Tells a user who asked for an add-on (RetinaFace, ParseNet) whose weights are missing how to get them.
pub fn missing_addon_help(what: &str, flag: &str, path: &Path) -> String {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!(
        "{what} weights {} not found: run `gpen-studio models download {name}` (or `models import FILE`), \
         or give the file with {flag} FILE; `auto` falls back to the built-in choice when it is missing",
        path.display()
    )
}

/// Tells a user who has no weights file where to get one.
pub fn missing_weights_help(path: &Path) -> String {
    format!(
        "weights file {} not found.\n\
         gpen-studio needs an official GPEN generator: run `gpen-studio models download GPEN-BFR-512`, or get\n  \
         https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/GPEN-BFR-512.pth\n\
         and save it as {} or pass --weights FILE (see README, \"Model weights\").",
        path.display(),
        default_weights().display()
    )
}

/// Produces `path` through a temporary file in the same folder and a rename, so a crash never
/// leaves a half-written output under the final name. `write` fills the temporary path it is given.
pub fn write_atomically<E: std::fmt::Display>(path: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Keep the extension last: encoders that pick the format from the name still see it.
    let tmp = dir.join(format!(".{}.part-{name}", std::process::id()));
    let result = write(&tmp)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files that [`write_atomically`] left in `dir` when its process was killed
/// (`.<pid>.part-<name>` of a process that no longer runs). Returns how many were removed.
pub fn remove_stale_partials(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((pid, _)) = name.strip_prefix('.').and_then(|n| n.split_once(".part-")) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// True when `a` and `b` name the same existing file (so an output never replaces an input).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_partials_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 4194304 is above Linux's pid_max, so never alive; our own pid is.
        let dead = dir.path().join(".4194304.part-photo.png");
        let ours = dir.path().join(format!(".{}.part-other.png", std::process::id()));
        let result = dir.path().join("photo.png");
        for p in [&dead, &ours, &result] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_partials(dir.path()), 1);
        assert!(!dead.exists() && ours.exists() && result.exists());
    }

    #[test]
    fn atomic_write_leaves_nothing_behind_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.png");
        let err = write_atomically(&target, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no partial file remains");
        write_atomically(&target, |tmp| std::fs::write(tmp, b"whole")).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
