//! The Slurm recipe (packaging/slurm/restore-array.sbatch) on a real single-node Slurm that the
//! test starts itself (cluster.rs): an array of 3 tasks restores a folder of photos with the small
//! golden GPEN, each photo exactly once, the union byte for byte what one process writes, the
//! merged reports counting every photo; then a task killed mid-run and submitted again finishes
//! its shard without touching the photos it had finished.

mod cluster;
#[path = "../common/mod.rs"]
mod common;

use cluster::{Cluster, Task};
use common::*;
use image::{DynamicImage, RgbImage};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SHARDS: u32 = 3;
const JOB_TIMEOUT: Duration = Duration::from_secs(180);

fn photos() -> PathBuf {
    repo_root().join("../shared/photos")
}

/// Twelve different photos in a small tree, the same names in several folders: variants of the
/// test photos (mirrored, cropped, darker, smaller) so that every output has its own bytes and a
/// mix-up between two photos cannot go unseen, and one photo without faces.
fn build_archive(root: &Path) -> Vec<PathBuf> {
    let solvay = DynamicImage::ImageRgb8(rgb(&photos().join("solvay_1927.png")));
    // The authors' 2656×1136 result at half size: detection on the full one would take most of the test's time.
    let group = DynamicImage::ImageRgb8(rgb(&photos().join("solvay_1927_official_gpen_result.jpg"))).resize(
        1328,
        568,
        image::imageops::FilterType::Triangle,
    );
    let astronaut = DynamicImage::ImageRgb8(rgb(&photos().join("astronaut.png")));
    let darker = |img: &DynamicImage| {
        DynamicImage::ImageRgb8(RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.as_rgb8().unwrap().get_pixel(x, y);
            image::Rgb(p.0.map(|c| (c as u32 * 4 / 5) as u8))
        }))
    };
    let sky = DynamicImage::ImageRgb8(RgbImage::from_fn(200, 150, |x, y| image::Rgb([(x + y) as u8, 110, 210])));
    let photos: Vec<(&str, DynamicImage)> = vec![
        ("1927/solvay.png", solvay.clone()),
        ("1927/solvay_mirrored.png", solvay.fliph()),
        ("1927/prints/solvay.png", solvay.crop_imm(0, 0, 900, 568)),
        ("1927/prints/group.jpg", group.clone()),
        ("1927/prints/group_right.png", group.crop_imm(600, 0, 728, 568)),
        ("group_mirrored.png", group.fliph()),
        ("nasa/astronaut.png", astronaut.clone()),
        ("nasa/astronaut_mirrored.png", astronaut.fliph()),
        ("nasa/1984/astronaut.png", astronaut.crop_imm(40, 0, 420, 420)),
        ("nasa/1984/astronaut_dark.png", darker(&astronaut)),
        ("astronaut_small.png", astronaut.resize(256, 256, image::imageops::FilterType::Triangle)),
        ("nasa/sky.png", sky),
    ];
    photos
        .into_iter()
        .map(|(rel, img)| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            img.save(&path).unwrap();
            PathBuf::from(rel)
        })
        .collect()
}

/// Every file under `dir` (relative path -> bytes), leaving out the top-level folders in `skip`.
fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, skip, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

fn names(t: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<&PathBuf> {
    t.keys().collect()
}

/// The golden model, the CPU, and one face a batch: a face's result then cannot depend on which
/// other faces share its batch, which differs between a shard and the whole folder.
const RESTORE_ARGS: &str = "--batch 1";

/// `sbatch` of the recipe with its variables set as a user would export them.
fn submit(cluster: &Cluster, work: &Path, archive: &Path, out: &Path, array: &str, shards: Option<u32>) -> u32 {
    std::fs::create_dir_all(work.join("logs")).unwrap(); // slurmd does not create it
    let mut sbatch = cluster.command("sbatch");
    sbatch
        .current_dir(work)
        .args(["--parsable", "--array", array])
        // The recipe asks for a production node; this one has what the machine has.
        .args(["--cpus-per-task=1", "--mem=1G"])
        .arg(format!("--output={}/logs/%A_%a.log", work.display()))
        .arg(repo_root().join("packaging/slurm/restore-array.sbatch"))
        .env("IN", archive)
        .env("OUT", out)
        .env("WEIGHTS", golden_weights())
        .env("DEVICE", "cpu")
        .env("GPEN_STUDIO", bin())
        .env("GPEN_ARGS", RESTORE_ARGS)
        // An empty data folder: nothing installed on this machine changes what `auto` picks.
        .env("XDG_DATA_HOME", work.join("no-data"));
    match shards {
        Some(n) => sbatch.env("SHARDS", n.to_string()),
        None => sbatch.env_remove("SHARDS"),
    };
    cluster.sbatch(sbatch)
}

fn job_logs(work: &Path, job: u32) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(work.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{job}_")))
        .collect();
    logs.sort();
    logs
}

fn wait_all(cluster: &Cluster, work: &Path, job: u32) -> Vec<Task> {
    let logs = job_logs(work, job);

    cluster.wait(job, JOB_TIMEOUT, &logs.iter().map(PathBuf::as_path).collect::<Vec<_>>())
}

fn logs_text(cluster: &Cluster, work: &Path, job: u32) -> String {
    let logs = job_logs(work, job);
    cluster.logs_of(&logs.iter().map(PathBuf::as_path).collect::<Vec<_>>())
}

/// One photo of a report: its input relative to the archive, its output relative to the output
/// folder, and the outcome.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    input: PathBuf,
    output: PathBuf,
    outcome: String,
}

fn read_report(path: &Path, archive: &Path, out: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
    let relative = |v: &Value, base: &Path, what: &str| {
        let p = PathBuf::from(v.as_str().unwrap_or_else(|| panic!("{what} is not a path in {}", path.display())));
        p.strip_prefix(base).map(Path::to_path_buf).unwrap_or_else(|_| panic!("{} is not under {}", p.display(), base.display()))
    };
    json["photos"]
        .as_array()
        .unwrap_or_else(|| panic!("no photos list in {}", path.display()))
        .iter()
        .map(|p| Entry {
            input: relative(&p["input"], archive, "input"),
            output: relative(&p["output"], out, "output"),
            outcome: p["outcome"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The report the recipe has task `task` of shard `k` write.
fn report_path(out: &Path, k: u32, task: &Task) -> PathBuf {
    out.join(format!("reports/shard-{k}-job{}.json", task.job_id))
}

/// `report merge REPORTS --failed-list FILE`, which must succeed (no photo failed); what it printed.
fn merge_reports(reports: &[PathBuf], failed_list: &Path) -> String {
    let merged = Command::new(bin()).args(["report", "merge"]).args(reports).arg("--failed-list").arg(failed_list).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&merged.stdout), String::from_utf8_lossy(&merged.stderr));
    assert!(merged.status.success(), "report merge {reports:?}:\n{text}");
    text
}

fn assert_all_completed(tasks: &[Task], ids: &[u32], cluster: &Cluster, work: &Path, job: u32) {
    let seen: Vec<u32> = tasks.iter().map(|t| t.id).collect();
    let ok = seen == ids && tasks.iter().all(|t| t.state == "COMPLETED" && t.exit_code == "0:0");
    assert!(ok, "job {job}: expected tasks {ids:?} COMPLETED with exit 0, got {tasks:?}\n{}", logs_text(cluster, work, job));
}

fn restore_single_process(archive: &Path, out: &Path, work: &Path) -> std::process::Child {
    Command::new(bin())
        .args(["restore", "--device", "cpu", "--recursive", "--weights"])
        .arg(golden_weights())
        .args(RESTORE_ARGS.split(' '))
        // One thread, as the tasks get from the recipe (--threads $SLURM_CPUS_PER_TASK): the
        // same arithmetic, and three processes on a small machine do not fight over its cores.
        .args(["--threads", "1"])
        .arg(archive)
        .arg("-o")
        .arg(out)
        .env("XDG_DATA_HOME", work.join("no-data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(work.join("single-process.log")).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn the_slurm_array_recipe_restores_each_photo_once_and_a_killed_task_resumes() {
    let started = Instant::now();
    let work_dir = tempfile::Builder::new().prefix("gpen-slurm-work-").tempdir().unwrap();
    let work = work_dir.path();
    let archive = work.join("archive");
    let inputs = build_archive(&archive);
    let cluster = Cluster::start();
    eprintln!("cluster up after {:.1} s", started.elapsed().as_secs_f64());

    // The array as the README submits it (--shard auto), and the reference beside it.
    let out = work.join("restored");
    let job = submit(&cluster, work, &archive, &out, &format!("1-{SHARDS}"), None);
    let reference = work.join("single-process");
    let single = restore_single_process(&archive, &reference, work).wait_with_output().unwrap();
    assert!(single.status.success(), "{}", std::fs::read_to_string(work.join("single-process.log")).unwrap());
    eprintln!("single-process run done after {:.1} s", started.elapsed().as_secs_f64());
    let tasks = wait_all(&cluster, work, job);
    assert_all_completed(&tasks, &[1, 2, 3], &cluster, work, job);
    eprintln!("array of {SHARDS} done after {:.1} s", started.elapsed().as_secs_f64());

    let expected = tree(&reference, &[]);
    assert_eq!(expected.len(), inputs.len(), "the single-process run writes one file a photo: {:?}", names(&expected));
    let union = tree(&out, &["reports"]);
    assert_eq!(names(&union), names(&expected), "the shards together write what one process writes, and nothing else");
    for (name, bytes) in &expected {
        assert!(union[name] == *bytes, "{} differs from the single-process run", name.display());
    }

    // Each photo is in exactly one shard's report, restored (or copied without faces) once.
    let mut shard_of: BTreeMap<PathBuf, u32> = BTreeMap::new();
    let mut entries: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
    for k in 1..=SHARDS {
        let report = read_report(&report_path(&out, k, &tasks[k as usize - 1]), &archive, &out);
        for e in &report {
            assert!(["restored", "no_faces"].contains(&e.outcome.as_str()), "shard {k}: {e:?} on a first run");
            assert!(expected.contains_key(&e.output), "shard {k}: {e:?} names an output nobody wrote");
            if let Some(other) = shard_of.insert(e.input.clone(), k) {
                panic!("{} is in shard {other} and shard {k}", e.input.display());
            }
        }
        entries.insert(k, report);
    }
    assert_eq!(shard_of.keys().collect::<BTreeSet<_>>(), inputs.iter().collect::<BTreeSet<_>>(), "every photo in one report");
    assert!(entries.values().all(|e| !e.is_empty()), "every shard got photos: {shard_of:?}");
    let sky = entries.values().flatten().find(|e| e.input == Path::new("nasa/sky.png")).unwrap();
    assert_eq!(sky.outcome, "no_faces");

    // The merged reports count every photo, and list no failed one.
    let failed_list = work.join("failed.txt");
    let merged_text = merge_reports(&tasks.iter().map(|t| report_path(&out, t.id, t)).collect::<Vec<_>>(), &failed_list);
    let restored = entries.values().flatten().filter(|e| e.outcome == "restored").count();
    assert_eq!(restored, inputs.len() - 1);
    for want in [format!("photos {}", inputs.len()), format!("restored {restored}"), "already done 0".to_string(), "failed 0".to_string()] {
        assert!(merged_text.contains(&want), "report merge does not say {want:?}:\n{merged_text}");
    }
    let listed: Vec<String> = std::fs::read_to_string(&failed_list)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert!(listed.is_empty(), "no failed photo to rerun: {listed:?}");

    // The shard with the most photos, alone into a fresh folder, killed once its first photo is
    // written, then submitted again: resubmitting some tasks alone passes the shard count.
    let (&k, shard) = entries.iter().max_by_key(|(_, e)| e.len()).unwrap();
    assert!(shard.len() >= 3, "shard {k} holds {} photos: too few to kill it in the middle", shard.len());
    let resumed = work.join("resumed");
    let outputs: Vec<PathBuf> = shard.iter().map(|e| resumed.join(&e.output)).collect();
    let first = submit(&cluster, work, &archive, &resumed, &k.to_string(), Some(SHARDS));
    let poll_start = Instant::now();
    for polls in 0u64.. {
        if outputs.iter().any(|p| p.exists()) {
            break;
        }
        assert!(poll_start.elapsed() < JOB_TIMEOUT, "no output of shard {k} after {JOB_TIMEOUT:?}\n{}", logs_text(&cluster, work, first));
        if polls % 100 == 99 {
            assert!(cluster.in_queue(first), "shard {k} ended before writing anything\n{}", logs_text(&cluster, work, first));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The first output is the event that proves the task is under way with photos left. Freeze it
    // at once, before scancel's round trip through the controller: what it has not written now
    // stays unwritten. scancel then ends it (Slurm sends SIGCONT and SIGTERM, which ends it).
    assert_eq!(freeze_restores_writing_into(&resumed), 1, "shard {k}'s gpen-studio is not running\n{}", logs_text(&cluster, work, first));
    cluster.run("scancel", &[OsStr::new(&first.to_string())]);
    let killed = wait_all(&cluster, work, first);
    assert!(killed.len() == 1 && killed[0].state == "CANCELLED", "{killed:?}\n{}", logs_text(&cluster, work, first));
    let finished: BTreeMap<PathBuf, (u64, i64, i64)> =
        outputs.iter().filter_map(|p| std::fs::metadata(p).ok().map(|m| (p.clone(), (m.ino(), m.mtime(), m.mtime_nsec())))).collect();
    assert!(
        !finished.is_empty() && finished.len() < outputs.len(),
        "the kill came after {} of {} photos: the shard must be stopped in the middle",
        finished.len(),
        outputs.len()
    );
    eprintln!("shard {k} killed after {} of {} photos", finished.len(), outputs.len());
    // The killed task's report is still whole JSON, and claims no photo it did not write.
    let killed_report = report_path(&resumed, k, &killed[0]);
    for e in read_report(&killed_report, &archive, &resumed) {
        assert!(finished.contains_key(&resumed.join(&e.output)), "the killed task's report lists {e:?}, which it never wrote");
    }

    let again = submit(&cluster, work, &archive, &resumed, &k.to_string(), Some(SHARDS));
    let tasks = wait_all(&cluster, work, again);
    assert_all_completed(&tasks, &[k], &cluster, work, again);
    let got = tree(&resumed, &["reports"]);
    let want: BTreeMap<PathBuf, Vec<u8>> = shard.iter().map(|e| (e.output.clone(), expected[&e.output].clone())).collect();
    assert_eq!(names(&got), names(&want), "the resumed shard holds its photos and no partial file");
    for (name, bytes) in &want {
        assert!(got[name] == *bytes, "{} differs after the resume", name.display());
    }
    for (path, stat) in &finished {
        let m = std::fs::metadata(path).unwrap();
        assert_eq!((m.ino(), m.mtime(), m.mtime_nsec()), *stat, "{} was written again", path.display());
    }
    let rerun_report = report_path(&resumed, k, &tasks[0]);
    assert_ne!(rerun_report, killed_report, "each attempt keeps its own report");
    let report = read_report(&rerun_report, &archive, &resumed);
    let outcome_of: BTreeMap<PathBuf, String> = report.iter().map(|e| (resumed.join(&e.output), e.outcome.clone())).collect();
    assert_eq!(
        outcome_of.keys().collect::<Vec<_>>(),
        {
            let mut o: Vec<&PathBuf> = outputs.iter().collect();
            o.sort();
            o
        },
        "the report lists shard {k}'s photos"
    );
    for (path, outcome) in &outcome_of {
        let want = if finished.contains_key(path) {
            "already_done"
        } else {
            &shard.iter().find(|e| resumed.join(&e.output) == *path).unwrap().outcome
        };
        assert_eq!(outcome, want, "{}", path.display());
    }
    // Both attempts together: each photo of the shard once, whichever attempt restored it.
    let merged_text = merge_reports(&[killed_report, rerun_report], &work.join("failed-resumed.txt"));
    for want in [format!("photos {}:", shard.len()), "failed 0".to_string()] {
        assert!(merged_text.contains(&want), "report merge of both attempts does not say {want:?}:\n{merged_text}");
    }
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// Stops (SIGSTOP) every `gpen-studio restore` whose command line names `out` (its `-o`), and says
/// how many it stopped.
fn freeze_restores_writing_into(out: &Path) -> usize {
    let out = out.as_os_str().as_encoded_bytes();
    let mut frozen = 0;
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_restore = args.first().is_some_and(|a| a.ends_with(b"gpen-studio")) && args.contains(&&b"restore"[..]);
        if is_restore && args.contains(&out) {
            // SAFETY: sends SIGSTOP to a process of this test's own cluster job.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP {pid}");
            frozen += 1;
        }
    }
    frozen
}
