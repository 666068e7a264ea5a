//! A server as a process group: every model runs in a group of its own (the server process
//! leads it; a forking server's children and a pre-fork server's workers join it), so its CPU
//! time and memory are summed over the group, and it is stopped as a whole.
//!
//! The bench makes itself a child subreaper, so a server's orphaned children become its own
//! and are reaped here, not left as zombies.

use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::measure::CpuTicks;

/// A server's process group, killed and reaped when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `models server ARGS…` in a process group of its own and waits for its
    /// `listening PORT` line (or its `error: …` line).
    pub fn start(args: &[&str]) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .arg("server")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("listening ")
            .map(str::parse::<u16>);
        let mut server = Server {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            _stdout: stdout,
        };
        match port {
            Some(Ok(port)) => {
                server.addr.set_port(port);
                Ok(server)
            }
            _ if line.trim().is_empty() => Err("the server exited before listening".into()),
            _ => Err(line.trim().trim_start_matches("error: ").to_string()),
        }
    }

    /// The group id (the leader's pid).
    pub fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited (no server does on its own).
    pub fn died(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    /// SIGKILL to the whole group, then reap every member that is our child (the leader, and
    /// through the subreaper its orphans), at most for a few seconds.
    fn drop(&mut self) {
        let pgid = self.pgid() as libc::pid_t;
        // SAFETY: kill takes no pointers; the leader is not reaped yet, so the group id is ours.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: `status` is a valid int for the call to write.
            let pid = unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) };
            match pid {
                0 => std::thread::sleep(Duration::from_millis(2)),
                p if p > 0 => {}
                _ => return, // ECHILD: every member is reaped
            }
        }
        eprintln!("models: members of server group {pgid} still running after 10 s");
    }
}

/// Makes orphaned descendants of this process its children (so `Server::drop` reaps them).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument, no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "models: cannot become a subreaper: {}",
            io::Error::last_os_error()
        );
    }
}

/// The pids of the live members of group `pgid` (scans `/proc`).
pub fn members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process_group(pid) == Some(pgid))
        .collect()
}

/// CPU time used so far by a group's live processes.
#[derive(Clone, Copy)]
pub struct GroupCpu {
    /// Time on a CPU, user and kernel, of every thread of every member, in nanoseconds
    /// (`/proc/PID/task/TID/schedstat`): exact, where the clock-tick figures of
    /// `/proc/PID/stat` round each process down to a whole tick (10 ms), which loses nearly
    /// everything when thousands of processes each run a little.
    pub runtime_ns: u64,
    /// utime and stime in ticks, summed: only their ratio is used, for a rough user share.
    pub ticks: CpuTicks,
    pub procs: usize,
}

impl GroupCpu {
    /// (Seconds on a CPU, the user share if enough ticks fell in between) since `earlier`.
    pub fn since(&self, earlier: &GroupCpu) -> (f64, Option<f64>) {
        let secs = self.runtime_ns.saturating_sub(earlier.runtime_ns) as f64 / 1e9;
        let (user, sys) = self.ticks.secs_since(earlier.ticks);
        // Ticks are samples: fewer than about 20 make the share meaningless.
        let share = (user + sys >= 0.2).then(|| user / (user + sys));
        (secs, share)
    }
}

/// Sums the CPU time of the group's live members.
pub fn cpu(pgid: u32) -> GroupCpu {
    let mut total = GroupCpu {
        runtime_ns: 0,
        ticks: CpuTicks { user: 0, sys: 0 },
        procs: 0,
    };
    for pid in members(pgid) {
        let Ok(ticks) = CpuTicks::of(pid) else {
            continue; // exited since the scan
        };
        total.ticks.user += ticks.user;
        total.ticks.sys += ticks.sys;
        total.runtime_ns += runtime_ns(pid);
        total.procs += 1;
    }
    total
}

/// Nanoseconds on a CPU of every live thread of `pid` (the first field of each thread's
/// `schedstat`).
fn runtime_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Memory of a group, in KiB, summed over its live members.
#[derive(Clone, Copy, Default)]
pub struct GroupMemory {
    /// Peak resident set of each process (`VmHWM`), summed: what `ps`/`top` add up. Pages a
    /// forked child shares with its parent count once per process.
    pub peak_rss_kib: u64,
    /// Proportional set size (`Pss` of `smaps_rollup`): shared pages split between their
    /// sharers, so the sum is the memory the group really holds now.
    pub pss_kib: u64,
}

pub fn memory(pgid: u32) -> GroupMemory {
    let mut total = GroupMemory::default();
    for pid in members(pgid) {
        total.peak_rss_kib += status_kib(&format!("/proc/{pid}/status"), "VmHWM:").unwrap_or(0);
        total.pss_kib += status_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:").unwrap_or(0);
    }
    total
}

/// The `N kB` value of the line starting with `key` in a `/proc` key-value file.
fn status_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The process group of `pid` (field 5 of `/proc/PID/stat`), if it still runs.
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' hold none.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}
