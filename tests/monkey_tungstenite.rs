//! `tungstenite`, a blocking websocket library, over a plain `std::net::TcpStream` under
//! `patch_all()`: 100 client tasks and the echo server's tasks on one OS thread, every echo
//! checked, and the clients' pauses (`std::thread::sleep`) overlap.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::Message;

const CLIENTS: usize = 100;
const ROUNDS: usize = 3;
/// Each client pauses this long before each message: one client after another the run would
/// take `CLIENTS × ROUNDS × PAUSE` = 15 s.
const PAUSE: Duration = Duration::from_millis(50);

/// A websocket echo server: one task per connection, every text or binary message sent back.
fn serve(listener: TcpListener) {
    // Ends when the test kills it: the parked accept then fails (ECANCELED).
    for conn in listener.incoming() {
        let Ok(conn) = conn else { return };
        drop(grove::spawn(move || {
            let mut ws = tungstenite::accept(conn).expect("websocket handshake");
            loop {
                match ws.read() {
                    Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).unwrap(),
                    Ok(_) => {}       // ping/pong/close: tungstenite answers itself
                    Err(_) => return, // closed
                }
            }
        }));
    }
}

fn client(addr: SocketAddr, id: usize) -> usize {
    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, response) =
        tungstenite::client(format!("ws://{addr}/echo"), stream).expect("client handshake");
    assert_eq!(response.status(), 101);
    for round in 0..ROUNDS {
        std::thread::sleep(PAUSE);
        let text = format!("client {id} round {round} {}", "x".repeat(id));
        ws.send(Message::text(text.clone())).unwrap();
        match ws.read().unwrap() {
            Message::Text(echo) => assert_eq!(echo.as_str(), text),
            other => panic!("client {id}: expected the text back, got {other:?}"),
        }
    }
    let binary: Vec<u8> = (0..=255).cycle().skip(id).take(1000 + id).collect();
    ws.send(Message::binary(binary.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(binary));
    ws.close(None).unwrap();
    while ws.read().is_ok() {} // until the close handshake completes
    ROUNDS + 1
}

#[test]
fn websocket_echo_from_100_tasks_over_std_tcp() {
    grove::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = grove::spawn(move || serve(listener));

    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| grove::spawn(move || client(addr, id)))
        .collect();
    let echoed: usize = grove::join_all(clients)
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let took = start.elapsed();
    server.kill();
    assert_eq!(echoed, CLIENTS * (ROUNDS + 1));
    assert!(
        took < Duration::from_secs(4),
        "{CLIENTS} websocket clients took {took:?}: their pauses did not overlap (serial: 15 s)"
    );
}
