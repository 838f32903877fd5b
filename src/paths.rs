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
    let tmp = dir.join(partial_name(&name));
    let result = write(&tmp)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The longest file name the usual file systems take (ext4, XFS, btrfs, APFS, NTFS: 255 bytes).
pub const NAME_MAX: usize = 255;

/// `{prefix}{stem}{tail}`, or, when that is longer than [`NAME_MAX`], with the stem cut short and a
/// hash of the whole stem after it (two long stems that share their start stay apart): any name the
/// file system took as an input still works when a run adds to it.
pub fn fit_file_name(prefix: &str, stem: &str, tail: &str) -> String {
    if prefix.len() + stem.len() + tail.len() <= NAME_MAX {
        return format!("{prefix}{stem}{tail}");
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    stem.hash(&mut hasher);
    let hash = format!("~{:016x}", hasher.finish());
    let mut cut = NAME_MAX.saturating_sub(prefix.len() + hash.len() + tail.len()).min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{prefix}{}{hash}{tail}", &stem[..cut])
}

/// The temporary name of `name` while this process writes it: `.<host>.<pid>.part-<name>`. Host
/// and pid make it unique among all writers of a shared (network) folder; the extension stays
/// last, so encoders that pick the format from the name still see it ([`fit_file_name`] keeps a
/// long name within the limit).
pub fn partial_name(name: &str) -> String {
    let prefix = format!(".{}.{}.part-", host_name(), std::process::id());
    let (stem, tail) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    fit_file_name(&prefix, stem, tail)
}

/// Who wrote a temporary file, from its name (`None`: not one of ours). Names without a host
/// (`.<pid>.part-<name>`, written by older versions) count as this host's.
fn partial_owner(name: &str) -> Option<(Option<String>, u32)> {
    let (owner, _) = name.strip_prefix('.')?.split_once(".part-")?;
    match owner.rsplit_once('.') {
        Some((host, pid)) => Some((Some(host.to_string()), pid.parse().ok()?)),
        None => Some((None, owner.parse().ok()?)),
    }
}

/// True for the temporary files of [`write_atomically`] (never taken as photos).
pub fn is_partial_name(name: &str) -> bool {
    partial_owner(name).is_some()
}

/// This machine's host name (`gethostname`), with the characters a file name cannot hold
/// replaced; "localhost" if it cannot be read.
pub fn host_name() -> String {
    let name = crate::sys::process::host_name().unwrap_or_default();
    let name: String = name.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// A temporary file of another host is removed only when it has not changed for this long: no
/// single output takes a day to write, and a clock skew of hours between machines stays safe.
pub const FOREIGN_PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the temporary files that [`write_atomically`] left in `dir` when its writer was killed.
/// Of this host, a file is removed when its process no longer runs (`/proc` tells). Of another
/// host, whose processes this machine cannot see, only when unchanged for [`FOREIGN_PARTIAL_AGE`]:
/// a live writer on another machine of a shared folder is never disturbed. Returns how many were
/// removed.
pub fn remove_stale_partials(dir: &Path) -> usize {
    remove_stale_partials_as(dir, &host_name(), std::time::SystemTime::now())
}

/// [`remove_stale_partials`] as host `host` at time `now` (tests play other machines with it).
pub fn remove_stale_partials_as(dir: &Path, host: &str, now: std::time::SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((owner, pid)) = partial_owner(&name) else { continue };
        let stale = match owner {
            Some(h) if h != host => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age >= FOREIGN_PARTIAL_AGE),
            _ => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
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
        let host = host_name();
        // pid 4194304 is above Linux's pid_max, so never alive; our own pid is.
        let dead = dir.path().join(format!(".{host}.4194304.part-photo.png"));
        let legacy_dead = dir.path().join(".4194304.part-old.png");
        let ours = dir.path().join(partial_name("other.png"));
        let result = dir.path().join("photo.png");
        for p in [&dead, &legacy_dead, &ours, &result] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_partials(dir.path()), 2);
        assert!(!dead.exists() && !legacy_dead.exists() && ours.exists() && result.exists());
    }

    #[test]
    fn another_hosts_partial_is_left_alone_until_it_is_a_day_old() {
        let dir = tempfile::tempdir().unwrap();
        // A writer on another machine of a shared folder: its pid means nothing here (4194304 is
        // dead on this machine, but may well run there).
        let foreign = dir.path().join(".node-17.cluster.4194304.part-photo.png");
        std::fs::write(&foreign, b"x").unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(remove_stale_partials_as(dir.path(), "this-host", now), 0);
        assert_eq!(remove_stale_partials_as(dir.path(), "this-host", now + FOREIGN_PARTIAL_AGE / 2), 0);
        assert!(foreign.exists(), "a live writer on another host keeps its file");
        // The same name seen by its own host, whose pid 4194304 is dead: removed.
        assert_eq!(remove_stale_partials_as(dir.path(), "node-17.cluster", now), 1);
        std::fs::write(&foreign, b"x").unwrap();
        let later = std::time::SystemTime::now() + FOREIGN_PARTIAL_AGE + std::time::Duration::from_secs(1);
        assert_eq!(remove_stale_partials_as(dir.path(), "this-host", later), 1, "abandoned for a day");
    }

    #[test]
    fn a_long_name_s_partial_stays_within_the_file_system_s_limit() {
        // 250 bytes with multi-byte characters, as a scanner or a chat app may name a photo.
        let long = |end: &str| format!("{}{end}.png", "é".repeat(120));
        let (a, b) = (partial_name(&long("ab")), partial_name(&long("cd")));
        for p in [&a, &b] {
            assert!(p.len() <= NAME_MAX, "{} bytes", p.len());
            assert!(p.ends_with(".png") && is_partial_name(p), "{p}");
        }
        assert_ne!(a, b, "names that differ only at the end get different partials");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(long("ab"));
        write_atomically(&out, |tmp| std::fs::write(tmp, b"done")).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"done");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn partial_names_carry_host_and_pid() {
        let name = partial_name("a.b.png");
        assert!(name.ends_with(".part-a.b.png") && name.starts_with(&format!(".{}.", host_name())), "{name}");
        assert_eq!(partial_owner(&name), Some((Some(host_name()), std::process::id())));
        assert!(!is_partial_name("photo.png") && !is_partial_name(".hidden.png"));
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
