//! The sync `postgres` crate against a real PostgreSQL server under `patch_all()`.
//!
//! The sync client drives a private tokio runtime with `block_on` on the caller's thread, so
//! it blocks in `epoll_wait` on that runtime's epoll fd; the hook parks the task until that fd
//! becomes readable, and the rest of the thread's tasks run meanwhile.
//!
//! What cannot work: two tasks of one thread inside such a client at the same moment. tokio
//! marks the thread as "inside a runtime" in a thread-local for the whole `block_on`, so a
//! second task's `block_on` on the same thread panics ("Cannot start a runtime from within a
//! runtime"), whichever runtime it belongs to. The second test pins that down.

#[path = "util/servers.rs"]
mod servers;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

const QUERIES: i32 = 5;

/// One task runs `SELECT pg_sleep(0.2), $1` five times over TCP while a ticker task ticks every
/// 10 ms: had the client blocked the thread, the ticker would see 200 ms gaps (the bound is
/// 150 ms, loose for a loaded machine).
#[test]
fn postgres_sleeping_queries_park_only_their_task() {
    let pg = servers::Postgres::start();
    grove::monkey::patch_all();

    let done = Rc::new(Cell::new(false));
    let ticker = grove::spawn({
        let done = done.clone();
        move || {
            let (mut last, mut worst, mut ticks) = (Instant::now(), Duration::ZERO, 0);
            while !done.get() {
                std::thread::sleep(Duration::from_millis(10)); // patched: parks the ticker
                worst = worst.max(last.elapsed());
                last = Instant::now();
                ticks += 1;
            }
            (worst, ticks)
        }
    });
    let params = pg.tcp_params();
    let start = Instant::now();
    let queries = grove::spawn(move || {
        let mut client = Client::connect(&params, NoTls).expect("connect");
        (0..QUERIES)
            .map(|i| {
                let row = client
                    .query_one("SELECT pg_sleep(0.2)::text, $1::int4", &[&i])
                    .expect("query");
                row.get::<_, i32>(1)
            })
            .collect::<Vec<_>>()
    });
    let values = queries.join().unwrap();
    let took = start.elapsed();
    done.set(true);
    let (worst_gap, ticks) = ticker.join().unwrap();
    assert_eq!(values, (0..QUERIES).collect::<Vec<_>>());
    assert!(
        took >= Duration::from_millis(200) * QUERIES as u32,
        "pg_sleep ran: {took:?}"
    );
    assert!(
        worst_gap < Duration::from_millis(150),
        "the ticker stalled for {worst_gap:?} ({ticks} ticks in {took:?}): the postgres \
         client blocked the thread"
    );

    // The same client over the cluster's unix socket.
    let params = pg.unix_params();
    let task = grove::spawn(move || {
        let mut client = Client::connect(&params, NoTls).unwrap();
        let row = client
            .query_one("SELECT $1::text || ' back'", &[&"there"])
            .unwrap();
        row.get::<_, String>(0)
    });
    assert_eq!(task.join().unwrap(), "there back");
}

/// The limit described above: while one task waits inside its client's `block_on`, a second
/// task of the same thread that connects gets tokio's panic, and the first is unharmed.
#[test]
fn a_second_sync_postgres_client_on_the_same_thread_meets_tokios_guard() {
    let pg = servers::Postgres::start();
    grove::monkey::patch_all();
    let params = pg.tcp_params();
    let first = grove::spawn(move || {
        let mut client = Client::connect(&params, NoTls).unwrap();
        let row = client
            .query_one("SELECT pg_sleep(0.3)::text, 7::int4", &[])
            .unwrap();
        row.get::<_, i32>(1)
    });
    let params = pg.tcp_params();
    let second = grove::spawn(move || {
        grove::sleep(Duration::from_millis(100)); // the first task is inside block_on by now
        Client::connect(&params, NoTls).map(drop)
    });
    let panic = match second.join() {
        Err(grove::JoinError::Panicked(payload)) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        other => panic!("expected tokio's panic in the second client, got {other:?}"),
    };
    assert!(
        panic.contains("Cannot start a runtime from within a runtime"),
        "unexpected panic: {panic}"
    );
    assert_eq!(first.join().unwrap(), 7);
}
