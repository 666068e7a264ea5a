//! gevent's StreamServer, the Python peer: `models server gevent` pins itself like every
//! server and then becomes Python running `gevent_echo.py`.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// gevent's StreamServer: replaces this (already pinned) process with Python running
/// `gevent_echo.py`, which announces its port itself. Returns only if the exec failed.
pub fn gevent_server() -> io::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/models/gevent_echo.py");
    let python = gevent_python();
    let e = std::process::Command::new(&python).arg(script).exec();
    Err(io::Error::new(
        e.kind(),
        format!("not available: cannot run {}: {e}", python.display()),
    ))
}

/// The Python that runs the gevent server: `$GEVENT_PYTHON`, else the venv the docs set up
/// (`target/gevent-venv`), else `python3` from `PATH`.
fn gevent_python() -> PathBuf {
    if let Some(python) = std::env::var_os("GEVENT_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/gevent-venv/bin/python"
    ));
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}
