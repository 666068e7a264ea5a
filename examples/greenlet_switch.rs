//! The seed's two-greenlet program: control bounces between `gr1` and `gr2` through explicit
//! switches. `gr1` prints 12 and switches to `gr2`, which prints 56 and switches back; `gr1`
//! prints 34 and switches to `gr2` once more, which prints 78 and finishes:
//!
//! ```text
//! 12
//! 56
//! 34
//! 78
//! ```

use grove::greenlet::Greenlet;
use std::cell::RefCell;
use std::rc::Rc;

fn main() {
    env_logger::init();
    // gr2 is created after gr1 but gr1 needs to switch to it: share a slot.
    let gr2_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();

    let slot = gr2_slot.clone();
    let gr1 = Greenlet::new(move |()| {
        let gr2 = slot.borrow().clone().expect("gr2 exists");
        println!("12");
        gr2.switch(());
        println!("34");
        gr2.switch(());
    });

    let gr1_for_2 = gr1.clone();
    let gr2 = Greenlet::new(move |()| {
        println!("56");
        gr1_for_2.switch(());
        println!("78");
    });
    *gr2_slot.borrow_mut() = Some(gr2.clone());

    gr1.switch(());
    assert!(gr2.is_dead());
}
