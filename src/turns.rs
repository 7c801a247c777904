//! Client-side order of calls that share a queue (as skapi-js 2.0 does): each call takes a
//! turn when it is made and starts once the previous call of its queue has finished. A turn
//! ends when it is dropped — finished, failed or stopped alike. The promises that chain the
//! turns are `browser.js`'s (`takeTurn`); which call waits for which is decided here.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    /// `[previous, end]`: the promise of the queue's previous turn (or undefined), and
    /// `end(waited)` that ends this one.
    #[wasm_bindgen(js_name = takeTurn)]
    fn take_turn(tails: &js_sys::Map, queue: &str) -> js_sys::Array;
}

pub struct Turns {
    /// Per queue, the promise that resolves when its last taken turn ends.
    tails: js_sys::Map,
}

pub struct Turn {
    previous: Option<js_sys::Promise>,
    end: js_sys::Function,
}

impl Default for Turns {
    fn default() -> Turns {
        Turns { tails: js_sys::Map::new() }
    }
}

impl Turns {
    /// Takes the next turn of `queue` (synchronously, so call order is turn order).
    pub fn take(&self, queue: &str) -> Turn {
        let turn = take_turn(&self.tails, queue);
        let previous = turn.get(0);
        Turn { previous: (!previous.is_undefined()).then(|| previous.into()), end: turn.get(1).into() }
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
        // Ended before its turn came (stopped): the next call still waits for the previous one.
        let _ = self.end.call1(&JsValue::NULL, &JsValue::from_bool(self.previous.is_none()));
    }
}
