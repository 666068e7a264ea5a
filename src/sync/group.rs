//! [`Group`]: a set of tasks joined or killed together (gevent.pool.Group).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::hub::{control::TaskRef, wait::WaitQueue};
use crate::JoinHandle;

/// Tracks the tasks spawned through it, so they can be joined or killed as one
/// (gevent's `Group`). Clones are handles to the same group.
///
/// A task leaves the group when it finishes, however it finishes.
///
/// ```
/// use grove::sync::Group;
/// let group = Group::new();
/// for i in 0..3 {
///     group.spawn(move || grove::sleep(std::time::Duration::from_millis(i)));
/// }
/// assert_eq!(group.len(), 3);
/// group.join();
/// assert!(group.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Group {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    members: RefCell<BTreeMap<u64, Rc<Member>>>,
    next_id: Cell<u64>,
    /// Woken when the group becomes empty.
    empty: WaitQueue,
}

/// One task of the group, as the group sees it.
struct Member {
    task: TaskRef,
}

/// Removes a member from its group when its task ends (returns, panics, or is killed — even
/// before it started, when the task's closure is dropped unrun).
struct Leave {
    group: Rc<Inner>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let left = {
            let mut members = self.group.members.borrow_mut();
            members.remove(&self.id);
            members.len()
        };
        // `join` waits for no member left; `kill` from inside the group for one.
        if left <= 1 {
            self.group.empty.notify_all();
        }
    }
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` as a task of this group.
    ///
    /// # Panics
    /// As [`crate::spawn`], if no stack can be allocated.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        let leave = Leave {
            group: self.inner.clone(),
            id,
        };
        let handle = crate::spawn(move || {
            let _leave = leave;
            f()
        });
        let member = Rc::new(Member {
            task: handle.task().clone(),
        });
        self.inner.members.borrow_mut().insert(id, member);
        handle
    }

    /// Waits until every task of the group has finished (tasks spawned meanwhile included).
    ///
    /// # Panics
    /// With "would block forever" if main waits and a member can never finish.
    #[track_caller]
    pub fn join(&self) {
        self.inner
            .empty
            .wait_until("Group::join", None, || self.is_empty().then_some(()));
    }

    /// Kills every task of the group and waits until all are gone. Each unwinds from its park
    /// point (its `Drop`s run); one that has not started never runs its body. Called from a
    /// task of the group, it kills the others and returns.
    #[track_caller]
    pub fn kill(&self) {
        let members: Vec<Rc<Member>> = self.inner.members.borrow().values().cloned().collect();
        let me = TaskRef::current();
        let mut inside = 0;
        for m in members {
            if m.task.ptr_eq(&me) {
                inside = 1;
            } else {
                m.task.kill();
            }
        }
        self.inner
            .empty
            .wait_until("Group::kill", None, || (self.len() <= inside).then_some(()));
    }

    /// Number of tasks in the group.
    pub fn len(&self) -> usize {
        self.inner.members.borrow().len()
    }

    /// Whether the group has no task.
    pub fn is_empty(&self) -> bool {
        self.inner.members.borrow().is_empty()
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}
