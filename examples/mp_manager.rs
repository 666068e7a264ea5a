//! multiprocessing's `Manager` program: a server process holds a dict and a list; other
//! processes change them through proxies over a Unix socket.
//!
//! ```python
//! def f(d, l): d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse()
//! with Manager() as manager:
//!     d = manager.dict(); l = manager.list(range(10))
//!     p = Process(target=f, args=(d, l)); p.start(); p.join(); print(d); print(l)
//! ```
//!
//! Run: `cargo run --example mp_manager` (prints `{1: '1', '2': 2, 0.25: None}` and
//! `[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]`)

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use grove::net::{UnixListener, UnixStream};
use grove::process::{Connection, Message, Process};

/// A Python-ish value: what the dict and the list hold.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Str(String),
    None,
}

impl Message for Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => (0u8, *i).encode(out),
            Value::Float(f) => (1u8, *f).encode(out),
            Value::Str(s) => (2u8, s.clone()).encode(out),
            Value::None => 3u8.encode(out),
        }
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        Ok(match u8::decode(input)? {
            0 => Value::Int(i64::decode(input)?),
            1 => Value::Float(f64::decode(input)?),
            2 => Value::Str(String::decode(input)?),
            _ => Value::None,
        })
    }
}

/// Prints like Python's `repr`.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::None => f.write_str("None"),
        }
    }
}

/// What a proxy asks: (op, key, value). Ops: 0 dict set, 1 list reverse, 2 show both.
type Request = (u8, Value, Value);
type Shared = (Vec<(Value, Value)>, Vec<Value>);

/// The manager: serves the shared dict and list to every connection, one task per client.
fn serve(listener: UnixListener, state: Rc<RefCell<Shared>>) {
    for conn in listener.incoming().flatten() {
        let state = state.clone();
        grove::spawn(move || {
            let conn = Connection::from_stream(conn);
            while let Ok((op, k, v)) = conn.recv::<Request>() {
                let mut s = state.borrow_mut();
                match op {
                    0 => match s.0.iter_mut().find(|(key, _)| *key == k) {
                        Some(entry) => entry.1 = v,
                        None => s.0.push((k, v)),
                    },
                    1 => s.1.reverse(),
                    _ => {}
                }
                let reply: Shared = s.clone();
                drop(s);
                let _ = conn.send(&reply);
            }
        });
    }
}

/// A proxy: every call is one request and one reply (the current dict and list).
fn call(path: &Path, req: Request) -> io::Result<Shared> {
    let conn = Connection::from_stream(UnixStream::connect(path)?);
    conn.send(&req)?;
    conn.recv()
}

fn f(path: &Path) -> io::Result<()> {
    call(path, (0, Value::Int(1), Value::Str("1".into())))?;
    call(path, (0, Value::Str("2".into()), Value::Int(2)))?;
    call(path, (0, Value::Float(0.25), Value::None))?;
    call(path, (1, Value::None, Value::None)).map(drop)
}

fn main() -> io::Result<()> {
    env_logger::init();
    let path = PathBuf::from(format!("/tmp/grove-manager-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let list = (0..10).map(Value::Int).collect();
    let manager = Process::spawn(move || serve(listener, Rc::new(RefCell::new((vec![], list)))))?;
    let p = Process::spawn({
        let path = path.clone();
        move || f(&path).expect("the worker talks to the manager")
    })?;
    p.join()?;
    let (dict, list) = call(&path, (2, Value::None, Value::None))?;
    let items: Vec<String> = dict.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let values: Vec<String> = list.iter().map(Value::to_string).collect();
    println!("{{{}}}", items.join(", "));
    println!("[{}]", values.join(", "));
    manager.terminate()?;
    manager.join()?;
    std::fs::remove_file(&path)
}
