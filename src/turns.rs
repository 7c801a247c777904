//! Client-side order of calls that share a queue (as skapi-js 2.0 does): each call takes a
//! turn when it is made and starts once the previous call of its queue has finished. A turn
//! ends when it is dropped — finished, failed or stopped alike; the next turn learns it from a
//! one-shot channel whose sender the turn holds.

use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Per queue, the last turn taken: its number and what tells when it ends.
type Tails = Rc<RefCell<Vec<(String, u64, oneshot::Receiver<()>)>>>;

#[derive(Default)]
pub struct Turns {
    tails: Tails,
    taken: Cell<u64>,
}

pub struct Turn {
    /// Ends when the previous turn of the queue has ended; `None` once waited for (or when
    /// there was none).
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this turn ends: the next turn may go.
    done: Option<oneshot::Sender<()>>,
    queue: String,
    number: u64,
    tails: Tails,
}

impl Turns {
    /// Takes the next turn of `queue` (synchronously, so call order is turn order).
    pub fn take(&self, queue: &str) -> Turn {
        let number = self.taken.get() + 1;
        self.taken.set(number);
        let (done, ended) = oneshot::channel();
        let mut tails = self.tails.borrow_mut();
        let previous = match tails.iter_mut().find(|(q, ..)| q == queue) {
            Some(tail) => {
                tail.1 = number;
                Some(std::mem::replace(&mut tail.2, ended))
            }
            None => {
                tails.push((queue.to_owned(), number, ended));
                None
            }
        };
        Turn { previous, done: Some(done), queue: queue.to_owned(), number, tails: self.tails.clone() }
    }
}

impl Turn {
    /// Waits until the previous call of this queue has finished.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.as_mut() {
            // Sent or dropped alike: the previous turn has ended.
            let _ = previous.await;
        }
        self.previous = None;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // The queue's last turn: nothing waits for it any more.
        self.tails.borrow_mut().retain(|(q, n, _)| !(q == &self.queue && *n == self.number));
        let done = self.done.take();
        if let Some(previous) = self.previous.take() {
            // Ended before its turn came (stopped): the next call still waits for the previous one.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = previous.await;
                drop(done);
            });
        }
    }
}
