// make bench: how fast changes reach a cluster's page and its GPU section, which the server
// pushes (nothing is polled by the browser).
//
// - Pods: a pod of the cluster created in the apiserver -> its row on the open cluster page,
//   next to `kubectl get pods -w` seeing the same pod in the same run (the list's benchmark,
//   freshness.mjs, does the same for RayClusters).
// - GPUs: a scrape recorded by raydar -> the page's charts asking for it, next to a client that
//   asks the JSON API for the same panel every 50 ms (what a page that polled would see at best).
//   A raydar of its own scrapes every second for this.
import { base, kubectl, smallCluster, ensureNamespace, launch, startRaydar } from '../lib.mjs';
import { now, quantile, ms, follow } from './common.mjs';

const PODS = Number(process.env.BENCH_PODS ?? 40);
const ROUNDS = Number(process.env.BENCH_GPU_ROUNDS ?? 30);
const WARMUP = 3;
const namespace = 'raydar-bench';
const name = `pages-${Date.now().toString(36)}`;

function report(title, rows, target) {
  console.log(`\n${title}`);
  console.log('                         p50         p99');
  for (const [label, xs] of rows) {
    console.log(`  ${label.padEnd(20)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
  }
  const [[, a], [, b]] = rows;
  const r50 = quantile(a, 0.5) / quantile(b, 0.5), r99 = quantile(a, 0.99) / quantile(b, 0.99);
  console.log(`  ratio                ${r50.toFixed(2).padStart(10)} ${r99.toFixed(2).padStart(11)}   ${target}`);
}

function pod(i) {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: `${name}-p${i}`, namespace, labels: {
      'ray.io/is-ray-node': 'yes', 'ray.io/cluster': name, 'ray.io/node-type': 'worker', 'ray.io/group': 'bench' } },
    spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.60.0' }] },
  });
}

async function pods(browser) {
  const seenByKubectl = new Map();
  const watch = follow('kubectl', ['get', 'pods', '-n', namespace, '-l', `ray.io/cluster=${name}`, '-w',
    '--no-headers', '-o', 'custom-columns=NAME:.metadata.name'], (line, t) => {
    const v = line.trim();
    if (v && !seenByKubectl.has(v)) seenByKubectl.set(v, t);
  });
  const page = await browser.newPage();
  await page.goto(`${base}/clusters/${namespace}/${name}`);
  await page.getByText('No pods: KubeRay has not created them').waitFor({ timeout: 30_000 });
  await page.evaluate(() => {
    window.__seen = {};
    const record = () => {
      for (const row of document.querySelectorAll('tr[data-pod]')) {
        if (!(row.dataset.pod in window.__seen)) window.__seen[row.dataset.pod] = performance.timeOrigin + performance.now();
      }
    };
    new MutationObserver(record).observe(document.querySelector('main'), { childList: true, subtree: true });
  });
  const sent = new Map();
  for (let i = 1; i <= PODS + WARMUP; i++) {
    const id = `${name}-p${i}`;
    sent.set(id, now());
    kubectl(['create', '-f', '-'], pod(i));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const seenPage = await page.evaluate((x) => x in window.__seen, id);
      if (seenPage && seenByKubectl.has(id)) break;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const seenByPage = await page.evaluate(() => window.__seen);
  watch.kill();
  await page.close();
  kubectl(['delete', 'pods', '-n', namespace, '-l', `ray.io/cluster=${name}`, '--grace-period=0', '--force', '--wait=false']);
  const raydar = [], kube = [];
  let missed = 0;
  for (let i = WARMUP + 1; i <= PODS + WARMUP; i++) {
    const id = `${name}-p${i}`;
    if (!(id in seenByPage) || !seenByKubectl.has(id)) { missed++; continue; }
    raydar.push(seenByPage[id] - sent.get(id));
    kube.push(seenByKubectl.get(id) - sent.get(id));
  }
  // `kubectl create` itself takes part of each delay, for both observers alike.
  report(`cluster page: pod created in the apiserver -> its row shown (${raydar.length} pods, ${missed} missed)`,
    [['raydar page', raydar], ['kubectl get -w', kube]], '(target p99 <= 1.10)');
  return missed;
}

async function gpus(browser) {
  const raydar = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev', '--gpu-interval', '1s']);
  try {
    const api = `${raydar.url}/api/v1/clusters/${namespace}/${name}/gpus`;
    const page = await browser.newPage();
    await page.goto(`${raydar.url}/clusters/${namespace}/${name}`);
    await page.locator('figure[data-chart="util"] img').waitFor({ timeout: 30_000 });
    // When the page asks for the chart of each scrape (its src carries the scrape's time).
    const seenByPage = new Map();
    page.on('request', (r) => {
      const m = r.url().match(/\/gpus\/util\.svg\?.*theme=light.*&at=(\d+)/);
      if (m && !seenByPage.has(m[1])) seenByPage.set(m[1], now());
    });
    const seenByPoller = new Map();
    const origin = { headers: { origin: raydar.url } };
    for (let polls = 0; seenByPoller.size < ROUNDS + WARMUP && polls < (ROUNDS + WARMUP) * 60; polls++) {
      const panel = await (await fetch(api, origin)).json();
      const at = String(panel.scrapedAt ?? panel.scraped_at ?? '');
      if (at && !seenByPoller.has(at)) seenByPoller.set(at, now());
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1500));
    await page.close();
    const pushed = [], polled = [];
    let missed = 0;
    const rounds = [...seenByPoller.keys()].slice(WARMUP);
    for (const at of rounds) {
      if (!seenByPage.has(at)) { missed++; continue; }
      // Both from the scrape's time (whole seconds), so only the difference is exact.
      pushed.push(seenByPage.get(at) - Number(at) * 1000);
      polled.push(seenByPoller.get(at) - Number(at) * 1000);
    }
    report(`GPU section: scrape recorded -> charts asked for it (${pushed.length} scrapes, ${missed} missed; from the scrape's whole second)`,
      [['pushed to the page', pushed], ['polled every 50 ms', polled]], '(push needs no polling to keep up)');
    return missed;
  } finally {
    raydar.stop();
  }
}

ensureNamespace(namespace);
kubectl(['create', '-f', '-'], smallCluster(namespace, name, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
const browser = await launch();
try {
  const missedPods = await pods(browser);
  const missedRounds = await gpus(browser);
  if (missedPods > PODS / 10 || missedRounds > ROUNDS / 10) {
    console.error(`too many changes never arrived: ${missedPods} pods, ${missedRounds} scrapes`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
  kubectl(['delete', 'raycluster', '-n', namespace, name, '--wait=false']);
}
