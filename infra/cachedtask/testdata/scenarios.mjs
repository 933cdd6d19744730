// Runs the cachedtask construct's state machine in aws-local-stepfunctions
// (an independent implementation of the Amazon States Language) against
// Stampede's real handlers: every Stampede task state is served by
// stampede-direct (transport.Handler.Invoke of the function, the real
// manager, DynamoDB Local), in virtual time (virtualtime.mjs).
//
// usage: node scenarios.mjs <stampede-direct URL> <definitions.json>
// where definitions.json is {"default": <ASL>, "merge": <ASL>} as written
// by cachedtask_test.go (TestScenarios): a construct with id "C" around a
// task state "Work", with ResultPath "$" and "$.cache".
//
// Faults that a real engine cannot produce are injected here, in the layer
// that stands where the Lambda service would (the interpreter's task
// overrides), and say so: Lambda throttling the invocation
// (Lambda.TooManyRequestsException, the function never runs), DynamoDB
// throttling (Stampede.Throttled, the request never takes effect), and a
// lost answer (the function ran and committed, the answer never reached
// Step Functions: Lambda.ServiceException).
//
// Prints one line per scenario ("ok   name: outcome" or "FAIL name: why")
// and exits non-zero if any failed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import { VirtualTime, real } from './virtualtime.mjs';

// aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22); Node 20
// lacks it.
if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}

const [serverURL, definitionsFile] = process.argv.slice(2);
const definitions = JSON.parse(readFileSync(definitionsFile, 'utf8'));
const bucket = 'stampede-outputs';
const run = Date.now().toString(36); // keys are unique per run

// --- the service, over loopback HTTP ---------------------------------------

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(serverURL + path, {
      method,
      agent: false,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${path}: no answer in 120 s`)));
    if (data) req.write(data);
    req.end();
  });
}

const vt = new VirtualTime((now) => request('PUT', '/clock', { offset_ms: now }));
vt.install();
const { StateMachine } = await import('aws-local-stepfunctions');

// lambdaError is a function error as Step Functions sees it: Error is the
// errorType.
function lambdaError(type, message) {
  const e = new Error(message);
  e.name = type;
  return e;
}

// invoke calls a function of the real service; it throws the function's
// error. Every call is recorded.
const calls = [];
async function invoke(fn, payload, who) {
  const res = await vt.track(() => request('POST', `/invoke/${fn}`, payload));
  calls.push({ t: vt.now, who, fn, payload, error: res.error?.errorType });
  if (res.error) throw lambdaError(res.error.errorType, res.error.errorMessage);
  return res.result;
}

const ids = (key) => ({ project: 'ml', domain: 'dev', key });
const uri = (key, suffix = '') => `s3://${bucket}/ml/dev/${key}${suffix}`;

// A worker outside Step Functions, calling the service directly.
const worker = (owner) => ({
  reserve: (key, heartbeat) => invoke('reserve', { ...ids(key), owner_id: owner, heartbeat_interval_seconds: heartbeat }, owner),
  put: (key, body) => invoke('put', { ...ids(key), ...body }, owner),
  get: (key) => invoke('get', ids(key), owner),
  release: (key) => invoke('release', { ...ids(key), owner_id: owner }, owner),
});
const probe = worker('probe');

// --- executions ---------------------------------------------------------------

// The construct's Stampede states and the function each calls.
const stampedeStates = {
  'C: Get': 'get',
  'C: Reserve': 'reserve',
  'C: Heartbeat': 'reserve',
  'C: Put and release': 'put',
  'C: Release after failure': 'release',
  'C: Release and look up': 'release',
};

let executions = 0;
// start runs one execution of def on input. task serves the "Work" state
// (its input and a context with sleep(seconds) in virtual time). fault, if
// given, is asked before every Stampede call: fault(state, payload,
// attempt) returns undefined (call as is) or {before: errorType} (fail
// without calling: the invocation never ran), {after: errorType} (call,
// then lose the answer) or {payload} (call with this payload instead).
function start(def, input, { name, task, fault }) {
  const exec = `arn:aws:states:eu-west-1:123456789012:execution:cachedtask-scenarios:${name ?? 'exec'}-${run}-${++executions}`;
  const attempts = {};
  const handlers = { Work: (payload) => task(payload, { sleep: (s) => vt.sleep(s * 1000), exec }) };
  for (const [state, fn] of Object.entries(stampedeStates)) {
    handlers[state] = async (payload) => {
      const n = (attempts[state] = (attempts[state] ?? 0) + 1);
      const f = fault?.(state, payload, n) ?? {};
      if (f.before) {
        calls.push({ t: vt.now, who: exec, fn, payload, error: f.before, injected: true });
        throw lambdaError(f.before, `injected by the test: ${f.before}`);
      }
      const result = await invoke(fn, f.payload ?? payload, exec);
      if (f.after) {
        calls.push({ t: vt.now, who: exec, fn, payload, error: f.after, injected: true, lostAnswer: true });
        throw lambdaError(f.after, `injected by the test: the answer was lost (${f.after})`);
      }
      return result;
    };
  }
  const events = [];
  const execution = new StateMachine(def).run(input, {
    context: { Execution: { Id: exec, Name: exec.split(':').pop() } },
    overrides: { taskResourceLocalHandlers: handlers },
  });
  const watcher = (async () => {
    for await (const ev of execution.eventLogs) events.push({ t: vt.now, type: ev.type, state: ev.state?.name, error: ev.error });
  })();
  const result = execution.result.then(
    async (output) => { await watcher.catch(() => {}); return { output, events }; },
    async (e) => {
      await watcher.catch(() => {});
      return { error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message, events };
    },
  );
  return { exec, result };
}

const entered = (r, state) => r.events.filter((e) => e.type === 'StateEntered' && e.state === state);
const callsBy = (who, fn) => calls.filter((c) => c.who === who && c.fn === fn && !c.injected);
const assertOk = (r) => assert.equal(r.error, undefined, `the execution failed: ${r.error}: ${r.cause}`);

// The reservation is free: another owner acquires it at once (and then
// gives it back).
async function assertReleased(key) {
  const r = await probe.reserve(key, 1);
  assert.equal(r.acquired, true, `the key is still held by ${r.reservation?.owner_id}`);
  await probe.release(key);
}

// work is a task that takes seconds of virtual time and outputs a URI.
function work(key, seconds = 1) {
  const calls = [];
  const fn = async (input, { sleep }) => {
    calls.push(input);
    await sleep(seconds);
    return { uri: uri(key), metadata: { labels: { by: 'work' } }, ignored: true };
  };
  fn.calls = calls;
  return fn;
}

// --- scenarios -----------------------------------------------------------

const results = [];
async function scenario(name, fn) {
  const t0 = vt.now;
  try {
    const outcome = await vt.run(fn(), { maxVirtualMs: 4 * 3600_000, maxRealMs: 180_000 });
    results.push(`ok   ${name}: ${outcome} (${((vt.now - t0) / 1000).toFixed(1)} s of virtual time)`);
  } catch (e) {
    results.push(`FAIL ${name}: ${e.stack ?? e}`);
  } finally {
    vt.reset();
  }
}

await scenario('miss', async () => {
  const key = `miss-${run}`;
  const task = work(key, 2);
  const { exec, result } = start(definitions.default, { key, other: 1 }, { task });
  const r = await result;
  assertOk(r);
  assert.equal(task.calls.length, 1);
  assert.deepEqual(task.calls[0], { key, other: 1 }, 'the task gets the construct input');
  assert.equal(r.output.output_uri, uri(key));
  assert.deepEqual(r.output.metadata?.labels, { by: 'work' });
  const put = callsBy(exec, 'put')[0].payload;
  assert.equal(put.owner_id, exec);
  assert.equal(put.release, true);
  assert.match(put.idempotency_key, /^[0-9a-f]{64}$/);
  assert.equal(callsBy(exec, 'release').length, 0, 'the put released');
  const got = await probe.get(key);
  assert.deepEqual(got.entry, r.output, 'the output is the stored entry');
  await assertReleased(key);
  return `task ran once, fenced put-and-release (fence ${put.fence}), entry version ${r.output.version}; ${callsBy(exec, 'get').length} get, ${callsBy(exec, 'reserve').length} reserve`;
});

await scenario('hit', async () => {
  const key = `hit-${run}`;
  const stored = await worker('earlier').put(key, { output_uri: uri(key, '-cached') });
  const task = work(key);
  const { exec, result } = start(definitions.default, { key }, { task });
  const r = await result;
  assertOk(r);
  assert.deepEqual(r.output, stored);
  assert.equal(task.calls.length, 0);
  assert.equal(callsBy(exec, 'reserve').length, 0);
  return 'the stored entry, one get, no reservation, task not run';
});

await scenario('contention: two executions, one runs the task', async () => {
  const key = `contention-${run}`;
  let startedB;
  const taskStarted = new Promise((resolve) => { startedB = resolve; });
  const task = async (input, ctx) => {
    startedB();
    return work(key, 45)(input, ctx); // longer than the lease (30 s)
  };
  let count = 0;
  const counted = async (input, ctx) => { count++; return task(input, ctx); };
  const a = start(definitions.default, { key }, { name: 'a', task: counted });
  await taskStarted;
  const b = start(definitions.default, { key }, { name: 'b', task: counted });
  const [ra, rb] = [await a.result, await b.result];
  assertOk(ra);
  assertOk(rb);
  assert.equal(count, 1, 'the task ran once');
  assert.deepEqual(rb.output, ra.output, 'b outputs a\'s entry');
  const waits = entered(rb, 'C: Wait for the holder');
  assert.ok(waits.length >= 4, `b waited ${waits.length} times`);
  for (let i = 1; i < waits.length; i++) {
    // One loop turn: the holder's heartbeat (10 s), calls take no time.
    assert.equal(waits[i].t - waits[i - 1].t, 10_000, 'b waits one of the holder\'s heartbeats per turn');
  }
  const beats = callsBy(a.exec, 'reserve').slice(1);
  assert.ok(beats.length >= 4, `a heartbeat ${beats.length} times`);
  return `a ran the task (45 s) and heartbeat ${beats.length} times; b waited ${waits.length} turns of 10 s and got a's entry`;
});

await scenario('contention: waits follow the holder\'s heartbeat', async () => {
  const key = `holder-heartbeat-${run}`;
  const holder = worker('holder');
  await holder.reserve(key, 3); // lease 9 s
  const holderDone = (async () => {
    for (let t = 0; t < 18; t += 3) {
      await vt.sleep(3000);
      const r = await holder.reserve(key, 3);
      assert.equal(r.acquired, true, 'the holder keeps its reservation');
    }
    return holder.put(key, { output_uri: uri(key, '-holder'), owner_id: 'holder', release: true });
  })();
  const task = work(key);
  const { result } = start(definitions.default, { key }, { task });
  const [r, stored] = [await result, await holderDone];
  assertOk(r);
  assert.deepEqual(r.output, stored);
  assert.equal(task.calls.length, 0);
  const waits = entered(r, 'C: Wait for the holder');
  const gaps = waits.slice(1).map((w, i) => w.t - waits[i].t);
  assert.ok(gaps.length >= 4 && gaps.every((g) => g === 3000), `wait gaps ${gaps} ms, want the holder's 3 s (the construct asked for 10)`);
  return `${waits.length} waits of 3 s (the holder's interval, not the construct's 10 s), then the holder's entry`;
});

await scenario('holder death: its lease lapses, this execution takes over', async () => {
  const key = `holder-death-${run}`;
  const dead = worker('dead');
  const t0 = vt.now;
  const held = await dead.reserve(key, 2); // lease 6 s, never extended
  const task = work(key);
  const { exec, result } = start(definitions.default, { key }, { task });
  const r = await result;
  assertOk(r);
  assert.equal(task.calls.length, 1);
  assert.equal(r.output.output_uri, uri(key));
  const waits = entered(r, 'C: Wait for the holder');
  assert.equal(waits.length, 3, 'three waits of 2 s (the dead holder\'s interval)');
  const reserves = callsBy(exec, 'reserve');
  assert.equal(reserves[reserves.length - 1].t - t0, 6000, 'acquired when the lease (6 s) lapsed');
  const fence = callsBy(exec, 'put')[0].payload.fence;
  assert.ok(fence > held.reservation.fence, `take-over fence ${fence} above the dead holder's ${held.reservation.fence}`);
  // The dead holder wakes up: its fenced put is refused.
  await assert.rejects(dead.put(key, { output_uri: uri(key, '-late'), owner_id: 'dead', fence: held.reservation.fence, overwrite: true }),
    (e) => e.name === 'Stampede.FailedPrecondition');
  return `${waits.length} waits of 2 s, acquired with fence ${fence} > ${held.reservation.fence}; the dead holder's late put refused`;
});

await scenario('throttling: every call throttled once, reserve twice (injected)', async () => {
  const key = `throttled-${run}`;
  const task = work(key);
  // Injected: a real engine throttles neither Lambda nor DynamoDB Local.
  const fault = (state, payload, n) => {
    if (n === 1) return { before: 'Lambda.TooManyRequestsException' };
    if (state === 'C: Reserve' && n === 2) return { before: 'Stampede.Throttled' };
    return undefined;
  };
  const { exec, result } = start(definitions.default, { key }, { task, fault });
  const r = await result;
  assertOk(r);
  assert.equal(r.output.output_uri, uri(key));
  const retried = r.events.filter((e) => e.type === 'StateRetried').map((e) => e.state);
  assert.deepEqual(retried.sort(), ['C: Get', 'C: Put and release', 'C: Reserve', 'C: Reserve']);
  assert.equal(callsBy(exec, 'put').length, 1, 'the throttled attempts never reached the function');
  await assertReleased(key);
  return `${retried.length} retries (${[...new Set(retried)].join(', ')}), then success`;
});

await scenario('throttling beyond the retries: release, then fail (injected)', async () => {
  const key = `throttled-out-${run}`;
  const task = work(key);
  const fault = (state) => (state === 'C: Put and release' ? { before: 'Lambda.TooManyRequestsException' } : undefined);
  const { result } = start(definitions.default, { key }, { task, fault });
  const r = await result;
  assert.equal(r.error, 'Lambda.TooManyRequestsException', `got ${r.error}: ${r.cause}`);
  const attempts = entered(r, 'C: Put and release').length;
  const retries = r.events.filter((e) => e.type === 'StateRetried' && e.state === 'C: Put and release').length;
  assert.equal(retries, 6);
  assert.equal(entered(r, 'C: Release after failure').length, 1);
  await assertReleased(key);
  assert.equal((await probe.get(key)).found, false, 'no entry');
  return `put tried ${retries + 1} times (${attempts} state entry), released, failed with Lambda.TooManyRequestsException`;
});

await scenario('lost answer: the put-and-release landed, its retry succeeds (injected)', async () => {
  const key = `lost-answer-${run}`;
  const task = work(key);
  const fault = (state, payload, n) => (state === 'C: Put and release' && n === 1 ? { after: 'Lambda.ServiceException' } : undefined);
  const { exec, result } = start(definitions.default, { key }, { task, fault });
  const r = await result;
  assertOk(r);
  const puts = callsBy(exec, 'put');
  assert.equal(puts.length, 2, 'the put ran twice');
  assert.equal(puts[0].payload.idempotency_key, puts[1].payload.idempotency_key);
  const got = await probe.get(key);
  assert.deepEqual(got.entry, r.output, 'the retry answers the entry the first attempt stored');
  await assertReleased(key);
  return `first put committed and its answer was lost; the retry (same idempotency key) answered version ${r.output.version}`;
});

await scenario('lost answer without the idempotency key (control, injected): the retry is refused', async () => {
  const key = `lost-answer-control-${run}`;
  const task = work(key);
  const fault = (state, payload, n) => {
    if (state !== 'C: Put and release') return undefined;
    const { idempotency_key: _, ...bare } = payload;
    return n === 1 ? { after: 'Lambda.ServiceException', payload: bare } : { payload: bare };
  };
  const { result } = start(definitions.default, { key }, { task, fault });
  const r = await result;
  assert.equal(r.error, 'Stampede.FailedPrecondition', `got ${r.error}: ${r.cause}`);
  assert.equal((await probe.get(key)).entry?.output_uri, uri(key), 'the first attempt did store the entry');
  return 'without the key the retried fenced put finds its reservation gone: Stampede.FailedPrecondition';
});

await scenario('long task: 5 minutes, the reservation holds, a waiter gets the entry', async () => {
  const key = `long-${run}`;
  let count = 0;
  let began;
  const taskBegan = new Promise((resolve) => { began = resolve; });
  const task = async (input, ctx) => {
    count++;
    began();
    return work(key, 300)(input, ctx);
  };
  const a = start(definitions.default, { key }, { name: 'long', task });
  await taskBegan;
  await vt.sleep(100_000);
  const b = start(definitions.default, { key }, { name: 'waiter', task });
  const [ra, rb] = [await a.result, await b.result];
  assertOk(ra);
  assertOk(rb);
  assert.equal(count, 1, 'the task ran once');
  assert.deepEqual(rb.output, ra.output);
  const reserves = callsBy(a.exec, 'reserve');
  const fence = callsBy(a.exec, 'put')[0].payload.fence;
  const beats = reserves.slice(1);
  assert.ok(beats.length >= 29, `${beats.length} heartbeats over 300 s`);
  const lastBeat = beats[beats.length - 1].t - beats[0].t;
  const contended = callsBy(b.exec, 'reserve');
  assert.ok(contended.length >= 15, `the waiter reserved ${contended.length} times`);
  const runs = entered(rb, 'C: Run task').length;
  assert.equal(runs, 0, 'the waiter never took over');
  return `${beats.length} heartbeats over ${(lastBeat / 1000).toFixed(0)} s kept fence ${fence}; the waiter tried ${contended.length} times, never took over, got the entry`;
});

await scenario('the task fails: release, then fail with its own error', async () => {
  const key = `task-fails-${run}`;
  const task = async (input, { sleep }) => {
    await sleep(1);
    throw lambdaError('Train.Failed', 'out of memory');
  };
  const { exec, result } = start(definitions.default, { key }, { task });
  const r = await result;
  assert.equal(r.error, 'Train.Failed', `got ${r.error}: ${r.cause}`);
  assert.equal(r.cause, 'out of memory');
  assert.equal(callsBy(exec, 'release').length, 1);
  await assertReleased(key);
  assert.equal((await probe.get(key)).found, false);
  return 'released, failed with Train.Failed: out of memory';
});

await scenario('a lost race: another writer stored the entry first', async () => {
  const key = `lost-race-${run}`;
  let first;
  const task = async (input, { sleep }) => {
    await sleep(1);
    first = await worker('other-writer').put(key, { output_uri: uri(key, '-first') });
    return { uri: uri(key, '-second'), metadata: {} };
  };
  const { exec, result } = start(definitions.default, { key }, { task });
  const r = await result;
  assertOk(r);
  assert.deepEqual(r.output, first);
  assert.equal(callsBy(exec, 'release').length, 1);
  await assertReleased(key);
  return 'the put met Stampede.AlreadyExists: released, looked up, returned the first writer\'s entry';
});

await scenario('heartbeats fail (injected) and the key changes hands: the task is stopped', async () => {
  const key = `lost-lease-${run}`;
  let taskEnded = false;
  const task = async (input, { sleep }) => {
    await sleep(120);
    taskEnded = true;
    return { uri: uri(key), metadata: {} };
  };
  // Every heartbeat fails until 45 s (injected: the Lambda service
  // erroring); meanwhile the lease (30 s) lapses and a worker takes over.
  const fault = (state) => (state === 'C: Heartbeat' && vt.now - t0 < 45_000 ? { before: 'Lambda.ServiceException' } : undefined);
  const t0 = vt.now;
  const thief = worker('thief');
  const taken = (async () => {
    for (;;) {
      await vt.sleep(5000);
      const r = await thief.reserve(key, 10);
      if (r.acquired) return vt.now;
    }
  })();
  const { exec, result } = start(definitions.default, { key }, { task, fault });
  const [r, took] = [await result, await taken];
  assert.equal(r.error, 'CachedTask.ReservationLost', `got ${r.error}: ${r.cause}`);
  assert.equal(taskEnded, false, 'the execution ended before its task');
  assert.ok(vt.now - t0 < 120_000);
  assert.equal((await probe.reserve(key, 1)).reservation.owner_id, 'thief', 'the new holder keeps the key');
  assert.equal((await probe.get(key)).found, false);
  assert.equal(callsBy(exec, 'put').length, 0);
  return `the thief took over at +${((took - t0) / 1000).toFixed(0)} s; the next heartbeat saw it and the execution failed with CachedTask.ReservationLost at +${((vt.now - t0) / 1000).toFixed(0)} s, before its task ended`;
});

await scenario('a holder that never finishes: the state machine timeout ends the wait', async () => {
  const key = `timeout-${run}`;
  const holder = worker('forever');
  await holder.reserve(key, 10);
  let stop = false;
  const beating = (async () => {
    while (!stop) {
      await vt.sleep(10_000);
      if (!stop) await holder.reserve(key, 10);
    }
  })();
  const def = { ...definitions.default, TimeoutSeconds: 600 };
  const task = work(key);
  const { result } = start(def, { key }, { task });
  const r = await result;
  stop = true;
  await beating;
  assert.match(r.error, /Timeout/, `got ${r.error}: ${r.cause}`);
  assert.equal(task.calls.length, 0);
  await holder.release(key);
  return `timed out after ${entered(r, 'C: Wait for the holder').length} waits (TimeoutSeconds 600)`;
});

await scenario('ResultPath $.cache: the entry is merged into the input, on a miss and on a hit', async () => {
  const key = `merge-${run}`;
  const task = work(key);
  const input = { key, keep: { me: true } };
  const miss = await start(definitions.merge, input, { task }).result;
  assertOk(miss);
  assert.deepEqual(Object.keys(miss.output).sort(), ['cache', 'keep', 'key']);
  assert.equal(miss.output.cache.output_uri, uri(key));
  const hit = await start(definitions.merge, input, { task }).result;
  assert.deepEqual(hit.output, miss.output);
  assert.equal(task.calls.length, 1);
  return 'same output on the miss and the hit';
});

console.log(results.join('\n'));
process.exit(results.some((r) => r.startsWith('FAIL')) ? 1 : 0);
