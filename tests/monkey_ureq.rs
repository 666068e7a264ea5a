//! `ureq`, a blocking HTTP client that knows nothing of grove, becomes cooperative under
//! `patch_all()`: 100 tasks GET at once from a local HTTP server that is itself plain
//! `std::net` code running as a grove task, on one OS thread, and every body is checked.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const TASKS: usize = 100;
/// Each answer is delayed this long (`std::thread::sleep`, patched): done one at a time the
/// run would take `TASKS × DELAY` = 10 s.
const DELAY: Duration = Duration::from_millis(100);

/// The body served for `/N`: its length and content depend on N.
fn body(n: usize) -> String {
    format!("body {n}:{}", "0123456789".repeat(n * 7 % 500))
}

/// An HTTP/1.1 server: one task per connection, keep-alive, GET `/N` answered with `body(N)`.
fn serve(listener: TcpListener) {
    // Ends when the test kills it: the parked accept then fails (ECANCELED).
    for conn in listener.incoming() {
        let Ok(conn) = conn else { return };
        drop(grove::spawn(move || answer_all(conn)));
    }
}

fn answer_all(mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut header = String::new();
        while reader.read_line(&mut header).unwrap_or(0) > 2 {
            header.clear();
        }
        let n: usize = request
            .split(' ')
            .nth(1)
            .and_then(|p| p.strip_prefix('/'))
            .and_then(|n| n.parse().ok())
            .expect("GET /N");
        std::thread::sleep(DELAY);
        let body = body(n);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn ureq_gets_from_100_tasks_at_once() {
    grove::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = grove::spawn(move || serve(listener));

    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            grove::spawn(move || {
                let mut response = ureq::get(&format!("http://{addr}/{n}"))
                    .call()
                    .unwrap_or_else(|e| panic!("GET /{n}: {e}"));
                assert_eq!(response.status(), 200);
                response.body_mut().read_to_string().unwrap()
            })
        })
        .collect();
    for (n, result) in grove::join_all(tasks).into_iter().enumerate() {
        assert_eq!(result.unwrap(), body(n), "body of /{n}");
    }
    let took = start.elapsed();
    server.kill();
    // One after another: 100 × 100 ms = 10 s. At once: a little over 100 ms.
    assert!(
        took < Duration::from_secs(3),
        "{TASKS} GETs took {took:?}: they did not wait at once"
    );
}
