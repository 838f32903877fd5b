//! Large archives through the command line with the small golden model: results mirror the input
//! tree and never feed a rerun, symlink loops are walked once, shards are disjoint, complete and
//! stable when photos are added, manifests, run reports (also of a killed run) and their merge,
//! and temporary files of other writers of a shared folder are left alone.

mod common;
use common::*;
use gpen_studio::archive::report::{self, PhotoOutcome, Report};
use image::RgbImage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn photos() -> PathBuf {
    repo_root().join("../shared/photos")
}

/// `restore` on the CPU with the golden GPEN, an empty data folder and no cluster variables.
fn restore(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(bin());
    c.args(["restore", "--device", "cpu", "--batch", "4", "--workers", "1", "--weights"]).arg(golden_weights()).args(args);
    c.env("XDG_DATA_HOME", std::env::temp_dir().join("gpen-studio-tests-no-data-folder"));
    for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "GPEN_STUDIO_SHARD_COUNT"]
    {
        c.env_remove(var);
    }
    c
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    restore(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A photo with one real face (the astronaut) at `path`.
fn face_photo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(photos().join("astronaut.png"), path).unwrap();
}

/// A small photo without faces, different for each `seed`.
fn plain_photo(path: &Path, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x as u8).wrapping_mul(seed), y as u8 * 3, seed])).save(path).unwrap();
}

/// Every file under `dir` (recursively, links not followed) with its bytes, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn names(t: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    t.keys().map(String::as_str).collect()
}

fn read_report(path: &Path) -> Report {
    report::read(path).unwrap()
}

#[test]
fn output_inside_the_input_is_never_walked_and_same_names_in_two_folders_mirror() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    face_photo(&input.join("a/x.png"));
    plain_photo(&input.join("b/x.png"), 7);
    plain_photo(&input.join("top.png"), 9);
    let out = input.join("out");
    let first = run(&[os(&input), os("-r"), os("-o"), os(&out)]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("photos restored 1, without faces 2, already done 0, failed 0"), "{}", stderr(&first));
    let results = tree(&out);
    assert_eq!(names(&results), ["a/x.png", "b/x.png", "top.png"]);
    assert_eq!(rgb(&out.join("b/x.png")), rgb(&input.join("b/x.png")), "the faceless one is written unchanged");

    // The second run sees the same three photos, not its own results: nothing new, no `-2` files.
    let second = run(&[os(&input), os("-r"), os("-o"), os(&out)]);
    let log = stderr(&second);
    assert!(second.status.success(), "{log}");
    assert!(log.contains("photos restored 0, without faces 0, already done 3, failed 0"), "{log}");
    assert!(log.contains("skipped") && log.contains("the output folder"), "{log}");
    assert_eq!(tree(&out), results);
}

#[test]
fn a_symlink_loop_is_walked_once_and_photos_keep_their_shortest_path() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    plain_photo(&input.join("a/thin.png"), 3);
    std::os::unix::fs::symlink(&input, input.join("a/loop")).unwrap();
    let (out, report) = (d.path().join("out"), d.path().join("run.json"));
    let o = run(&[os(&input), os("-r"), os("-o"), os(&out), os("--report"), os(&report)]);
    let log = stderr(&o);
    assert!(o.status.success(), "{log}");
    assert_eq!(log.matches("symlink loop").count(), 1, "{log}");
    assert!(!log.contains("loop/a"), "{log}");
    let r = read_report(&report);
    let rels: Vec<&Path> = r.photos.iter().map(|p| p.rel.as_path()).collect();
    assert_eq!(rels, [Path::new("a/thin.png")]);
    assert_eq!(names(&tree(&out)), ["a/thin.png"]);
}

/// The outputs (under `out`) each shard's report says it restored or found without faces.
fn written_by(r: &Report) -> Vec<PathBuf> {
    r.photos.iter().filter(|p| matches!(p.outcome, PhotoOutcome::Restored | PhotoOutcome::NoFaces)).map(|p| p.output.clone()).collect()
}

#[test]
fn shards_cover_every_photo_once_equal_one_run_and_stay_put_when_photos_are_added() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("archive");
    face_photo(&input.join("box1/portrait.png"));
    for i in 0..8u8 {
        plain_photo(&input.join(format!("box{}/scan{i}.png", i % 3)), i + 1);
    }
    let whole = d.path().join("whole");
    let o = run(&[os(&input), os("-r"), os("-o"), os(&whole)]);
    assert!(o.status.success(), "{}", stderr(&o));

    let out = d.path().join("sharded");
    let shard_run = |k: u32, tag: &str| -> Report {
        let report = d.path().join(format!("{tag}-{k}.json"));
        let o = run(&[os(&input), os("-r"), os("-o"), os(&out), os("--shard"), os(&format!("{k}/3")), os("--report"), os(&report)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("shard {k}/3 (--shard): ")), "{}", stderr(&o));
        read_report(&report)
    };
    let first: Vec<Report> = (1..=3).map(|k| shard_run(k, "first")).collect();
    // Each photo restored by exactly one shard; the union is the single run, byte for byte.
    let mut all: Vec<PathBuf> = first.iter().flat_map(written_by).collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (9, 9), "{all:?}");
    assert!(first.iter().all(|r| !r.photos.is_empty()), "9 photos over 3 shards leave none empty here");
    assert_eq!(tree(&out), tree(&whole));
    assert_eq!(first.iter().map(|r| r.totals.photos).sum::<usize>(), 9);

    // Add photos: every finished photo is "already done" in the shard that wrote it.
    for i in 0..6u8 {
        plain_photo(&input.join(format!("box{}/new{i}.png", i % 4)), 100 + i);
    }
    let again: Vec<Report> = (1..=3).map(|k| shard_run(k, "again")).collect();
    for (k, (old, new)) in first.iter().zip(&again).enumerate() {
        let mut done: Vec<PathBuf> =
            new.photos.iter().filter(|p| p.outcome == PhotoOutcome::AlreadyDone).map(|p| p.output.clone()).collect();
        let mut wrote = written_by(old);
        done.sort();
        wrote.sort();
        assert_eq!(done, wrote, "shard {}: a finished photo moved", k + 1);
    }
    let new: usize = again.iter().map(|r| written_by(r).len()).sum();
    assert_eq!(new, 6, "only the added photos are restored");
    let merged = report::merge(&[first, again].concat());
    assert_eq!((merged.totals.photos, merged.totals.restored + merged.totals.no_faces, merged.totals.failed), (15, 15, 0));
}

#[test]
fn shard_auto_reads_the_cluster_and_says_so_or_names_the_variables() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    for i in 0..4u8 {
        plain_photo(&input.join(format!("p{i}.png")), i + 1);
    }
    let out = d.path().join("out");
    let dry = [os(&input), os("-o"), os(&out), os("--shard"), os("auto"), os("--dry-run")];
    let o = restore(&dry)
        .envs([("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "6"), ("SLURM_ARRAY_TASK_COUNT", "3")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("shard 2/3 (Slurm job array: SLURM_ARRAY_TASK_ID=7"), "{}", stderr(&o));
    let o = restore(&[&dry[..], &[os("--shard-count"), os("4")]].concat()).env("JOB_COMPLETION_INDEX", "3").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shard 4/4 (Kubernetes Indexed Job: JOB_COMPLETION_INDEX=3, 4 shards from --shard-count)"),
        "{}",
        stderr(&o)
    );
    let o = run(&dry);
    assert_eq!(o.status.code(), Some(1));
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "GPEN_STUDIO_SHARD_COUNT"] {
        assert!(stderr(&o).contains(var), "{}", stderr(&o));
    }
    assert!(!out.exists());
}

#[test]
fn a_list_a_report_a_merge_and_a_rerun_of_the_failed_photos() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("archive");
    face_photo(&root.join("1920s/family.png"));
    plain_photo(&root.join("1930s/street.png"), 5);
    plain_photo(&root.join("1930s/not-listed.png"), 6);
    std::fs::write(root.join("1930s/damaged.jpg"), b"not a jpeg").unwrap();
    let list = d.path().join("lists/todo.txt");
    std::fs::create_dir_all(list.parent().unwrap()).unwrap();
    std::fs::write(&list, "# photos to do\n1920s/family.png\n\n1930s/street.png\n1930s/damaged.jpg\n").unwrap();
    let (out, report_path) = (d.path().join("out"), d.path().join("reports/run.json"));
    let o = run(&[os("--from-list"), os(&list), os("--list-root"), os(&root), os("-o"), os(&out), os("--report"), os(&report_path)]);
    assert_eq!(o.status.code(), Some(1), "the damaged photo fails: {}", stderr(&o));
    assert_eq!(names(&tree(&out)), ["1920s/family.png", "1930s/street.png"]);

    let r = read_report(&report_path);
    assert!(r.finished && r.shard.is_none() && r.tool == "gpen-studio" && r.version == env!("CARGO_PKG_VERSION"));
    assert_eq!(r.device.as_deref(), Some("cpu"));
    assert!(r.model.name.as_deref().is_some_and(|n| n.starts_with("GPEN 64")), "{:?}", r.model.name);
    let (sha, _) = gpen_studio::weights::sha256_file(&golden_weights()).unwrap();
    assert_eq!((r.model.sha256.as_deref(), r.model.sha256_source.as_deref()), (Some(sha.as_str()), Some("computed")));
    assert!(!r.planner.is_empty() && r.planner[0].batch == 4, "{:?}", r.planner);
    assert!(r.stage_seconds.contains_key("decode") && r.stage_seconds.contains_key("restore"), "{:?}", r.stage_seconds);
    let by_rel: BTreeMap<String, &report::PhotoRecord> = r.photos.iter().map(|p| (p.rel.to_string_lossy().into_owned(), p)).collect();
    assert_eq!(by_rel.keys().collect::<Vec<_>>(), ["1920s/family.png", "1930s/damaged.jpg", "1930s/street.png"]);
    let family = by_rel["1920s/family.png"];
    assert_eq!((family.outcome, family.faces.len()), (PhotoOutcome::Restored, 1));
    assert_eq!(family.faces[0].result, report::FaceResult::Restored);
    assert_eq!(family.output, std::path::absolute(out.join("1920s/family.png")).unwrap());
    assert_eq!(by_rel["1930s/street.png"].outcome, PhotoOutcome::NoFaces);
    let damaged = by_rel["1930s/damaged.jpg"];
    assert!(damaged.outcome == PhotoOutcome::Failed && damaged.reason.is_some(), "{damaged:?}");
    assert_eq!((r.totals.restored, r.totals.no_faces, r.totals.failed, r.totals.pending, r.totals.faces_restored), (1, 1, 1, 0, 1));
    // The JSON's own field names, as other tools read them.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    for field in ["tool", "version", "shard", "device", "model", "planner", "stage_seconds", "photos", "totals"] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    assert!(json["photos"][0].get("faces").is_some() && json["model"].get("sha256").is_some());

    // Merge: totals, the failed photo listed for a rerun, exit status 1.
    let failed_list = d.path().join("failed.txt");
    let m = Command::new(bin()).args(["report", "merge"]).arg(&report_path).arg("--failed-list").arg(&failed_list).output().unwrap();
    let stdout = String::from_utf8_lossy(&m.stdout);
    assert_eq!(m.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("photos 3: restored 1, no faces 1, already done 0, failed 1"), "{stdout}");
    let text = std::fs::read_to_string(&failed_list).unwrap();
    let entries: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let root_abs = std::path::absolute(&root).unwrap();
    assert_eq!(entries, [root_abs.join("1930s/damaged.jpg").to_str().unwrap()]);
    assert!(text.contains(&format!("--list-root {}", root_abs.display())), "{text}");

    // The damaged scan is replaced by a good one; the failed list, with the root it names,
    // puts its result where the first run would have.
    std::fs::remove_file(root.join("1930s/damaged.jpg")).unwrap();
    image::DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, image::Rgb([9, 99, 199])))
        .save_with_format(root.join("1930s/damaged.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    let rerun_report = d.path().join("reports/rerun.json");
    let o =
        run(&[os("--from-list"), os(&failed_list), os("--list-root"), os(&root), os("-o"), os(&out), os("--report"), os(&rerun_report)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(names(&tree(&out)), ["1920s/family.png", "1930s/damaged.png", "1930s/street.png"]);
    let m = Command::new(bin()).args(["report", "merge"]).arg(&report_path).arg(&rerun_report).output().unwrap();
    let stdout = String::from_utf8_lossy(&m.stdout);
    assert!(m.status.success(), "{stdout}");
    assert!(stdout.contains("photos 3: restored 1, no faces 2, already done 0, failed 0"), "{stdout}");
}

#[test]
fn a_killed_run_leaves_a_usable_report_and_its_rerun_finishes_the_rest() {
    const PHOTOS: usize = 96;
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    // The report is rewritten after every photo (--report-every 0), so the kill comes on the event
    // that proves the run is under way with work left: a report that lists a finished photo while
    // others are pending. Dozens of photos are then still to do, at any machine's speed.
    for i in 0..PHOTOS {
        face_photo(&input.join(format!("p{i:03}.png")));
    }
    let (out, killed_path) = (d.path().join("out"), d.path().join("killed.json"));
    let mut child = restore(&[os(&input), os("-o"), os(&out), os("--report"), os(&killed_path), os("--report-every"), os("0")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if let Ok(r) = report::read(&killed_path)
            && !r.photos.is_empty()
        {
            assert!(!r.finished && r.totals.pending > 0, "the first rewrite after a photo is the last one: {:?}", r.totals);
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its report listed a photo");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = read_report(&killed_path);
    assert!(!killed.finished && killed.totals.pending > 0, "{:?}", killed.totals);
    assert_eq!(killed.totals.photos, PHOTOS);
    let restored_before = written_by(&killed);
    assert!(restored_before.iter().all(|o| o.exists()));

    let rerun_path = d.path().join("rerun.json");
    let o = run(&[os(&input), os("-o"), os(&out), os("--report"), os(&rerun_path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rerun = read_report(&rerun_path);
    // What the killed run reported done is not done again.
    for p in rerun.photos.iter().filter(|p| restored_before.contains(&p.output)) {
        assert_eq!(p.outcome, PhotoOutcome::AlreadyDone, "{}", p.output.display());
    }
    // Every photo is counted once. Photos the killed run finished in its last moments (after its
    // last write) are "already done" for the rerun.
    let merged = report::merge(&[killed, rerun]);
    let t = &merged.totals;
    assert_eq!((t.photos, t.restored + t.already_done, t.failed, t.pending), (PHOTOS, PHOTOS, 0, 0), "{t:?}");
    assert!(t.restored >= restored_before.len() && merged.photos.len() == PHOTOS, "{t:?}");
    assert_eq!(tree(&out).len(), PHOTOS, "no temporary file left: {:?}", names(&tree(&out)));
}

#[test]
fn another_hosts_temporary_file_in_a_shared_output_folder_is_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    plain_photo(&input.join("sub/a.png"), 1);
    let out = d.path().join("out");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    // A writer on another machine, mid-write (its pid may be dead here, alive there), and a
    // writer of this machine that was killed (pid above Linux's pid_max).
    let foreign = out.join("sub/.gpu-node-07.cluster.12345.part-b.png");
    let own_dead = out.join(format!("sub/.{}.4194304.part-c.png", gpen_studio::paths::host_name()));
    std::fs::write(&foreign, b"half").unwrap();
    std::fs::write(&own_dead, b"half").unwrap();
    let o = run(&[os(&input), os("-r"), os("-o"), os(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(foreign.exists(), "another host's live partial was removed");
    assert!(!own_dead.exists(), "this host's dead partial was kept");
    assert!(out.join("sub/a.png").exists());
}

#[test]
fn shards_side_by_side_into_one_folder_equal_one_run() {
    // One shard per device on a multi-GPU machine, played on the CPU: the processes run at once.
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    face_photo(&input.join("face.png"));
    for i in 0..6u8 {
        plain_photo(&input.join(format!("d{}/p{i}.png", i % 2)), 40 + i);
    }
    let (whole, out) = (d.path().join("whole"), d.path().join("shared"));
    let o = run(&[os(&input), os("-r"), os("-o"), os(&whole)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let children: Vec<_> = (1..=2)
        .map(|k| restore(&[os(&input), os("-r"), os("-o"), os(&out), os("--shard"), os(&format!("{k}/2"))]).output_handle())
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(tree(&out), tree(&whole));
}

trait Spawned {
    fn output_handle(&mut self) -> std::process::Child;
}

impl Spawned for Command {
    fn output_handle(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}

#[test]
fn a_shard_without_photos_succeeds_and_says_so_in_its_report() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    plain_photo(&input.join("only.png"), 1);
    let mine = gpen_studio::archive::shard::shard_of(Path::new("only.png"), 50);
    let other = if mine == 1 { 2 } else { 1 };
    let (out, report_path) = (d.path().join("out"), d.path().join("r.json"));
    let o = run(&[os(&input), os("-o"), os(&out), os("--shard"), os(&format!("{other}/50")), os("--report"), os(&report_path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("shard {other}/50 (--shard): 0 of the 1 photos found")), "{}", stderr(&o));
    let r = read_report(&report_path);
    assert!(r.finished && r.photos.is_empty() && r.totals.photos == 0 && r.shard.as_deref() == Some(&format!("{other}/50")[..]));
}
