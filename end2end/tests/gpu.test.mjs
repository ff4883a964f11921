// GPU charts and the fleet page, against the local control plane's stand-in dcgm-exporter
// (deploy/local/ray/dcgm.py: the one simulated part, as there are no GPUs here; it serves
// dcgm-exporter's real format, with load while the GPU's RayCluster runs a Ray job) and real Ray
// heads. Two GPU clusters: "busy" runs a job, "idle" none. A raydar of its own scrapes every 2 s and
// flags a cluster whose GPUs all stay below 10 % for 20 s. Then a second raydar asks the local
// plane's real Prometheus (which scrapes the same exporters) instead, from its first second on.
// Last, both clusters get an idle policy: the first raydar (dry-run) shows what it would reclaim,
// and one that acts warns and suspends the idle cluster and leaves the one running a job alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { ensureNamespace, headIp, kubectl, launch, startRaydar, submitJob, waitForRay } from '../lib.mjs';

const run = Date.now().toString(36).slice(-5);
const NS = `gpu-${run}`;
const EXPORTERS = ['-n', 'gpu-operator', '-l', 'app=nvidia-dcgm-exporter'];
let server, browser;

/** A RayCluster of a CPU head and one worker holding 2 GPUs, labelled with its team. */
function gpuCluster(name, team) {
  const container = (n, gpus) => ({ name: n, image: 'rayproject/ray:2.46.0',
    resources: { requests: { cpu: '1', memory: '2Gi' },
      limits: { cpu: '1', memory: '2Gi', ...(gpus ? { 'nvidia.com/gpu': String(gpus) } : {}) } } });
  return JSON.stringify({ apiVersion: 'ray.io/v1', kind: 'RayCluster',
    metadata: { name, namespace: NS, labels: { 'raydar.dev/team': team, 'raydar.dev/owner': 'gpu-test' } },
    spec: {
      headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [container('ray-head', 0)] } } },
      workerGroupSpecs: [{ groupName: 'gpu', replicas: 1, minReplicas: 0, maxReplicas: 2, rayStartParams: {},
        template: { spec: { containers: [container('ray-worker', 2)] } } }],
    } });
}

/** The cluster's GPU worker pod, once it runs on a node: { pod, node }. */
async function gpuWorker(name) {
  for (let i = 0; i < 120; i++) {
    const pods = JSON.parse(kubectl(['get', 'pods', '-n', NS, '-l', `ray.io/cluster=${name},ray.io/group=gpu`, '-o', 'json'])).items;
    const running = pods.find((p) => p.status?.phase === 'Running' && p.spec.nodeName);
    if (running) return { pod: running.metadata.name, node: running.spec.nodeName };
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${NS}/${name} has no running GPU worker:\n${kubectl(['get', 'pods', '-n', NS, '-o', 'wide'])}`);
}

/** What the exporter on `node` serves now: GPU index -> DCGM_FI_DEV_GPU_UTIL, for `pod`'s GPUs. */
function exporterUtil(node, pod) {
  const exporters = JSON.parse(kubectl(['get', 'pods', ...EXPORTERS, '-o', 'json'])).items;
  const exporter = exporters.find((p) => p.spec.nodeName === node);
  assert.ok(exporter, `no dcgm-exporter pod on ${node}`);
  const text = kubectl(['get', '--raw', `/api/v1/namespaces/gpu-operator/pods/${exporter.metadata.name}:9400/proxy/metrics`]);
  const util = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('DCGM_FI_DEV_GPU_UTIL{') || !line.includes(`pod="${pod}"`)) continue;
    util.set(Number(line.match(/gpu="(\d+)"/)[1]), Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return util;
}

/** The utilization chart's legend as the page shows it: GPU index -> latest %, and the average. */
async function chartLegend(page) {
  const img = page.locator('figure.chart[data-chart="util"] img');
  await img.waitFor();
  // After a reload the element is there before its image: wait until the image has loaded.
  await page.waitForFunction(() => {
    const i = document.querySelector('figure.chart[data-chart="util"] img');
    return i?.complete && i.naturalWidth > 0;
  }, null, { timeout: 30_000 }).catch(() => {});
  const { src, width } = await img.evaluate((i) => ({ src: i.currentSrc, width: i.naturalWidth }));
  assert.ok(width > 0, `the chart ${src} is not drawn`);
  const svg = await page.evaluate(async (u) => (await fetch(u)).text(), src);
  const latest = new Map();
  for (const [, gpu, value] of svg.matchAll(/>\s*GPU (\d+): (\d+) %\s*</g)) latest.set(Number(gpu), Number(value));
  const average = svg.match(/>\s*average: (\d+) %\s*</)?.[1];
  return { src, latest, average: average === undefined ? undefined : Number(average) };
}

/** What Prometheus holds now of `pod`'s GPUs: GPU index -> DCGM_FI_DEV_GPU_UTIL. */
async function prometheusUtil(pod) {
  const query = encodeURIComponent(`DCGM_FI_DEV_GPU_UTIL{namespace="${NS}",pod="${pod}"}`);
  const answer = await (await fetch(`${process.env.PROMETHEUS_URL}/api/v1/query?query=${query}`)).json();
  assert.equal(answer.status, 'success', JSON.stringify(answer));
  return new Map(answer.data.result.map((s) => [Number(s.metric.gpu), Number(s.value[1])]));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP relay on loopback to `target` (host:port) that can be taken down (every connection cut,
 * new ones refused, as when Prometheus' pod dies) and brought back on the same port.
 */
async function relay(target) {
  const [host, port] = target.split(':');
  const open = new Set();
  const server = createServer((inbound) => {
    const outbound = connect(Number(port), host);
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]]) {
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      open.add(a);
      a.on('close', () => open.delete(a));
    }
  });
  const listen = (at) => new Promise((resolve) => server.listen(at, '127.0.0.1', resolve));
  await listen(0);
  const at = server.address().port;
  return {
    url: `http://127.0.0.1:${at}`,
    down: () => new Promise((resolve) => {
      server.close(resolve);
      for (const socket of open) socket.destroy();
    }),
    up: () => listen(at),
  };
}
const getJson = async (url) => (await fetch(url)).json();

before(async () => {
  ensureNamespace(NS);
  kubectl(['apply', '-f', '-'], gpuCluster('busy', 'vision'));
  kubectl(['apply', '-f', '-'], gpuCluster('idle', 'speech'));
  // Dry-run: it shows what the clusters' idle policy would reclaim (the last test) and acts on none.
  server = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev',
    '--gpu-interval', '2', '--gpu-idle-below', '10', '--gpu-idle-after', '20s', '--history-gpu-step', '10s',
    '--idle-reclaim', 'dry-run']);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
  // Waited for: two Ray heads and a running job shutting down load the machine, and the next test
  // file should not start under that.
  try { kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--timeout=25s']); } catch { /* still going: fine */ }
});

test('a cluster chart shows the utilization the exporter serves, live, with its window choice', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/clusters/${NS}/busy`);
  const ip = await headIp(NS, 'busy');
  await waitForRay(page, NS, 'busy');
  submitJob(ip, `train-${run}`, 'import time; time.sleep(900)');
  const { pod, node } = await gpuWorker('busy');

  // The stand-in turns the running job into load; the page's table follows without a reload.
  await page.locator('tr[data-gpu] >> nth=1').waitFor({ timeout: 60_000 });
  await page.waitForFunction(() => [...document.querySelectorAll('tr[data-gpu]')].every((r) => Number(r.dataset.util) >= 10),
    null, { timeout: 90_000 });

  // Charts redraw as scrapes land, without a reload: the image's address moves on.
  const drawn = await chartLegend(page);
  await page.waitForFunction((src) => document.querySelector('figure.chart[data-chart="util"] img').currentSrc !== src,
    drawn.src, { timeout: 30_000 });
  // Ray's own view, from the head's metrics port through the apiserver's service proxy.
  await page.locator('p.ray-usage', { hasText: /Ray sees 1 node, CPU \d+ %, memory [\d.]+ GiB of [\d.]+ GiB/ }).waitFor({ timeout: 30_000 });

  // The exporter changes its values once per interval (5 s) and raydar scrapes every 2 s: a read
  // of the exporter, then of the chart 3 s later, then of the exporter again, with both exporter
  // reads the same, must find that value in the chart.
  let compared;
  for (let attempt = 0; attempt < 10 && !compared; attempt++) {
    const before = exporterUtil(node, pod);
    await new Promise((r) => setTimeout(r, 3000));
    await page.reload();
    const chart = await chartLegend(page);
    const afterwards = exporterUtil(node, pod);
    if (JSON.stringify([...before]) === JSON.stringify([...afterwards])) compared = { served: before, chart };
  }
  assert.ok(compared, 'the exporter never held still for one comparison in 10 tries');
  const { served, chart } = compared;
  assert.equal(served.size, 2, `the exporter serves ${pod}'s 2 GPUs`);
  assert.deepEqual([...chart.latest].sort(), [...served].sort(), 'the chart\'s latest values are the exporter\'s');
  const mean = Math.round([...served.values()].reduce((a, b) => a + b, 0) / served.size);
  assert.ok(Math.abs(chart.average - mean) <= 1, `average ${chart.average} % for ${[...served.values()]}`);
  assert.ok([...served.values()].every((u) => u >= 10), 'a GPU of a running job is busy');

  // The window buttons redraw the charts over the chosen span.
  await page.getByRole('button', { name: '6h' }).click();
  await page.waitForFunction(() => document.querySelector('figure.chart[data-chart="power"] img').currentSrc.includes('window=6h'));
  assert.match((await chartLegend(page)).src, /window=6h/);
  await page.close();
});

test('the fleet page flags the cluster whose GPUs sit idle and not the busy one', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/gpus`);
  const row = (name) => page.locator(`tr[data-cluster="${NS}/${name}"]`);
  // Idle after 20 s below 10 %; the page refreshes by itself.
  await page.locator(`tr[data-cluster="${NS}/idle"][data-idle="true"]`).waitFor({ timeout: 90_000 });
  await row('busy').waitFor();
  assert.equal(await row('busy').getAttribute('data-idle'), 'false');
  const cells = async (name) => (await row(name).locator('td').allInnerTexts());
  // team, owner, requested, held, busy, utilization, idle
  const [busyTeam, , busyRequested, busyHeld, busyBusy] = await cells('busy');
  assert.deepEqual([busyTeam, busyRequested, busyHeld, busyBusy], ['vision', '2', '2', '2']);
  const [idleTeam, , , idleHeld, idleBusy, , idleNote] = await cells('idle');
  assert.deepEqual([idleTeam, idleHeld, idleBusy], ['speech', '2', '0']);
  assert.match(idleNote, /idle .*GPU-h/);
  // By team: speech has one idle cluster, vision none.
  const team = (name) => page.locator(`tr[data-team="${name}"] td`).allInnerTexts();
  assert.equal((await team('speech'))[4], '1');
  assert.equal((await team('vision'))[4], '0');
  await page.close();
});

test('history keeps each cluster\'s GPU-hours, busy and idle, and its post-mortem charts them', async () => {
  const uid = (name) => kubectl(['get', 'raycluster', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}']).trim();
  const steps = async (name) => (await getJson(`${server.url}/api/v1/history/clusters/${uid(name)}`)).gpuUse ?? [];
  // This raydar writes a step every 10 s. The running job's GPUs are busy (in its latest steps:
  // it started after the first), the other cluster's idle; 2 GPUs held throughout.
  const full = (list) => list.filter((s) => s.gpus === 2);
  const shown = ({ busy, idle }) => full(busy).length >= 2 && full(idle).length >= 2
    && full(busy).slice(-2).every((s) => s.busyS > 0 && s.util >= 10)
    && full(idle).every((s) => s.busyS === 0 && s.idleS > 0 && s.util < 10);
  let seen = { busy: [], idle: [] };
  for (let i = 0; i < 90 && !shown(seen); i++) {
    if (i) await sleep(1000);
    seen = { busy: await steps('busy'), idle: await steps('idle') };
  }
  assert.ok(shown(seen), JSON.stringify(seen));

  const page = await browser.newPage();
  try {
    await page.goto(`${server.url}/history/${uid('busy')}`);
    const hours = page.locator('.gpu-use p.gpu-hours');
    await hours.waitFor({ timeout: 15_000 });
    const said = await hours.textContent();
    const [held, used, wasted] = said.match(/([\d.]+) GPU-hours held: ([\d.]+) busy, ([\d.]+) idle/).slice(1).map(Number);
    assert.ok(held > 0 && used > 0 && Math.abs(used + wasted - held) < 0.011, said);
    const points = await page.locator('svg.gpu-chart polyline').getAttribute('points');
    assert.ok(points.trim().split(/\s+/).length >= 2, `a line of at least two steps: ${points}`);
  } finally {
    await page.close();
  }
});

test('with --prometheus, a raydar started now flags the idle cluster at once and shows what Prometheus holds', async () => {
  assert.ok(process.env.PROMETHEUS_URL, 'PROMETHEUS_URL is set by scripts/raydar.sh run');
  const started = Date.now() / 1000;
  const asking = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev',
    '--prometheus', process.env.PROMETHEUS_URL, '--gpu-interval', '2', '--gpu-idle-below', '10', '--gpu-idle-after', '20s']);
  try {
    // Idle for 20 s is flagged as soon as the history is read: it comes from Prometheus, so it
    // reaches back before this raydar started.
    let fleet, idle;
    for (let i = 0; i < 100 && !idle?.idle; i++) {
      if (i) await sleep(200);
      fleet = await getJson(`${asking.url}/api/v1/gpus`);
      idle = fleet.clusters.find((c) => c.namespace === NS && c.name === 'idle');
    }
    assert.ok(idle?.idle, `the idle cluster is not flagged: ${JSON.stringify(fleet)}`);
    assert.ok(Date.now() / 1000 - started < 20, 'flagged sooner than 20 s of its own samples could');
    assert.ok(idle.idle.since < started - 20, `idle since ${idle.idle.since}, raydar started at ${started}`);
    const busy = fleet.clusters.find((c) => c.namespace === NS && c.name === 'busy');
    assert.deepEqual([busy.idle, busy.held, busy.busy], [null, 2, 2], JSON.stringify(busy));

    // Prometheus scrapes every 5 s and this raydar asks every 2 s: a read of Prometheus, then of
    // raydar 2.5 s later, then of Prometheus again, with both Prometheus reads the same, must
    // find that value in raydar.
    const { pod } = await gpuWorker('busy');
    let compared;
    for (let attempt = 0; attempt < 10 && !compared; attempt++) {
      const before = await prometheusUtil(pod);
      await sleep(2500);
      const panel = await getJson(`${asking.url}/api/v1/clusters/${NS}/busy/gpus`);
      const afterwards = await prometheusUtil(pod);
      if (JSON.stringify([...before]) === JSON.stringify([...afterwards])) compared = { held: before, panel };
    }
    assert.ok(compared, 'Prometheus never held still for one comparison in 10 tries');
    const { held, panel } = compared;
    assert.equal(held.size, 2, `Prometheus holds ${pod}'s 2 GPUs`);
    assert.deepEqual(panel.errors, []);
    assert.deepEqual(new Map(panel.gpus.map((g) => [g.index, g.util])), held, 'raydar shows what Prometheus holds');
    assert.ok([...held.values()].every((u) => u >= 10), 'a GPU of a running job is busy');
  } finally {
    asking.stop();
  }
});

test('with Prometheus gone, the GPU pages keep the last numbers, say since when and why, and are live again when it is back', async () => {
  const prometheus = await relay(new URL(process.env.PROMETHEUS_URL).host);
  const asking = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev',
    '--prometheus', prometheus.url, '--gpu-interval', '2']);
  const page = await browser.newPage();
  try {
    await page.goto(`${asking.url}/clusters/${NS}/busy`);
    const rows = page.locator('tr[data-gpu]');
    await rows.nth(1).waitFor({ timeout: 60_000 });
    const note = page.locator('section.gpus p[data-stale]');
    assert.equal(await note.count(), 0, 'not stale while Prometheus answers');
    const held = async () => (await getJson(`${asking.url}/api/v1/clusters/${NS}/busy/gpus`));

    await prometheus.down();
    await note.waitFor({ timeout: 15_000 });
    assert.match(await note.textContent(), new RegExp(`^Not updated for \\d+s: Prometheus ${prometheus.url}: `));
    // Longer than a GPU may miss readings (3 rounds of 2 s): still held, not gone.
    await sleep(8_000);
    assert.equal(await rows.count(), 2, 'the last readings stay on the page');
    const panel = await held();
    assert.equal(panel.gpus.length, 2, JSON.stringify(panel));
    assert.ok(panel.stale?.since <= panel.now - 7, `stale since the outage: ${JSON.stringify(panel.stale)}`);
    const fleet = await getJson(`${asking.url}/api/v1/gpus`);
    const busy = fleet.clusters.find((c) => c.namespace === NS && c.name === 'busy');
    assert.deepEqual([busy?.held, fleet.stale?.since], [2, panel.stale.since], JSON.stringify(fleet));
    // The age on the page grows by itself (nothing new is pushed meanwhile).
    const age = async () => Number((await note.textContent()).match(/for (\d+)s/)[1]);
    const first = await age();
    await page.waitForFunction((n) => Number(document.querySelector('section.gpus p[data-stale]')
      ?.textContent.match(/for (\d+)s/)?.[1]) > n, first, { timeout: 5_000 });

    await prometheus.up();
    await note.waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal((await held()).stale, undefined);
    assert.equal(await rows.count(), 2);
  } finally {
    await page.close();
    asking.stop();
    await prometheus.down();
  }
});

/** The Events raydar recorded on `name` with `reason`. */
function eventsOf(name, reason) {
  const list = JSON.parse(kubectl(['get', 'events', '-n', NS, '--field-selector',
    `involvedObject.kind=RayCluster,involvedObject.name=${name},reason=${reason}`, '-o', 'json'])).items;
  return list.map((e) => e.message);
}

/** The value of the metric line `name` (with its labels) in raydar's /metrics. */
async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test('idle reclaim: dry-run shows what the policy would reclaim; on, the idle cluster is warned, then suspended, and the one running a job is left alone', async () => {
  // The policy a launch from a template with `policy.idle` stamps on its cluster (the rendering
  // is unit-tested in platform): idle below 10 % for 1 minute, then suspended.
  const policy = JSON.stringify({ gpuBelow: 10, after: '1m', action: 'suspend' });
  for (const name of ['busy', 'idle']) {
    kubectl(['annotate', 'raycluster', name, '-n', NS, `raydar.dev/idle=${policy}`, '--overwrite']);
  }
  const suspended = (name) => kubectl(['get', 'raycluster', name, '-n', NS, '-o', 'jsonpath={.spec.suspend}']).trim() === 'true';

  // Dry-run: idle for minutes already, so past its window at once, with GPU-hours it would save.
  const page = await browser.newPage();
  try {
    let reclaims;
    for (let i = 0; i < 60; i++) {
      if (i) await sleep(1000);
      reclaims = (await getJson(`${server.url}/api/v1/gpus`)).reclaims;
      const idle = reclaims.clusters.find((c) => c.namespace === NS && c.name === 'idle');
      if (idle && idle.gpuHoursSaved > 0) break;
    }
    assert.equal(reclaims.mode, 'dry-run');
    const idle = reclaims.clusters.find((c) => c.namespace === NS && c.name === 'idle');
    assert.ok(idle && idle.gpuHoursSaved > 0, JSON.stringify(reclaims));
    assert.deepEqual([idle.gpus, idle.action, idle.afterS, idle.gpuBelow], [2, 'suspend', 60, 10]);
    assert.ok(idle.dueAt <= Date.now() / 1000, `past its window: ${JSON.stringify(idle)}`);
    assert.ok(!reclaims.clusters.some((c) => c.namespace === NS && c.name === 'busy'), 'a cluster running a job is not idle');

    await page.goto(`${server.url}/gpus`);
    const row = page.locator(`tr[data-reclaim="${NS}/idle"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.match(await page.locator('p.reclaim-mode[data-mode="dry-run"]').textContent(), /would have saved [\d.]+ GPU-hours/);
    const cells = await row.locator('td').allInnerTexts();
    // team, owner, GPUs, idle for, policy, due, GPU-hours saved
    assert.deepEqual([cells[0], cells[2], cells[4]], ['speech', '2', 'below 10 % for 1m, then suspend']);
    assert.match(cells[5], /ago$/);
    assert.equal(await page.locator(`tr[data-reclaim="${NS}/busy"]`).count(), 0);
    assert.equal(await metric(server.url, 'raydar_idle_reclaim_mode{mode="dry-run"}'), 1);
    assert.equal(await metric(server.url, 'raydar_idle_clusters_due'), 1);
    assert.equal(await metric(server.url, 'raydar_idle_gpus_due'), 2);
    assert.ok(await metric(server.url, 'raydar_idle_gpu_hours_saved') > 0);
    // A dry run acts on nothing, however long.
    await sleep(6_000);
    assert.equal(suspended('idle'), false);
    assert.deepEqual(eventsOf('idle', 'IdleReclaimed'), []);
  } finally {
    await page.close();
  }

  // On: a raydar that acts, elected by a Lease of its own (the shared raydar of these tests, run
  // with --idle-reclaim dry-run by make test-e2e, holds the usual one). Its GPU history begins
  // now, so the idle cluster's minute begins now too: warned 15 s before, then suspended.
  const acting = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev',
    '--gpu-interval', '2', '--idle-reclaim', 'on', '--lease-name', `raydar-lifecycle-${NS}`]);
  const watching = await browser.newPage();
  try {
    await watching.goto(`${acting.url}/clusters/${NS}/idle`);
    const banner = watching.locator('section.gpus p[data-reclaim="suspend"]');
    await banner.waitFor({ timeout: 120_000 });
    assert.match(await banner.textContent(), /will have it suspended in \d+s unless it is used/);
    for (let i = 0; i < 90 && !suspended('idle'); i++) await sleep(1000);
    assert.ok(suspended('idle'), 'the idle cluster is suspended once idle for its window');
    const warned = eventsOf('idle', 'IdleSoon');
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.match(warned[0], /will have it suspended in \d+s unless it is used: every GPU it holds has been below 10 % with no Ray job pending or running since/);
    const [reclaimed] = eventsOf('idle', 'IdleReclaimed');
    assert.match(reclaimed ?? '', /^raydar suspended it: idle for 1m/);
    assert.equal(await metric(acting.url, 'raydar_idle_reclaims_total'), 1);
    // History keeps both, with the reason, past the apiserver's hour.
    const uid = kubectl(['get', 'raycluster', 'idle', '-n', NS, '-o', 'jsonpath={.metadata.uid}']).trim();
    let kept = [];
    for (let i = 0; i < 30 && kept.length < 2; i++) {
      if (i) await sleep(1000);
      const events = (await getJson(`${acting.url}/api/v1/history/clusters/${uid}`)).events ?? [];
      kept = events.filter((e) => ['IdleSoon', 'IdleReclaimed'].includes(e.reason));
    }
    assert.deepEqual(kept.map((e) => e.reason).sort(), ['IdleReclaimed', 'IdleSoon'], JSON.stringify(kept));
    // The cluster running a job: neither warned nor suspended.
    assert.equal(suspended('busy'), false);
    assert.deepEqual(eventsOf('busy', 'IdleSoon'), []);
  } finally {
    await watching.close();
    acting.stop();
  }
});
