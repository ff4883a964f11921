// The cluster list in a real browser: server-rendered, hydrated, and kept current by push while
// RayClusters are created and deleted with kubectl on the real control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, smallCluster, useBrowser } from '../lib.mjs';

const namespace = 'raydar-e2e';
const browser = useBrowser(namespace);

test('a cluster created with kubectl appears without reload, and goes when deleted', async () => {
  const page = await browser().newPage();
  await page.goto(base);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
  // Marks this document: a reload would lose it.
  await page.evaluate(() => { window.__raydarSameDocument = true; });

  const name = `e2e-${Date.now().toString(36)}`;
  kubectl(['create', '-f', '-'], smallCluster(namespace, name));
  const row = page.getByRole('row', { name: new RegExp(`\\b${name}\\b`) });
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.getByRole('cell').first().textContent(), namespace);
  // The real operator and kwok bring it to Ready, and the page follows.
  // (KubeRay may report Ready one status update before it counts the worker.)
  const ready = page.locator(`tr[data-cluster="${namespace}/${name}"][data-phase="Ready"]`, { hasText: '1/1' });
  await ready.waitFor({ timeout: 60_000 });

  kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await page.evaluate(() => window.__raydarSameDocument), true, 'the page was never reloaded');
  await page.close();
});

test('the list is in the server-rendered HTML, before any script runs', async () => {
  const name = `ssr-${Date.now().toString(36)}`;
  kubectl(['create', '-f', '-'], smallCluster(namespace, name));
  try {
    // The watch sees the new cluster within moments; the API says when.
    for (let i = 0; i < 100; i++) {
      const list = await (await fetch(`${base}/api/v1/clusters`)).json();
      if (list.items.some((c) => c.name === name)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const html = await (await fetch(base)).text();
    assert.match(html, new RegExp(`data-cluster="${namespace}/${name}"`));
    // And a browser with scripts off shows it as a table row.
    const context = await browser().newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(base);
    await page.getByRole('row', { name: new RegExp(`\\b${name}\\b`) }).waitFor({ timeout: 5_000 });
    await context.close();
  } finally {
    kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
  }
});

test('a page whose code fails to load once (the network changed) still opens', async () => {
  // Left alone by KubeRay (managedBy another controller): a row to click, nothing to run.
  const name = `retry-${Date.now().toString(36)}`;
  kubectl(['create', '-f', '-'], smallCluster(namespace, name, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
  const page = await browser().newPage();
  // The cluster page's code is fetched when first opened: its first fetch fails as Chromium fails
  // requests in flight when the machine's network changes.
  let refused = 0;
  await page.route('**/pkg/split___cluster_page_view_*.wasm', async (route) => {
    if (refused++ === 0) return route.abort('internetdisconnected');
    return route.continue();
  });
  await page.goto(base);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
  await page.locator(`tr[data-cluster="${namespace}/${name}"] a`).first().click();
  await page.locator('section.cluster h2', { hasText: 'Worker groups' }).waitFor({ timeout: 15_000 });
  // And it runs: the overview's first read arrives.
  await page.locator('main h2', { hasText: /^Pods$/ }).waitFor({ timeout: 15_000 });
  assert.ok(refused >= 2, `fetched again after the failure (${refused} fetches)`);
  kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
  await page.close();
});

// The app's wasm is fetched by the page's preload and by its loader; the module that loads it,
// by a preload and by Leptos' loader. Both fail, as Chromium fails requests in flight when the
// machine's network changes; only a loader that tries again fetches it a third time.
for (const [what, files] of [['main code', '**/pkg/raydar.wasm'], ['loader module', '**/pkg/raydar.js*']]) {
  test(`a page whose ${what} fails to load twice (the network changed) still goes live`, async () => {
    const page = await browser().newPage();
    let fetched = 0;
    await page.route(files, async (route) => {
      if (fetched++ < 2) return route.abort('internetdisconnected');
      return route.continue();
    });
    await page.goto(base);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    assert.ok(fetched >= 3, `fetched again after the failures (${fetched} fetches)`);
    await page.close();
  });
}

test("a cluster's page is kept current by push: a pod comes and goes, and the browser asks nothing", async () => {
  // Left alone by KubeRay: the pods are this test's own, made with kubectl.
  const name = `push-${Date.now().toString(36)}`;
  kubectl(['create', '-f', '-'], smallCluster(namespace, name, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
  const page = await browser().newPage();
  await page.goto(`${base}/clusters/${namespace}/${name}`);
  await page.locator('main h2', { hasText: /^Pods$/ }).waitFor({ timeout: 15_000 });
  await page.getByText('No pods: KubeRay has not created them').waitFor({ timeout: 15_000 });
  // From here on: what the browser asks for by itself.
  const asked = [];
  page.on('request', (r) => asked.push(`${r.resourceType()} ${r.url().replace(base, '')}`));

  const pod = `${name}-worker-x`;
  kubectl(['create', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod, namespace, labels: {
      'ray.io/is-ray-node': 'yes', 'ray.io/cluster': name, 'ray.io/node-type': 'worker', 'ray.io/group': 'push' } },
    spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.60.0' }] },
  }));
  const row = page.locator(`tr[data-pod="${pod}"]`);
  await row.waitFor({ timeout: 10_000 });
  // Quiet for a while: a page that polled would ask now.
  await page.waitForTimeout(6_000);
  kubectl(['delete', 'pod', '-n', namespace, pod, '--grace-period=0', '--force', '--wait=false']);
  await row.waitFor({ state: 'detached', timeout: 15_000 });
  const polled = asked.filter((r) => !/^(eventsource|image) /.test(r));
  assert.deepEqual(polled, [], `the page asked by itself: ${polled.join(', ')}`);
  kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
  await page.close();
});
