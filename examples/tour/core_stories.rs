//! Stories of the core: generators, greenlets, tasks, timers, timeouts, kill, deadlock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::generator::{Generator, Yielder};
use grove::greenlet::{getcurrent, Greenlet};

/// Runs the core stories.
pub fn run() {
    generators();
    greenlets();
    gevent_sleep();
    many_sleepers();
    timeouts_and_kill();
}

fn chapter(title: &str) {
    println!("\n-- {title} --");
}

fn generators() {
    chapter("generators: the baozi producer/consumer with yield and send");
    let consumer = |name: &'static str| {
        Generator::new(move |y: &Yielder<u32, ()>, _prime: u32| loop {
            let n = y.suspend(());
            println!("[{name}] is eating baozi {n}");
        })
    };
    let mut consumers = [consumer("c1"), consumer("c2")];
    consumers.iter_mut().for_each(|c| {
        c.resume(0);
    });
    for n in 1..=3 {
        println!("[producer] is making baozi {n}");
        consumers.iter_mut().for_each(|c| {
            c.resume(n);
        });
    }
}

fn greenlets() {
    chapter("greenlets: explicit switches print 12 56 34 78");
    let gr2: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let g2 = gr2.clone();
    let gr1 = Greenlet::new(move |()| {
        let gr2 = g2.borrow().clone().unwrap();
        println!("12");
        gr2.switch(());
        println!("34");
        gr2.switch(());
    });
    let back = gr1.clone();
    *gr2.borrow_mut() = Some(Greenlet::new(move |()| {
        println!("56");
        back.switch(());
        println!("78");
    }));
    gr1.switch(());
    println!("main greenlet is {:?}", getcurrent::<()>());
}

fn gevent_sleep() {
    chapter("tasks: gevent's foo/bar, joined with join_all");
    let foo_task = grove::spawn(|| {
        println!("Running in foo");
        grove::sleep(Duration::from_millis(200));
        println!("Explicit context switch to foo again");
    });
    let bar_task = grove::spawn(|| {
        println!("Explicit context to bar");
        grove::sleep(Duration::ZERO);
        println!("Implicit context switch back to bar");
    });
    grove::join_all([foo_task, bar_task]);
}

fn many_sleepers() {
    chapter("scale: 100,000 tasks sleep 100 ms at the same time, on one thread");
    let start = Instant::now();
    let handles: Vec<_> = (0..100_000)
        .map(|_| grove::spawn(|| grove::sleep(Duration::from_millis(100))))
        .collect();
    let ok = grove::join_all(handles)
        .iter()
        .filter(|r| r.is_ok())
        .count();
    println!(
        "{ok} tasks done in {:.0?} (sequentially: 10,000 s)",
        start.elapsed()
    );
}

fn timeouts_and_kill() {
    chapter("timeouts and kill unwind the blocked code; its Drops run");
    struct Noisy(&'static str);
    impl Drop for Noisy {
        fn drop(&mut self) {
            println!("  dropped {}", self.0);
        }
    }
    let r = grove::with_timeout(Duration::from_millis(50), || {
        let _n = Noisy("the guard of a slow operation");
        grove::sleep(Duration::from_secs(3600));
    });
    println!("with_timeout(50 ms, sleep(1 h)) -> {r:?}");
    let sleeper = grove::Builder::new()
        .name("sleeper")
        .spawn(|| {
            let _n = Noisy("the sleeper's guard");
            grove::sleep(Duration::from_secs(3600));
        })
        .unwrap();
    grove::yield_now();
    sleeper.kill();
    println!("join after kill -> {:?}", sleeper.join());
}
