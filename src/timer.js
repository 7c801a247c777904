// The browser side of src/timer.rs.

/** A promise resolved after `ms`, and the timer's handle for clearTimeout. */
export function after(ms) {
  let handle;
  const done = new Promise((resolve) => (handle = setTimeout(resolve, ms)));
  return [done, handle];
}

export function cancel(handle) {
  clearTimeout(handle);
}
