//! The bounded queue between two stages. Items travel in chunks: a stage
//! hands over everything it has ready at once, so the next stage is woken
//! once per chunk instead of once per item (a wake-up and a cross-thread
//! hand-off cost microseconds; a no-op item costs nanoseconds).
//!
//! Capacity counts items: a sender waits while the queue holds `capacity`
//! items or more, and a chunk is accepted whole when there is room for at
//! least one item, so a queue holds at most `capacity - 1` items plus one
//! chunk (see `PipelineConfig::max_chunk`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

struct State<T> {
    chunks: VecDeque<Vec<T>>,
    len: usize,
    senders: usize,
    receiver: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
    capacity: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().expect("queue lock")
    }

    /// `Some(Some(chunk))` when one is waiting, `Some(None)` when the queue
    /// is closed and empty, `None` when the caller would have to wait.
    fn pop(&self) -> Option<Option<Vec<T>>> {
        let mut s = self.lock();
        match s.chunks.pop_front() {
            Some(chunk) => {
                s.len -= chunk.len();
                drop(s);
                // Every waiting sender re-checks (there may be several
                // behind a merge).
                self.writable.notify_waiters();
                Some(Some(chunk))
            }
            None if s.senders == 0 => Some(None),
            None => None,
        }
    }
}

/// The sending half; cloning it adds a sender (the queue closes when the
/// last one is dropped).
pub(crate) struct Sender<T>(Arc<Shared<T>>);

/// The receiving half; dropping it makes every send fail.
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

/// A queue holding about `capacity` items (at least 1).
pub(crate) fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            chunks: VecDeque::new(),
            len: 0,
            senders: 1,
            receiver: true,
        }),
        readable: Notify::new(),
        writable: Notify::new(),
        capacity: capacity.max(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Hands over `chunk` (empty chunks are not sent), waiting while the
    /// queue is full; false when the receiver is gone.
    pub(crate) async fn send(&self, chunk: Vec<T>) -> bool {
        if chunk.is_empty() {
            return self.0.lock().receiver;
        }
        let mut chunk = Some(chunk);
        loop {
            // Registered before the check, so a wake-up between the check
            // and the wait is not lost.
            let writable = self.0.writable.notified();
            tokio::pin!(writable);
            writable.as_mut().enable();
            {
                let mut s = self.0.lock();
                if !s.receiver {
                    return false;
                }
                if s.len < self.0.capacity {
                    let chunk = chunk.take().expect("sent once");
                    s.len += chunk.len();
                    s.chunks.push_back(chunk);
                    drop(s);
                    self.0.readable.notify_one();
                    return true;
                }
            }
            writable.await;
        }
    }

    /// Items in the queue now.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().len
    }

    /// Whether the receiver is gone (every send would fail).
    pub(crate) fn is_closed(&self) -> bool {
        !self.0.lock().receiver
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.senders -= 1;
        if s.senders == 0 {
            drop(s);
            self.0.readable.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next chunk, or `None` once every sender is gone and the queue is
    /// empty.
    pub(crate) async fn recv(&mut self) -> Option<Vec<T>> {
        loop {
            let readable = self.0.readable.notified();
            tokio::pin!(readable);
            readable.as_mut().enable();
            if let Some(next) = self.0.pop() {
                return next;
            }
            readable.await;
        }
    }

    /// The next chunk if one is waiting (`Some(None)` once the queue is
    /// closed and empty), `None` when the caller would have to wait.
    pub(crate) fn try_recv(&mut self) -> Option<Option<Vec<T>>> {
        self.0.pop()
    }

    /// [`Receiver::recv`] from a thread outside the runtime.
    pub(crate) fn blocking_recv(&mut self) -> Option<Vec<T>> {
        futures::executor::block_on(self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let chunks = {
            let mut s = self.0.lock();
            s.receiver = false;
            s.len = 0;
            std::mem::take(&mut s.chunks)
        };
        self.0.writable.notify_waiters();
        // Items are dropped outside the lock (their drop may be slow).
        drop(chunks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn chunks_arrive_in_order_and_the_queue_closes_with_its_last_sender() {
        let (tx, mut rx) = queue(4);
        let tx2 = tx.clone();
        assert!(block_on(tx.send(vec![1, 2, 3])));
        assert!(block_on(tx2.send(vec![4])));
        assert_eq!(tx.len(), 4);
        drop((tx, tx2));
        assert_eq!(rx.blocking_recv(), Some(vec![1, 2, 3]));
        assert_eq!(rx.blocking_recv(), Some(vec![4]));
        assert_eq!(rx.blocking_recv(), None);
    }

    #[test]
    fn a_full_queue_blocks_the_sender_until_the_receiver_takes_a_chunk() {
        let (tx, mut rx) = queue(2);
        assert!(block_on(tx.send(vec![1, 2])));
        let sender = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            assert!(block_on(tx.send(vec![3])));
            t0.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(rx.blocking_recv(), Some(vec![1, 2]));
        let waited = sender.join().unwrap();
        assert!(
            waited >= std::time::Duration::from_millis(40),
            "sent into a full queue after {waited:?}"
        );
        assert_eq!(rx.blocking_recv(), Some(vec![3]));
        assert_eq!(rx.blocking_recv(), None);
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone() {
        let (tx, rx) = queue(1);
        assert!(block_on(tx.send(vec![1])));
        let blocked = std::thread::spawn(move || block_on(tx.send(vec![2])));
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(rx);
        assert!(
            !blocked.join().unwrap(),
            "a sender waiting on a full queue sees the receiver go"
        );
    }
}
