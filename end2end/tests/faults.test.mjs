// The cluster list in a browser while the Kubernetes API is away: the rows stay, the page says
// they are stale (since when, and why) as soon as raydar knows, and goes back to live by itself
// when the apiserver returns. The apiserver killed is a second kube-apiserver of the local plane
// (its binary and flags, its etcd, a port of its own), so the plane itself stays up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, kubectl, smallCluster, startRaydar, useBrowser } from '../lib.mjs';

const namespace = 'raydar-e2e-faults';
const browser = useBrowser(namespace);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A kube-apiserver like the plane's, started and SIGKILLed by the test. */
async function spareApiserver() {
  const state = join(process.env.RAYDAR_LOCAL, 'state');
  const pid = readFileSync(join(state, 'pids/kube-apiserver.pid'), 'utf8').trim();
  const port = await freePort();
  const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    .map((a) => (a.startsWith('--secure-port=') ? `--secure-port=${port}` : a));
  const log = openSync(join(state, 'logs/spare-kube-apiserver.log'), 'a');
  const url = `https://127.0.0.1:${port}`;
  let child;
  return {
    url,
    async start() {
      child = spawn(command[0], command.slice(1), { stdio: ['ignore', log, log] });
      for (let i = 0; i < 900; i++) {
        try {
          kubectl(['--server', url, 'get', 'rayclusters', '-n', namespace, '--request-timeout=2s']);
          return;
        } catch { await sleep(100); }
      }
      throw new Error(`the spare apiserver at ${url} did not answer (log: ${state}/logs/spare-kube-apiserver.log)`);
    },
    kill() { child?.kill('SIGKILL'); child = undefined; },
  };
}

test('with the apiserver gone the list stays, says it is stale and why, and is live again when it is back', async () => {
  const spare = await spareApiserver();
  await spare.start();
  // raydar's own identity, pointed at the spare.
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'raydar-faults-')), 'kubeconfig');
  writeFileSync(kubeconfig, readFileSync(process.env.RAYDAR_SERVER_KUBECONFIG, 'utf8')
    .replace(/server: .*/, `server: ${spare.url}`));
  const raydar = await startRaydar(['--auth', 'dev', '--dev-user', 'developer'], kubeconfig);
  const name = `stale-${Date.now().toString(36)}`;
  kubectl(['create', '-f', '-'], smallCluster(namespace, name, { spec: { suspend: true } }));
  const page = await browser().newPage();
  try {
    await page.goto(raydar.url);
    const row = page.locator(`tr[data-cluster="${namespace}/${name}"]`);
    const note = page.locator('.list-header .live[data-stream="stale"]');
    await row.waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('.list-header .live')?.textContent === 'live');
    assert.equal(await note.count(), 0, 'not stale while the apiserver answers');

    spare.kill();
    await note.waitFor({ state: 'visible', timeout: 15_000 });
    assert.match(await note.textContent(), /^Not updated for \d+s: cannot reach the Kubernetes apiserver/);
    assert.equal(await row.count(), 1, 'the last known rows stay');
    assert.equal(await page.getByText('No Ray clusters yet').count(), 0);
    // The age grows as the outage lasts.
    const age = async () => Number((await note.textContent()).match(/for (\d+)s/)[1]);
    const first = await age();
    await page.waitForFunction((n) => {
      const m = document.querySelector('.list-header .live').textContent.match(/for (\d+)s/);
      return m && Number(m[1]) > n;
    }, first, { timeout: 5_000 });

    await spare.start();
    await note.waitFor({ state: 'detached', timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('.list-header .live')?.textContent === 'live');
    assert.equal(await row.count(), 1);
  } finally {
    await page.close();
    raydar.stop();
    spare.kill();
    kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
  }
});
