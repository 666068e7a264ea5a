//! [`Pool`]: a [`Group`] with a size limit (gevent.pool.Pool).

use std::collections::VecDeque;
use std::fmt;
use std::panic::resume_unwind;
use std::rc::Rc;

use super::{Group, Queue, Semaphore};
use crate::{JoinError, JoinHandle};

/// At most `size` tasks at a time: [`spawn`](Self::spawn) waits for a free slot
/// (gevent's `Pool`). Clones are handles to the same pool.
///
/// ```
/// use grove::sync::Pool;
/// let pool = Pool::new(3);
/// let squares = pool.map(|x: u64| x * x, 1..=5);
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
#[derive(Clone, Debug)]
pub struct Pool {
    group: Group,
    slots: Semaphore,
    size: usize,
}

/// [`Pool::try_spawn`] found the pool full; here is the closure back.
pub struct PoolFull<F>(pub F);

impl<F> fmt::Debug for PoolFull<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolFull(..)")
    }
}

impl<F> fmt::Display for PoolFull<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is full")
    }
}

impl<F> std::error::Error for PoolFull<F> {}

impl Pool {
    /// A pool running at most `size` tasks at once.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "grove: Pool::new(0)");
        Pool {
            group: Group::new(),
            slots: Semaphore::new(size),
            size,
        }
    }

    /// Spawns `f` once a slot is free, parking the caller until then.
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task of the pool can finish; as
    /// [`crate::spawn`] if no stack can be allocated.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let permit = self.slots.permit();
        self.group.spawn(move || {
            let _slot = permit;
            f()
        })
    }

    /// Spawns `f` if a slot is free now.
    ///
    /// # Errors
    /// [`PoolFull`] with `f` if all `size` slots are taken.
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, PoolFull<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.slots.try_permit() {
            Some(permit) => Ok(self.group.spawn(move || {
                let _slot = permit;
                f()
            })),
            None => Err(PoolFull(f)),
        }
    }

    /// Runs `f` on every item in the pool and returns the results in input order.
    ///
    /// # Panics
    /// If a task panics (with its payload) or is killed.
    pub fn map<I, T, F>(&self, f: F, items: impl IntoIterator<Item = I>) -> Vec<T>
    where
        F: Fn(I) -> T + 'static,
        I: 'static,
        T: 'static,
    {
        let f = Rc::new(f);
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        handles.into_iter().map(|h| unwrap_join(h.join())).collect()
    }

    /// Runs `f` on every item in the pool and yields results as tasks finish. Tasks are
    /// spawned lazily, as slots free up while the iterator is consumed.
    ///
    /// The iterator panics if a task panics (with its payload) or is killed.
    pub fn imap_unordered<I, T, F, It>(&self, f: F, items: It) -> ImapUnordered<It::IntoIter, T, F>
    where
        It: IntoIterator<Item = I>,
        F: Fn(I) -> T + 'static,
        I: 'static,
        T: 'static,
    {
        ImapUnordered {
            pool: self.clone(),
            items: items.into_iter(),
            f: Rc::new(f),
            running: VecDeque::new(),
            done: Queue::new(),
            next_index: 0,
            pending: None,
        }
    }

    /// Waits until every task of the pool has finished.
    pub fn join(&self) {
        self.group.join();
    }

    /// Kills every task of the pool and waits until they are gone.
    pub fn kill(&self) {
        self.group.kill();
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of tasks running (or spawned and not finished).
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no task of the pool is running.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Number of free slots.
    pub fn free_count(&self) -> usize {
        self.slots.available_permits()
    }
}

fn unwrap_join<T>(r: Result<T, JoinError>) -> T {
    match r {
        Ok(v) => v,
        Err(JoinError::Panicked(p)) => resume_unwind(p),
        Err(JoinError::Killed) => panic!("grove: a task of the pool was killed"),
    }
}

/// Results of [`Pool::imap_unordered`], in completion order.
pub struct ImapUnordered<It, T, F> {
    pool: Pool,
    items: It,
    f: Rc<F>,
    /// Tasks in flight, by index.
    running: VecDeque<(usize, JoinHandle<T>)>,
    /// Indices of finished tasks, in the order they finished.
    done: Queue<usize>,
    next_index: usize,
    /// A task the pool had no room for yet.
    pending: Option<(usize, Task<T>)>,
}

type Task<T> = Box<dyn FnOnce() -> T>;

/// Reports a task's index to the iterator when the task ends, however it ends.
struct Done {
    queue: Queue<usize>,
    index: usize,
}

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.queue.put(self.index);
    }
}

impl<I, T, F, It> ImapUnordered<It, T, F>
where
    It: Iterator<Item = I>,
    F: Fn(I) -> T + 'static,
    I: 'static,
    T: 'static,
{
    fn task(&mut self, item: I) -> impl FnOnce() -> T + 'static {
        let done = Done {
            queue: self.done.clone(),
            index: self.next_index,
        };
        self.next_index += 1;
        let f = self.f.clone();
        move || {
            let _done = done;
            f(item)
        }
    }

    /// Starts as many tasks as the pool allows now (waiting for a slot only if none of ours
    /// runs, so a finished result is never held up).
    fn fill(&mut self) {
        loop {
            let (index, task) = match self.pending.take() {
                Some(p) => p,
                None => match self.items.next() {
                    Some(item) => (self.next_index, Box::new(self.task(item)) as Task<T>),
                    None => return,
                },
            };
            if self.running.is_empty() {
                self.running.push_back((index, self.pool.spawn(task)));
                continue;
            }
            match self.pool.try_spawn(task) {
                Ok(h) => self.running.push_back((index, h)),
                Err(PoolFull(task)) => {
                    self.pending = Some((index, task));
                    return;
                }
            }
        }
    }
}

impl<I, T, F, It> Iterator for ImapUnordered<It, T, F>
where
    It: Iterator<Item = I>,
    F: Fn(I) -> T + 'static,
    I: 'static,
    T: 'static,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.fill();
        if self.running.is_empty() {
            return None;
        }
        let index = self.done.get().expect("the done queue is never closed");
        let pos = self.running.iter().position(|(i, _)| *i == index)?;
        let (_, handle) = self.running.remove(pos)?;
        Some(unwrap_join(handle.join()))
    }
}

impl<It, T, F> fmt::Debug for ImapUnordered<It, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("running", &self.running.len())
            .finish()
    }
}
