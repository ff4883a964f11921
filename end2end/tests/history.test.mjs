// History in a browser: a cluster's page links to its history; torn down from the page, the
// cluster is gone but its post-mortem stays, reached from the page's notice and from /history:
// how it ended and who ended it, its timeline to Ready and to its deletion, its Kubernetes events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, smallCluster, useBrowser } from '../lib.mjs';

const NS = 'e2e-history';
const browser = useBrowser(NS);

test('a torn-down cluster\'s post-mortem shows how it ended, its timeline and its events', async () => {
  const name = `hist-${Date.now().toString(36).slice(-5)}`;
  kubectl(['apply', '-f', '-'], smallCluster(NS, name));
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/clusters/${NS}/${name}`);
    await page.locator(`.cluster-header[data-phase="Ready"]`).waitFor({ timeout: 60_000 });
    const uid = kubectl(['get', 'raycluster', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}']).trim();
    assert.equal(await page.locator('a.history-link').first().getAttribute('href'), `/history/${uid}`);

    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: `Tear down ${NS}/${name}` }).click();
    const gone = page.locator(`[data-gone="${NS}/${name}"]`);
    await gone.waitFor({ timeout: 30_000 });
    await gone.getByRole('link', { name: 'Its history' }).click();
    await page.waitForURL(`${base}/history/${uid}`);

    // Written a moment after the deletion is seen: reload until it says how it ended.
    const loaded = page.locator('.post-mortem p.outcome, .post-mortem .problem').first();
    const outcome = page.locator('.post-mortem p.outcome[data-outcome="torn-down"]');
    await loaded.waitFor({ timeout: 15_000 });
    for (let tries = 0; !(await outcome.isVisible()); tries++) {
      assert.ok(tries < 20, `never torn-down: ${await page.locator('.post-mortem').innerText()}`);
      await page.waitForTimeout(500);
      await page.reload();
      await loaded.waitFor({ timeout: 15_000 });
    }
    const facts = await page.locator('.post-mortem dl.facts').innerText();
    assert.match(facts, /Ended by\s+developer: torn down by developer through raydar/i);
    assert.match(facts, /Ready in\s+\d+\.\d s/i);
    const phases = await page.locator('.timeline li').evaluateAll((items) => items.map((i) => i.dataset.phase));
    assert.equal(phases[0], 'Provisioning', phases.join());
    assert.ok(phases.includes('Ready') && phases.at(-1) === 'Deleted', phases.join());
    // KubeRay's own events, and raydar's audit event naming who tore it down.
    await page.locator('.events-table tr[data-reason="TornDown"]').waitFor();
    assert.ok(await page.locator('.events-table tr[data-reason^="Created"]').count() > 0, 'KubeRay\'s events kept');
    const manifest = await page.locator('details.manifest pre').textContent();
    assert.match(manifest, new RegExp(`"name": "${name}"`));

    // The list finds it, gone, by a word of its name and by its outcome.
    await page.goto(`${base}/history?q=${name}&outcome=torn-down`);
    const row = page.locator(`tr[data-history="${NS}/${name}"][data-outcome="torn-down"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('.history-filters select[name="outcome"]').inputValue(), 'torn-down');
    await row.getByRole('link').click();
    await page.waitForURL(`${base}/history/${uid}`);
    await page.goto(`${base}/history?q=${name}&outcome=failed`);
    await page.locator('.history .empty', { hasText: 'No cluster you may see matches' }).waitFor({ timeout: 15_000 });
  } finally {
    await page.close();
    kubectl(['delete', 'rayclusters', '-n', NS, '--all', '--ignore-not-found', '--wait=false']);
  }
});
