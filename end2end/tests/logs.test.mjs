// The log viewer on real Ray and kwok: a running job's log arrives live, in order, as text (HTML
// in a line stays text, ANSI colours become styles); pause, search and download work; a dropped
// connection resumes with no line twice and none lost; a pod's log follows its file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base, kubectl, smallCluster, useBrowser, headIp, submitJob, waitForRay } from '../lib.mjs';

const NS = 'e2e-logs';
const browser = useBrowser(NS);

/** The numbers of the `tick N` lines on the page, in page order. */
const ticks = (page) => page.locator('.log-lines .line').evaluateAll((lines) =>
  lines.map((l) => /^tick (\d+)$/.exec(l.textContent)).filter(Boolean).map((m) => Number(m[1])));

/** Cuts every TCP connection to raydar, as a network drop would; says how many it cut. */
function dropConnections() {
  const port = new URL(base).port;
  const cut = execFileSync('ss', ['-K', '-H', 'dst', '127.0.0.1', 'dport', '=', `:${port}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return cut.split('\n').filter((l) => l.includes(`:${port}`)).length;
}

function assertInOrder(seen, what) {
  assert.ok(seen.length > 0, `${what}: no tick lines`);
  seen.forEach((n, i) => assert.equal(n, seen[0] + i, `${what}: tick ${seen[0] + i} expected at place ${i}, got ${n} (${seen.join(',')})`));
}

test('a running job\'s log streams live, as text, with pause, search, download and resume after a drop', async () => {
  const name = `logs-${Date.now().toString(36).slice(-5)}`;
  kubectl(['apply', '-f', '-'], smallCluster(NS, name));
  try {
    const ip = await headIp(NS, name);
    const page = await browser().newPage();
    await page.goto(`${base}/clusters/${NS}/${name}`);
    await waitForRay(page, NS, name);
    submitJob(ip, 'e2e-follow', [
      'import time',
      'print("<b>bold?</b> <script>window.__pwned = 1</script>", flush=True)',
      'print("\\x1b[31mred alert\\x1b[0m plain", flush=True)',
      'for i in range(80):',
      '    print(f"tick {i}", flush=True); time.sleep(0.4)',
    ].join('\n'));

    // From the job's row to its viewer, in the page (no reload from here on: the mark stays).
    const row = page.locator('tr[data-job="e2e-follow"]');
    await row.waitFor({ timeout: 30_000 });
    await page.evaluate(() => { window.__mark = 'same page'; });
    await row.getByRole('link', { name: 'Follow' }).click();
    await page.waitForURL(`${base}/clusters/${NS}/${name}/jobs/e2e-follow`);
    const lines = page.locator('.log-lines .line');
    await lines.filter({ hasText: /^tick 3$/ }).waitFor({ timeout: 60_000 });
    await page.locator('.log-state[data-state="live"]').waitFor();
    // Lines printed after the page was open arrive in it.
    const early = Math.max(...await ticks(page));
    await lines.filter({ hasText: new RegExp(`^tick ${early + 3}$`) }).waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__mark), 'same page', 'the page was not reloaded');
    assertInOrder(await ticks(page), 'live');

    // A line of HTML is shown as its text; nothing in it runs. (Ray's log starts by echoing the
    // entrypoint, so the program's text shows up too: match whole lines.)
    const html = lines.filter({ hasText: /^<b>bold\?<\/b> <script>/ });
    assert.equal(await html.textContent(), '<b>bold?</b> <script>window.__pwned = 1</script>');
    assert.equal(await page.locator('.log-lines b, .log-lines script').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    // ANSI colour: a red run, and no escape characters left in the text.
    const red = lines.filter({ hasText: /^red alert plain$/ });
    assert.equal(await red.textContent(), 'red alert plain');
    assert.equal(await red.locator('span.ansi-fg-1').textContent(), 'red alert');

    // Pause holds new lines back and counts them; Resume shows them, in order.
    const pause = page.locator('button.pause');
    await pause.click();
    const frozen = await lines.count();
    await page.waitForFunction(() => /Resume \(([3-9]|\d\d+) new\)/.test(document.querySelector('button.pause').textContent));
    assert.equal(await lines.count(), frozen, 'no line shown while paused');
    await pause.click();
    assert.equal(await pause.textContent(), 'Pause');
    assert.ok(await lines.count() >= frozen + 3);
    assertInOrder(await ticks(page), 'after resume');

    // Search shows only matching lines and counts them; clearing it shows all again.
    const search = page.getByRole('searchbox', { name: 'Search the log' });
    await search.fill('TICK 1');
    const visible = await lines.evaluateAll((ls) => ls.filter((l) => !l.hidden).map((l) => l.textContent));
    assert.ok(visible.length >= 2 && visible.every((t) => /^tick 1\d*$/.test(t)), visible.join('|'));
    assert.equal(await page.locator('.matches').textContent(), `${visible.length} matching lines`);
    await search.fill('');
    assert.equal(await lines.evaluateAll((ls) => ls.filter((l) => l.hidden).length), 0);

    // Download serves the whole log so far.
    const href = await page.getByRole('link', { name: 'Download' }).getAttribute('href');
    assert.equal(href, `/api/v1/clusters/${NS}/${name}/jobs/e2e-follow/logs`);
    // (Ray's job supervisor writes its own lines into the same file when it pleases, so match
    // the program's lines among them, in order.)
    const whole = (await (await fetch(`${base}${href}`)).text()).split('\n');
    assert.ok(whole.includes('\x1b[31mred alert\x1b[0m plain'), 'the download keeps the line as printed');
    const downloaded = whole.flatMap((l) => /^tick (\d+)$/.exec(l)?.[1] ?? []).map(Number);
    assert.equal(downloaded[0], 0, `the download starts at the first tick (${downloaded.join(',')})`);
    assertInOrder(downloaded, 'download');

    // The connection drops: the browser reconnects and the log goes on with no gap and no repeat.
    await page.evaluate(() => {
      window.__states = [];
      const state = document.querySelector('.log-state');
      new MutationObserver(() => window.__states.push(state.dataset.state)).observe(state, { attributes: true });
    });
    const before = Math.max(...await ticks(page));
    assert.ok(dropConnections() >= 1, 'the log stream\'s connection was cut');
    const after = before + 6;
    await lines.filter({ hasText: new RegExp(`^tick ${after}$`) }).waitFor({ timeout: 30_000 });
    assertInOrder(await ticks(page), 'after a dropped connection');
    assert.ok((await page.evaluate(() => window.__states)).includes('reconnecting'), 'the page said it was reconnecting');
    assert.equal(await page.evaluate(() => window.__mark), 'same page');

    // The job ends: so does the stream, and the page says so.
    await page.locator('.log-state[data-state="ended"]').waitFor({ timeout: 60_000 });
    const all = await ticks(page);
    assertInOrder(all, 'complete');
    assert.deepEqual([all[0], all.at(-1)], [0, 79]);
    await page.close();
  } finally {
    // Waited for: its Ray head stops with its pod, and a busy machine slows the tests after.
    kubectl(['delete', 'raycluster', '-n', NS, name, '--ignore-not-found', '--timeout=25s']);
  }
});

test('a pod\'s log follows its file through the Kubernetes API (kwok), in the same viewer', async () => {
  const name = `podlog-${Date.now().toString(36).slice(-5)}`;
  const dir = mkdtempSync(join(tmpdir(), 'raydar-e2e-podlog-'));
  const file = join(dir, 'ray-worker.log');
  // CRI format, as kwok reads it.
  const cri = (i, text) => `2026-01-01T00:00:${String(i).padStart(2, '0')}.000000000Z stdout F ${text}\n`;
  writeFileSync(file, cri(1, 'worker starting') + cri(2, '<i>not italic</i>'));
  // A worker pod as KubeRay labels them, run by kwok: a pod's log needs no Ray head.
  const pod = `${name}-worker-a`;
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod, namespace: NS, labels: { 'ray.io/cluster': name, 'ray.io/node-type': 'worker', 'ray.io/is-ray-node': 'yes' } },
    spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.46.0' }] },
  }));
  try {
    kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Logs', metadata: { name: pod, namespace: NS },
      spec: { logs: [{ containers: ['ray-worker'], logsFile: file, follow: true }] },
    }));
    const page = await browser().newPage();
    const lines = page.locator('.log-lines .line');
    // kwok picks the Logs object up within moments; until then the stream reports a problem.
    for (let attempt = 0; ; attempt++) {
      await page.goto(`${base}/clusters/${NS}/${name}/pods/${pod}`);
      try {
        await lines.filter({ hasText: 'worker starting' }).waitFor({ timeout: 5_000 });
        break;
      } catch (e) {
        if (attempt >= 12) throw e;
      }
    }
    assert.equal(await lines.nth(1).textContent(), '<i>not italic</i>');
    assert.equal(await page.locator('.log-lines i').count(), 0);
    await page.evaluate(() => { window.__mark = 'same page'; });
    appendFileSync(file, cri(3, 'appended while open'));
    await lines.filter({ hasText: 'appended while open' }).waitFor({ timeout: 20_000 });
    assert.deepEqual(await lines.allTextContents(), ['worker starting', '<i>not italic</i>', 'appended while open']);
    assert.equal(await page.evaluate(() => window.__mark), 'same page');

    // A long log: the view follows its end while the reader is there; scrolled up to read, the
    // view stays put as lines arrive; back at the end, it follows again.
    const view = page.locator('.log');
    const gapBelow = () => view.evaluate((v) => v.scrollHeight - v.scrollTop - v.clientHeight);
    const more = (from, n) => Array.from({ length: n }, (_, i) => cri(4, `more ${from + i}`)).join('');
    appendFileSync(file, more(0, 200));
    await lines.filter({ hasText: /^more 199$/ }).waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => { const v = document.querySelector('.log'); return v.scrollHeight - v.scrollTop - v.clientHeight < 2; });
    assert.ok(await view.evaluate((v) => v.scrollHeight > 2 * v.clientHeight), 'the log is longer than its box');
    await view.evaluate((v) => { v.scrollTop = 0; });
    appendFileSync(file, more(200, 50));
    await lines.filter({ hasText: /^more 249$/ }).waitFor({ timeout: 20_000 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    assert.equal(await view.evaluate((v) => v.scrollTop), 0, 'the view stayed where the reader put it');
    await view.evaluate((v) => { v.scrollTop = v.scrollHeight; });
    appendFileSync(file, more(250, 50));
    await lines.filter({ hasText: /^more 299$/ }).waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => { const v = document.querySelector('.log'); return v.scrollHeight - v.scrollTop - v.clientHeight < 2; });
    assert.ok(await gapBelow() < 2, 'back at the end, the view follows again');
    await page.close();
  } finally {
    kubectl(['delete', 'pod,logs.kwok.x-k8s.io', '-n', NS, pod, '--ignore-not-found', '--wait=false']);
    rmSync(dir, { recursive: true, force: true });
  }
});
