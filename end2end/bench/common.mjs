// Shared by the benchmarks: one clock, quantiles, and following a command's output line by line.
import { spawn } from 'node:child_process';

/** Milliseconds since the epoch, sub-millisecond: comparable with a browser's timeOrigin + now(). */
export const now = () => performance.timeOrigin + performance.now();

/** The q-quantile (0..1) of numbers, nearest rank. */
export function quantile(xs, q) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const ms = (x) => `${x.toFixed(1)} ms`;

/** Starts a child process and calls onLine(line, time) for each stdout line as it arrives. */
export function follow(cmd, args, onLine, env) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: env ?? process.env });
  let buf = '';
  child.stdout.on('data', (chunk) => {
    const t = now();
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i), t); buf = buf.slice(i + 1); }
  });
  return child;
}

/**
 * Starts `kubectl proxy` on a free loopback port, to the apiserver `kubeconfig` names (default
 * KUBECONFIG's): writes through it need no certificates of their own.
 */
export async function kubectlProxy(kubeconfig) {
  let url;
  const env = kubeconfig ? { ...process.env, KUBECONFIG: kubeconfig } : undefined;
  const proxy = follow('kubectl', ['proxy', '--port=0', '--address=127.0.0.1'], (line) => {
    const m = line.match(/Starting to serve on (\S+)/);
    if (m) url = `http://${m[1]}`;
  }, env);
  for (let i = 0; i < 100 && !url; i++) await new Promise((r) => setTimeout(r, 100));
  if (!url) { proxy.kill(); throw new Error('kubectl proxy did not start'); }
  return { url, stop: () => proxy.kill() };
}

/**
 * Follows one cluster's `status.readyWorkerReplicas` two ways, by the same clock: `kubectl get -w`
 * and its row on the open list `page` (the Workers cell). `seen()` resolves with both maps of
 * value -> when it was first shown; `has(v)` says whether both have shown `v`.
 */
export async function followReadyWorkers(page, namespace, name) {
  const byKubectl = new Map();
  const watch = follow('kubectl', ['get', 'rayclusters', '-n', namespace, name, '-w', '--no-headers',
    '-o', 'custom-columns=READY:.status.readyWorkerReplicas'], (line, t) => {
    const v = line.trim();
    if (!byKubectl.has(v)) byKubectl.set(v, t);
  });
  await page.locator(`tr[data-cluster="${namespace}/${name}"]`).waitFor({ timeout: 10_000 });
  await page.evaluate((id) => {
    window.__seen = {};
    // The Workers cell found by its column's header, not by position: columns come and go (the
    // Kubernetes one, hidden while raydar serves one cluster, stands first).
    const column = [...document.querySelectorAll('thead th')].findIndex((th) => th.textContent.trim() === 'Workers');
    if (column < 0) throw new Error('the list has no Workers column');
    const record = () => {
      const cell = document.querySelector(`tr[data-cluster="${id}"]`)?.children[column];
      const v = cell?.textContent?.split('/')[0];
      if (v !== undefined && !(v in window.__seen)) window.__seen[v] = performance.timeOrigin + performance.now();
    };
    new MutationObserver(record).observe(document.querySelector('tbody'), { childList: true, subtree: true, characterData: true });
  }, `${namespace}/${name}`);
  return {
    has: async (v) => byKubectl.has(v) && await page.evaluate((x) => x in window.__seen, v),
    seen: async () => ({ byPage: await page.evaluate(() => window.__seen), byKubectl }),
    stop: () => watch.kill(),
  };
}
