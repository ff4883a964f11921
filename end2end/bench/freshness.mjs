// make bench: how fast a change in the apiserver reaches an open raydar page, next to
// `kubectl get rayclusters -w` receiving the same changes in the same run; and what a browser
// downloads for the first load of the cluster list.
//
// The benchmark cluster sets spec.managedBy to MultiKueue's name, so the real KubeRay operator
// leaves it alone and the benchmark alone writes its status: each change is one status patch.
import { base, launch, kubectl, smallCluster, ensureNamespace } from '../lib.mjs';
import { now, quantile, ms, kubectlProxy, followReadyWorkers } from './common.mjs';

const CHANGES = Number(process.env.BENCH_CHANGES ?? 120);
const WARMUP = 5;
const namespace = 'raydar-bench';
const name = `fresh-${Date.now().toString(36)}`;

async function freshness(browser) {
  ensureNamespace(namespace);
  kubectl(['create', '-f', '-'], smallCluster(namespace, name, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
  // Writes go through `kubectl proxy` so the benchmark needs no client certificates of its own.
  const proxy = await kubectlProxy();
  const page = await browser.newPage();
  await page.goto(`${base}/?namespace=${namespace}`);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
  // Records when each "ready/desired" text first appears in the row, by the same clock as here.
  const followed = await followReadyWorkers(page, namespace, name);

  const sent = new Map();
  const url = `${proxy.url}/apis/ray.io/v1/namespaces/${namespace}/rayclusters/${name}/status`;
  for (let i = 1; i <= CHANGES + WARMUP; i++) {
    const v = String(i);
    sent.set(v, now());
    const r = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ status: { readyWorkerReplicas: i, desiredWorkerReplicas: 1000 } }) });
    if (!r.ok) throw new Error(`status patch failed: ${r.status} ${await r.text()}`);
    // One change at a time: wait until both observers have it (or give up after 5 s).
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !(await followed.has(v))) await new Promise((r) => setTimeout(r, 2));
  }
  const { byPage: seenByPage, byKubectl: seenByKubectl } = await followed.seen();
  followed.stop(); proxy.stop();
  await page.close();
  kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);

  const raydar = [], kube = [];
  let missed = 0;
  for (let i = WARMUP + 1; i <= CHANGES + WARMUP; i++) {
    const v = String(i);
    if (!(v in seenByPage) || !seenByKubectl.has(v)) { missed++; continue; }
    raydar.push(seenByPage[v] - sent.get(v));
    kube.push(seenByKubectl.get(v) - sent.get(v));
  }
  if (raydar.length === 0) throw new Error(`none of ${CHANGES} changes was seen by both the page and kubectl get -w`);
  raydar.sort((a, b) => a - b); kube.sort((a, b) => a - b);
  console.log(`\nfreshness: status change in the apiserver -> shown (${raydar.length} changes, ${missed} missed)`);
  console.log('                         p50         p99');
  for (const [label, xs] of [['raydar page', raydar], ['kubectl get -w', kube]]) {
    console.log(`  ${label.padEnd(20)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
  }
  const r50 = quantile(raydar, 0.5) / quantile(kube, 0.5), r99 = quantile(raydar, 0.99) / quantile(kube, 0.99);
  console.log(`  ratio raydar/kubectl  ${r50.toFixed(2).padStart(10)} ${r99.toFixed(2).padStart(11)}   (target p99 <= 1.10)`);
  return { missed };
}

async function firstLoad(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const responses = [];
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes();
    const response = await request.response();
    responses.push({
      url: request.url().replace(base, ''),
      wire: sizes.responseBodySize + sizes.responseHeadersSize,
      encoding: (await response?.headerValue('content-encoding')) ?? 'identity',
      raw: (await response?.body().catch(() => Buffer.alloc(0)))?.length ?? 0,
    });
  });
  await page.goto(base, { waitUntil: 'networkidle' });
  await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
  await context.close();
  const total = responses.reduce((s, r) => s + r.wire, 0);
  const raw = responses.reduce((s, r) => s + r.raw, 0);
  console.log('\nfirst load of the cluster list (bytes on the wire incl. headers; uncompressed size beside)');
  for (const r of responses) {
    console.log(`  ${r.url.padEnd(28)} ${String(r.wire).padStart(8)}  ${r.encoding.padEnd(8)} ${String(r.raw).padStart(8)} raw`);
  }
  console.log(`  ${'total'.padEnd(28)} ${String(total).padStart(8)}  (${(total / 1024).toFixed(1)} KiB; uncompressed ${(raw / 1024).toFixed(1)} KiB; target <= 180 KB)`);
}

const browser = await launch();
try {
  const { missed } = await freshness(browser);
  await firstLoad(browser);
  if (missed > CHANGES / 10) { console.error(`too many changes never arrived: ${missed}`); process.exitCode = 1; }
} finally {
  await browser.close();
}
