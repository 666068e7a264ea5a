//! [`Local`]: a value per task (gevent.local).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::hub::control::{TaskRef, WeakTask};

/// One value per task (gevent's `local`): each task (and main) sees its own, made by `init` on
/// first use.
///
/// Keep it in a `thread_local!` (see [`task_local!`](crate::task_local)) or share it with an
/// `Rc`. The values of tasks that have finished are dropped the next time this `Local` is used
/// by any task (or when it is dropped).
///
/// ```
/// grove::task_local! { static REQUEST_ID: u32 = 0; }
/// let tasks: Vec<_> = (1..=3).map(|i| grove::spawn(move || {
///     REQUEST_ID.with(|l| l.set(i));
///     grove::yield_now();
///     REQUEST_ID.with(|l| l.get())
/// })).collect();
/// let ids: Vec<u32> = grove::join_all(tasks).into_iter().map(Result::unwrap).collect();
/// assert_eq!(ids, [1, 2, 3]);
/// assert_eq!(REQUEST_ID.with(|l| l.get()), 0); // main's own value
/// ```
pub struct Local<T> {
    init: Box<dyn Fn() -> T>,
    values: RefCell<BTreeMap<u64, Slot<T>>>,
    /// Live entries after the last sweep; the next sweep waits until there are twice as many.
    swept_at: std::cell::Cell<usize>,
}

struct Slot<T> {
    owner: WeakTask,
    value: Rc<RefCell<T>>,
}

impl<T: 'static> Local<T> {
    /// A `Local` whose per-task values start as `init()`.
    pub fn new(init: impl Fn() -> T + 'static) -> Local<T> {
        Local {
            init: Box::new(init),
            values: RefCell::new(BTreeMap::new()),
            swept_at: std::cell::Cell::new(0),
        }
    }
}

impl<T> Local<T> {
    /// The current task's value cell, made on first use.
    fn slot(&self) -> Rc<RefCell<T>> {
        let me = TaskRef::current();
        let found = self.values.borrow().get(&me.id()).map(|s| s.value.clone());
        if let Some(v) = found {
            return v;
        }
        self.sweep();
        let value = Rc::new(RefCell::new((self.init)()));
        let slot = Slot {
            owner: me.downgrade(),
            value: value.clone(),
        };
        self.values.borrow_mut().insert(me.id(), slot);
        value
    }

    /// Drops the values of finished tasks, amortised over insertions.
    fn sweep(&self) {
        let len = self.values.borrow().len();
        if len < 2 * self.swept_at.get().max(8) {
            return;
        }
        let dead: Vec<Slot<T>> = {
            let mut values = self.values.borrow_mut();
            let ids: Vec<u64> = values
                .iter()
                .filter(|(_, s)| !s.owner.is_alive())
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| values.remove(id)).collect()
        };
        self.swept_at.set(self.values.borrow().len());
        drop(dead); // user Drops run with no borrow held
    }

    /// Runs `f` with the current task's value.
    ///
    /// # Panics
    /// If the same task is inside [`with_mut`](Self::with_mut) for this `Local`.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let slot = self.slot();
        let v = slot.borrow();
        f(&v)
    }

    /// Runs `f` with the current task's value, mutably. `f` may park: other tasks have their
    /// own values.
    ///
    /// # Panics
    /// If the same task is already inside `with` / `with_mut` for this `Local`.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let slot = self.slot();
        let mut v = slot.borrow_mut();
        f(&mut v)
    }

    /// Replaces the current task's value.
    pub fn set(&self, value: T) {
        drop(self.replace(value));
    }

    /// Replaces the current task's value, returning the old one.
    pub fn replace(&self, value: T) -> T {
        self.with_mut(|v| std::mem::replace(v, value))
    }

    /// A copy of the current task's value.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// Takes the current task's value, leaving `T::default()`.
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.replace(T::default())
    }

    /// Number of tasks holding a value (finished tasks not yet swept included).
    pub fn len(&self) -> usize {
        self.values.borrow().len()
    }

    /// Whether no task holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("values", &self.len())
            .finish()
    }
}

/// Declares task-local statics: `task_local! { static NAME: Type = init; }` makes a
/// thread-local [`Local`](crate::sync::Local) whose value starts as `init` in every task.
/// Use it with `NAME.with(|local| local.get())`.
#[macro_export]
macro_rules! task_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;)*) => {
        $(
            ::std::thread_local! {
                $(#[$attr])* $vis static $name: $crate::sync::Local<$ty> =
                    $crate::sync::Local::new(|| $init);
            }
        )*
    };
}
