//! The seed's baozi program with generators: two consumers `c1` and `c2` are primed, then the
//! producer makes five baozi and sends each one to both (Python's `send`, grove's `resume`).

use grove::generator::{Generator, GeneratorState, Yielder};

/// A consumer: eats every baozi it is sent and reports back.
fn consumer(name: &'static str) -> Generator<u32, String, ()> {
    Generator::new(move |y: &Yielder<u32, String>, _prime: u32| {
        let mut reply = String::new();
        loop {
            let baozi = y.suspend(reply);
            println!("[{name}] is eating baozi {baozi}");
            reply = format!("{name} ate {baozi}");
        }
    })
}

fn producer(consumers: &mut [Generator<u32, String, ()>]) {
    for n in 1..=5 {
        println!("[producer] is making baozi {n}");
        for c in consumers.iter_mut() {
            match c.resume(n) {
                GeneratorState::Yielded(reply) => log::debug!("{reply}"),
                GeneratorState::Complete(()) => unreachable!("consumers never finish"),
            }
        }
    }
}

fn main() {
    env_logger::init();
    let mut consumers = [consumer("c1"), consumer("c2")];
    for c in consumers.iter_mut() {
        c.resume(0); // prime: run up to the first `yield`, like Python's next(c)
    }
    producer(&mut consumers);
}
