// The cluster page on real Ray: pods, Ray's nodes and jobs from the head's dashboard (reached
// through the apiserver's service proxy), conditions and events, live; and a dead Ray head shows
// as unreachable on its own cluster's page only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, smallCluster, useBrowser, headIp, submitJob, waitForRay, stopRayHead } from '../lib.mjs';

const NS = 'e2e-ray';
const browser = useBrowser(NS);

test('a cluster page shows pods, Ray nodes, a submitted job and events; a dead head is unreachable there only', async () => {
  // Fresh names each run: a same-named cluster from an earlier run may still be terminating.
  const run = Date.now().toString(36).slice(-5);
  const [a, b] = [`ray-a-${run}`, `ray-b-${run}`];
  for (const name of [a, b]) kubectl(['apply', '-f', '-'], smallCluster(NS, name));
  try {
    const ipA = await headIp(NS, a);
    const page = await browser().newPage();
    // What the page said, for the report when a wait below times out.
    const said = [];
    page.on('console', (m) => said.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => said.push(`pageerror: ${e.message}`));
    await page.goto(`${base}/clusters/${NS}/${a}`);
    // Pods: the head and the worker, Running on kwok nodes.
    const head = page.locator('table.pods tr[data-phase="Running"]', { hasText: 'head' });
    // Generous: right after the log tests, the machine is busy stopping and starting Ray heads
    // (each `ray start` is a dozen processes on 2 cores), and KubeRay creates the pods late.
    try {
      await head.waitFor({ timeout: 120_000 });
    } catch (e) {
      const pods = kubectl(['get', 'pods', '-n', NS, '-o', 'wide']);
      const section = await page.locator('section.cluster').innerText().catch(() => '(no cluster section)');
      throw new Error(`${e.message}\npods:\n${pods}\npage:\n${section}\nconsole:\n${said.join('\n')}`);
    }
    await page.locator('table.pods tr', { hasText: 'worker · cpu' }).waitFor({ timeout: 30_000 });
    assert.match(await head.innerText(), /kwok-/);
    // Ray answers from the head pod's IP; the head is its one node.
    await waitForRay(page, NS, a);
    await page.locator(`tr[data-node="${ipA}"]`, { hasText: 'head' }).waitFor();
    // A job submitted with `ray job submit` appears without reload, then finishes.
    submitJob(ipA, 'e2e-count', 'import time\nfor i in range(3):\n    print("line", i, flush=True); time.sleep(1)');
    const job = page.locator('tr[data-job="e2e-count"]');
    await job.waitFor({ timeout: 30_000 });
    assert.match(await job.innerText(), /python -c/);
    await page.locator('tr[data-job="e2e-count"][data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    // Its whole log, as the row's Download link serves it (read from Ray through raydar).
    const href = await job.locator('a[download]').getAttribute('href');
    const log = await (await fetch(`${base}${href}`)).text();
    assert.match(log, /line 0\nline 1\nline 2/);
    // Conditions and events from Kubernetes.
    await page.locator('tr[data-condition="HeadPodReady"][data-status="True"]').waitFor({ timeout: 10_000 });
    // Only this incarnation's: a cluster of the same name made before left events too.
    const created = page.locator('table.events tr[data-reason="CreatedHeadPod"]');
    await created.waitFor({ timeout: 10_000 });
    assert.equal(await created.count(), 1);
    assert.match(await created.innerText(), new RegExp(await head.getAttribute('data-pod')));

    // Cluster b's page, open alongside.
    const other = await browser().newPage();
    await other.goto(`${base}/clusters/${NS}/${b}`);
    await waitForRay(other, NS, b, 60_000);
    // a's Ray head dies: a's page says so (keeping the last answer), b's stays answered.
    stopRayHead(ipA);
    await page.locator('section.ray[data-ray="unreachable"]').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('section.ray').innerText(), /not answering/);
    assert.ok(await page.locator('tr[data-job="e2e-count"]').isVisible(), 'the last known jobs stay listed');
    await other.waitForTimeout(3000);
    assert.equal(await other.locator('section.ray').getAttribute('data-ray'), 'ok');
    await page.close();
    await other.close();
  } finally {
    for (const name of [a, b]) kubectl(['delete', 'raycluster', '-n', NS, name, '--ignore-not-found', '--wait=false']);
  }
});
