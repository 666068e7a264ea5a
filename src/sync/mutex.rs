//! [`Mutex`]: a cooperative lock whose guard may be held across a park (gevent's `RLock`'s
//! plain cousin, `lock.Semaphore(1)` with data).

use std::cell::{Cell, RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

/// A lock around a value for the tasks of one thread.
///
/// Unlike `std::sync::Mutex`, waiting for it parks the task, not the thread, and its guard may
/// be held while the task sleeps, does I/O or waits on something else. It is not reentrant: a
/// task locking it twice waits forever. Share it between tasks with an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use grove::sync::Mutex;
/// let m = Rc::new(Mutex::new(0));
/// let tasks: Vec<_> = (0..10).map(|_| {
///     let m = m.clone();
///     grove::spawn(move || {
///         let mut n = m.lock();
///         grove::yield_now(); // held across a park
///         *n += 1;
///     })
/// }).collect();
/// grove::join_all(tasks);
/// assert_eq!(*m.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    locked: Cell<bool>,
    waiters: WaitQueue,
    value: RefCell<T>,
}

/// Access to the value of a locked [`Mutex`]; dropping it unlocks.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    value: Option<RefMut<'a, T>>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            locked: Cell::new(false),
            waiters: WaitQueue::new(),
            value: RefCell::new(value),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the task while another holds the lock.
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task can ever unlock it.
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock_deadline(None).expect("no deadline")
    }

    /// Locks if nobody holds the lock now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.locked.replace(true) {
            return None;
        }
        // Who holds it, for task dumps and the deadlock report: one store.
        self.waiters.set_tag(crate::hub::current_id() + 1);
        Some(MutexGuard {
            lock: self,
            value: Some(self.value.borrow_mut()),
        })
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_deadline(deadline_after(timeout))
    }

    #[track_caller]
    fn lock_deadline(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        self.waiters
            .wait_until("Mutex::lock", deadline, || self.try_lock())
    }

    /// Whether some task holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_deref().expect("guard holds the value")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_deref_mut().expect("guard holds the value")
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.value = None; // release the borrow before waking anyone
        self.lock.locked.set(false);
        self.lock.waiters.set_tag(0);
        self.lock.waiters.notify_one();
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
