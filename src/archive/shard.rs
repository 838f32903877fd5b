//! Splitting a run into shards: `--shard K/N` takes the photos whose path hashes to K.
//!
//! A photo's shard is FNV-1a (64 bit) of its path under the folder it was found in (`/`-separated,
//! UTF-8; [`super::walk::normalized`]), modulo N, plus one. The hash is fixed by its definition
//! (no per-process key, unlike the standard library's `RandomState`), so every machine and every
//! version computes the same shard, and a photo's shard depends on its own path only: adding
//! photos to the archive never moves another photo to a different shard.

use std::path::Path;

/// Shard `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What `--shard` says: a fixed shard, or `auto` (from the cluster's environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

/// A shard that cannot be taken: a bad `K/N`, or a cluster's variables that name none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is not `K/N` with 1 <= K <= N, or `auto`.
    #[error("{0}")]
    Bad(String),
    /// `--shard auto` found no usable Slurm array or Kubernetes Indexed Job variables.
    #[error("{0}")]
    Environment(String),
}

impl std::str::FromStr for ShardArg {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        if s == "auto" {
            return Ok(ShardArg::Auto);
        }
        let bad = || ShardError::Bad(format!("'{s}' is not a shard: write K/N (1 <= K <= N, e.g. 2/8) or auto"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        Shard::new(index, count).map(ShardArg::Fixed)
    }
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::Bad(format!("shard {index}/{count} does not exist: shards are numbered 1 to N (N >= 1)")));
        }
        Ok(Shard { index, count })
    }

    /// True when the photo at `rel` (its path under its folder) belongs to this shard.
    pub fn takes(&self, rel: &Path) -> bool {
        shard_of(rel, self.count) == self.index
    }
}

/// The 1-based shard of `rel` among `count`.
pub fn shard_of(rel: &Path, count: u32) -> u32 {
    (fnv1a64(super::walk::normalized(rel).as_bytes()) % count.max(1) as u64) as u32 + 1
}

/// FNV-1a, 64 bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The environment variables `--shard auto` reads.
pub const SLURM_VARS: [&str; 3] = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"];
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
pub const COUNT_VAR: &str = "GPEN_STUDIO_SHARD_COUNT";

/// `--shard auto`: the shard from a Slurm job array (K = SLURM_ARRAY_TASK_ID −
/// SLURM_ARRAY_TASK_MIN + 1, N = SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (K =
/// JOB_COMPLETION_INDEX + 1, N = `count` from `--shard-count`, else GPEN_STUDIO_SHARD_COUNT).
/// `env` looks a variable up (`std::env::var` in the product). Returns the shard and where it
/// came from, for the log.
pub fn from_env(env: impl Fn(&str) -> Option<String>, count: Option<u32>) -> Result<(Shard, String), ShardError> {
    let num = |name: &str| -> Result<Option<u64>, ShardError> {
        match env(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => {
                v.trim().parse::<u64>().map(Some).map_err(|_| ShardError::Environment(format!("{name}={v:?} is not a whole number")))
            }
        }
    };
    if let Some(id) = num(SLURM_VARS[0])? {
        let min = num(SLURM_VARS[1])?.ok_or_else(|| {
            ShardError::Environment(format!("{} is set but {} is not (is this a job array?)", SLURM_VARS[0], SLURM_VARS[1]))
        })?;
        let n = num(SLURM_VARS[2])?.ok_or_else(|| {
            ShardError::Environment(format!("{} is set but {} is not (is this a job array?)", SLURM_VARS[0], SLURM_VARS[2]))
        })?;
        if id < min {
            return Err(ShardError::Environment(format!("{}={id} is below {}={min}", SLURM_VARS[0], SLURM_VARS[1])));
        }
        let k = id - min + 1;
        if k > n {
            return Err(ShardError::Environment(format!(
                "Slurm array task {id} is not among {n} tasks from {min}: submit a contiguous array without a step (--array={min}-{})",
                min + n - 1
            )));
        }
        if let Some(c) = count
            && c as u64 != n
        {
            return Err(ShardError::Environment(format!("--shard-count {c} contradicts {}={n}", SLURM_VARS[2])));
        }
        let shard = Shard::new(k as u32, n as u32)?;
        return Ok((shard, format!("Slurm job array: {}={id}, {}={min}, {}={n}", SLURM_VARS[0], SLURM_VARS[1], SLURM_VARS[2])));
    }
    if let Some(index) = num(K8S_INDEX)? {
        let (n, from) = match count {
            Some(c) => (c as u64, "--shard-count".to_string()),
            None => match num(COUNT_VAR)? {
                Some(n) => (n, COUNT_VAR.to_string()),
                None => {
                    return Err(ShardError::Environment(format!(
                        "{K8S_INDEX} is set (a Kubernetes Indexed Job) but the number of shards is not: pass --shard-count N (the Job's completions) or set {COUNT_VAR}"
                    )));
                }
            },
        };
        let shard = Shard::new(index as u32 + 1, n as u32)
            .map_err(|e| ShardError::Environment(format!("{K8S_INDEX}={index} with {n} shards from {from}: {e}")))?;
        return Ok((shard, format!("Kubernetes Indexed Job: {K8S_INDEX}={index}, {n} shards from {from}")));
    }
    Err(ShardError::Environment(format!(
        "--shard auto found no shard in the environment: neither a Slurm job array ({}, {}, {}) nor a Kubernetes Indexed Job ({K8S_INDEX}, with --shard-count or {COUNT_VAR}) is set; give --shard K/N instead",
        SLURM_VARS[0], SLURM_VARS[1], SLURM_VARS[2]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn shard_flags_parse_and_reject_what_does_not_exist() {
        assert_eq!("2/3".parse::<ShardArg>(), Ok(ShardArg::Fixed(Shard { index: 2, count: 3 })));
        assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", ""] {
            assert!(bad.parse::<ShardArg>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn every_path_is_in_exactly_one_shard_and_the_split_is_even() {
        let paths: Vec<String> = (0..3000).map(|i| format!("box{}/scan_{i:05}.tif", i % 17)).collect();
        let mut sizes = [0usize; 5];
        for p in &paths {
            let takers: Vec<u32> = (1..=5).filter(|&k| Shard { index: k, count: 5 }.takes(Path::new(p))).collect();
            assert_eq!(takers.len(), 1, "{p}: {takers:?}");
            sizes[takers[0] as usize - 1] += 1;
        }
        assert!(sizes.iter().all(|&s| (500..700).contains(&s)), "{sizes:?}");
        // `./a/b` and `a/b` are the same photo.
        assert_eq!(shard_of(Path::new("./box1/x.jpg"), 7), shard_of(Path::new("box1/x.jpg"), 7));
    }

    #[test]
    fn auto_reads_slurm_arrays() {
        let (s, from) =
            from_env(env(&[("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_COUNT", "3")]), None).unwrap();
        assert_eq!(s, Shard { index: 3, count: 3 });
        assert!(from.contains("Slurm") && from.contains("SLURM_ARRAY_TASK_ID=12"), "{from}");
        // A stepped array (--array=0-8:4 gives ids 0, 4, 8 and count 3) cannot be numbered.
        let e = from_env(env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")]), None)
            .unwrap_err();
        assert!(e.to_string().contains("contiguous"), "{e}");
        let e = from_env(env(&[("SLURM_ARRAY_TASK_ID", "1")]), None).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_MIN"), "{e}");
        let e = from_env(env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")]), None)
            .unwrap_err();
        assert!(e.to_string().contains("not a whole number"), "{e}");
        let e = from_env(env(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")]), Some(4))
            .unwrap_err();
        assert!(e.to_string().contains("contradicts"), "{e}");
    }

    #[test]
    fn auto_reads_kubernetes_indexed_jobs() {
        let (s, from) = from_env(env(&[("JOB_COMPLETION_INDEX", "0")]), Some(4)).unwrap();
        assert_eq!((s, from.contains("--shard-count")), (Shard { index: 1, count: 4 }, true));
        let (s, from) = from_env(env(&[("JOB_COMPLETION_INDEX", "3"), ("GPEN_STUDIO_SHARD_COUNT", "4")]), None).unwrap();
        assert_eq!((s, from.contains("GPEN_STUDIO_SHARD_COUNT")), (Shard { index: 4, count: 4 }, true));
        let e = from_env(env(&[("JOB_COMPLETION_INDEX", "3")]), None).unwrap_err();
        assert!(e.to_string().contains("--shard-count") && e.to_string().contains("GPEN_STUDIO_SHARD_COUNT"), "{e}");
        let e = from_env(env(&[("JOB_COMPLETION_INDEX", "4")]), Some(4)).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn auto_without_a_cluster_names_the_variables() {
        let e = from_env(env(&[]), None).unwrap_err();
        for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "GPEN_STUDIO_SHARD_COUNT"] {
            assert!(e.to_string().contains(var), "{var} missing from: {e}");
        }
    }
}
