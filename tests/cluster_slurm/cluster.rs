//! A private single-node Slurm cluster for one test: its own MUNGE key and socket, slurmctld and
//! slurmd in the foreground on free ports, talking over loopback, all state in a temporary folder.
//! Dropping it cancels its jobs and stops every process it started, even when the test panicked.
//!
//! Needs root (slurmd starts jobs as their user) and Debian's slurm-wlm and munge
//! (`packaging/install-system-deps.sh --test` installs them); nothing of the system's Slurm or MUNGE
//! configuration is read or touched. The daemons listen on all interfaces (Slurm 22.05 has no bind
//! address) but are reached on 127.0.0.1, and answer only requests signed with the private key.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// Started in this order, stopped in the reverse one.
    daemons: Vec<(&'static str, Child)>,
}

/// One array task as `scontrol show job` reports it once the job has left the queue.
#[derive(Debug, Clone)]
pub struct Task {
    /// The array task's index.
    pub id: u32,
    /// Its own job id (SLURM_JOB_ID inside it).
    pub job_id: u32,
    pub state: String,
    pub exit_code: String,
}

const DAEMONS: [&str; 3] = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd"];
const CLIENTS: [&str; 5] = ["sbatch", "squeue", "scontrol", "scancel", "sinfo"];

impl Cluster {
    pub fn start() -> Cluster {
        require_root_and_programs();
        let dir = tempfile::Builder::new().prefix("gpen-slurm-").tempdir().unwrap();
        // Jobs and daemons run as root, but MUNGE wants its socket's folder reachable by all.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let conf = dir.path().join("slurm.conf");
        let mut cluster = Cluster { conf, daemons: Vec::new(), dir };
        cluster.start_munge();
        let host = hostname();
        std::fs::write(&cluster.conf, slurm_conf(cluster.dir.path(), &host)).unwrap();
        cluster.spawn("slurmctld", Command::new(DAEMONS[1]).arg("-D"));
        cluster.wait_for("slurmctld answers", |conf| quiet(conf, "scontrol", &["ping"]).is_some_and(|o| o.contains("UP")));
        cluster.spawn("slurmd", Command::new(DAEMONS[2]).args(["-D", "-N", &host]));
        cluster.wait_for("the node is idle", |conf| quiet(conf, "sinfo", &["-h", "-N", "-o", "%T"]).is_some_and(|o| o.trim() == "idle"));
        cluster
    }

    /// A private MUNGE: a fresh random key, the socket in our folder.
    fn start_munge(&mut self) {
        let munge = self.dir.path().join("munge");
        let key = munge.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
        std::fs::write(&key, &bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let socket = self.socket();
        let arg = |name: &str, p: PathBuf| format!("--{name}={}", p.display());
        self.spawn(
            "munged",
            Command::new(DAEMONS[0]).args([
                "--foreground".to_string(),
                // munged refuses to run as root unless forced; the key and folder are ours alone.
                "--force".to_string(),
                arg("key-file", key),
                arg("socket", socket.clone()),
                arg("pid-file", munge.join("munged.pid")),
                arg("log-file", munge.join("munged.log")),
                arg("seed-file", munge.join("munged.seed")),
            ]),
        );
        self.wait_for("munged's socket", |_| socket.exists());
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("munge/munge.socket")
    }

    /// Starts a daemon in the foreground, its output in log/NAME.out.
    fn spawn(&mut self, name: &'static str, command: &mut Command) {
        let out = std::fs::File::create(self.dir.path().join(format!("log/{name}.out"))).unwrap();
        let child = command
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.push((name, child));
    }

    fn wait_for(&mut self, what: &str, ready: impl Fn(&Path) -> bool) {
        let start = Instant::now();
        while !ready(&self.conf) {
            let exited =
                self.daemons.iter_mut().find_map(|(name, child)| child.try_wait().ok().flatten().map(|s| format!("{name} exited ({s})")));
            if let Some(exited) = exited {
                panic!("{exited} while waiting for {what}\n{}", self.logs_of(&[]));
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no {what} after 30 s\n{}", self.logs_of(&[]));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A Slurm command against this cluster; env sets the variables a submitted job inherits.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Runs a client command that must succeed; its stdout.
    pub fn run(&self, program: &str, args: &[&OsStr]) -> String {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), self.logs_of(&[]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Submits with `sbatch --parsable`; the job id.
    pub fn sbatch(&self, mut command: Command) -> u32 {
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "sbatch failed: {}", String::from_utf8_lossy(&out.stderr));
        stdout.trim().split(';').next().unwrap().parse().unwrap_or_else(|_| panic!("sbatch printed {stdout:?}"))
    }

    /// Whether the job (any of its array tasks) is still queued or running.
    pub fn in_queue(&self, job: u32) -> bool {
        !self.run("squeue", &[OsStr::new("-h"), OsStr::new("-r"), OsStr::new("-j"), OsStr::new(&job.to_string())]).trim().is_empty()
    }

    /// Waits until the job has left the queue; its tasks' final states. Without accounting
    /// (no slurmdbd) `scontrol` still knows finished jobs for MinJobAge seconds.
    pub fn wait(&self, job: u32, timeout: Duration, logs: &[&Path]) -> Vec<Task> {
        let start = Instant::now();
        while self.in_queue(job) {
            assert!(start.elapsed() < timeout, "job {job} still running after {timeout:?}\n{}", self.logs_of(logs));
            std::thread::sleep(Duration::from_millis(200));
        }
        self.tasks(job)
    }

    pub fn tasks(&self, job: u32) -> Vec<Task> {
        let text = self.run("scontrol", &[OsStr::new("-o"), OsStr::new("show"), OsStr::new("job"), OsStr::new(&job.to_string())]);
        let mut tasks: Vec<Task> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let field = |key: &str| {
                    line.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                        .unwrap_or_else(|| panic!("no {key} in {line}"))
                        .to_string()
                };
                Task {
                    id: field("ArrayTaskId").parse().unwrap_or_else(|_| panic!("not one array task: {line}")),
                    job_id: field("JobId").parse().unwrap_or_else(|_| panic!("no job id in {line}")),
                    state: field("JobState"),
                    exit_code: field("ExitCode"),
                }
            })
            .collect();
        tasks.sort_by_key(|t| t.id);
        tasks
    }

    /// The daemons' logs and the given job logs, for a failure message.
    pub fn logs_of(&self, jobs: &[&Path]) -> String {
        let mut files: Vec<PathBuf> = ["log/slurmctld.log", "log/slurmd.log", "log/slurmctld.out", "log/slurmd.out", "munge/munged.log"]
            .iter()
            .map(|f| self.dir.path().join(f))
            .collect();
        files.extend(jobs.iter().map(|p| p.to_path_buf()));
        let mut text = String::new();
        for f in files {
            let content = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let _ = writeln!(text, "--- {} (last lines)", f.display());
            for l in &lines[lines.len().saturating_sub(25)..] {
                let _ = writeln!(text, "{l}");
            }
        }
        text
    }

    /// Every process still carrying this cluster's SLURM_CONF in its environment: the daemons'
    /// step daemons, job scripts and the programs they run. Only what this test started has it.
    fn leftovers(&self) -> Vec<i32> {
        let marker = format!("SLURM_CONF={}\0", self.conf.display()).into_bytes();
        let me = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|&pid| std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.windows(marker.len()).any(|w| w == marker)))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.daemons.len() == DAEMONS.len() {
            let _ = self.command("scancel").args(["--user", "root"]).output();
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.leftovers() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn require_root_and_programs() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test starts its own Slurm cluster and must run as root (slurmd starts jobs as their user); run it as root, as CI does"
    );
    let missing: Vec<&str> = DAEMONS
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .chain(
            CLIENTS
                .iter()
                .copied()
                .filter(|c| Command::new("sh").args(["-c", &format!("command -v {c}")]).output().map_or(true, |o| !o.status.success())),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "Slurm or MUNGE missing ({}): install Debian's slurm-wlm and munge with packaging/install-system-deps.sh --test (run by `make test`)",
        missing.join(", ")
    );
}

/// Runs a client command, `None` when it fails (used while waiting for the daemons).
fn quiet(conf: &Path, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).env("SLURM_CONF", conf).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The short host name: slurmctld only runs where it matches SlurmctldHost.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    name.trim().split('.').next().unwrap().to_string()
}

/// A port free on loopback right now (the kernel's choice), so that parallel runs and any real
/// Slurm on this machine (6817/6818) never clash with ours.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The node is this machine as it is: its CPUs and (a little less than) its memory, so that jobs
/// are placed as on a real node; config_overrides keeps a container's odd topology from draining it.
fn slurm_conf(dir: &Path, host: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    let memory_mb = total_kb / 1024 * 9 / 10;
    let ctld_port = free_port();
    let slurmd_port = std::iter::repeat_with(free_port).find(|&p| p != ctld_port).unwrap();
    let p = |sub: &str| dir.join(sub).display().to_string();
    format!(
        "ClusterName=gpentest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={ctld_pid}
SlurmdPidFile={slurmd_pid}
SlurmctldLogFile={ctld_log}
SlurmdLogFile={slurmd_log}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
# Start each task as soon as a CPU frees up, not on the next scheduling pass seconds later.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
SlurmctldDebug=info
SlurmdDebug=info
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
        socket = p("munge/munge.socket"),
        state = p("state"),
        spool = p("spool"),
        ctld_pid = p("slurmctld.pid"),
        slurmd_pid = p("slurmd.pid"),
        ctld_log = p("log/slurmctld.log"),
        slurmd_log = p("log/slurmd.log"),
    )
}
