//! The sync `postgres` crate against a real PostgreSQL server under `patch_all()`: 100 tasks on
//! one OS thread, each with its own connection running `SELECT pg_sleep(0.2), $1`, finish in
//! well under the 20 s they would take one after another, and every value comes back.
//!
//! The sync client drives a private tokio runtime with `block_on` on the caller's thread, so
//! it blocks in `epoll_wait` on that runtime's epoll fd: the hook parks the task until that fd
//! becomes readable.

#[path = "util/servers.rs"]
mod servers;
mod util;

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

const TASKS: i32 = 100;

#[test]
fn postgres_100_sleeping_queries_on_one_thread() {
    let pg = servers::Postgres::start();
    util::raise_nofile(1000);
    grove::monkey::patch_all();

    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let params = pg.tcp_params();
            grove::spawn(move || {
                let mut client = Client::connect(&params, NoTls)
                    .unwrap_or_else(|e| panic!("task {i}: connect: {e}"));
                let row = client
                    .query_one("SELECT pg_sleep(0.2)::text, $1::int4", &[&i])
                    .unwrap_or_else(|e| panic!("task {i}: query: {e}"));
                row.get::<_, i32>(1)
            })
        })
        .collect();
    for (i, result) in grove::join_all(tasks).into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as i32, "task {i}'s value");
    }
    let took = start.elapsed();
    eprintln!("{TASKS} queries of 200 ms each: {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "{TASKS} × pg_sleep(0.2) took {took:?}: they did not wait at once (serial: 20 s)"
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
