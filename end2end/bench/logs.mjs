// make bench: live logs. For a Ray job's log and a pod's log, each read at the same time by an
// open raydar log viewer (a real browser), by raydar's stream API without a browser, and by the
// native tool (`ray job logs --follow`, `kubectl logs -f`):
//   - lines per second while the writer prints as fast as it can (first to last line seen);
//   - delay from print to shown, p50/p99, for lines printed every 50 ms;
// and raydar-server's memory (RSS) with 100 viewers of one log and with 20 different logs.
//
// The job runs on the real Ray head behind the benchmark cluster's head pod; the pod log is
// served by kwok from a file this benchmark appends to (CRI format), as kubelet serves container logs.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base, launch, kubectl, smallCluster, ensureNamespace, headIp, submitJob } from '../lib.mjs';
import { now, quantile, ms, follow } from './common.mjs';

const FLOOD = Number(process.env.BENCH_LOG_LINES ?? 100_000);
const TICKS = Number(process.env.BENCH_LOG_TICKS ?? 120);
// BENCH_LOG_PROFILE=1: also prints where the viewer's page spent its CPU during the pod flood
// (Chromium's sampling profiler, self time by function), for finding what limits the viewer.
const PROFILE = process.env.BENCH_LOG_PROFILE === '1';
const namespace = 'raydar-bench-logs';
const tag = Date.now().toString(36).slice(-5);
const cluster = `logs-${tag}`;
const local = process.env.RAYDAR_LOCAL ?? new URL('../../.local', import.meta.url).pathname;
const rayCli = `${local}/ray/bin/ray`;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

/** raydar-server's resident memory in MiB (scripts/raydar.sh run passes its pid). */
function rssMiB() {
  const pid = process.env.RAYDAR_PID;
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Reads raydar's server-sent stream of a log without a browser; calls onLines(lines, time).
 * Returns a stop function.
 */
function stream(path, onLines, onEvent = () => {}) {
  const abort = new AbortController();
  (async () => {
    const res = await fetch(`${base}${path}/stream`, { signal: abort.signal });
    if (!res.ok) throw new Error(`${path}/stream: ${res.status}`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      const t = now();
      buf += decoder.decode(chunk, { stream: true });
      const blocks = buf.split('\n\n');
      buf = blocks.pop();
      for (const block of blocks) {
        const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (event === 'lines') onLines(JSON.parse(data).lines, t);
        else onEvent(event, data);
      }
    }
  })().catch((e) => { if (e.name !== 'AbortError') console.error(`stream ${path}: ${e.message}`); });
  return () => abort.abort();
}

/**
 * In the page: counts the lines added to the viewer, and records when each line (its key,
 * matched by `pattern`) was added. With `newestOnly` (for a flood, where only the last line's
 * time counts), just the newest line of each insertion is read: reading every line's text cost
 * the page about a tenth of its CPU during a flood (a profile showed it), on the same thread as
 * the viewer it measures.
 */
async function recordLines(page, pattern, newestOnly = false) {
  await page.locator('.log-lines').waitFor();
  await page.evaluate(([source, newestOnly]) => {
    const re = new RegExp(source);
    window.__lines = { first: null, last: null, count: 0, at: {}, skipped: 0 };
    new MutationObserver((changes) => {
      const t = performance.timeOrigin + performance.now();
      for (const c of changes) {
        const added = c.addedNodes;
        let newest = null;
        for (let i = 0; i < added.length; i++) {
          const n = added[i];
          if (n.nodeType !== 1 || !n.classList.contains('line')) continue; // a new chunk, empty
          if (n.classList.contains('marker')) { window.__lines.skipped++; continue; }
          window.__lines.count++;
          newest = n;
          if (!newestOnly) {
            const m = re.exec(n.textContent);
            if (m) window.__lines.at[m[1]] ??= t;
          }
        }
        if (!newest) continue;
        window.__lines.first ??= t;
        window.__lines.last = t;
        if (newestOnly) {
          const m = re.exec(newest.textContent);
          if (m) window.__lines.at[m[1]] ??= t;
        }
      }
    }).observe(document.querySelector('.log-lines'), { childList: true, subtree: true });
  }, [pattern, newestOnly]);
}

/** The three readers of one log, each recording first/last arrival and arrival per line key. */
function readers() {
  const make = () => ({ first: null, last: null, count: 0, at: {} });
  const saw = (r, key, t) => { r.first ??= t; r.last = t; r.count++; if (!(key in r.at)) r.at[key] = t; };
  return { make, saw };
}

function throughputRow(label, r, total) {
  const secs = (r.last - r.first) / 1000;
  const rate = r.count > 1 && secs > 0 ? (r.count - 1) / secs : NaN;
  const note = r.count < total ? `  (${total - r.count} not received${r.skipped ? `, ${r.skipped} skip markers` : ''})` : '';
  console.log(`  ${label.padEnd(28)} ${Math.round(rate).toString().padStart(10)} lines/s   ${secs.toFixed(2).padStart(7)} s${note}`);
  return rate;
}

function delayRow(label, r, sent) {
  const ds = Object.entries(sent).filter(([k]) => k in r.at).map(([k, t]) => r.at[k] - t);
  if (!ds.length) { console.log(`  ${label.padEnd(28)} no lines received`); return [NaN, NaN]; }
  const [p50, p99] = [quantile(ds, 0.5), quantile(ds, 0.99)];
  console.log(`  ${label.padEnd(28)} ${ms(p50).padStart(10)} ${ms(p99).padStart(11)}   (${ds.length} lines)`);
  return [p50, p99];
}

async function waitFor(what, done, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) { console.error(`  gave up waiting for ${what} after ${timeoutMs / 1000} s`); return false; }
    await sleep(100);
  }
  return true;
}

// ---- A Ray job's log ----
async function jobLogs(browser, ip) {
  const { make, saw } = readers();
  const jobPath = (id) => `/api/v1/clusters/${namespace}/${cluster}/jobs/${id}/logs`;
  const page = await browser.newPage();

  // Throughput: one print loop, as fast as Python writes, once every reader is there (5 s).
  const flood = `flood-${tag}`;
  submitJob(ip, flood, `import sys, time\ntime.sleep(5)\nfor i in range(${FLOOD}):\n    print(f"line {i}")\nsys.stdout.flush()`);
  const ray = make(), api = make();
  const rayProc = follow(rayCli, ['job', 'logs', '--follow', '--address', `http://${ip}:8265`, flood], (line, t) => {
    const m = /^line (\d+)$/.exec(line);
    if (m) saw(ray, m[1], t);
  });
  const stopApi = stream(jobPath(flood), (lines, t) => { for (const l of lines) if (l.startsWith('line ')) saw(api, l.slice(5), t); });
  await page.goto(`${base}/clusters/${namespace}/${cluster}/jobs/${flood}`);
  await recordLines(page, '^line (\\d+)$', true);
  const last = String(FLOOD - 1);
  await waitFor('the flood job in every reader', async () => (last in ray.at) && (last in api.at)
    && await page.evaluate((k) => k in window.__lines.at, last), 120_000);
  const shown = await page.evaluate(() => window.__lines);
  rayProc.kill(); stopApi();
  console.log(`\njob log: ${FLOOD} lines printed as fast as Python can (first to last line received)`);
  const base_ = throughputRow('ray job logs --follow', ray, FLOOD);
  throughputRow('raydar stream API', api, FLOOD);
  const page_ = throughputRow('raydar log viewer (browser)', shown, FLOOD);
  console.log(`  ratio viewer/ray            ${(page_ / base_).toFixed(2).padStart(10)}`);

  // Delay: a line every 50 ms, stamped with the time it was printed.
  const tick = `tick-${tag}`;
  const rayT = make(), apiT = make();
  // The readers attach while the job starts; its first lines wait 5 s for them.
  submitJob(ip, tick, `import time\ntime.sleep(5)\nfor i in range(${TICKS}):\n    print(f"t {i} {time.time() * 1000:.3f}", flush=True); time.sleep(0.05)`);
  const stopApiT = stream(jobPath(tick), (lines, t) => { for (const l of lines) { const m = /^t (\d+) /.exec(l); if (m) saw(apiT, m[1], t); } });
  const rayTProc = follow(rayCli, ['job', 'logs', '--follow', '--address', `http://${ip}:8265`, tick], (line, t) => {
    const m = /^t (\d+) /.exec(line);
    if (m) saw(rayT, m[1], t);
  });
  await page.goto(`${base}/clusters/${namespace}/${cluster}/jobs/${tick}`);
  await recordLines(page, '^t (\\d+) ');
  await page.locator('.log-state[data-state="ended"]').waitFor({ timeout: 120_000 });
  await sleep(500);
  const shownT = await page.evaluate(() => window.__lines);
  rayTProc.kill(); stopApiT();
  // The print times, from the log itself.
  const sent = {};
  const log = await (await fetch(`${base}${jobPath(tick)}`)).text();
  for (const m of log.matchAll(/^t (\d+) ([\d.]+)$/gm)) sent[m[1]] = Number(m[2]);
  console.log(`\njob log: delay from print to received (${Object.keys(sent).length} lines, one every 50 ms)`);
  console.log('                                     p50         p99');
  const [r50, r99] = delayRow('ray job logs --follow', rayT, sent);
  delayRow('raydar stream API', apiT, sent);
  const [v50, v99] = delayRow('raydar log viewer (browser)', shownT, sent);
  console.log(`  ratio viewer/ray             ${(v50 / r50).toFixed(2).padStart(10)} ${(v99 / r99).toFixed(2).padStart(11)}`);
  await page.close();
}

// ---- A pod's log (kwok serves it from a file, as kubelet serves a container's) ----
function cri(text) {
  return `${new Date().toISOString().replace('Z', '000000Z')} stdout F ${text}\n`;
}

function makePod(name, file) {
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace,
      labels: { 'ray.io/cluster': cluster, 'ray.io/node-type': 'worker', 'ray.io/is-ray-node': 'yes' } },
      spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.46.0' }] } },
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Logs', metadata: { name, namespace },
      spec: { logs: [{ containers: ['ray-worker'], logsFile: file, follow: true }] } },
  ] }));
}

async function podReady(name) {
  // Until kwok serves the pod's log (the Logs object takes a moment to be picked up).
  return waitFor(`pod ${name}'s log`, async () => {
    try {
      execFileSync('kubectl', ['logs', '-n', namespace, name, '--tail=1', '--request-timeout=5s'], { stdio: 'ignore' });
      return true;
    } catch { return false; }
  }, 60_000);
}

async function podLogs(browser, dir) {
  const { make, saw } = readers();
  const pod = `${cluster}-worker-flood`;
  const file = join(dir, 'flood.log');
  writeFileSync(file, cri('ready'));
  makePod(pod, file);
  await podReady(pod);
  const kube = make(), api = make(), kubeT = make(), apiT = make();
  const podPath = `/api/v1/clusters/${namespace}/${cluster}/pods/${pod}/logs`;
  const onKube = (line, t) => {
    let m = /^line (\d+)$/.exec(line);
    if (m) return saw(kube, m[1], t);
    m = /^t (\d+)$/.exec(line);
    if (m) saw(kubeT, m[1], t);
  };
  const kubeProc = follow('kubectl', ['logs', '-f', '-n', namespace, pod], onKube);
  const stopApi = stream(podPath, (lines, t) => {
    for (const l of lines) {
      let m = /^line (\d+)$/.exec(l);
      if (m) { saw(api, m[1], t); continue; }
      m = /^t (\d+)$/.exec(l);
      if (m) saw(apiT, m[1], t);
    }
  });
  const page = await browser.newPage();
  await page.goto(`${base}/clusters/${namespace}/${cluster}/pods/${pod}`);
  await recordLines(page, '^line (\\d+)$', true);
  await page.locator('.log-lines .line', { hasText: 'ready' }).waitFor({ timeout: 30_000 });
  await sleep(1000);

  let cdp;
  if (PROFILE) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
    await cdp.send('Profiler.start');
  }
  // Throughput: every line appended at once.
  const lines = [];
  for (let i = 0; i < FLOOD; i++) lines.push(cri(`line ${i}`));
  appendFileSync(file, lines.join(''));
  const last = String(FLOOD - 1);
  await waitFor('the pod flood in every reader', async () => (last in kube.at) && (last in api.at)
    && await page.evaluate((k) => k in window.__lines.at, last), 120_000);
  const shown = await page.evaluate(() => window.__lines);
  if (cdp) printProfile((await cdp.send('Profiler.stop')).profile);
  console.log(`\npod log: ${FLOOD} lines appended at once (first to last line received)`);
  const base_ = throughputRow('kubectl logs -f', kube, FLOOD);
  throughputRow('raydar stream API', api, FLOOD);
  const page_ = throughputRow('raydar log viewer (browser)', shown, FLOOD);
  console.log(`  ratio viewer/kubectl        ${(page_ / base_).toFixed(2).padStart(10)}`);

  // Delay: a line every 50 ms (the page's record restarts: the flood is over).
  await recordLines(page, '^t (\\d+)$');
  const sent = {};
  for (let i = 0; i < TICKS; i++) {
    sent[i] = now();
    appendFileSync(file, cri(`t ${i}`));
    await sleep(50);
  }
  await sleep(2000);
  const shownT = await page.evaluate(() => window.__lines);
  kubeProc.kill(); stopApi();
  console.log(`\npod log: delay from append to received (${TICKS} lines, one every 50 ms)`);
  console.log('                                     p50         p99');
  const [k50, k99] = delayRow('kubectl logs -f', kubeT, sent);
  delayRow('raydar stream API', apiT, sent);
  const [v50, v99] = delayRow('raydar log viewer (browser)', shownT, sent);
  console.log(`  ratio viewer/kubectl         ${(v50 / k50).toFixed(2).padStart(10)} ${(v99 / k99).toFixed(2).padStart(11)}`);
  await page.close();
}

/** Self time by function of a CPU profile, the top 20, with the share of all samples. */
function printProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let total = 0;
  for (const [id, us] of dt) {
    const { functionName, url } = byId.get(id).callFrame;
    const name = `${functionName || '(anonymous)'} ${url ? url.split('/').pop() : ''}`.trim();
    self.set(name, (self.get(name) ?? 0) + us);
    total += us;
  }
  console.log(`\nviewer page CPU during the pod flood: ${(total / 1000).toFixed(0)} ms sampled, self time`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${(100 * us / total).toFixed(1).padStart(5)} %  ${name.slice(0, 90)}`);
  }
}

// ---- raydar-server's memory under many viewers ----
async function memory(dir, ip) {
  console.log('\nraydar-server memory (RSS), log viewers read through the stream API');
  // Streams linger 10 s after their last viewer; let the earlier ones go.
  await sleep(12_000);
  const idle = rssMiB();
  console.log(`  ${'no log open'.padEnd(40)} ${idle.toFixed(1).padStart(8)} MiB`);

  // 100 viewers of one running job's log, its buffer full (20,000 lines printed, then one a second).
  const hold = `hold-${tag}`;
  submitJob(ip, hold, `import time\nfor i in range(20000):\n    print(f"hold {i} {'x' * 60}")\nfor i in range(120):\n    print(f"still {i}", flush=True); time.sleep(1)`);
  await sleep(5000);
  const jobPath = `/api/v1/clusters/${namespace}/${cluster}/jobs/${hold}/logs`;
  let got = 0;
  const stops = [];
  for (let i = 0; i < 100; i++) stops.push(stream(jobPath, (ls) => { got += ls.length; }, () => {}));
  await sleep(8000);
  const one = rssMiB();
  console.log(`  ${'100 viewers of one log'.padEnd(40)} ${one.toFixed(1).padStart(8)} MiB   (+${(one - idle).toFixed(1)}; ${got} lines delivered)`);
  for (const s of stops) s();
  execFileSync(rayCli, ['job', 'stop', '--address', `http://${ip}:8265`, hold], { stdio: 'ignore', timeout: 30_000 });

  // 20 different logs (pod logs of 10,000 lines each), 5 viewers each.
  const pods = [];
  for (let i = 0; i < 20; i++) {
    const pod = `${cluster}-worker-m${i}`;
    const file = join(dir, `m${i}.log`);
    const body = [];
    for (let j = 0; j < 10_000; j++) body.push(cri(`pod ${i} line ${j} ${'x'.repeat(60)}`));
    writeFileSync(file, body.join(''));
    makePod(pod, file);
    pods.push(pod);
  }
  for (const pod of pods) await podReady(pod);
  await sleep(12_000);
  const before = rssMiB();
  got = 0;
  const more = [];
  for (const pod of pods) for (let v = 0; v < 5; v++) {
    more.push(stream(`/api/v1/clusters/${namespace}/${cluster}/pods/${pod}/logs`, (ls) => { got += ls.length; }, () => {}));
  }
  await sleep(10_000);
  const twenty = rssMiB();
  console.log(`  ${'20 logs of 10,000 lines, 5 viewers each'.padEnd(40)} ${twenty.toFixed(1).padStart(8)} MiB   (+${(twenty - before).toFixed(1)}; ${got} lines delivered)`);
  for (const s of more) s();
  kubectl(['delete', 'pods,logs.kwok.x-k8s.io', '-n', namespace, ...pods, '--ignore-not-found', '--wait=false']);
}

ensureNamespace(namespace);
const dir = mkdtempSync(join(tmpdir(), 'raydar-bench-logs-'));
const browser = await launch();
kubectl(['apply', '-f', '-'], smallCluster(namespace, cluster, { spec: { workerGroupSpecs: [] } }));
try {
  const ip = await headIp(namespace, cluster, 120_000);
  // Until the Ray head behind the pod answers.
  await waitFor('the Ray head', async () => {
    try { execFileSync(rayCli, ['job', 'list', '--address', `http://${ip}:8265`], { stdio: 'ignore', timeout: 20_000 }); return true; }
    catch { return false; }
  }, 120_000);
  await jobLogs(browser, ip);
  await podLogs(browser, dir);
  await memory(dir, ip);
} finally {
  await browser.close();
  kubectl(['delete', 'raycluster', '-n', namespace, cluster, '--ignore-not-found', '--wait=false']);
  kubectl(['delete', 'pods,logs.kwok.x-k8s.io', '-n', namespace, '--all', '--ignore-not-found', '--wait=false']);
  rmSync(dir, { recursive: true, force: true });
}
