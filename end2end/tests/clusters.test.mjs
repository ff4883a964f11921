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
