//! The seed's server models side by side (issue #10): a process per connection
//! (`ForkingMixIn`), a thread per connection (`ThreadingMixIn`), a `select`/`poll` loop, a
//! non-blocking busy loop (seed 004), next to grove (one hub, N hubs, pre-fork workers), tokio
//! multi-thread, may and gevent, all serving 64-byte echoes to echo's client.
//!
//! Per server and connection count it records round trips per second, the server's CPU time
//! per round trip (user + sys, summed over all its processes and threads), failed connections,
//! and the server's memory (peak RSS and PSS summed over its processes). It prints a Markdown
//! table, saves the figures as CSV and draws `docs/models.svg`. See `docs/benchmarks.md`,
//! "Server models (issue #10)".
//!
//! Run: `cargo bench --bench models [-- --conns 100,1000,5000 --secs 2 --servers fork,grove
//! --workers 2 --svg docs/models.svg]`; `-- --from-csv FILE` redraws from saved figures.
//!
//! Each server runs as a child process of this binary (`models server KIND WORKERS`) in a
//! process group of its own, pinned to CPU 0 (its threads and child processes inherit the pin);
//! the client (`echo/client.rs`) stays in the parent, pinned to CPU 1.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use os::{pin_to_cpu, raise_open_file_limit};

#[allow(dead_code)] // echo's client and measure modules, shared: models uses part of them.
#[path = "echo/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "echo/measure.rs"]
mod measure;
#[path = "echo/os.rs"]
mod os;
#[path = "echo/servers.rs"]
mod servers;

#[path = "echo/grove_server.rs"]
mod grove_server;
#[allow(dead_code)] // echo-only switches (ECHO_MT_SPREAD)
#[path = "echo/mt_servers.rs"]
mod mt_servers;

#[path = "models/chart.rs"]
mod chart;
#[path = "models/gevent.rs"]
mod gevent;
#[path = "models/group.rs"]
mod group;
#[path = "models/prefork_server.rs"]
mod prefork_server;
#[path = "models/seed_servers.rs"]
mod seed_servers;

use client::Client;
use group::Server;
use measure::{drive_for, CpuTicks};

const USAGE: &str = "\
usage: models [--conns 100,1000,5000,5000/100] [--secs 2] [--warmup 0.5] [--idle 0.5] [--connect-limit 20]
              [--servers fork,threads,poll,busy,grove,grove-mt,grove-prefork,tokio-mt,may-mt,gevent]
              [--workers N] [--svg docs/models.svg|none] [--csv target/models.csv]
       models --from-csv FILE [--svg …]   (redraw the table and chart from saved figures)
       models server KIND WORKERS          (internal: run one echo server)";

/// The CPU the servers are pinned to; the client runs on `CLIENT_CPU`.
pub const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// A server model: its `--servers` name and its label in the table and the chart (`N` is
/// replaced by the number of workers).
pub struct Model {
    pub kind: &'static str,
    pub label: &'static str,
}

/// Every model, in the order of the table and the chart's legend: the seed's first.
pub const MODELS: &[Model] = &[
    Model {
        kind: "fork",
        label: "fork: a process per connection (ForkingMixIn)",
    },
    Model {
        kind: "threads",
        label: "threads: a thread per connection (ThreadingMixIn)",
    },
    Model {
        kind: "poll",
        label: "poll loop, one thread (the select model)",
    },
    Model {
        kind: "busy",
        label: "busy loop, non-blocking (seed 004)",
    },
    Model {
        kind: "grove",
        label: "grove, 1 hub",
    },
    Model {
        kind: "grove-mt",
        label: "grove, N hubs (Runtime: a SO_REUSEPORT listener per hub)",
    },
    Model {
        kind: "grove-prefork",
        label: "grove pre-fork: N worker processes, a hub each",
    },
    Model {
        kind: "tokio-mt",
        label: "tokio multi-thread, N workers",
    },
    Model {
        kind: "may-mt",
        label: "may, N workers",
    },
    Model {
        kind: "gevent",
        label: "gevent StreamServer (Python)",
    },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        let kind = args.get(1).map_or("", String::as_str);
        let workers = args.get(2).and_then(|w| w.parse().ok()).unwrap_or(1);
        std::process::exit(server_main(kind, workers));
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("models: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let run = match &options.from_csv {
        Some(path) => match Run::load(path) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("models: {}: {e}", path.display());
                std::process::exit(1);
            }
        },
        None => measure_all(&options),
    };
    print!("{}", run.markdown());
    if let Some(svg) = &options.svg {
        match chart::draw(svg, &run) {
            Ok(()) => eprintln!("models: chart written to {}", svg.display()),
            Err(e) => eprintln!("models: cannot draw {}: {e}", svg.display()),
        }
    }
}

/// The child side: pin to CPU 0, then serve until killed. On a setup error the first stdout
/// line says why instead of `listening PORT`.
fn server_main(kind: &str, workers: usize) -> i32 {
    pin_to_cpu(SERVER_CPU);
    raise_open_file_limit();
    let result = match kind {
        "fork" => seed_servers::fork_server(),
        "threads" => servers::run("threads"),
        "poll" => seed_servers::poll_server(),
        "busy" => seed_servers::busy_server(),
        "grove" => grove_server::run(),
        "grove-mt" | "tokio-mt" | "may-mt" => {
            // echo's N-thread servers take N from the environment.
            std::env::set_var("ECHO_HUBS", workers.to_string());
            servers::run(kind)
        }
        "grove-prefork" => prefork_server::run(workers),
        "gevent" => gevent::gevent_server(),
        _ => Err(io::Error::other(format!("unknown server kind {kind:?}"))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            println!("error: {e}");
            eprintln!("models server {kind}: {e}");
            1
        }
    }
}

struct Options {
    conns: Vec<Load>,
    secs: f64,
    warmup: f64,
    connect_limit: f64,
    idle_secs: f64,
    servers: Vec<String>,
    workers: usize,
    svg: Option<PathBuf>,
    csv: Option<PathBuf>,
    from_csv: Option<PathBuf>,
}

impl Options {
    /// Parses the flags above; flags it does not know (cargo passes `--bench`) are ignored.
    fn parse(args: &[String]) -> Result<Options, String> {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut options = Options {
            conns: parse_loads("100,1000,5000,5000/100").expect("valid loads"),
            secs: 2.0,
            warmup: 0.5,
            connect_limit: 20.0,
            idle_secs: 0.5,
            servers: MODELS.iter().map(|m| m.kind.to_string()).collect(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            svg: Some(manifest.join("docs/models.svg")),
            csv: Some(manifest.join("target/models.csv")),
            from_csv: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let known = [
                "--conns",
                "--secs",
                "--warmup",
                "--connect-limit",
                "--idle",
                "--servers",
                "--workers",
                "--svg",
                "--csv",
                "--from-csv",
            ];
            if !known.contains(&flag.as_str()) {
                continue;
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("bad value for {flag}: {value:?}");
            let path = || (value != "none").then(|| PathBuf::from(value));
            match flag.as_str() {
                "--conns" => options.conns = parse_loads(value).ok_or_else(bad)?,
                "--secs" => options.secs = parse_secs(value).ok_or_else(bad)?,
                "--warmup" => {
                    options.warmup = value.parse().ok().filter(|s| *s >= 0.0).ok_or_else(bad)?
                }
                "--connect-limit" => options.connect_limit = parse_secs(value).ok_or_else(bad)?,
                "--idle" => {
                    options.idle_secs = value.parse().ok().filter(|s| *s >= 0.0).ok_or_else(bad)?
                }
                "--servers" => options.servers = parse_kinds(value).ok_or_else(bad)?,
                "--workers" => {
                    options.workers = value.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?
                }
                "--svg" => options.svg = path(),
                "--csv" => options.csv = path(),
                _ => options.from_csv = Some(PathBuf::from(value)),
            }
        }
        Ok(options)
    }
}

/// How many connections a cell opens, and how many of them run the closed loop of echoes
/// (the others stay open and silent): `5000` or `5000/100` on the command line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub open: usize,
    pub busy: usize,
}

impl std::str::FromStr for Load {
    type Err = ();

    fn from_str(s: &str) -> Result<Load, ()> {
        let (open, busy) = s.trim().split_once('/').unwrap_or((s.trim(), s.trim()));
        let open: usize = open.parse().map_err(|_| ())?;
        let busy: usize = busy.parse().map_err(|_| ())?;
        (busy > 0 && busy <= open)
            .then_some(Load { open, busy })
            .ok_or(())
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.busy == self.open {
            write!(f, "{}", self.open)
        } else {
            write!(f, "{}/{}", self.open, self.busy)
        }
    }
}

fn parse_loads(value: &str) -> Option<Vec<Load>> {
    let list: Option<Vec<Load>> = value.split(',').map(|v| v.parse().ok()).collect();
    list.filter(|l| !l.is_empty())
}

fn parse_secs(value: &str) -> Option<f64> {
    value.parse().ok().filter(|s: &f64| *s > 0.0)
}

fn parse_kinds(value: &str) -> Option<Vec<String>> {
    let kinds: Vec<String> = value.split(',').map(|k| k.trim().to_string()).collect();
    kinds
        .iter()
        .all(|k| MODELS.iter().any(|m| m.kind == k))
        .then_some(kinds)
}

/// The figures of one server at one connection count.
#[derive(Clone, Default)]
pub struct Figures {
    pub rts_per_sec: f64,
    /// Server CPU (user + sys, all processes and threads) per round trip, in µs; `None` when
    /// no round trip completed.
    pub cpu_us_per_rt: Option<f64>,
    /// The user part of it, from `/proc` ticks (a rough split).
    pub user_us_per_rt: Option<f64>,
    pub srv_cpu_percent: f64,
    pub cli_cpu_percent: f64,
    /// Failed connections (never opened, closed, reset, wrong or missing echo).
    pub errors: u64,
    /// Server processes at the end of the timed window.
    pub procs: usize,
    pub peak_rss_kib: u64,
    pub pss_kib: u64,
    /// Server CPU use with every connection open and silent, in % of a core.
    pub idle_cpu_percent: Option<f64>,
    pub note: Option<String>,
}

/// One cell: a server at a connection count, measured or not run.
pub struct Row {
    pub kind: String,
    pub conns: Load,
    pub result: Result<Figures, String>,
}

/// Every cell of a run, with what a reader needs to know about the run.
pub struct Run {
    pub rows: Vec<Row>,
    pub workers: usize,
    pub secs: f64,
    pub conns: Vec<Load>,
    pub kinds: Vec<String>,
    /// When the run started (UTC) and the machine's load average then, e.g.
    /// `2026-11-23T23:10Z load=0.52`.
    pub taken: String,
}

/// Runs every cell, connection counts in the outer loop so that the servers compared at one
/// count are measured close together in time.
fn measure_all(options: &Options) -> Run {
    pin_to_cpu(CLIENT_CPU);
    raise_open_file_limit();
    group::become_subreaper();
    let taken = when_and_load();
    eprintln!("models: {taken}");
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut unavailable: Vec<&str> = Vec::new();
    for &conns in &options.conns {
        for kind in &options.servers {
            if unavailable.contains(&kind.as_str()) {
                continue;
            }
            eprint!("models: {kind:>8} × {:>8} conns ... ", conns.to_string());
            let result = cell(kind, conns, options);
            match &result {
                Ok(f) => eprintln!("{:.0} rt/s, {} errors", f.rts_per_sec, f.errors),
                Err(e) => eprintln!("not run: {e}"),
            }
            if result.as_ref().is_err_and(|e| e.contains("not available")) {
                unavailable.push(kind);
            }
            rows.push(Row {
                kind: kind.clone(),
                conns,
                result,
            });
        }
    }
    eprintln!("models: {:.0} s in all", started.elapsed().as_secs_f64());
    let run = Run {
        rows,
        workers: options.workers,
        secs: options.secs,
        conns: options.conns.clone(),
        kinds: options.servers.clone(),
        taken,
    };
    if let Some(csv) = &options.csv {
        match std::fs::write(csv, run.csv()) {
            Ok(()) => eprintln!("models: figures saved to {}", csv.display()),
            Err(e) => eprintln!("models: cannot write {}: {e}", csv.display()),
        }
    }
    run
}

/// The time (UTC, from `date`) and the 1-minute load average, for the record.
fn when_and_load() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%MZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    format!("{date} load={load}")
}

/// Measures one server at one connection count: connect, warm up, then a timed window for
/// round trips and CPU time, then the memory the server holds.
fn cell(kind: &str, conns: Load, options: &Options) -> Result<Figures, String> {
    let mut server = Server::start(&[kind, &options.workers.to_string()])?;
    let pgid = server.pgid();
    let limit = Duration::from_secs_f64(options.connect_limit);
    let mut client =
        Client::connect_within(server.addr, conns.open, limit).map_err(|e| e.to_string())?;
    client.start_first(conns.busy, u64::MAX);
    drive_for(&mut client, Duration::from_secs_f64(options.warmup));

    let me = std::process::id();
    let (start, rt0) = (Instant::now(), client.round_trips());
    let (cpu0, client_cpu0) = (group::cpu(pgid), CpuTicks::of(me)?);
    drive_for(&mut client, Duration::from_secs_f64(options.secs));
    let (cpu1, client_cpu1) = (group::cpu(pgid), CpuTicks::of(me)?);
    let (rts, took) = (client.round_trips() - rt0, start.elapsed().as_secs_f64());
    let memory = group::memory(pgid);

    let idle_cpu_percent = idle_cpu(&mut client, pgid, options.idle_secs);
    let (server_secs, user_share) = cpu1.since(&cpu0);
    let (client_user, client_sys) = client_cpu1.secs_since(client_cpu0);
    let per_rt = |secs: f64| (rts > 0).then(|| secs * 1e6 / rts as f64);
    let note = if server.died() {
        Some("the server died".to_string())
    } else {
        client.first_error().map(str::to_string)
    };
    Ok(Figures {
        rts_per_sec: rts as f64 / took,
        cpu_us_per_rt: per_rt(server_secs),
        user_us_per_rt: user_share.and_then(|share| per_rt(server_secs * share)),
        srv_cpu_percent: server_secs * 100.0 / took,
        cli_cpu_percent: (client_user + client_sys) * 100.0 / took,
        errors: client.errors(),
        procs: cpu1.procs,
        peak_rss_kib: memory.peak_rss_kib,
        pss_kib: memory.pss_kib,
        idle_cpu_percent,
        note,
    })
}

/// Lets every connection finish the echo in flight and go silent (still open), then measures
/// the server's CPU use over `secs` of that: what the model costs while nothing happens.
fn idle_cpu(client: &mut Client, pgid: u32, secs: f64) -> Option<f64> {
    if secs <= 0.0 {
        return None;
    }
    client.start_all(1);
    if !client.run_until(Instant::now() + Duration::from_secs(5)) {
        return None;
    }
    let (start, cpu0) = (Instant::now(), group::cpu(pgid));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (cpu1, took) = (group::cpu(pgid), start.elapsed().as_secs_f64());
    Some(cpu1.since(&cpu0).0 * 100.0 / took)
}

/// The label of `kind` with the number of workers filled in.
pub fn label(kind: &str, workers: usize) -> String {
    MODELS
        .iter()
        .find(|m| m.kind == kind)
        .map_or(kind.to_string(), |m| {
            m.label.replace(" N ", &format!(" {workers} "))
        })
}

impl Run {
    /// The table for docs/benchmarks.md.
    fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n| server | conns | rt/s | server CPU µs/rt (user+sys) | of which user | srv CPU | cli CPU | errors | procs | peak RSS MiB | PSS MiB | idle srv CPU |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut notes = String::new();
        for row in &self.rows {
            let f = match &row.result {
                Ok(f) => f,
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | not run: {e} ||||||||||",
                        row.kind, row.conns
                    );
                    continue;
                }
            };
            let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
            let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {} | {} | {} | {} | {} |",
                row.kind,
                row.conns,
                thousands(f.rts_per_sec),
                us(f.cpu_us_per_rt),
                us(f.user_us_per_rt),
                f.srv_cpu_percent,
                f.cli_cpu_percent,
                f.errors,
                f.procs,
                mib(f.peak_rss_kib),
                mib(f.pss_kib),
                f.idle_cpu_percent
                    .map_or("–".into(), |p| format!("{p:.0}%"))
            );
            if let Some(note) = &f.note {
                let _ = writeln!(notes, "- {} × {}: first error: {note}", row.kind, row.conns);
            }
        }
        out + "\n" + &notes
    }

    /// The figures as CSV, one line per cell after a `#` line with the run's settings.
    fn csv(&self) -> String {
        let mut out = format!(
            "# workers={} secs={} conns={} servers={} taken={}\n",
            self.workers,
            self.secs,
            join(&self.conns),
            self.kinds.join(":"),
            self.taken.replace(' ', "_")
        );
        out += "kind,conns,rts_per_sec,cpu_us_per_rt,user_us_per_rt,srv_cpu_percent,cli_cpu_percent,errors,procs,peak_rss_kib,pss_kib,idle_cpu_percent,note\n";
        for row in &self.rows {
            let clean = |s: &str| s.replace([',', '\n'], ";");
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            let line = match &row.result {
                Ok(f) => format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    row.kind,
                    row.conns,
                    f.rts_per_sec,
                    opt(f.cpu_us_per_rt),
                    opt(f.user_us_per_rt),
                    f.srv_cpu_percent,
                    f.cli_cpu_percent,
                    f.errors,
                    f.procs,
                    f.peak_rss_kib,
                    f.pss_kib,
                    opt(f.idle_cpu_percent),
                    clean(f.note.as_deref().unwrap_or(""))
                ),
                Err(e) => format!("{},{},,,,,,,,,,,not run: {}", row.kind, row.conns, clean(e)),
            };
            out += &line;
            out.push('\n');
        }
        out
    }

    /// Reads what `csv` wrote.
    fn load(path: &std::path::Path) -> Result<Run, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let mut lines = text.lines();
        let settings = lines.next().ok_or("empty file")?;
        let setting = |key: &str| {
            settings
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .ok_or(format!("no {key} in {settings:?}"))
        };
        let mut run = Run {
            rows: Vec::new(),
            workers: setting("workers")?.parse().map_err(|_| "bad workers")?,
            secs: setting("secs")?.parse().map_err(|_| "bad secs")?,
            conns: parse_loads(setting("conns")?).ok_or("bad conns")?,
            kinds: setting("servers")?.split(':').map(str::to_string).collect(),
            taken: setting("taken").unwrap_or("").replace('_', " "),
        };
        for line in lines.skip(1) {
            run.rows
                .push(parse_row(line).ok_or(format!("bad line {line:?}"))?);
        }
        Ok(run)
    }
}

fn parse_row(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.splitn(13, ',').collect();
    let (kind, conns) = (f.first()?.to_string(), f.get(1)?.parse().ok()?);
    if f.get(2)?.is_empty() {
        let note = f.get(12)?.trim_start_matches("not run: ").to_string();
        return Some(Row {
            kind,
            conns,
            result: Err(note),
        });
    }
    fn opt<T: std::str::FromStr>(f: &[&str], i: usize) -> Option<T> {
        f.get(i)?.parse().ok()
    }
    let figures = Figures {
        rts_per_sec: opt(&f, 2)?,
        cpu_us_per_rt: opt(&f, 3),
        user_us_per_rt: opt(&f, 4),
        srv_cpu_percent: opt(&f, 5)?,
        cli_cpu_percent: opt(&f, 6)?,
        errors: opt(&f, 7)?,
        procs: opt(&f, 8)?,
        peak_rss_kib: opt(&f, 9)?,
        pss_kib: opt(&f, 10)?,
        idle_cpu_percent: opt(&f, 11),
        note: f.get(12).filter(|n| !n.is_empty()).map(|n| n.to_string()),
    };
    Some(Row {
        kind,
        conns,
        result: Ok(figures),
    })
}

fn join(list: &[Load]) -> String {
    list.iter()
        .map(Load::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// 123456.7 → "123,457".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
