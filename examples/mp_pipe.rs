//! multiprocessing's `Pipe` program: a child sends a value through its end of a duplex pipe.
//!
//! ```python
//! def f(conn):
//!     conn.send([42, None, 'hello']); conn.close()
//! parent_conn, child_conn = Pipe()
//! p = Process(target=f, args=(child_conn,)); p.start(); print(parent_conn.recv()); p.join()
//! ```
//!
//! The pipe is duplex: here the parent also answers, and the child prints the answer.
//!
//! Run: `cargo run --example mp_pipe`

use grove::process::{pipe, Connection, Process};

fn f(conn: Connection) {
    conn.send(&(42u32, None::<u32>, "hello".to_string()))
        .expect("send");
    let reply: String = conn.recv().expect("recv");
    println!("child {} got: {reply}", std::process::id());
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let (parent_conn, child_conn) = pipe()?;
    let p = Process::spawn(move || f(child_conn))?;
    let got: (u32, Option<u32>, String) = parent_conn.recv()?;
    println!("parent got: {got:?}");
    parent_conn.send(&"thanks".to_string())?;
    p.join()?;
    Ok(())
}
