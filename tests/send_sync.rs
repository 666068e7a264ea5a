//! Compile-time proofs of which public types may cross threads. Everything tied to a hub (tasks,
//! greenlets, generators, timeouts, sync primitives, sockets) is `!Send` and `!Sync`: it belongs
//! to the thread whose hub runs it. Plain values (errors, builders) are `Send + Sync`.
//!
//! The negative checks use an ambiguity: `Probe<_>` has one impl for every type and a second
//! only for `Send` (or `Sync`) types, so naming `<T as Probe<_>>::probe` fails to compile
//! exactly when `T` is `Send` (both impls apply and the `_` cannot be inferred).

#![allow(dead_code)]

use grove::generator::{Generator, GeneratorState};
use grove::greenlet::{Greenlet, GreenletExit, ParentCycle};
use grove::net::{StreamServer, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use grove::sync::{
    AsyncResult, BoundedSemaphore, Channel, Event, GetError, GetTimeoutError, Group, LifoQueue,
    Local, Mutex, MutexGuard, OverRelease, Pool, PoolFull, PriorityQueue, PutError,
    PutTimeoutError, Queue, Semaphore, SemaphorePermit, TryGetError, TryPutError,
};
use grove::{Builder, Elapsed, JoinError, JoinHandle, Timeout};

/// Fails to compile if `$t` implements the auto trait `$auto` (see the module doc).
macro_rules! lacks {
    ($t:ty, $auto:ident) => {
        const _: fn() = || {
            trait Probe<A> {
                fn probe() {}
            }
            impl<T: ?Sized> Probe<()> for T {}
            impl<T: ?Sized + $auto> Probe<u8> for T {}
            let _ = <$t as Probe<_>>::probe;
        };
    };
}

/// Fails to compile unless `$t` implements every trait listed.
macro_rules! has {
    ($t:ty: $($bound:ident)+) => {
        const _: fn() = || {
            fn is<T: ?Sized $(+ $bound)+>() {}
            is::<$t>();
        };
    };
}

macro_rules! not_send_nor_sync {
    ($($t:ty),* $(,)?) => {$( lacks!($t, Send); lacks!($t, Sync); )*};
}

macro_rules! send_and_sync {
    ($($t:ty),* $(,)?) => {$( has!($t: Send Sync); )*};
}

// Tied to the hub of the thread that made them.
not_send_nor_sync!(
    JoinHandle<u32>,
    Timeout,
    Greenlet<u32>,
    Event,
    AsyncResult<u32>,
    Queue<u32>,
    LifoQueue<u32>,
    PriorityQueue<u32>,
    Channel<u32>,
    Semaphore,
    BoundedSemaphore,
    SemaphorePermit,
    Mutex<u32>,
    MutexGuard<'static, u32>,
    Pool,
    Group,
    Local<u32>,
    TcpListener,
    TcpStream,
    UdpSocket,
    UnixListener,
    UnixStream,
    StreamServer,
);

// Plain values.
send_and_sync!(
    Builder,
    Elapsed,
    GreenletExit,
    ParentCycle,
    OverRelease,
    GetError,
    TryGetError,
    GetTimeoutError,
    PutError<u32>,
    TryPutError<u32>,
    PutTimeoutError<u32>,
    PoolFull<u32>,
    GeneratorState<u32, u32>,
    grove::debug::Dump,
    grove::debug::Metrics,
    grove::debug::SwitchEvent,
);

// A generator runs on its resumer's thread; through `&` it only says whether it is done.
lacks!(Generator<(), u32, ()>, Send);

// A panic payload is `Send` but not `Sync`.
has!(JoinError: Send);
lacks!(JoinError, Sync);

#[test]
fn the_static_assertions_above_compile() {
    // The proofs are the `const` items: this file compiles only if every claim holds.
    let _ = Builder::new();
}
