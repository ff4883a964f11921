// History in a browser: a cluster's page links to its history; torn down from the page, the
// cluster is gone but its post-mortem stays, reached from the page's notice and from /history:
// how it ended and who ended it, its timeline to Ready and to its deletion, its Kubernetes events,
// its head's OOMKill. A real Ray job's driver log is archived as it streams, a 100,000-line flood
// whole, and after the teardown the post-mortem shows the job and opens its log in the viewer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { base, kubectl, smallCluster, useBrowser, headIp, submitJob, waitForRay } from '../lib.mjs';

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
    // Its head's container is OOMKilled and restarted, as a kubelet reports it (kwok is the
    // kubelet here, so the report is written as one would).
    const head = kubectl(['get', 'pods', '-n', NS, '-l', `ray.io/cluster=${name},ray.io/node-type=head`,
      '-o', 'jsonpath={.items[0].metadata.name}']).trim();
    const statuses = JSON.parse(kubectl(['get', 'pod', head, '-n', NS, '-o', 'json'])).status.containerStatuses;
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const oom = statuses.map((c) => ({ ...c, restartCount: 1,
      lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: at, finishedAt: at } } }));
    kubectl(['patch', 'pod', head, '-n', NS, '--subresource=status', '--type=merge',
      '-p', JSON.stringify({ status: { containerStatuses: oom } })]);
    // The live page says how long it took to be Ready, and shows, from history, its events
    // older than the apiserver's hour (here one last seen two hours ago).
    assert.match(await page.locator('dd.ready-in').textContent(), /^\d+\.\d s$/);
    const twoHoursAgo = new Date(Date.now() - 7_200_000).toISOString().replace(/\.\d+Z$/, 'Z');
    kubectl(['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Event', metadata: { name: `${name}.old`, namespace: NS },
      involvedObject: { apiVersion: 'ray.io/v1', kind: 'RayCluster', name, namespace: NS, uid },
      reason: 'OldNews', message: 'from two hours ago', type: 'Normal', count: 1,
      firstTimestamp: twoHoursAgo, lastTimestamp: twoHoursAgo, source: { component: 'e2e' },
    }));
    const older = page.locator('details.older-events');
    for (let tries = 0; ; tries++) {
      await older.locator('summary').click();
      await page.waitForFunction(() => {
        const d = document.querySelector('details.older-events');
        return d?.open && !d.innerText.includes('Loading…');
      });
      if (await older.locator('tr[data-reason="OldNews"]').count()) break;
      // Written to history a moment after the watch sees it: look again.
      assert.ok(tries < 20, `never shown: ${await older.innerText()}`);
      await page.waitForTimeout(500);
      await page.reload();
      await page.locator('.cluster-header[data-phase="Ready"]').waitFor();
    }

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
    // The head's OOMKill, with its exit code.
    const killed = page.locator(`.terminations-table tr[data-pod="${head}"][data-reason="OOMKilled"]`);
    assert.match(await killed.innerText(), /OOMKilled\s+137\s+0/);
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

test('a cluster that ran a real Ray job is torn down: its post-mortem shows the job, its whole log and its events', async () => {
  const name = `hjob-${Date.now().toString(36).slice(-5)}`;
  kubectl(['apply', '-f', '-'], smallCluster(NS, name));
  const page = await browser().newPage();
  try {
    const ip = await headIp(NS, name);
    await page.goto(`${base}/clusters/${NS}/${name}`);
    await waitForRay(page, NS, name);
    const uid = kubectl(['get', 'raycluster', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}']).trim();
    await page.close();
    // A few lines, a pause (history finds the job and archives while it runs), then a flood of
    // 100,000 lines, faster than a browser takes them.
    submitJob(ip, 'flood', [
      'import sys, time',
      'print("<b>kept as text</b>", flush=True)',
      'time.sleep(25)',
      'for i in range(100000):',
      '    sys.stdout.write(f"line {i}\\n")',
      'print("done", flush=True)',
    ].join('\n'));

    // No page has the log open: history archives it anyway, as it streams.
    const job = async () => {
      const answer = await fetch(`${base}/api/v1/history/clusters/${uid}`);
      assert.equal(answer.status, 200, await answer.clone().text());
      return (await answer.json()).jobs.find((j) => j.id === 'flood');
    };
    let seen = [];
    for (let tries = 0; ; tries++) {
      const now = await job();
      if (now) seen.push(`${now.status}/${now.log.state}/${now.log.lines}`);
      if (now?.status === 'SUCCEEDED' && now.log.state === 'complete') break;
      assert.ok(tries < 360, `not archived whole within 3 min: ${seen.join(' ')}`);
      await sleep(500);
    }
    assert.ok(seen.some((s) => /^RUNNING\/archiving\/[1-9]/.test(s)), `archived while it ran: ${seen.join(' ')}`);
    kubectl(['delete', 'raycluster', name, '-n', NS]);

    // The post-mortem, after the teardown: the job, and its events.
    const after = await browser().newPage();
    try {
      await after.goto(`${base}/history/${uid}`);
      const row = after.locator('.jobs-table tr[data-job="flood"][data-status="SUCCEEDED"]');
      await row.waitFor({ timeout: 15_000 });
      assert.match(await row.innerText(), /python -c[\s\S]*\b\d{6} lines, complete/);
      assert.ok(await after.locator('.events-table tr[data-reason^="Created"]').count() > 0, 'its events');

      // Its log, in the log viewer: the end of the flood, searchable, and said to be whole.
      await row.getByRole('link', { name: 'Log' }).click();
      await after.waitForURL(`${base}/history/${uid}/jobs/flood`);
      const lines = after.locator('.log-lines .line');
      await lines.filter({ hasText: /^done$/ }).waitFor({ timeout: 30_000 });
      const state = after.locator('.log-state[data-state="ended"]');
      await state.waitFor();
      assert.match(await state.textContent(), /the whole log as archived, \d+ lines/);
      await after.getByRole('searchbox', { name: 'Search the log' }).fill('line 99998');
      const found = await lines.evaluateAll((ls) => ls.filter((l) => !l.hidden).map((l) => l.textContent));
      assert.deepEqual(found, ['line 99998']);

      // The download is the whole log: every line of the flood once, in order, and the HTML
      // line as printed.
      const href = await after.getByRole('link', { name: 'Download' }).getAttribute('href');
      assert.equal(href, `/api/v1/history/clusters/${uid}/jobs/flood/log`);
      const whole = (await (await fetch(`${base}${href}`)).text()).split('\n');
      assert.ok(whole.includes('<b>kept as text</b>'), 'the first line');
      const numbers = whole.flatMap((l) => /^line (\d+)$/.exec(l)?.[1] ?? []).map(Number);
      assert.equal(numbers.length, 100_000, 'every line of the flood');
      assert.ok(numbers.every((n, i) => n === i), 'in order, none twice');
    } finally {
      await after.close();
    }
  } finally {
    kubectl(['delete', 'rayclusters', '-n', NS, '--all', '--ignore-not-found', '--wait=false']);
  }
});
