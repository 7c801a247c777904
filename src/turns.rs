//! Client-side order of calls that share a queue (as skapi-js 2.0 does): each call takes a
//! turn when it is made and starts once the previous call of its queue has finished. A turn
//! ends when it is dropped — finished, failed or stopped alike.

use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

pub struct Turns {
    /// Per queue, the promise that resolves when its last taken turn ends.
    /// (A JavaScript `Map`: queue name → promise.)
    tails: Rc<js_sys::Map>,
}

pub struct Turn {
    queue: String,
    previous: Option<js_sys::Promise>,
    mine: js_sys::Promise,
    end: js_sys::Function,
    tails: Weak<js_sys::Map>,
}

impl Default for Turns {
    fn default() -> Turns {
        Turns { tails: Rc::new(js_sys::Map::new()) }
    }
}

impl Turns {
    /// Takes the next turn of `queue` (synchronously, so call order is turn order).
    pub fn take(&self, queue: &str) -> Turn {
        let mut end = None;
        let mine = js_sys::Promise::new(&mut |resolve, _reject| end = Some(resolve));
        let key = JsValue::from_str(queue);
        let previous = Some(self.tails.get(&key)).filter(|p| !p.is_undefined()).map(js_sys::Promise::from);
        self.tails.set(&key, &mine);
        Turn {
            queue: queue.to_owned(),
            previous,
            mine,
            end: end.expect("the Promise executor runs synchronously"),
            tails: Rc::downgrade(&self.tails),
        }
    }
}

impl Turn {
    /// Waits until the previous call of this queue has finished.
    pub async fn wait(&mut self) {
        if let Some(previous) = &self.previous {
            // Turn promises only ever resolve.
            let _ = JsFuture::from(previous.clone()).await;
        }
        self.previous = None;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        match &self.previous {
            // Ended before its turn came (stopped): the next call still waits for the previous.
            Some(previous) => {
                let then = js_sys::Reflect::get(previous, &"then".into()).map(js_sys::Function::from);
                let _ = then.and_then(|then| then.call1(previous, &self.end));
            }
            None => {
                let _ = self.end.call0(&JsValue::NULL);
            }
        }
        if let Some(tails) = self.tails.upgrade() {
            let key = JsValue::from_str(&self.queue);
            if js_sys::Object::is(&tails.get(&key), &self.mine) {
                tails.delete(&key);
            }
        }
    }
}
