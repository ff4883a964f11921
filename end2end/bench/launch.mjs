// make bench: launch overhead. `POST /api/v1/clusters` (render, server-side dry-run, server-side
// apply) until the RayCluster is stored, next to `kubectl create -f` of the same rendered manifest,
// and to a bare POST of it to the apiserver (through `kubectl proxy`, so no process start).
import { spawn } from 'node:child_process';
import { base, kubectl, ensureNamespace } from '../lib.mjs';
import { quantile } from './common.mjs';

const RUNS = Number(process.env.BENCH_LAUNCHES ?? 30);
const namespace = 'raydar-bench-launch';
const now = () => performance.now();

ensureNamespace(namespace);
let proxyUrl;
const proxy = spawn('kubectl', ['proxy', '--port=0', '--address=127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
proxy.stdout.on('data', (d) => { const m = String(d).match(/Starting to serve on (\S+)/); if (m) proxyUrl = `http://${m[1]}`; });
for (let i = 0; i < 100 && !proxyUrl; i++) await new Promise((r) => setTimeout(r, 100));
if (!proxyUrl) throw new Error('kubectl proxy did not start');

const launch = (name, dryRun) => fetch(`${base}/api/v1/clusters${dryRun ? '?dryRun=true' : ''}`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ template: 'cpu-small', namespace, name, parameters: {} }),
});
const tag = Date.now().toString(36);
const api = [], create = [], bare = [];
try {
  for (let i = 0; i < RUNS; i++) {
    let t = now();
    const r = await launch(`api-${tag}-${i}`, false);
    if (r.status !== 201) throw new Error(`launch failed: ${r.status} ${await r.text()}`);
    api.push(now() - t);

    const manifest = (await (await launch(`kc-${tag}-${i}`, true)).json()).manifest;
    t = now();
    kubectl(['create', '-f', '-'], JSON.stringify(manifest));
    create.push(now() - t);

    manifest.metadata.name = `raw-${tag}-${i}`;
    t = now();
    const raw = await fetch(`${proxyUrl}/apis/ray.io/v1/namespaces/${namespace}/rayclusters`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(manifest) });
    if (raw.status !== 201) throw new Error(`bare create failed: ${raw.status}`);
    bare.push(now() - t);
  }
} finally {
  proxy.kill();
  kubectl(['delete', 'rayclusters', '--all', '-n', namespace, '--wait=false']);
}
const row = (label, xs) => console.log(`  ${label.padEnd(34)} ${quantile(xs, 0.5).toFixed(1).padStart(8)} ms ${quantile(xs, 0.99).toFixed(1).padStart(8)} ms`);
console.log(`\nlaunch: request until the RayCluster is stored (${RUNS} launches each)`);
console.log('                                          p50          p99');
row('POST /api/v1/clusters (raydar)', api);
row('kubectl create -f (same manifest)', create);
row('bare POST to the apiserver', bare);
console.log(`  ratio raydar / kubectl create      ${(quantile(api, 0.5) / quantile(create, 0.5)).toFixed(2).padStart(8)}    ${(quantile(api, 0.99) / quantile(create, 0.99)).toFixed(2).padStart(8)}   (target <= 1.5)`);
