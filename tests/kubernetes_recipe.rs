//! The Kubernetes recipe (packaging/kubernetes/restore-indexed-job.yaml) holds what sharding by
//! completion index relies on: an Indexed Job whose completion count is the shard count the pods
//! are told, `restore --shard auto` as the real command line parser reads it, every path the
//! command uses on the one ReadWriteMany volume all pods mount, and a per-pod report file. No
//! cluster is needed: the manifest is parsed and checked field by field.

mod common;

use clap::Parser;
use gpen_studio::cli::{Cli, Command};
use serde_norway::Value;
use std::path::{Path, PathBuf};

fn manifest() -> Vec<Value> {
    let path = common::repo_root().join("packaging/kubernetes/restore-indexed-job.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect();
    assert_eq!(found.len(), 1, "one {kind} in the manifest");
    found[0]
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

/// The container's command line: command then args, as the kubelet runs it.
fn argv(container: &Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_sequence().cloned().unwrap_or_default())
        .map(|v| text(&v, "an argument").to_string())
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_sequence()?.iter().find(|e| e["name"].as_str() == Some(name))
}

/// The value after `flag` on the command line.
fn flag<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let i = argv.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {argv:?}"));
    argv.get(i + 1).unwrap_or_else(|| panic!("{flag} has no value in {argv:?}"))
}

#[test]
fn the_indexed_job_gives_each_pod_one_shard_of_the_shared_archive() {
    let docs = manifest();
    let job = of_kind(&docs, "Job");
    assert_eq!(text(&job["apiVersion"], "apiVersion"), "batch/v1");
    let spec = &job["spec"];
    assert_eq!(text(&spec["completionMode"], "completionMode"), "Indexed", "pods get JOB_COMPLETION_INDEX only in Indexed mode");
    let completions = spec["completions"].as_u64().expect("completions is a number");
    let parallelism = spec["parallelism"].as_u64().expect("parallelism is a number");
    assert!(completions >= 2 && (1..=completions).contains(&parallelism), "completions {completions}, parallelism {parallelism}");

    let pod = &spec["template"]["spec"];
    let restart = text(&pod["restartPolicy"], "restartPolicy");
    if spec.get("backoffLimitPerIndex").is_some() {
        // The API server refuses a per-index backoff limit with any other policy.
        assert_eq!(restart, "Never");
    } else {
        assert!(["Never", "OnFailure"].contains(&restart), "a Job's pods cannot restart Always: {restart}");
    }
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];

    // The shard count the pods are told is the number of indexes the Job creates.
    let count = env(container, "GPEN_STUDIO_SHARD_COUNT").expect("GPEN_STUDIO_SHARD_COUNT in the container's env");
    assert_eq!(
        text(&count["value"], "GPEN_STUDIO_SHARD_COUNT").parse::<u64>().ok(),
        Some(completions),
        "GPEN_STUDIO_SHARD_COUNT must equal completions"
    );

    // The command line is one the real parser accepts, and shards by the completion index.
    let argv = argv(container);
    assert_eq!(argv[0], "gpen-studio");
    assert_eq!(flag(&argv, "--shard"), "auto");
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("gpen-studio refuses the recipe's command line {argv:?}:\n{e}"));
    let Some(Command::Restore(restore)) = cli.command else { panic!("not a restore command: {argv:?}") };
    assert!(restore.recursive, "the archive's sub-folders are walked");
    // libtorch's threads are the CPUs the pod asks for, not every core of the node.
    let cpus = text(&container["resources"]["requests"]["cpu"], "requests.cpu").parse::<i32>().expect("requests.cpu in whole CPUs");
    assert_eq!(restore.model.threads, Some(cpus), "--threads must equal requests.cpu");
    let report = flag(&argv, "--report");
    // One report per pod, a retry's beside the failed pod's: $(POD_NAME) expands from the env.
    assert!(report.contains("$(POD_NAME)"), "one report per pod: {report}");
    let pod_name = env(container, "POD_NAME").expect("POD_NAME declared, so $(POD_NAME) in args expands");
    assert_eq!(text(&pod_name["valueFrom"]["fieldRef"]["fieldPath"], "fieldPath"), "metadata.name");

    // Input, output, report and model all lie on the one shared volume, mounted read-write.
    let pvc = of_kind(&docs, "PersistentVolumeClaim");
    let modes = pvc["spec"]["accessModes"].as_sequence().expect("accessModes");
    assert!(modes.iter().any(|m| m.as_str() == Some("ReadWriteMany")), "pods on several nodes share it: {modes:?}");
    let claim = text(&pvc["metadata"]["name"], "the claim's name");
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    let volume = volumes.iter().find(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim)).expect("a volume from the claim");
    let volume_name = text(&volume["name"], "the volume's name");
    let mounts: Vec<&Value> =
        container["volumeMounts"].as_sequence().expect("volumeMounts").iter().filter(|m| m["name"].as_str() == Some(volume_name)).collect();
    assert_eq!(mounts.len(), 1, "the shared volume is mounted once");
    assert_ne!(mounts[0]["readOnly"].as_bool(), Some(true), "outputs and reports are written to it");
    let mount = PathBuf::from(text(&mounts[0]["mountPath"], "mountPath"));
    let weights = restore.model.weights.clone().expect("--weights on the shared volume: pods share one model file");
    let paths: Vec<(&str, &Path)> = restore
        .inputs
        .iter()
        .map(|p| ("input", p.as_path()))
        .chain([("output", restore.output.as_path()), ("report", Path::new(report)), ("weights", weights.as_path())])
        .collect();
    for (what, path) in paths {
        assert!(
            path.is_absolute() && path.starts_with(&mount),
            "the {what} {} is not on the shared volume at {}",
            path.display(),
            mount.display()
        );
    }
    assert!(!restore.inputs.iter().any(|i| restore.output.starts_with(i)), "the output folder lies beside the archive, not inside it");
}
