// make bench: raydar over a fleet. Builds 10,000 RayClusters and 50,000 Ray pods on the local
// control plane (bulk, in parallel, through `kubectl proxy`), then prints, each next to a baseline
// measured in the same run:
//   - raydar-server's memory (RSS) before and with the fleet (DESIGN.md: <= 150 MB);
//   - the list API's p50/p99 for a page, filtered, searched, sorted and deep-paged (<= 20 ms p99),
//     next to `kubectl get rayclusters -A -o json`;
//   - the list page's HTML and its time to live in Chromium (<= 1 s);
//   - push freshness under a churn of 100 changes a second, next to `kubectl get -w`;
// and removes the fleet.
//
// The fleet's objects and how they are written: fleet-objects.mjs.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { base, launch } from '../lib.mjs';
import { now, quantile, ms, kubectlProxy, followReadyWorkers } from './common.mjs';
import { buildFleet, fleetName as clusterName, fleetNamespace, kubeWriter, removeFleet as removeNamespaces } from './fleet-objects.mjs';

const CLUSTERS = Number(process.env.BENCH_FLEET_CLUSTERS ?? 10_000);
const PODS_PER_CLUSTER = Number(process.env.BENCH_FLEET_PODS_PER_CLUSTER ?? 5);
const CHURN_PER_S = 100;
const FRESH = Number(process.env.BENCH_FLEET_CHANGES ?? 60);
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const ns = (i) => fleetNamespace(i);
const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${process.env.RAYDAR_PID}/status`, 'utf8'))[1]) / 1024;

// Writes go through `kubectl proxy`: the bench needs no client certificates of its own.
const proxy = await kubectlProxy();
const kube = kubeWriter(proxy.url);
// A keep-alive connection raydar closed (idle past --header-timeout) is opened again, as
// browsers do; such a try is never the one timed.
const get = async (path) => {
  try { return await fetch(`${base}${path}`); } catch { return fetch(`${base}${path}`); }
};
const metric = async (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await get('/metrics')).text())?.[1]);
const timed = async (f) => { const t = now(); await f(); return now() - t; };

function report(title, rows) {
  console.log(`\n${title}`);
  console.log('                                   p50         p99');
  for (const [label, xs] of rows) console.log(`  ${label.padEnd(30)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
}

const removeFleet = () => removeNamespaces(kube);

const browser = await launch();
try {
  const before = { rss: rssMiB(), clusters: await metric('raydar_rayclusters'), pods: await metric('raydar_ray_pods') };

  // Build the fleet.
  const built = now();
  const clustersIn = await buildFleet(kube, Array.from({ length: CLUSTERS }, (_, i) => i), PODS_PER_CLUSTER);
  const builtIn = now() - built;
  console.log(`\nfleet: ${CLUSTERS} RayClusters (${(clustersIn / 1000).toFixed(1)} s) and ${CLUSTERS * PODS_PER_CLUSTER} Ray pods created, status written, in ${(builtIn / 1000).toFixed(1)} s`);

  // raydar has them all when its stores count them.
  const want = { clusters: before.clusters + CLUSTERS, pods: before.pods + CLUSTERS * PODS_PER_CLUSTER };
  for (let i = 0; i < 600; i++) {
    if (await metric('raydar_rayclusters') >= want.clusters && await metric('raydar_ray_pods') >= want.pods) break;
    await sleep(500);
  }
  await sleep(2000);
  const after = { rss: rssMiB(), clusters: await metric('raydar_rayclusters'), pods: await metric('raydar_ray_pods') };
  console.log('\nmemory of raydar-server (RSS)');
  console.log(`  before the fleet   ${before.rss.toFixed(1).padStart(7)} MiB  (${before.clusters} clusters, ${before.pods} Ray pods)`);
  console.log(`  with the fleet     ${after.rss.toFixed(1).padStart(7)} MiB  (${after.clusters} clusters, ${after.pods} Ray pods)   target <= 150 MB`);

  // The list API, as pages and scripts ask it.
  const api = async (query, n = 100) => {
    const times = [];
    for (let i = 0; i < n; i++) {
      await get('/healthz');
      times.push(await timed(async () => { await (await fetch(`${base}/api/v1/clusters${query}`)).arrayBuffer(); }));
    }
    return times;
  };
  await api('', 10);
  const deep = (await (await get('/api/v1/clusters?sort=newest&limit=1000')).json()).next;
  const kubectlTimes = [];
  // The whole list read, as a script reads it (tens of MB: more than execFileSync's default buffer).
  const kubectlList = () => execFileSync('kubectl', ['get', 'rayclusters', '-A', '-o', 'json'], { maxBuffer: 1 << 30, timeout: 120_000 });
  const rows = [
    ['first page (100)', await api('')],
    ['team filter', await api('?team=team-3')],
    ['free text', await api('?q=fleet-0042')],
    ['by GPUs', await api('?sort=gpus')],
    ['phase Ready, limit 1000', await api('?phase=Ready&limit=1000', 30)],
    ['newest, page 2 (cursor)', await api(`?sort=newest&cursor=${encodeURIComponent(deep)}`)],
  ];
  for (let i = 0; i < 3; i++) kubectlTimes.push(await timed(async () => kubectlList()));
  report(`list API at ${after.clusters} clusters (whole answer read)`, [...rows, ['kubectl get rayclusters -A -o json', kubectlTimes]]);
  console.log('  target: raydar p99 <= 20 ms');

  // The page: its HTML and its time to live.
  const html = await (await get('/')).text();
  const live = [];
  for (let i = 0; i < 5; i++) {
    const page = await browser.newPage();
    const t = now();
    await page.goto(base);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 30_000 });
    live.push(now() - t);
    await page.close();
  }
  console.log(`\nlist page at ${after.clusters} clusters: ${(html.length / 1024).toFixed(1)} KiB of HTML (uncompressed), live ${ms(quantile(live, 0.5))} p50, ${ms(Math.max(...live))} worst of ${live.length} (target <= 1 s)`);

  // Freshness under churn: 100 status changes a second across the fleet, while one cluster on
  // the open page changes, one change at a time, watched by the page and by `kubectl get -w`.
  const watched = 0;
  const [wNs, wName] = [ns(watched), clusterName(watched)];
  let churning = true;
  let churned = 0;
  const churn = (async () => {
    const started = now();
    while (churning) {
      const i = 1 + Math.floor(Math.random() * (CLUSTERS - 1));
      churned++;
      kube('PATCH', `/apis/ray.io/v1/namespaces/${ns(i)}/rayclusters/${clusterName(i)}/status`,
        { status: { readyWorkerReplicas: churned % PODS_PER_CLUSTER } }, 'application/merge-patch+json').catch(() => {});
      const due = started + (churned / CHURN_PER_S) * 1000;
      await sleep(Math.max(0, due - now()));
    }
  })();
  const page = await browser.newPage();
  await page.goto(`${base}/?namespace=${wNs}`);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 30_000 });
  const followed = await followReadyWorkers(page, wNs, wName);
  const sent = new Map();
  for (let k = 1; k <= FRESH; k++) {
    const v = String(100 + k);
    sent.set(v, now());
    await kube('PATCH', `/apis/ray.io/v1/namespaces/${wNs}/rayclusters/${wName}/status`,
      { status: { readyWorkerReplicas: 100 + k } }, 'application/merge-patch+json');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !(await followed.has(v))) await sleep(2);
  }
  const { byPage: seenByPage, byKubectl: seenByKubectl } = await followed.seen();
  churning = false;
  await churn;
  followed.stop();
  await page.close();
  const raydar = [], kube_ = [];
  for (const [v, t] of sent) {
    if (v in seenByPage && seenByKubectl.has(v)) { raydar.push(seenByPage[v] - t); kube_.push(seenByKubectl.get(v) - t); }
  }
  if (raydar.length === 0) throw new Error(`none of ${FRESH} changes was seen by both the page and kubectl get -w`);
  report(`freshness under a churn of ${CHURN_PER_S} changes/s (${raydar.length} of ${FRESH} changes seen by both)`, [
    ['raydar page', raydar], ['kubectl get -w', kube_]]);
  console.log(`  ratio raydar/kubectl p99 ${(quantile(raydar, 0.99) / quantile(kube_, 0.99)).toFixed(2)}   (target <= 1.10); RSS now ${rssMiB().toFixed(1)} MiB`);
} finally {
  await browser.close();
  {
    const t = now();
    await removeFleet().catch((e) => console.error(`removing the fleet: ${e.message}`));
    console.log(`\nfleet removal asked in ${((now() - t) / 1000).toFixed(1)} s (namespaces finish deleting in the background)`);
  }
  proxy.stop();
}
