// Runs the cachedtask construct's state machine in aws-local-stepfunctions
// (an independent implementation of the Amazon States Language) against an
// in-memory model of Stampede's four functions, through the protocol's
// paths: miss, hit, contention, a holder that dies, a failing task, a lost
// race, a lapsed lease and a throttled call.
//
// usage: node simulate.mjs <definition.json> <definition-with-ResultPath-$.cache.json>
// Run by cachedtask_test.go (TestProtocolSimulated). State names are those
// of a construct with id "C" around a task state "Work".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22); Node 20
// lacks it.
if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import('aws-local-stepfunctions');

const [defaultDef, mergeDef] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));

function stampedeError(name, code, message, extra = {}) {
  const e = new Error(JSON.stringify({ error: { code, message }, ...extra }));
  e.name = name;
  return e;
}

// A model of the service: one record per key with the entry and the
// reservation, leases of heartbeat × 3 on a clock the test moves.
class Stampede {
  constructor() {
    this.items = new Map();
    this.now = 0; // seconds
    this.fence = 0;
    this.calls = [];
    this.hooks = {}; // op → function(payload, callCount) run before the op
  }
  item(p) {
    const k = `${p.project}/${p.domain}/${p.key}`;
    if (!this.items.has(k)) this.items.set(k, {});
    return this.items.get(k);
  }
  holder(it) {
    return it.holder && it.holder.until > this.now ? it.holder : undefined;
  }
  call(op, p) {
    this.calls.push({ op, p });
    const n = this.calls.filter((c) => c.op === op).length;
    this.hooks[op]?.(p, n);
    return this[op](p);
  }
  get(p) {
    const it = this.item(p);
    return it.entry ? { found: true, entry: it.entry } : { found: false };
  }
  reserve(p) {
    assert.ok(p.owner_id && p.heartbeat_interval_seconds > 0, 'reserve payload');
    const it = this.item(p);
    const h = this.holder(it);
    if (h && h.owner !== p.owner_id) {
      return { acquired: false, reservation: this.view(p, h) };
    }
    if (!h) it.holder = { owner: p.owner_id, fence: ++this.fence, hb: p.heartbeat_interval_seconds };
    it.holder.until = this.now + 3 * p.heartbeat_interval_seconds;
    return { acquired: true, reservation: this.view(p, it.holder) };
  }
  view(p, h) {
    return { project: p.project, domain: p.domain, key: p.key, owner_id: h.owner,
      heartbeat_interval_seconds: h.hb, expires_at: String(h.until), fence: h.fence };
  }
  put(p, { fenced = true } = {}) {
    const it = this.item(p);
    if (fenced && p.owner_id !== undefined) {
      const h = this.holder(it);
      if (!h || h.owner !== p.owner_id || (p.fence !== undefined && h.fence !== p.fence)) {
        throw stampedeError('Stampede.FailedPrecondition', 'failed_precondition', 'owner_id: the reservation is not held');
      }
    }
    if (it.entry && !p.overwrite) {
      throw stampedeError('Stampede.AlreadyExists', 'already_exists', 'key: an entry exists', { existing: it.entry });
    }
    it.entry = { project: p.project, domain: p.domain, key: p.key, output_uri: p.output_uri,
      metadata: p.metadata ?? {}, created_at: String(this.now), last_updated_at: String(this.now), version: 1 };
    if (p.release) it.holder = undefined;
    return it.entry;
  }
  release(p) {
    const it = this.item(p);
    const h = this.holder(it);
    if (h && h.owner === p.owner_id) {
      it.holder = undefined;
      return { released: true };
    }
    return { released: false };
  }
  count(op) {
    return this.calls.filter((c) => c.op === op).length;
  }
}

async function run(def, input, { exec, svc, task, onWait }) {
  const sm = new StateMachine(def);
  const handlers = {
    'C: Get': async (p) => svc.call('get', p),
    'C: Reserve': async (p) => svc.call('reserve', p),
    'C: Put and release': async (p) => svc.call('put', p),
    'C: Release after failure': async (p) => svc.call('release', p),
    'C: Release and look up': async (p) => svc.call('release', p),
    Work: task,
  };
  const waits = { n: 0 };
  const execution = sm.run(input, {
    context: { Execution: { Id: exec, Input: input } },
    overrides: {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: { 'C: Wait for the holder': 0 },
      retryIntervalOverrides: { 'C: Get': 0, 'C: Reserve': 0, 'C: Put and release': 0 },
    },
  });
  // Count waits through the event log, and let the scenario move time on.
  const watcher = (async () => {
    for await (const ev of execution.eventLogs) {
      if (ev.type === 'StateEntered' && ev.state?.name === 'C: Wait for the holder') {
        waits.n++;
        onWait?.(waits.n);
      }
    }
  })();
  try {
    const output = await execution.result;
    return { output, waits: waits.n };
  } catch (e) {
    return { error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message, waits: waits.n };
  } finally {
    await watcher.catch(() => {});
  }
}

const results = [];
async function scenario(name, fn) {
  try {
    await fn();
    results.push(`ok   ${name}`);
  } catch (e) {
    results.push(`FAIL ${name}: ${e.stack ?? e}`);
  }
}

function work(svc, uri) {
  const calls = [];
  const fn = async (input) => {
    calls.push(input);
    return { uri, metadata: { labels: { by: 'work' } }, ignored: true };
  };
  fn.calls = calls;
  return fn;
}

await scenario('miss: reserve, run the task once, fenced put that releases, output the entry', async () => {
  const svc = new Stampede();
  const task = work(svc, 's3://b/k1');
  const r = await run(defaultDef, { key: 'k1', other: 1 }, { exec: 'exec-1', svc, task });
  assert.equal(r.error, undefined, `failed: ${r.error} ${r.cause}`);
  assert.equal(task.calls.length, 1);
  assert.deepEqual(task.calls[0], { key: 'k1', other: 1 }, 'the task gets the construct input');
  assert.equal(r.output.output_uri, 's3://b/k1');
  assert.deepEqual([r.output.project, r.output.domain, r.output.key], ['ml', 'dev', 'k1']);
  const put = svc.calls.find((c) => c.op === 'put').p;
  assert.equal(put.owner_id, 'exec-1');
  assert.equal(put.fence, 1);
  assert.equal(put.release, true);
  assert.equal(put.output_uri, 's3://b/k1');
  assert.equal(svc.holder(svc.item(put)), undefined, 'released by the put');
  assert.equal(svc.count('release'), 0);
});

await scenario('hit: output the cached entry without reserving or running the task', async () => {
  const svc = new Stampede();
  svc.put({ project: 'ml', domain: 'dev', key: 'k1', output_uri: 's3://b/cached' }, { fenced: false });
  const task = work(svc, 's3://b/new');
  const r = await run(defaultDef, { key: 'k1' }, { exec: 'exec-2', svc, task });
  assert.equal(r.output?.output_uri, 's3://b/cached', `got ${JSON.stringify(r)}`);
  assert.equal(task.calls.length, 0);
  assert.equal(svc.count('reserve'), 0);
});

await scenario('contention: wait for the holder, loop on get, output the holder\'s entry', async () => {
  const svc = new Stampede();
  svc.call('reserve', { project: 'ml', domain: 'dev', key: 'k2', owner_id: 'holder', heartbeat_interval_seconds: 10 });
  // The holder stores its output while this execution waits its third time.
  svc.hooks.get = (p, n) => {
    if (n === 4) svc.put({ ...p, owner_id: 'holder', output_uri: 's3://b/holder', release: true });
  };
  const task = work(svc, 's3://b/mine');
  const r = await run(defaultDef, { key: 'k2' }, { exec: 'exec-3', svc, task });
  assert.equal(r.output?.output_uri, 's3://b/holder', `got ${JSON.stringify(r)}`);
  assert.equal(task.calls.length, 0);
  assert.equal(r.waits, 3);
  assert.equal(svc.count('reserve'), 1 + 3, 'one reserve per turn of the loop');
});

await scenario('the holder dies: its lease lapses, this execution acquires and runs the task', async () => {
  const svc = new Stampede();
  svc.call('reserve', { project: 'ml', domain: 'dev', key: 'k3', owner_id: 'dead', heartbeat_interval_seconds: 10 });
  const task = work(svc, 's3://b/k3');
  const r = await run(defaultDef, { key: 'k3' }, { exec: 'exec-4', svc, task, onWait: () => { svc.now += 10; } });
  assert.equal(r.output?.output_uri, 's3://b/k3', `got ${JSON.stringify(r)}`);
  assert.equal(task.calls.length, 1);
  assert.ok(r.waits >= 3, `waited ${r.waits} times`);
});

await scenario('the task fails: release, then fail with the task\'s own error and cause', async () => {
  const svc = new Stampede();
  const task = async () => {
    const e = new Error('out of memory');
    e.name = 'Train.Failed';
    throw e;
  };
  const r = await run(defaultDef, { key: 'k5' }, { exec: 'exec-5', svc, task });
  assert.equal(r.error, 'Train.Failed', `got ${JSON.stringify(r)}`);
  assert.equal(r.cause, 'out of memory');
  assert.deepEqual(svc.calls.filter((c) => c.op === 'release').map((c) => c.p.owner_id), ['exec-5']);
  const it = svc.item({ project: 'ml', domain: 'dev', key: 'k5' });
  assert.equal(svc.holder(it), undefined, 'released');
  assert.equal(it.entry, undefined);
});

await scenario('a lost race: the put finds an entry, release and return the other writer\'s entry', async () => {
  const svc = new Stampede();
  const task = async (input) => {
    svc.put({ project: 'ml', domain: 'dev', key: input.key, output_uri: 's3://b/first' }, { fenced: false });
    return { uri: 's3://b/second', metadata: {} };
  };
  const r = await run(defaultDef, { key: 'k6' }, { exec: 'exec-6', svc, task });
  assert.equal(r.output?.output_uri, 's3://b/first', `got ${JSON.stringify(r)}`);
  assert.equal(svc.count('release'), 1);
  assert.equal(svc.holder(svc.item({ project: 'ml', domain: 'dev', key: 'k6' })), undefined);
});

await scenario('a lapsed lease: the fenced put is refused and the execution fails with it', async () => {
  const svc = new Stampede();
  const task = async (input) => {
    svc.now += 60; // the task outlives the lease, and another execution takes over
    svc.call('reserve', { project: 'ml', domain: 'dev', key: input.key, owner_id: 'thief', heartbeat_interval_seconds: 10 });
    return { uri: 's3://b/late', metadata: {} };
  };
  const r = await run(defaultDef, { key: 'k7' }, { exec: 'exec-7', svc, task });
  assert.equal(r.error, 'Stampede.FailedPrecondition', `got ${JSON.stringify(r)}`);
  const it = svc.item({ project: 'ml', domain: 'dev', key: 'k7' });
  assert.equal(svc.holder(it)?.owner, 'thief', 'the other holder keeps its reservation');
  assert.equal(it.entry, undefined);
});

await scenario('throttled: Stampede.Throttled is retried', async () => {
  const svc = new Stampede();
  svc.hooks.get = (p, n) => {
    if (n === 1) throw stampedeError('Stampede.Throttled', 'throttled', 'slow down');
  };
  const task = work(svc, 's3://b/k8');
  const r = await run(defaultDef, { key: 'k8' }, { exec: 'exec-8', svc, task });
  assert.equal(r.output?.output_uri, 's3://b/k8', `got ${JSON.stringify(r)}`);
});

await scenario('ResultPath $.cache: the entry is merged into the input, on a miss and on a hit', async () => {
  const svc = new Stampede();
  const task = work(svc, 's3://b/k9');
  const input = { key: 'k9', keep: { me: true } };
  const miss = await run(mergeDef, input, { exec: 'exec-9', svc, task });
  assert.deepEqual(Object.keys(miss.output ?? {}).sort(), ['cache', 'keep', 'key'], `got ${JSON.stringify(miss)}`);
  assert.equal(miss.output.cache.output_uri, 's3://b/k9');
  assert.deepEqual(miss.output.keep, { me: true });
  const hit = await run(mergeDef, input, { exec: 'exec-10', svc, task });
  assert.deepEqual(hit.output, miss.output);
  assert.equal(task.calls.length, 1);
});

console.log(results.join('\n'));
process.exit(results.some((r) => r.startsWith('FAIL')) ? 1 : 0);
