//! Generators: Python's `yield` / `send`, iteration, unwinding on drop.

mod util;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use grove::generator::{Generator, GeneratorState};

#[test]
fn resume_is_send_and_suspend_is_yield() {
    let mut g = Generator::new(|y, first: String| {
        let second = y.suspend(format!("got {first}"));
        let third = y.suspend(format!("got {second}"));
        third.len()
    });
    assert_eq!(
        g.resume("a".into()),
        GeneratorState::Yielded("got a".to_string())
    );
    assert_eq!(
        g.resume("bb".into()),
        GeneratorState::Yielded("got bb".to_string())
    );
    assert!(!g.is_done());
    assert_eq!(g.resume("cccc".into()), GeneratorState::Complete(4));
    assert!(g.is_done());
}

#[test]
fn a_unit_input_generator_is_an_iterator() {
    let fib = Generator::new(|y, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..10 {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    assert_eq!(fib.collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}

#[test]
fn dropping_an_unfinished_generator_runs_its_drops() {
    let (dropped, guard) = util::drop_flag();
    let mut g = Generator::new(move |y, ()| {
        let _guard = guard;
        loop {
            y.suspend(());
        }
    });
    g.resume(());
    assert!(!dropped.get());
    drop(g);
    assert!(dropped.get());
}

#[test]
fn a_panic_in_the_body_propagates_and_ends_the_generator() {
    let mut g: Generator<(), (), ()> = Generator::new(|_, ()| panic!("body failed"));
    let err = catch_unwind(AssertUnwindSafe(|| g.resume(()))).unwrap_err();
    assert_eq!(util::panic_text(err.as_ref()), "body failed");
    assert!(g.is_done());
}

#[test]
fn blocking_inside_a_generator_is_a_clear_panic() {
    let mut g: Generator<(), (), ()> =
        Generator::new(|_, ()| grove::sleep(Duration::from_millis(1)));
    let err = catch_unwind(AssertUnwindSafe(|| g.resume(()))).unwrap_err();
    let text = util::panic_text(err.as_ref());
    assert!(text.contains("inside a generator"), "{text}");
    // The hub is unaffected: tasks still run.
    assert_eq!(grove::spawn(|| 3).join().unwrap(), 3);
}

#[test]
fn generators_work_inside_tasks() {
    let h = grove::spawn(|| {
        let squares = Generator::new(|y, ()| {
            for i in 1..=4u32 {
                y.suspend(i * i);
            }
        });
        let mut total = 0;
        for s in squares {
            grove::yield_now(); // blocking between resumes is fine
            total += s;
        }
        total
    });
    assert_eq!(h.join().unwrap(), 30);
}

#[test]
#[should_panic(expected = "already completed")]
fn resuming_a_completed_generator_panics() {
    let mut g: Generator<(), (), i32> = Generator::new(|_, ()| 1);
    g.resume(());
    g.resume(());
}
