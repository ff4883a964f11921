// Who sees what in the browser: raydar behind an authenticating proxy (this test plays the proxy,
// adding oauth2-proxy's identity headers from loopback), running as its own ServiceAccount.
// alice may launch and tear down in team A's namespace, bob may only read there, mallory (team B)
// nothing; each sees exactly that, and a page on another origin cannot make a browser launch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { kubectl, launch, smallCluster, startRaydar } from '../lib.mjs';

const run = Date.now().toString(36).slice(-5);
const A = `sec-a-${run}`, B = `sec-b-${run}`;
let server, url, browser;

function rbac() {
  const read = ['get', 'list', 'watch'];
  const role = (name, verbs) => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: A },
    rules: [{ apiGroups: ['ray.io'], resources: ['rayclusters'], verbs },
      { apiGroups: [''], resources: ['pods', 'events'], verbs: read }, { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] }] });
  const binding = (name, user) => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace: A },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }] });
  return { apiVersion: 'v1', kind: 'List', items: [
    ...[A, B].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
    role('editor', [...read, 'create', 'patch', 'update', 'delete']), binding('editor', 'alice'),
    role('viewer', read), binding('viewer', 'bob'),
  ] };
}

before(async () => {
  kubectl(['apply', '-f', '-'], JSON.stringify(rbac()));
  // Left alone by KubeRay (managedBy another controller): no pods, no Ray heads to start.
  for (const ns of [A, B]) kubectl(['apply', '-f', '-'], smallCluster(ns, 'demo', { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
  server = await startRaydar();
  url = server.url;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
  kubectl(['delete', 'namespace', A, B, '--wait=false', '--ignore-not-found']);
});

/** A page as `user` of `group`: the proxy's headers on every request the browser makes. */
async function pageAs(user, group) {
  const context = await browser.newContext({ extraHTTPHeaders: { 'X-Forwarded-User': user, 'X-Forwarded-Groups': group } });
  return context.newPage();
}

test('each person sees their clusters and is offered only the actions RBAC allows', async () => {
  const row = (page, ns) => page.locator(`tr[data-cluster="${ns}/demo"]`);
  const alice = await pageAs('alice', 'team-a');
  await alice.goto(url);
  await row(alice, A).waitFor({ timeout: 30_000 });
  assert.match(await alice.locator('.topbar .who').innerText(), /alice · team-a/);
  assert.equal(await row(alice, B).count(), 0, 'team B is not alice\'s to see');
  await row(alice, A).getByRole('button', { name: /Tear down/ }).waitFor();

  const bob = await pageAs('bob', 'team-a');
  await bob.goto(url);
  await row(bob, A).waitFor({ timeout: 30_000 });
  assert.equal(await row(bob, A).getByRole('button').count(), 0, 'bob is offered no teardown');
  await bob.goto(`${url}/clusters/${A}/demo`);
  await bob.getByText('You may look at this cluster').waitFor({ timeout: 30_000 });
  assert.equal(await bob.getByRole('button', { name: /Suspend|Tear down|Scale/ }).count(), 0);

  const mallory = await pageAs('mallory', 'team-b');
  await mallory.goto(url);
  await mallory.getByText('live', { exact: true }).waitFor({ timeout: 30_000 });
  assert.equal(await mallory.locator('tr[data-cluster]').count(), 0, 'mallory sees no cluster');
  await mallory.goto(`${url}/clusters/${A}/demo`);
  // To mallory it is as if there were no such cluster.
  await mallory.locator(`p.gone[data-gone="${A}/demo"]`).waitFor({ timeout: 30_000 });
  assert.equal(await mallory.getByRole('button', { name: /Suspend|Tear down/ }).count(), 0);

  // alice's cluster page offers suspend and scale; she tears the cluster down from the list.
  await alice.goto(`${url}/clusters/${A}/demo`);
  await alice.getByRole('button', { name: 'Suspend' }).waitFor({ timeout: 30_000 });
  await alice.goto(url);
  alice.once('dialog', (d) => d.accept());
  await row(alice, A).getByRole('button', { name: /Tear down/ }).click();
  await row(alice, A).waitFor({ state: 'detached', timeout: 60_000 });
  // Recorded on the cluster's events as hers (the cluster is gone; its Events stay a while).
  const events = kubectl(['get', 'events', '-n', A, '--field-selector', 'involvedObject.name=demo', '-o', 'jsonpath={.items[*].message}']);
  assert.match(events, /alice tore it down/);
});

test('a page on another origin cannot make the browser launch', async () => {
  // A page elsewhere (another port is another origin) posts to raydar from alice's browser.
  const evil = createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end('<h1>hi</h1>'); });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  try {
    const page = await pageAs('alice', 'team-a');
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    const status = await page.evaluate(async ({ target, ns }) => {
      const r = await fetch(`${target}/api/v1/clusters`, { method: 'POST', mode: 'cors', credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ template: 'cpu-small', namespace: ns, name: 'from-evil' }) }).catch((e) => String(e));
      return typeof r === 'string' ? r : r.status;
    }, { target: url, ns: A });
    // CORS hides the answer from the page; what matters is that nothing was made.
    assert.ok(status === 403 || /Failed to fetch/.test(String(status)), String(status));
    assert.equal(kubectl(['get', 'rayclusters', '-n', A, 'from-evil', '--ignore-not-found', '-o', 'name']).trim(), '');
  } finally {
    evil.close();
  }
});
