// Virtual time for aws-local-stepfunctions: a discrete-event clock that
// replaces the global setTimeout and clearTimeout, which the interpreter uses
// for Wait states, retry back-off, and task and execution timeouts.
//
// Time stands still while anything is happening (a call to the service in
// flight, promise callbacks pending) and jumps to the next timer only once
// everything is idle: a five-minute task takes no five minutes, and the
// outcome does not depend on how loaded the machine is. Each jump is sent
// to the service's clock first (stampede-direct's PUT /clock), so the
// service decides leases by the same time.

// The host's own timers, kept for the harness.
export const real = {
  setTimeout: globalThis.setTimeout.bind(globalThis),
  clearTimeout: globalThis.clearTimeout.bind(globalThis),
  setImmediate: globalThis.setImmediate.bind(globalThis),
};

export class VirtualTime {
  constructor(onAdvance) {
    this.now = 0; // ms since the start
    this.timers = new Map(); // id → {at, seq, fn, args}
    this.seq = 0;
    this.inflight = 0;
    this.onAdvance = onAdvance; // async (nowMs) => void
  }

  install() {
    const vt = this;
    globalThis.setTimeout = (fn, ms, ...args) => {
      const id = ++vt.seq;
      vt.timers.set(id, { at: vt.now + Math.max(0, Number(ms) || 0), seq: id, fn, args });
      // What callers may do with a Node timer handle.
      return { id, ref() { return this; }, unref() { return this; }, hasRef: () => true, [Symbol.toPrimitive]: () => id };
    };
    globalThis.clearTimeout = (handle) => {
      if (handle != null) vt.timers.delete(typeof handle === 'object' ? handle.id : handle);
    };
  }

  // sleep resolves after ms of virtual time.
  sleep(ms) {
    return new Promise((resolve) => globalThis.setTimeout(resolve, ms));
  }

  // track counts fn's promise as work in flight: time stands still until
  // it settles.
  async track(fn) {
    this.inflight++;
    try {
      return await fn();
    } finally {
      this.inflight--;
    }
  }

  // Drop every pending timer (left over by aborted branches and abandoned
  // tasks of a finished scenario).
  reset() {
    this.timers.clear();
  }

  async idle() {
    // Two turns of the event loop with nothing in flight: promise
    // callbacks have run and nothing new started.
    for (let quiet = 0; quiet < 2; ) {
      await new Promise((r) => real.setImmediate(r));
      if (this.inflight > 0) {
        quiet = 0;
        await new Promise((r) => real.setTimeout(r, 1));
      } else {
        quiet++;
      }
    }
  }

  // run drives virtual time until promise settles, within maxVirtualMs of
  // virtual time and maxRealMs of real time; it returns the promise's
  // outcome.
  async run(promise, { maxVirtualMs, maxRealMs }) {
    let settled = false;
    const outcome = promise.then(
      (value) => { settled = true; return { value }; },
      (error) => { settled = true; return { error }; },
    );
    const start = this.now;
    const realDeadline = Date.now() + maxRealMs;
    for (;;) {
      await this.idle();
      if (settled) break;
      if (Date.now() > realDeadline) throw new Error(`still running after ${maxRealMs} ms of real time (virtual +${this.now - start} ms)`);
      let next;
      for (const t of this.timers.values()) {
        if (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t;
      }
      if (!next) throw new Error(`stuck: nothing in flight and no timer pending at virtual +${this.now - start} ms`);
      if (next.at - start > maxVirtualMs) throw new Error(`still running after ${maxVirtualMs} ms of virtual time`);
      if (next.at > this.now) {
        this.now = next.at;
        await this.onAdvance(this.now);
      }
      this.timers.delete(next.seq);
      next.fn(...next.args);
    }
    const { value, error } = await outcome;
    if (error) throw error;
    return value;
  }
}
