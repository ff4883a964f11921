// The cluster list in a real browser: server-rendered, hydrated, and kept current by push while
// RayClusters are created and deleted with kubectl on the real control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, smallCluster, useBrowser } from '../lib.mjs';

const namespace = 'raydar-e2e';
const browser = useBrowser(namespace);

// The tests' own namespace: whatever else the plane holds, their rows are on this page.
const mine = `${base}/?namespace=${namespace}`;

test('a cluster created with kubectl appears without reload, and goes when deleted', async () => {
  const page = await browser().newPage();
  await page.goto(mine);
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
      const list = await (await fetch(`${base}/api/v1/clusters?namespace=${namespace}`)).json();
      if (list.items.some((c) => c.name === name)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const html = await (await fetch(mine)).text();
    assert.match(html, new RegExp(`data-cluster="${namespace}/${name}"`));
    // And a browser with scripts off shows it as a table row.
    const context = await browser().newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(mine);
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
  await page.goto(mine);
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

// A cluster another controller runs (MultiKueue's name in spec.managedBy, which KubeRay leaves
// alone): labelled as raydar's launches label them, with `gpus` on its head.
function labelled(ns, name, team, owner, gpus) {
  return JSON.stringify({
    apiVersion: 'ray.io/v1', kind: 'RayCluster',
    metadata: { name, namespace: ns, labels: { 'raydar.dev/team': team, 'raydar.dev/owner': owner, 'raydar.dev/template': 'gpu-small' } },
    spec: { managedBy: 'kueue.x-k8s.io/multikueue', headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [
      { name: 'ray-head', image: 'rayproject/ray:2.46.0', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }] } } } },
  });
}

test('the list pages, filters, searches and sorts in its URL, and pushes reach the page shown', async () => {
  const ns = 'raydar-e2e-list';
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
  kubectl(['delete', 'rayclusters', '--all', '-n', ns, '--wait=true']);
  const fleet = [['c1', 'vision', 'alice', 1], ['c2', 'vision', 'bob', 4], ['c3', 'vision', 'alice', 2],
    ['c4', 'vision', 'alice', 0], ['s1', 'speech', 'carol', 8]];
  for (const [name, team, owner, gpus] of fleet) kubectl(['create', '-f', '-'], labelled(ns, name, team, owner, gpus));
  const page = await browser().newPage();
  const rows = async () => page.locator('tr[data-cluster]').evaluateAll((trs) => trs.map((tr) => tr.dataset.cluster.split('/')[1]));
  try {
    for (let i = 0; i < 100; i++) {
      const list = await (await fetch(`${base}/api/v1/clusters?namespace=${ns}`)).json();
      if (list.total === fleet.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Team vision by GPUs, two a page: the server renders that page, with its counts.
    await page.goto(`${base}/?namespace=${ns}&team=vision&sort=gpus&limit=2`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    assert.deepEqual(await rows(), ['c2', 'c3']);
    assert.equal(await page.locator('.counts').textContent(), '4 clusters · 7 GPUs requested');
    const c2 = page.locator(`tr[data-cluster="${ns}/c2"]`);
    assert.equal(await c2.getByRole('link', { name: 'bob' }).count(), 1, 'the owner column');
    assert.equal(await c2.getByRole('link', { name: 'gpu-small' }).count(), 1, 'the template column');
    assert.equal(await page.getByRole('link', { name: 'Provisioning 4' }).count(), 1, 'counts per phase');
    assert.equal(await page.getByRole('table').getByRole('link', { name: 'GPUs' }).getAttribute('aria-current'), 'true');

    // The next page, and back.
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/cursor=/);
    assert.deepEqual(await rows(), ['c1', 'c4']);
    assert.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0, 'the last page');
    await page.getByRole('link', { name: 'First page' }).click();
    await page.waitForURL((u) => !u.search.includes('cursor'));
    assert.deepEqual(await rows(), ['c2', 'c3']);

    // Search: the text goes into the URL, the other filters stay; a chip takes one away.
    await page.getByRole('searchbox', { name: 'Search clusters' }).fill('C3');
    await page.getByRole('searchbox', { name: 'Search clusters' }).press('Enter');
    await page.waitForURL(/q=C3/);
    assert.match(page.url(), /team=vision/);
    assert.deepEqual(await rows(), ['c3']);
    await page.getByRole('link', { name: 'team: vision ×' }).click();
    await page.waitForURL((u) => !u.search.includes('team='));
    assert.deepEqual(await rows(), ['c3']);

    // A label links to the list filtered by it.
    await page.goto(`${base}/?namespace=${ns}`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    await page.locator(`tr[data-cluster="${ns}/s1"]`).getByRole('link', { name: 'carol' }).click();
    await page.waitForURL(/owner=carol/);
    assert.deepEqual(await rows(), ['s1']);

    // Pushes reach the page shown: a row changes in place, its count follows, a new one comes.
    await page.goto(`${base}/?namespace=${ns}&team=vision`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    await page.evaluate(() => { window.__raydarSameDocument = true; });
    kubectl(['patch', 'raycluster', '-n', ns, 'c1', '--subresource=status', '--type=merge', '-p', '{"status":{"state":"ready"}}']);
    await page.locator(`tr[data-cluster="${ns}/c1"][data-phase="Ready"]`).waitFor({ timeout: 10_000 });
    await page.getByRole('link', { name: 'Ready 1' }).waitFor({ timeout: 10_000 });
    kubectl(['create', '-f', '-'], labelled(ns, 'c0', 'vision', 'alice', 1));
    kubectl(['create', '-f', '-'], labelled(ns, 's2', 'speech', 'alice', 1));
    await page.locator(`tr[data-cluster="${ns}/c0"]`).waitFor({ timeout: 10_000 });
    await page.getByText('5 clusters · 8 GPUs requested').waitFor({ timeout: 10_000 });
    assert.deepEqual(await rows(), ['c0', 'c1', 'c2', 'c3', 'c4'], 'not the other team');
    assert.equal(await page.evaluate(() => window.__raydarSameDocument), true, 'never reloaded');
  } finally {
    await page.close();
    kubectl(['delete', 'rayclusters', '--all', '-n', ns, '--wait=false']);
  }
});

test('a URL the list cannot show says why, and nothing else breaks', async () => {
  const page = await browser().newPage();
  await page.goto(`${base}/?limit=0`);
  await page.getByText('limit 0 is not from 1 to 1000').waitFor({ timeout: 15_000 });
  const escaped = await (await fetch(`${base}/?q=${encodeURIComponent('"><script>window.__x=1</script>')}`)).text();
  assert.ok(!escaped.includes('<script>window.__x'), 'search text is escaped in the page');
  await page.close();
});

test("a cluster's last half hour counts down on its page, and its owner extends it there within its template's maximum", async () => {
  // As a launch from cpu-small (12 hours at most) stamps it, ten minutes before its end.
  const name = `exp-${Date.now().toString(36).slice(-5)}`;
  const soon = new Date(Date.now() + 10 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  kubectl(['apply', '-f', '-'], smallCluster(namespace, name, { metadata: {
    labels: { 'raydar.dev/template': 'cpu-small' }, annotations: { 'raydar.dev/expires-at': soon } } }));
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/clusters/${namespace}/${name}`);
    const banner = page.locator('p[data-expiry-warning]');
    await banner.waitFor({ timeout: 30_000 });
    assert.match(await banner.textContent(), /^This cluster's lifetime ends in \d+m\d*s?: raydar will then have it torn down\.$/);
    // It counts down by itself.
    const left = Number(await banner.getAttribute('data-expiry-warning'));
    await page.waitForFunction((n) => Number(document.querySelector('p[data-expiry-warning]')?.dataset.expiryWarning) < n,
      left, { timeout: 5_000 });

    // Eight hours more: past the half hour, the banner goes (the change is pushed to the page).
    await page.getByLabel('Extend by').selectOption('8h');
    await page.getByRole('button', { name: 'Extend' }).click();
    await banner.waitFor({ state: 'detached', timeout: 15_000 });
    const stamped = kubectl(['get', 'raycluster', name, '-n', namespace, '-o', 'jsonpath={.metadata.annotations.raydar\\.dev/expires-at}']);
    const hours = (Date.parse(stamped) - Date.now()) / 3_600_000;
    assert.ok(hours > 8 && hours < 8.2, `extended to ${stamped}`);
    // Eight more would pass cpu-small's 12 hours from now: refused, saying how far it may go.
    await page.getByRole('button', { name: 'Extend' }).click();
    const refused = page.locator('div.extend [role="alert"]');
    await refused.waitFor({ timeout: 15_000 });
    assert.match(await refused.textContent(), /past its template's maximum lifetime of 12h: extend by at most 3h\d+m/);
  } finally {
    await page.close();
    kubectl(['delete', 'raycluster', name, '-n', namespace, '--ignore-not-found', '--wait=false']);
  }
});
