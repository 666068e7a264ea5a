//! A child that dies mid-pipe gives EOF (reads) or `BrokenPipe` (writes), never a hang.

use std::io::{ErrorKind, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use grove::process::Command;

#[test]
fn writing_to_a_child_that_died_is_broken_pipe() {
    let mut child = Command::new("sh")
        .args(["-c", "head -c 10 >/dev/null; exit 0"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'y'; 64 * 1024];
    let err = grove::with_timeout(Duration::from_secs(10), || loop {
        if let Err(e) = stdin.write_all(&chunk) {
            break e;
        }
    })
    .expect("the write fails instead of hanging");
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert!(child.wait().unwrap().success());
}

#[test]
fn reading_from_a_child_killed_mid_stream_ends() {
    let mut child = Command::new("sh")
        .args(["-c", "echo first; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"first\n");
    child.kill().unwrap();
    let mut rest = Vec::new();
    let n = grove::with_timeout(Duration::from_secs(10), || out.read_to_end(&mut rest))
        .expect("EOF instead of a hang")
        .unwrap();
    assert_eq!(n, 0);
    assert!(!child.wait().unwrap().success());
}
