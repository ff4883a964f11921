// Several replicas (deploy/kustomize/overlays/ha-postgres): two raydars on one PostgreSQL, with one
// --session-secret, behind a round-robin proxy started here (as a Service in front of the
// replicas). A write's CSRF token from one is taken by the other; pages opened on one go on when
// it is killed: the list's pushes and a pod's log resume on the other, nothing shown twice, and
// the page launches and tears down through the survivor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, launch, pageState, smallCluster, startPostgres, startRaydar, watchPage } from '../lib.mjs';

const NS = 'raydar-e2e-replicas';
const run = Date.now().toString(36).slice(-5);
let postgres, replicas = [], proxy, browser;

/**
 * A round-robin HTTP proxy on loopback in front of `backends`: each request goes to the next one;
 * a backend that refuses the connection is passed over (as a Service drops a dead pod), and a
 * stream cut by a dying backend is cut for the client too. `pin(i)` sends everything to backend i,
 * `pin(null)` takes turns again; `served[i]` counts the answers backend i gave.
 */
async function roundRobin(backends) {
  let turn = 0, pinned = null;
  const served = backends.map(() => 0);
  const sockets = new Set();
  const server = createServer((req, res) => {
    const body = [];
    req.on('data', (chunk) => body.push(chunk));
    req.on('end', () => forward(0));
    const forward = (tried) => {
      const i = pinned ?? turn++ % backends.length;
      const target = new URL(backends[i]);
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url,
        headers: req.headers, agent: false }, (answer) => {
        served[i]++;
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
        answer.on('close', () => { if (!answer.complete) res.destroy(); });
      });
      upstream.on('error', () => {
        if (!res.headersSent && tried + 1 < backends.length && pinned === null) forward(tried + 1);
        else res.destroy();
      });
      upstream.end(Buffer.concat(body));
    };
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    served,
    pin(i) { pinned = i; },
    close() { for (const s of sockets) s.destroy(); server.close(); },
  };
}

before(async () => {
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }));
  postgres = await startPostgres();
  const secret = randomBytes(32).toString('hex');
  const flags = ['--auth', 'dev', '--dev-user', 'developer', '--database', postgres.url, '--session-secret', secret];
  // One after the other: the first creates the history's tables.
  for (let i = 0; i < 2; i++) replicas.push(await startRaydar(flags));
  proxy = await roundRobin(replicas.map((r) => r.url));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  proxy?.close();
  for (const r of replicas) r.stop();
  postgres?.stop();
  kubectl(['delete', 'raycluster', '-n', NS, '--all', '--wait=false']);
});

/** The CSRF token `replica` gives the developer. */
async function tokenFrom(replica) {
  const answer = await fetch(`${replica.url}/api/v1/session`);
  assert.equal(answer.status, 200);
  return (await answer.json()).csrfToken;
}

/** A write to `replica` as a page of `replica`'s origin would send it, with `token`. */
function write(replica, method, path, token, body) {
  return fetch(`${replica.url}${path}`, {
    method,
    headers: { origin: replica.url, 'content-type': 'application/json', 'x-csrf-token': token },
    body: body && JSON.stringify(body),
  });
}

function clusterNames() {
  return JSON.parse(kubectl(['get', 'rayclusters', '-n', NS, '-o', 'json'])).items.map((c) => c.metadata.name);
}

test('a write carries a CSRF token from either replica: launched on one, torn down on the other', async () => {
  const [a, b] = replicas;
  const name = `either-${run}`;
  const launched = await write(a, 'POST', '/api/v1/clusters', await tokenFrom(b),
    { template: 'cpu-small', namespace: NS, name, parameters: {} });
  assert.equal(launched.status, 201, await launched.text());
  assert.ok(clusterNames().includes(name), 'launched through the first replica');
  const gone = await write(b, 'DELETE', `/api/v1/clusters/${NS}/${name}`, await tokenFrom(a));
  assert.ok(gone.ok, `${gone.status} ${await gone.text()}`);
  // A token signed with another secret is refused: the shared one is what made these pass.
  const forged = await write(a, 'DELETE', `/api/v1/clusters/${NS}/${name}`, randomBytes(32).toString('hex'));
  assert.equal(forged.status, 403);
});

test('a replica killed: its open pages resume on the other, pushes and log lines once each, and launch and tear down there', async () => {
  const [a, b] = replicas;
  // A pod's log, read by kwok from a file (CRI format): a log stream without a Ray head.
  const dir = mkdtempSync(join(tmpdir(), 'raydar-e2e-replicas-'));
  const file = join(dir, 'ray-worker.log');
  const cri = (i, text) => `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.000000000Z stdout F ${text}\n`;
  writeFileSync(file, [1, 2, 3].map((i) => cri(i, `line ${i}`)).join(''));
  const pod = `replicas-${run}-worker-a`;
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod, namespace: NS, labels: { 'ray.io/cluster': `replicas-${run}`, 'ray.io/node-type': 'worker', 'ray.io/is-ray-node': 'yes' } },
    spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.46.0' }] },
  }));
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Logs', metadata: { name: pod, namespace: NS },
    spec: { logs: [{ containers: ['ray-worker'], logsFile: file, follow: true }] },
  }));
  // Left alone by KubeRay (another controller manages it): a row, no pods.
  const before = `before-${run}`;
  kubectl(['apply', '-f', '-'], smallCluster(NS, before, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
  const pages = [];
  try {
    // Every page opened on the first replica, and its streams with it.
    proxy.pin(0);
    const list = await browser.newPage();
    pages.push(list);
    const listSaid = watchPage(list);
    await list.goto(`${proxy.url}/?namespace=${NS}`);
    const live = () => list.waitForFunction(() => document.querySelector('.list-header .live')?.textContent === 'live', null, { timeout: 30_000 })
      .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(list, listSaid)}`); });
    await live();
    await list.locator(`tr[data-cluster="${NS}/${before}"]`).waitFor({ timeout: 15_000 });

    const log = await browser.newPage();
    pages.push(log);
    const lines = log.locator('.log-lines .line');
    // kwok picks the Logs object up within moments; until then the stream reports a problem.
    for (let attempt = 0; ; attempt++) {
      await log.goto(`${proxy.url}/clusters/${NS}/replicas-${run}/pods/${pod}`);
      try {
        await lines.filter({ hasText: 'line 3' }).waitFor({ timeout: 5_000 });
        break;
      } catch (e) {
        if (attempt >= 12) throw e;
      }
    }
    const form = await browser.newPage();
    pages.push(form);
    const formSaid = watchPage(form);
    await form.goto(`${proxy.url}/launch?template=cpu-small`);
    await form.locator('form.launch-form[data-live="true"]').waitFor({ timeout: 15_000 });
    for (const p of pages) await p.evaluate(() => { window.__mark = 'same page'; });
    const servedByB = proxy.served[1];

    // The first replica dies at once (no goodbye on its streams); requests take turns again and
    // find the second.
    proxy.pin(null);
    process.kill(a.pid, 'SIGKILL');

    // The list: pushes resume (a cluster made now appears), each row once.
    const made = `after-${run}`;
    kubectl(['apply', '-f', '-'], smallCluster(NS, made, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
    await list.locator(`tr[data-cluster="${NS}/${made}"]`).waitFor({ timeout: 30_000 });
    await live();
    for (const name of [before, made]) assert.equal(await list.locator(`tr[data-cluster="${NS}/${name}"]`).count(), 1, name);

    // The log: lines written now follow the ones shown, none repeated, none lost.
    appendFileSync(file, [4, 5, 6].map((i) => cri(i, `line ${i}`)).join(''));
    await lines.filter({ hasText: 'line 6' }).waitFor({ timeout: 30_000 });
    assert.deepEqual(await lines.allTextContents(), [1, 2, 3, 4, 5, 6].map((i) => `line ${i}`));
    await log.locator('.log-state[data-state="live"]').waitFor({ timeout: 10_000 });

    // The form opened on the dead replica launches on the survivor (its token is good there).
    const launched = `form-${run}`;
    await form.getByLabel('Namespace').fill(NS);
    await form.getByLabel('Cluster name').fill(launched);
    await form.locator('pre.manifest').filter({ hasText: `name: ${launched}` }).waitFor({ timeout: 15_000 });
    await form.getByRole('button', { name: 'Launch' }).click();
    await form.waitForURL(`${proxy.url}/clusters/${NS}/${launched}`, { timeout: 15_000 })
      .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(form, formSaid)}`); });
    assert.ok(clusterNames().includes(launched), 'launched');
    await list.locator(`tr[data-cluster="${NS}/${launched}"]`).waitFor({ timeout: 30_000 });

    // And the list, also from the dead replica, tears it down there.
    list.once('dialog', (dialog) => dialog.accept());
    await list.getByRole('button', { name: `Tear down ${NS}/${launched}` }).click();
    await list.locator(`tr[data-cluster="${NS}/${launched}"]`).waitFor({ state: 'detached', timeout: 30_000 });
    assert.ok(!clusterNames().includes(launched), 'torn down');

    for (const p of pages) assert.equal(await p.evaluate(() => window.__mark), 'same page', 'no page was reloaded');
    assert.ok(proxy.served[1] > servedByB, 'the second replica answered the pages');
  } finally {
    for (const p of pages) await p.close();
    kubectl(['delete', 'pod,logs.kwok.x-k8s.io', '-n', NS, pod, '--ignore-not-found', '--wait=false']);
    rmSync(dir, { recursive: true, force: true });
  }
});
