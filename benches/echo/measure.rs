//! What the bench measures about a server process from outside: CPU time from
//! `/proc/PID/stat`, and syscalls with `perf stat` (or `strace -c` when perf cannot run).
//! Both cover every thread of the server process.

use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::SERVER_CPU;

/// CPU time a process has used so far, in clock ticks.
#[derive(Clone, Copy)]
pub struct CpuTicks {
    pub user: u64,
    pub sys: u64,
}

impl CpuTicks {
    /// Reads utime and stime (fields 14 and 15 of `/proc/PID/stat`; all threads included).
    pub fn of(pid: u32) -> Result<CpuTicks, String> {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // The command name (field 2) may hold spaces; every field after its ')' is numeric.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> Result<u64, String> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("{path}: no field {n}"))
        };
        Ok(CpuTicks {
            user: field(14)?,
            sys: field(15)?,
        })
    }

    /// Seconds of (user, system) time between `earlier` and `self`.
    pub fn secs_since(self, earlier: CpuTicks) -> (f64, f64) {
        let hz = clock_ticks_per_sec();
        (
            self.user.saturating_sub(earlier.user) as f64 / hz,
            self.sys.saturating_sub(earlier.sys) as f64 / hz,
        )
    }
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf takes no pointers and has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// How syscalls are counted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `perf stat -e raw_syscalls:sys_enter -p PID`: in-kernel counting, small overhead.
    Perf,
    /// `strace -c -f -p PID`: ptrace stops on every syscall, so the server runs far slower
    /// while it is attached (the count per round trip stays meaningful).
    Strace,
    /// Not counted.
    Off,
}

impl Method {
    /// Parses `--counter`: `auto` is `Perf` with fallbacks.
    pub fn parse(s: &str) -> Option<(Method, bool)> {
        match s {
            "auto" => Some((Method::Perf, true)),
            "perf" => Some((Method::Perf, false)),
            "strace" => Some((Method::Strace, false)),
            "none" => Some((Method::Off, false)),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Perf => "perf",
            Method::Strace => "strace",
            Method::Off => "none",
        })
    }
}

/// Counts a server's syscalls per round trip over a window while the client keeps running;
/// with `fallback`, a method that fails hands over to the next (perf → strace → none) for this
/// window and all later ones.
pub struct SyscallCounter {
    method: Method,
    fallback: bool,
}

impl SyscallCounter {
    pub fn new(method: Method, fallback: bool) -> SyscallCounter {
        SyscallCounter { method, fallback }
    }

    /// Syscalls per round trip of server `pid` over about `secs` seconds, and how they were
    /// counted; `None` if they could not be counted.
    pub fn per_round_trip(
        &mut self,
        pid: u32,
        secs: f64,
        client: &mut Client,
    ) -> Option<(f64, Method)> {
        loop {
            let result = match self.method {
                Method::Perf => perf(pid, secs, client),
                Method::Strace => strace(pid, secs, client),
                Method::Off => return None,
            };
            match result {
                Ok(per_rt) => return Some((per_rt, self.method)),
                Err(e) => {
                    let next = match self.method {
                        Method::Perf if self.fallback => Method::Strace,
                        _ => Method::Off,
                    };
                    eprintln!(
                        "echo: {} failed ({e}); syscalls now counted by: {next}",
                        self.method
                    );
                    self.method = next;
                }
            }
        }
    }
}

/// Runs `perf stat` on the server for `secs` seconds. perf counts from just before its
/// `sleep` starts until it ends, so the round trips of the whole perf run are scaled to
/// `secs` seconds.
fn perf(pid: u32, secs: f64, client: &mut Client) -> Result<f64, String> {
    let mut child = Command::new("perf")
        .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter"])
        .args(["-p", &pid.to_string(), "--", "sleep", &format!("{secs}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    let (start, rt0) = (Instant::now(), client.round_trips());
    let status = drive_until_exit(&mut child, client)?;
    let (took, rts) = (start.elapsed(), client.round_trips() - rt0);
    let report = read_stderr(&mut child);
    if !status.success() {
        return Err(format!("perf exited with {status}: {}", report.trim()));
    }
    let syscalls = parse_perf(&report)?;
    let rts_in_window = rts as f64 * secs / took.as_secs_f64();
    per(syscalls, rts_in_window)
}

/// The count from `perf stat -x,` output: `COUNT,UNIT,EVENT,...`. `<not counted>` means the
/// process never ran in the window (0); `<not supported>` is an error.
fn parse_perf(report: &str) -> Result<u64, String> {
    let line = report
        .lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))
        .ok_or_else(|| format!("no count in perf output: {}", report.trim()))?;
    let value = line.split(',').next().unwrap_or("");
    match value {
        "<not counted>" => Ok(0),
        _ => value
            .trim()
            .parse()
            .map_err(|_| format!("unreadable perf count: {line}")),
    }
}

/// Attaches `strace -c -f` to the server for `secs` seconds, then detaches it with SIGINT and
/// reads the "total" line of its summary.
fn strace(pid: u32, secs: f64, client: &mut Client) -> Result<f64, String> {
    let out = std::env::temp_dir().join(format!("echo-bench-strace-{}.txt", std::process::id()));
    let mut child = Command::new("strace")
        .args(["-c", "-f", "-q", "-o"])
        .arg(&out)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run strace: {e}"))?;
    // Count round trips only while the server is traced: from the moment strace holds it
    // (full speed before, and after the SIGINT while strace detaches and writes its summary).
    wait_until_traced(pid, client);
    let rt0 = client.round_trips();
    drive_for(client, Duration::from_secs_f64(secs));
    let rts = client.round_trips() - rt0;
    // SAFETY: kill takes no pointers; the child is not yet reaped, so its pid is still ours.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    drive_until_exit(&mut child, client)?;
    let summary = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    let summary =
        summary.map_err(|e| format!("no strace summary ({e}): {}", read_stderr(&mut child)))?;
    per(parse_strace(&summary)?, rts as f64)
}

/// Keeps the client running until `pid` has a tracer (at most 2 s).
fn wait_until_traced(pid: u32, client: &mut Client) {
    let path = format!("/proc/{pid}/status");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(&path).unwrap_or_default();
        let tracer = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map_or("0", str::trim);
        if tracer != "0" {
            return;
        }
        drive_for(client, Duration::from_millis(1));
    }
}

/// The `calls` figure of the `total` line of `strace -c`. Columns are right-aligned under
/// their headers, so the figure is the token of the total line that ends where the `calls`
/// header ends (the `errors` column may be blank).
fn parse_strace(summary: &str) -> Result<u64, String> {
    let bad = || format!("unreadable strace summary:\n{summary}");
    let header = summary
        .lines()
        .find(|l| l.contains("calls"))
        .ok_or_else(bad)?;
    let calls_end = header.find("calls").ok_or_else(bad)? + "calls".len();
    let total = summary
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .ok_or_else(bad)?;
    let end = total
        .get(..calls_end)
        .filter(|head| head.ends_with(|c: char| c.is_ascii_digit()))
        .ok_or_else(bad)?;
    let start = end
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    end[start..].parse().map_err(|_| bad())
}

fn per(syscalls: u64, round_trips: f64) -> Result<f64, String> {
    if round_trips > 0.0 {
        Ok(syscalls as f64 / round_trips)
    } else {
        Err("no round trips while counting".into())
    }
}

/// Splits a server's CPU time into user and kernel by sampling where it runs: perf's software
/// `cpu-clock` event at 10 kHz over a window (the kernel's own user/system split is sampled at
/// only HZ, 250 here, too coarse for a user share of a few percent). perf samples the server's
/// CPU as a whole (one event, however many threads the server has; per-thread sampling of
/// 5000 threads takes perf over a minute) and only the server's samples are kept. Once perf fails here it is
/// not tried again, and the split falls back to `/proc/PID/stat`.
pub struct UserSampler {
    enabled: bool,
}

impl UserSampler {
    pub fn new(enabled: bool) -> UserSampler {
        UserSampler { enabled }
    }

    /// The fraction of server `pid`'s CPU samples taken in user space over `secs` seconds.
    pub fn user_fraction(&mut self, pid: u32, secs: f64, client: &mut Client) -> Option<f64> {
        if !self.enabled {
            return None;
        }
        let result = sample_user_fraction(pid, secs, client);
        if let Err(e) = &result {
            eprintln!("echo: perf record failed ({e}); user/sys split now from /proc ticks");
            self.enabled = false;
        }
        result.ok()
    }
}

fn sample_user_fraction(pid: u32, secs: f64, client: &mut Client) -> Result<f64, String> {
    let data = std::env::temp_dir().join(format!("echo-bench-{}.perf.data", std::process::id()));
    let mut child = Command::new("perf")
        .args(["record", "-q", "-B", "-a", "-C", &SERVER_CPU.to_string()])
        .args(["-e", "cpu-clock", "-F", "10000", "-o"])
        .arg(&data)
        .args(["--", "sleep", &format!("{secs}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    let status = drive_until_exit(&mut child, client)?;
    let report = read_stderr(&mut child);
    let script = Command::new("perf")
        .args(["script", "-F", "pid,ip", "-i"])
        .arg(&data)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let _ = std::fs::remove_file(&data);
    if !status.success() {
        return Err(format!("perf exited with {status}: {}", report.trim()));
    }
    let script = script.map_err(|e| format!("cannot run perf script: {e}"))?;
    let (mut user, mut kernel) = (0u64, 0u64);
    let pid = pid.to_string();
    for line in String::from_utf8_lossy(&script.stdout).lines() {
        let mut fields = line.split_whitespace();
        if fields.next() != Some(pid.as_str()) {
            continue;
        }
        match fields.next().map(|ip| u64::from_str_radix(ip, 16)) {
            // The upper half of the address space is the kernel's on x86-64 and arm64.
            Some(Ok(ip)) if ip >= 0xffff_8000_0000_0000 => kernel += 1,
            Some(Ok(_)) => user += 1,
            _ => {}
        }
    }
    if user + kernel < 100 {
        return Err(format!("only {} samples", user + kernel));
    }
    Ok(user as f64 / (user + kernel) as f64)
}

/// Keeps the client running until `child` exits.
fn drive_until_exit(child: &mut Child, client: &mut Client) -> Result<ExitStatus, String> {
    loop {
        drive_for(client, Duration::from_millis(10));
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the counter: {e}")),
        }
    }
}

/// Keeps the client running for `span` (sleeping if no connection is busy).
pub fn drive_for(client: &mut Client, span: Duration) {
    let deadline = Instant::now() + span;
    if client.run_until(deadline) {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
}

fn read_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}
