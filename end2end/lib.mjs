// Shared by the browser tests and benchmarks: Debian chromium through playwright-core (no browser
// download), and kubectl against the local control plane (KUBECONFIG, PATH set by the Makefile).
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';

export const base = process.env.RAYDAR_URL ?? (() => { throw new Error('RAYDAR_URL is not set: run through scripts/raydar.sh run'); })();

/** Starts headless chromium (a fresh temporary profile each time). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Pages the tests are not looking at keep running at full speed, as a user's open tab does.
      '--disable-renderer-backgrounding', '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'],
  });
}

/** Runs kubectl; `input` goes to its stdin. */
export function kubectl(args, input) {
  return execFileSync('kubectl', ['--request-timeout=20s', ...args], { input, encoding: 'utf8', timeout: 30_000 });
}

/** A small CPU RayCluster: a head and one worker. */
export function smallCluster(namespace, name, extra = {}) {
  const container = (n) => ({ name: n, image: 'rayproject/ray:2.46.0',
    resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '1', memory: '2Gi' } } });
  return JSON.stringify({
    apiVersion: 'ray.io/v1', kind: 'RayCluster',
    metadata: { name, namespace, ...(extra.metadata ?? {}) },
    spec: {
      headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [container('ray-head')] } } },
      workerGroupSpecs: [{ groupName: 'cpu', replicas: 1, minReplicas: 0, maxReplicas: 3, rayStartParams: {},
        template: { spec: { containers: [container('ray-worker')] } } }],
      ...(extra.spec ?? {}),
    },
  });
}

/** A loopback port nothing listens on right now. */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** raydar behind an authenticating proxy on loopback: the caller plays the proxy. */
export const PROXY_MODE = ['--auth', 'proxy', '--trusted-proxies', '127.0.0.1/32'];

/**
 * Starts another raydar-server (the one under test, RAYDAR_SERVER) on a free loopback port with
 * `flags`, as its own ServiceAccount like the main one (or as `kubeconfig` says), with a history
 * of its own unless `flags` name one (an SQLite history is one process's); resolves once
 * /readyz answers with its `url` and `stop()`.
 */
export async function startRaydar(flags = PROXY_MODE, kubeconfig = process.env.RAYDAR_SERVER_KUBECONFIG) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const named = flags.includes('--data-dir') || flags.includes('--database');
  const data = named ? null : mkdtempSync(join(tmpdir(), 'raydar-e2e-'));
  const history = data ? ['--data-dir', data] : [];
  const server = spawn(process.env.RAYDAR_SERVER, ['--addr', `127.0.0.1:${port}`, ...history, ...flags],
    { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = () => {
    server.kill();
    if (data) rmSync(data, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${url}/readyz`)).ok) break; } catch {}
    if (i > 300 || server.exitCode !== null) {
      stop();
      throw new Error(`raydar-server ${flags.join(' ')} did not become ready at ${url}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop, pid: server.pid };
}

/**
 * A throwaway PostgreSQL server (Debian's `postgresql`, tools/install.sh) on 127.0.0.1 and a free
 * port, its files in a scratch folder, run as the `postgres` user when the tests run as root
 * (PostgreSQL refuses root); as server/tests/common/postgres.rs. Resolves with its `url` (for
 * `--database`) and `stop()`, which removes it.
 */
export async function startPostgres() {
  const bin = readdirSync('/usr/lib/postgresql').sort().reverse()
    .map((v) => `/usr/lib/postgresql/${v}/bin`).find((b) => { try { return readdirSync(b).includes('initdb'); } catch { return false; } });
  if (!bin) throw new Error('no PostgreSQL under /usr/lib/postgresql (tools/install.sh database)');
  const root = process.getuid() === 0;
  const run = (program, args) => execFileSync(root ? 'runuser' : `${bin}/${program}`,
    root ? ['-u', 'postgres', '--', `${bin}/${program}`, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const scratch = mkdtempSync(join(tmpdir(), 'raydar-e2e-postgres-'));
  if (root) {
    const [uid, gid] = ['-u', '-g'].map((o) => Number(execFileSync('id', [o, 'postgres'], { encoding: 'utf8' })));
    chownSync(scratch, uid, gid);
  }
  const data = join(scratch, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'raydar', '--no-sync']);
  const port = await freePort();
  run('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${scratch} -c listen_addresses=127.0.0.1 -c fsync=off`,
    '-l', join(scratch, 'postgres.log'), '-w', 'start']);
  return {
    url: `postgres://raydar@127.0.0.1:${port}/postgres`,
    stop() {
      try { run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']); } catch {}
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

export function ensureNamespace(name) {
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

/**
 * For a test file: before its tests, makes sure `namespace` exists and starts one browser; after
 * them, closes it. Returns a getter for that browser.
 */
export function useBrowser(namespace) {
  let browser;
  before(async () => {
    ensureNamespace(namespace);
    browser = await launch();
  });
  after(async () => { await browser?.close(); });
  return () => browser;
}

// ---- Real Ray behind head pods (deploy/local/ray/heads.py) ----
const local = process.env.RAYDAR_LOCAL ?? new URL('../.local', import.meta.url).pathname;

/** The IP of the cluster's head pod, once KubeRay reports it. */
export async function headIp(namespace, name, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ip = kubectl(['get', 'raycluster', '-n', namespace, name, '-o', 'jsonpath={.status.head.podIP}']).trim();
    if (ip) return ip;
    if (Date.now() > deadline) throw new Error(`${namespace}/${name} has no head pod IP after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The last `lines` lines of a file, or why there are none. */
function tail(path, lines = 40) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(${path}: ${e.code ?? e.message})`;
  }
}

/**
 * Waits until the cluster page open in `page` reaches Ray (its head's dashboard answers through
 * raydar). When it does not in time, the error carries what explains why: the pods, the page's Ray
 * section, the log of the process that runs Ray heads (deploy/local/ray/heads.py) and that head's
 * own log, so that a CI failure can be read without rerunning it.
 */
export async function waitForRay(page, namespace, name, timeoutMs = 90_000) {
  const said = watchPage(page);
  try {
    await page.locator('section.ray[data-ray="ok"]').waitFor({ timeout: timeoutMs });
  } catch (e) {
    const pods = (() => { try { return kubectl(['get', 'pods', '-n', namespace, '-o', 'wide']); } catch (k) { return k.message; } })();
    const section = await page.locator('section.ray').innerText().catch(() => '(no Ray section)');
    const state = `/tmp/raydar-ray${process.env.RAYDAR_PORT_OFFSET ?? 0}`;
    throw new Error([e.message, `pods:\n${pods}`, `Ray section:\n${section}`, await pageState(page, said),
      `heads.py:\n${tail(`${local}/state/logs/ray-heads.log`)}`,
      `head ${namespace}/${name}:\n${tail(`${state}/${namespace}_${name}.log`, 25)}`].join('\n'));
  }
}

/**
 * Starts noting what `page` says while a test waits on it: console errors, failed requests and
 * answers of 400 and above. For [`pageState`], when the wait fails.
 */
export function watchPage(page) {
  const said = [];
  const note = (line) => { if (said.length < 30) said.push(`${new Date().toISOString().slice(11, 23)} ${line}`); };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') note(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => note(`page error: ${e.message}`));
  page.on('requestfailed', (r) => note(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) note(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  return said;
}

/** What a page shows and said ([`watchPage`]): for a failed wait's message. */
export async function pageState(page, said = []) {
  const main = await page.locator('main').innerText({ timeout: 2_000 }).catch((e) => `(no main: ${e.message})`);
  return [`page ${page.url()} shows:\n${main.slice(0, 1200)}`,
    `the page said:\n${said.join('\n') || '(nothing)'}`].join('\n');
}

/** Submits a job with the real `ray job submit` (not waiting for it); `code` is Python. */
export function submitJob(ip, id, code) {
  return execFileSync(`${local}/ray/bin/ray`, ['job', 'submit', '--address', `http://${ip}:8265`, '--no-wait',
    '--submission-id', id, '--', 'python', '-c', code], { encoding: 'utf8', timeout: 60_000 });
}

/** Kills the Ray head serving `ip` (its pod stays Running, as with a crashed container). */
export function stopRayHead(ip) {
  const ns = `rdr${process.env.RAYDAR_PORT_OFFSET ?? 0}-${ip.replaceAll('.', '-')}`;
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (!pids.length) throw new Error(`no Ray processes in network namespace ${ns}`);
  execFileSync('kill', ['-9', ...pids]);
}
