//! Echo benchmark: grove vs tokio (current_thread) vs may (one worker) vs a thread per
//! connection, each serving 64-byte echoes on one core to an independent client on the other.
//!
//! For every server and connection count it reports round trips per second, the server's
//! syscalls per round trip (`perf stat -e raw_syscalls:sys_enter`, else `strace -c`), and the
//! server's user and system CPU microseconds per round trip. Then it holds 10,000 connections
//! open at once against one server. See `docs/echo_bench.md`.
//!
//! Run: `cargo bench --bench echo [-- --conns 100,1000,5000 --secs 3 --servers grove,tokio
//! --hold 10000]`
//!
//! The binary runs each server as a child process of itself (`echo server KIND`), pinned to
//! CPU 0; the client stays in the parent, pinned to CPU 1.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "echo/client.rs"]
mod client;
#[path = "echo/measure.rs"]
mod measure;
#[path = "echo/os.rs"]
mod os;
#[path = "echo/servers.rs"]
mod servers;

#[path = "echo/grove_server.rs"]
mod grove_server;
#[path = "echo/mt_servers.rs"]
mod mt_servers;
#[path = "echo/open_coroutine.rs"]
mod open_coroutine;

use client::Client;
use measure::{drive_for, CpuTicks, Method, SyscallCounter, UserSampler};
use os::{pin_to_cpu, raise_open_file_limit};

const USAGE: &str = "\
usage: echo [--conns 100,1000,5000] [--secs 3] [--warmup 1] [--perf-secs 1.5]
            [--servers grove,tokio,may,threads,std-monkey,grove-watchdog,std-oc]
            [--counter auto|perf|strace|none]
            [--split perf|proc]
            [--hold 10000] [--hold-server grove]
       echo server KIND        (internal: run one echo server)";

/// The CPU the server is pinned to; the client runs on `CLIENT_CPU`.
pub const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

const KINDS: [&str; 5] = ["grove", "tokio", "may", "threads", "std-monkey"];
/// Servers that can be asked for by name but do not run by default: `grove-watchdog` is the
/// grove server with `grove::debug::watchdog` on (its overhead); `std-oc` is the std-monkey
/// server's code under open-coroutine 0.7, a separate crate built on first use.
const EXTRA_KINDS: [&str; 2] = ["grove-watchdog", "std-oc"];

/// Servers with several hubs / workers (`ECHO_HUBS`, default 2), measured on request
/// (`--servers grove-mt,tokio-mt,may-mt`), not by default.
const MT_KINDS: [&str; 3] = ["grove-mt", "tokio-mt", "may-mt"];

fn known_kind(kind: &str) -> bool {
    KINDS.contains(&kind) || MT_KINDS.contains(&kind) || EXTRA_KINDS.contains(&kind)
}

/// Round trips each held connection runs once all of them are open.
const HOLD_ROUNDS: u64 = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        std::process::exit(server_main(args.get(1).map_or("", String::as_str)));
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("echo: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    pin_to_cpu(CLIENT_CPU);
    raise_open_file_limit();
    let rows = bench(&options);
    print_table(&rows);
    print_goals(&rows);
    print_monkey_goals(&rows);
    if options.hold > 0 {
        hold(&options.hold_server, options.hold);
    }
}

/// The child side: pin to CPU 0, then serve until killed. On a setup error the first stdout
/// line says why instead of `listening PORT`.
fn server_main(kind: &str) -> i32 {
    if !mt_servers::spread(kind) {
        pin_to_cpu(SERVER_CPU);
    }
    raise_open_file_limit();
    match servers::run(kind) {
        Ok(()) => 0,
        Err(e) => {
            println!("error: {e}");
            eprintln!("echo server {kind}: {e}");
            1
        }
    }
}

struct Options {
    conns: Vec<usize>,
    secs: f64,
    warmup: f64,
    perf_secs: f64,
    servers: Vec<String>,
    counter: (Method, bool),
    sampled_split: bool,
    hold: usize,
    hold_server: String,
}

impl Options {
    /// Parses the flags above; flags it does not know (cargo passes `--bench`) are ignored.
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            conns: vec![100, 1000, 5000],
            secs: 3.0,
            warmup: 1.0,
            perf_secs: 1.5,
            servers: KINDS.iter().map(|k| k.to_string()).collect(),
            counter: (Method::Perf, true),
            sampled_split: true,
            hold: 10_000,
            hold_server: "grove".into(),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let known = [
                "--conns",
                "--secs",
                "--warmup",
                "--perf-secs",
                "--split",
                "--servers",
                "--counter",
                "--hold",
                "--hold-server",
            ];
            if !known.contains(&flag.as_str()) {
                continue;
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("bad value for {flag}: {value:?}");
            match flag.as_str() {
                "--conns" => options.conns = parse_list(value).ok_or_else(bad)?,
                "--secs" => options.secs = parse_secs(value).ok_or_else(bad)?,
                "--warmup" => {
                    options.warmup = value.parse().ok().filter(|s| *s >= 0.0).ok_or_else(bad)?
                }
                "--perf-secs" => options.perf_secs = parse_secs(value).ok_or_else(bad)?,
                "--split" if value == "perf" || value == "proc" => {
                    options.sampled_split = value == "perf"
                }
                "--split" => return Err(bad()),
                "--servers" => options.servers = parse_kinds(value).ok_or_else(bad)?,
                "--counter" => options.counter = Method::parse(value).ok_or_else(bad)?,
                "--hold" => options.hold = value.parse().map_err(|_| bad())?,
                _ => {
                    options.hold_server = value.clone();
                    if !known_kind(value) {
                        return Err(bad());
                    }
                }
            }
        }
        Ok(options)
    }
}

fn parse_list(value: &str) -> Option<Vec<usize>> {
    let list: Option<Vec<usize>> = value.split(',').map(|v| v.trim().parse().ok()).collect();
    list.filter(|l| !l.is_empty() && !l.contains(&0))
}

fn parse_secs(value: &str) -> Option<f64> {
    value.parse().ok().filter(|s: &f64| *s > 0.0)
}

fn parse_kinds(value: &str) -> Option<Vec<String>> {
    let kinds: Vec<String> = value.split(',').map(|k| k.trim().to_string()).collect();
    kinds.iter().all(|k| known_kind(k)).then_some(kinds)
}

/// A server child process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `echo server KIND` and waits for its `listening PORT` line.
    fn start(kind: &str) -> Result<Server, String> {
        let mut command = if kind == "std-oc" {
            open_coroutine::server_command()?
        } else {
            let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
            let mut command = Command::new(exe);
            command.args(["server", kind]);
            command
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        // The first line that says `listening PORT` or `error: …` (a library may print first).
        let mut line = String::new();
        for _ in 0..20 {
            line.clear();
            let _ = stdout.read_line(&mut line);
            if line.is_empty() || line.starts_with("listening ") || line.starts_with("error: ") {
                break;
            }
        }
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server has exited (it never should on its own).
    fn died(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Descriptors the server holds open.
    fn open_fds(&self) -> Option<usize> {
        let dir = std::fs::read_dir(format!("/proc/{}/fd", self.pid())).ok()?;
        Some(dir.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One cell of the table.
struct Row {
    server: String,
    conns: usize,
    result: Result<Figures, String>,
}

struct Figures {
    rts_per_sec: f64,
    syscalls_per_rt: Option<(f64, Method)>,
    user_us_per_rt: f64,
    sys_us_per_rt: f64,
    /// Whether the user/sys split came from perf samples (else from /proc ticks).
    split_sampled: bool,
    cpu_percent: f64,
    client_cpu_percent: f64,
    errors: u64,
    note: Option<String>,
}

/// The outside tools a cell uses; each remembers whether it still works.
struct Probes {
    syscalls: SyscallCounter,
    split: UserSampler,
}

/// Runs every cell, connection counts in the outer loop so that the servers compared at one
/// count are measured close together in time.
fn bench(options: &Options) -> Vec<Row> {
    let (method, fallback) = options.counter;
    let mut probes = Probes {
        syscalls: SyscallCounter::new(method, fallback),
        split: UserSampler::new(options.sampled_split),
    };
    let mut rows = Vec::new();
    let mut unavailable: Vec<&str> = Vec::new();
    for &conns in &options.conns {
        for kind in &options.servers {
            if unavailable.contains(&kind.as_str()) {
                continue;
            }
            eprint!("echo: {kind:>7} × {conns:>5} conns ... ");
            let result = cell(kind, conns, options, &mut probes);
            match &result {
                Ok(f) => eprintln!("{:.0} rt/s, {} errors", f.rts_per_sec, f.errors),
                Err(e) => eprintln!("not run: {e}"),
            }
            if result.as_ref().is_err_and(|e| e.contains("not available")) {
                unavailable.push(kind);
            }
            rows.push(Row {
                server: kind.clone(),
                conns,
                result,
            });
        }
    }
    rows
}

/// Measures one server at one connection count: connect, warm up, then a clean window for
/// round trips and CPU time, then (separately, because tracing and sampling slow the server a
/// little) a window counting syscalls and one sampling the user/kernel split.
fn cell(
    kind: &str,
    conns: usize,
    options: &Options,
    probes: &mut Probes,
) -> Result<Figures, String> {
    let mut server = Server::start(kind)?;
    let pid = server.pid();
    let mut client = Client::connect(server.addr, conns).map_err(|e| e.to_string())?;
    if client.open() == 0 {
        return Err(client.first_error().unwrap_or("no connection").to_string());
    }
    client.start_all(u64::MAX);
    drive_for(&mut client, Duration::from_secs_f64(options.warmup));

    let me = std::process::id();
    let (start, rt0) = (Instant::now(), client.round_trips());
    let (cpu0, client_cpu0) = (CpuTicks::of(pid)?, CpuTicks::of(me)?);
    drive_for(&mut client, Duration::from_secs_f64(options.secs));
    let (cpu1, client_cpu1) = (CpuTicks::of(pid)?, CpuTicks::of(me)?);
    let (rts, took) = (client.round_trips() - rt0, start.elapsed().as_secs_f64());
    if rts == 0 {
        return Err(client.first_error().unwrap_or("no round trips").to_string());
    }

    // A dead server (or one with no connection left) would make the probes fail and give
    // them up for the cells that follow.
    let alive = !server.died() && client.open() > 0;
    let probe = alive.then_some(options.perf_secs);
    let syscalls_per_rt =
        probe.and_then(|secs| probes.syscalls.per_round_trip(pid, secs, &mut client));
    let (user, sys) = cpu1.secs_since(cpu0);
    let user_share = probe.and_then(|secs| probes.split.user_fraction(pid, secs, &mut client));
    let (user, sys) = match user_share {
        Some(share) => ((user + sys) * share, (user + sys) * (1.0 - share)),
        None => (user, sys),
    };
    let (client_user, client_sys) = client_cpu1.secs_since(client_cpu0);
    let note = if server.died() {
        Some("the server died".to_string())
    } else {
        client.first_error().map(str::to_string)
    };
    Ok(Figures {
        rts_per_sec: rts as f64 / took,
        syscalls_per_rt,
        user_us_per_rt: user * 1e6 / rts as f64,
        sys_us_per_rt: sys * 1e6 / rts as f64,
        split_sampled: user_share.is_some(),
        cpu_percent: (user + sys) * 100.0 / took,
        client_cpu_percent: (client_user + client_sys) * 100.0 / took,
        errors: client.errors(),
        note,
    })
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<10} {:>6} {:>10} {:>12} {:>11} {:>10} {:>8} {:>8} {:>7}",
        "server",
        "conns",
        "rt/s",
        "syscalls/rt",
        "user µs/rt",
        "sys µs/rt",
        "srv CPU",
        "cli CPU",
        "errors"
    );
    let (mut by_strace, mut by_ticks) = (false, false);
    for row in rows {
        let f = match &row.result {
            Ok(f) => f,
            Err(e) => {
                println!("{:<10} {:>6}  not run: {e}", row.server, row.conns);
                continue;
            }
        };
        let syscalls = match f.syscalls_per_rt {
            Some((n, Method::Strace)) => {
                by_strace = true;
                format!("{n:.2}*")
            }
            Some((n, _)) => format!("{n:.2}"),
            None => "n/a".into(),
        };
        let mark = if f.split_sampled { "" } else { "†" };
        by_ticks |= !f.split_sampled;
        let user = format!("{:.3}{mark}", f.user_us_per_rt);
        let sys = format!("{:.3}{mark}", f.sys_us_per_rt);
        println!(
            "{:<10} {:>6} {:>10.0} {:>12} {:>11} {:>10} {:>7.0}% {:>7.0}% {:>7}",
            row.server,
            row.conns,
            f.rts_per_sec,
            syscalls,
            user,
            sys,
            f.cpu_percent,
            f.client_cpu_percent,
            f.errors
        );
        if let Some(note) = &f.note {
            println!("{:<10} {:>6}  first error: {note}", "", "");
        }
    }
    if by_strace {
        println!("* counted with strace: ptrace slows the server, which changes its syscall mix");
    }
    if by_ticks {
        println!("† user/sys split from /proc ticks (sampled at HZ): a rough figure");
    }
}

/// grove's goals from the design: ≤ 2.1 syscalls per round trip at 100 and 1000 connections,
/// user CPU ≤ 0.8 × tokio's, round trips/s ≥ tokio's, no errors.
fn print_goals(rows: &[Row]) {
    let figures = |server: &str, conns: usize| {
        rows.iter()
            .find(|r| r.server == server && r.conns == conns)
            .and_then(|r| r.result.as_ref().ok())
    };
    let mut header = false;
    for row in rows.iter().filter(|r| r.server == "grove") {
        let (Some(g), Some(t)) = (figures("grove", row.conns), figures("tokio", row.conns)) else {
            continue;
        };
        if !header {
            println!("\ngrove against its goals (ratios to tokio in the same run):");
            header = true;
        }
        let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
        let syscalls = match g.syscalls_per_rt {
            Some((n, _)) if row.conns <= 1000 => {
                format!("syscalls/rt {n:.2} ≤ 2.1 {}", mark(n <= 2.1))
            }
            Some((n, _)) => format!("syscalls/rt {n:.2}"),
            None => "syscalls/rt n/a".into(),
        };
        let user = g.user_us_per_rt / t.user_us_per_rt;
        let rate = g.rts_per_sec / t.rts_per_sec;
        println!(
            "  {:>5} conns: {syscalls}; user CPU {user:.2}× tokio ≤ 0.8 {}; rt/s {rate:.2}× tokio ≥ 1 {}; errors {} {}",
            row.conns,
            mark(user <= 0.8),
            mark(rate >= 1.0),
            g.errors,
            mark(g.errors == 0)
        );
    }
}

/// The monkey goals from the design: std::net under `patch_all()` within 5% of grove::net in
/// round trips/s and user µs per round trip, ≤ 2.1 syscalls per round trip, no errors.
fn print_monkey_goals(rows: &[Row]) {
    let figures = |server: &str, conns: usize| {
        rows.iter()
            .find(|r| r.server == server && r.conns == conns)
            .and_then(|r| r.result.as_ref().ok())
    };
    let mut header = false;
    for row in rows.iter().filter(|r| r.server == "std-monkey") {
        let (Some(m), Some(g)) = (
            figures("std-monkey", row.conns),
            figures("grove", row.conns),
        ) else {
            continue;
        };
        if !header {
            println!("\nstd-monkey against its goals (ratios to grove in the same run):");
            header = true;
        }
        let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
        let syscalls = match m.syscalls_per_rt {
            Some((n, _)) => format!("syscalls/rt {n:.2} ≤ 2.1 {}", mark(n <= 2.1)),
            None => "syscalls/rt n/a".into(),
        };
        let rate = m.rts_per_sec / g.rts_per_sec;
        let user = m.user_us_per_rt / g.user_us_per_rt;
        println!(
            "  {:>5} conns: {syscalls}; rt/s {rate:.3}× grove ≥ 0.95 {}; user CPU {user:.3}× grove ≤ 1.05 {}; errors {} {}",
            row.conns,
            mark(rate >= 0.95),
            mark(user <= 1.05),
            m.errors,
            mark(m.errors == 0)
        );
    }
}

/// Opens `n` connections to one server, all held at once; each runs one echo while the
/// connections are opened and `HOLD_ROUNDS` more once all are open.
fn hold(kind: &str, n: usize) {
    println!("\nhold: {n} connections to {kind}, all open at once");
    if let Err(e) = try_hold(kind, n) {
        println!("hold: not run: {e}");
    }
}

fn try_hold(kind: &str, n: usize) -> Result<(), String> {
    let mut server = Server::start(kind)?;
    let start = Instant::now();
    let mut client = Client::connect(server.addr, n).map_err(|e| e.to_string())?;
    let connected = client.open();
    let connect_time = start.elapsed();
    client.start_all(HOLD_ROUNDS);
    let idle = client.run_until(Instant::now() + Duration::from_secs(30));
    let fds = server.open_fds().map_or("?".into(), |n| n.to_string());
    println!(
        "hold: connected {connected}/{n} in {:.2} s (server holds {fds} fds); \
         still open {}; {} round trips ({} each); errors {}{}",
        connect_time.as_secs_f64(),
        client.open(),
        client.round_trips(),
        1 + HOLD_ROUNDS,
        client.errors(),
        if idle {
            ""
        } else {
            "; some echoes never came back"
        }
    );
    if server.died() {
        println!("hold: the server died");
    }
    if let Some(e) = client.first_error() {
        println!("hold: first error: {e}");
    }
    Ok(())
}
