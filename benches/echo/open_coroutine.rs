//! The `std-oc` server: the `std-monkey` server's std::net code under open-coroutine 0.7's
//! hooks. It lives in its own crate (`benches/echo/open-coroutine/`), because open-coroutine
//! interposes libc for a whole binary; the first cell that needs it builds it (release, into
//! `target/echo-open-coroutine/`), bounded by `BUILD_LIMIT`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest the one-time build may take.
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// The command that starts the server, pinned to the server CPU; builds it on first use.
pub fn server_command() -> Result<Command, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let exe = BUILT.get_or_init(build).clone()?;
    let mut command = Command::new(&exe);
    command.arg(crate::SERVER_CPU.to_string());
    // open-coroutine's build leaves its hook library beside the binary's dependencies (`cargo
    // run` would add that directory to the library path).
    if let Some(deps) = exe.parent().map(|release| release.join("deps")) {
        command.env("LD_LIBRARY_PATH", deps);
    }
    Ok(command)
}

/// `cargo build --release` of the separate crate; the binary's path, or why it is not there.
fn build() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("benches/echo/open-coroutine/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("echo-open-coroutine");
    eprintln!("echo: building the open-coroutine server (once; up to a few minutes) ...");
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("not available: cannot run cargo: {e}"))?;
    let deadline = Instant::now() + BUILD_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "not available: the build took over {BUILD_LIMIT:?}"
                ));
            }
        }
    };
    if !status.success() {
        return Err(format!("not available: its build failed ({status})"));
    }
    Ok(target.join("release/echo-open-coroutine"))
}
