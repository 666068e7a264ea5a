//! `grove::process::Command`: std's API, cooperative waits and pipes.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use grove::process::Command;

#[test]
fn a_hundred_children_waited_from_a_hundred_tasks_overlap() {
    let start = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            grove::spawn(|| {
                Command::new("sleep")
                    .arg("0.2")
                    .status()
                    .expect("sleep runs")
            })
        })
        .collect();
    for r in grove::join_all(tasks) {
        assert!(r.unwrap().success());
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "100 × sleep 0.2 took {took:?}"
    );
}

#[test]
fn output_collects_stdout_stderr_and_status() {
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_missing_program_is_not_found() {
    let err = Command::new("/nonexistent/grove-no-such-program")
        .status()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn piped_stdin_and_stdout_round_trip_while_other_tasks_run() {
    let ticks = grove::spawn(|| {
        let mut n = 0;
        while n < 5 {
            grove::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = grove::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16 {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let mut got = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), 16 * 64 * 1024);
    assert!(child.wait().unwrap().success());
    assert_eq!(ticks.join().unwrap(), 5);
}

#[test]
fn wait_timeout_gives_up_and_kill_ends_the_child() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert!(child
        .wait_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(child.try_wait().unwrap().is_some());
}

#[test]
fn terminate_sends_sigterm_and_is_a_no_op_once_reaped() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    child.terminate().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    child.send_signal(libc::SIGKILL).unwrap();
    // Reaped: nothing is sent, so even a bad signal number is not an error.
    assert!(child.send_signal(-5).is_ok());
}

#[test]
fn wait_timeout_with_huge_durations_waits_for_the_exit() {
    let mut child = Command::new("true").spawn().unwrap();
    let status = child.wait_timeout(Duration::MAX).unwrap();
    assert!(status.expect("MAX means forever").success());
}
