//! Task-local storage: `Local` and `task_local!`.

use std::cell::Cell;
use std::rc::Rc;

use grove::sync::Local;

grove::task_local! {
    static NAME: String = String::from("anon");
}

#[test]
fn each_task_sees_its_own_value() {
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            grove::spawn(move || {
                NAME.with(|n| n.set(format!("task{i}")));
                grove::yield_now();
                NAME.with(|n| n.get())
            })
        })
        .collect();
    let names: Vec<String> = grove::join_all(tasks)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["task0", "task1", "task2", "task3", "task4"]);
    assert_eq!(NAME.with(|n| n.get()), "anon");
}

struct Tracked(Rc<Cell<u32>>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn values_of_finished_tasks_are_dropped() {
    let drops = Rc::new(Cell::new(0));
    let local = Rc::new(Local::new({
        let d = drops.clone();
        move || Tracked(d.clone())
    }));
    for _ in 0..100 {
        let l = local.clone();
        grove::spawn(move || l.with(|_| ())).join().unwrap();
    }
    assert!(
        drops.get() >= 50,
        "dead tasks' values are swept: {}",
        drops.get()
    );
    assert!(local.len() < 60);
    drop(local);
    assert_eq!(drops.get(), 100);
}
