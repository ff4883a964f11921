// make bench: raydar under abuse. A raydar-server of its own (proxy mode, default limits) holds
//   - 1,000 open event streams (the cluster list's, 50 people with 20 pages each),
//   - 100 viewers of one pod's log (5 people with 20 each; 10,000 lines kept, one more every
//     100 ms),
//   - 500 connections that send a request's first line and one header, then nothing (slowloris),
// and meanwhile answers the list page to someone else. Prints its memory (RSS) before, under and
// after the load, the page's time to answer next to the same measured before the load, and how
// many slow connections raydar closed once --header-timeout (10 s) was up.
//
// The log is a pod's that kwok serves from a file this bench writes (CRI format, as kubelet serves
// a container's); its RayCluster names MultiKueue in spec.managedBy, so KubeRay leaves the pod
// alone and starts no Ray head. The viewers' group may read it through a RoleBinding made here.
import http from 'node:http';
import net from 'node:net';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureNamespace, kubectl, smallCluster, startRaydar, PROXY_MODE } from '../lib.mjs';
import { now, quantile, ms } from './common.mjs';

const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const PEOPLE = 50;
const SLOW = Number(process.env.BENCH_SLOW_HEADERS ?? 500);
const VIEWERS = Number(process.env.BENCH_LOG_VIEWERS ?? 100);
const VIEWER_PEOPLE = 5;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// ---- The followed log: a pod of a RayCluster KubeRay leaves alone, its log a file kwok serves ----
const NS = 'raydar-bench-abuse';
const CLUSTER = 'abuse';
const POD = `${CLUSTER}-worker-log`;
const VIEWERS_GROUP = 'raydar-bench-log-viewers';
const dir = mkdtempSync(join(tmpdir(), 'raydar-bench-abuse-'));
const logFile = join(dir, 'worker.log');
const cri = (text) => `${new Date().toISOString().replace('Z', '000000Z')} stdout F ${text}\n`;

function makeLoggedPod() {
  ensureNamespace(NS);
  const lines = [];
  for (let i = 0; i < 10_000; i++) lines.push(cri(`kept ${i} ${'x'.repeat(60)}`));
  writeFileSync(logFile, lines.join(''));
  kubectl(['apply', '-f', '-'], smallCluster(NS, CLUSTER, { spec: { managedBy: 'kueue.x-k8s.io/multikueue', workerGroupSpecs: [] } }));
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, namespace: NS,
      labels: { 'ray.io/cluster': CLUSTER, 'ray.io/node-type': 'worker', 'ray.io/is-ray-node': 'yes' } },
      spec: { containers: [{ name: 'ray-worker', image: 'rayproject/ray:2.46.0' }] } },
    { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Logs', metadata: { name: POD, namespace: NS },
      spec: { logs: [{ containers: ['ray-worker'], logsFile: logFile, follow: true }] } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: VIEWERS_GROUP, namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'raydar-local-developer' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: VIEWERS_GROUP }] },
  ] }));
}

/** Until kwok serves the pod's log (its Logs object takes a moment to be picked up). */
async function logServed() {
  for (let i = 0; i < 120; i++) {
    try {
      execFileSync('kubectl', ['logs', '-n', NS, POD, '--tail=1', '--request-timeout=5s'], { stdio: 'ignore' });
      return;
    } catch { await sleep(500); }
  }
  throw new Error(`kwok does not serve ${NS}/${POD}'s log`);
}

const raydar = await startRaydar(PROXY_MODE);
const { hostname, port } = new URL(raydar.url);
const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${raydar.pid}/status`, 'utf8'))[1]) / 1024;
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** GET `path` as `user`; resolves with the status once the head arrives (the body is left open). */
function open(path, user, groups) {
  const headers = { 'x-forwarded-user': user, ...(groups ? { 'x-forwarded-groups': groups } : {}) };
  return new Promise((resolve, reject) => {
    const req = http.get({ host: hostname, port, path, agent, headers }, (res) => {
      resolve({ status: res.statusCode, res, req });
    });
    req.on('error', reject);
  });
}

/** The list page's time to answer (whole body), as one more person: `n` times, in ms. */
async function pageTimes(n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = now();
    const { res } = await open('/', 'bench-reader');
    for await (const _ of res) { /* read it all */ }
    times.push(now() - t);
  }
  return times;
}

const metric = async (name) => {
  const { res } = await open('/metrics', 'bench-reader');
  let text = '';
  for await (const c of res) text += c;
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};

/** Opens `VIEWERS` viewers of the pod's log; counts the lines each is sent into `delivered`. */
async function openViewers(delivered) {
  const path = `/api/v1/clusters/${NS}/${CLUSTER}/pods/${POD}/logs/stream`;
  const viewers = await Promise.all(Array.from({ length: VIEWERS },
    (_, i) => open(path, `bench-viewer-${i % VIEWER_PEOPLE}`, VIEWERS_GROUP)));
  for (const v of viewers) {
    if (v.status !== 200) continue;
    let buf = '';
    v.res.setEncoding('utf8');
    v.res.on('data', (chunk) => {
      buf += chunk;
      const blocks = buf.split('\n\n');
      buf = blocks.pop();
      for (const block of blocks) {
        if (!/^event: ?lines$/m.test(block)) continue;
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
        delivered.count += JSON.parse(data).lines.length;
      }
    });
    v.res.on('error', () => {});
  }
  return viewers;
}

makeLoggedPod();
await logServed();
let writer;
try {
  await pageTimes(5); // warm up
  const idle = { rss: rssMiB(), page: await pageTimes(40) };

  const streams = [];
  for (let i = 0; i < STREAMS; i++) streams.push(open('/api/v1/clusters/events', `bench-person-${i % PEOPLE}`));
  const opened = await Promise.all(streams);
  const live = opened.filter((s) => s.status === 200).length;

  // The log goes on while it is viewed: a line every 100 ms.
  let written = 0;
  writer = setInterval(() => appendFileSync(logFile, cri(`new ${written++}`)), 100);
  const delivered = { count: 0 };
  const viewers = await openViewers(delivered);
  const viewing = viewers.filter((v) => v.status === 200).length;

  const slow = [];
  let closedByRaydar = 0;
  for (let i = 0; i < SLOW; i++) {
    const socket = net.connect(port, hostname);
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}\r\nx-forwarded-user: bench-slow\r\n`));
    socket.on('close', () => { closedByRaydar++; });
    socket.on('error', () => {});
    slow.push(socket);
  }
  await sleep(5000);
  const loaded = { rss: rssMiB(), page: await pageTimes(40), streams: await metric('raydar_event_streams'),
    logViewers: await metric('raydar_log_viewers'), logStreams: await metric('raydar_log_streams'),
    logBytes: await metric('raydar_log_buffer_bytes') };
  const sent = { delivered: delivered.count, written };

  // --header-timeout is 10 s by default: every slow connection is closed by then.
  await sleep(11_000);
  const closed = closedByRaydar;

  for (const s of opened) s.req.destroy();
  for (const v of viewers) v.req.destroy();
  for (const s of slow) s.destroy();
  await sleep(2000);
  const after = { rss: rssMiB(), streams: await metric('raydar_event_streams') };

  console.log(`\nraydar under abuse: ${STREAMS} event streams (${PEOPLE} people), ${VIEWERS} log viewers, ${SLOW} slow-header connections`);
  console.log(`  event streams opened             ${live}/${STREAMS} (raydar_event_streams ${loaded.streams}; after closing ${after.streams})`);
  console.log(`  log viewers of one pod's log     ${viewing}/${VIEWERS} (${VIEWER_PEOPLE} people; raydar_log_viewers ${loaded.logViewers}, raydar_log_streams ${loaded.logStreams}, ${(loaded.logBytes / 1048576).toFixed(1)} MiB of log text kept)`);
  console.log(`  log lines sent to the viewers    ${sent.delivered} (10,000 kept + ${sent.written} written meanwhile, to ${viewing} viewers)`);
  console.log(`  slow-header connections closed   ${closed}/${SLOW} by raydar within 12 s (--header-timeout 10s)`);
  console.log(`  server RSS                       idle ${idle.rss.toFixed(1)} MiB, under load ${loaded.rss.toFixed(1)} MiB, after ${after.rss.toFixed(1)} MiB`);
  console.log('  list page, time to answer        p50          p99');
  for (const [label, xs] of [['idle (baseline)', idle.page], ['under load', loaded.page]]) {
    console.log(`    ${label.padEnd(28)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
  }
} finally {
  clearInterval(writer);
  raydar.stop();
  agent.destroy();
  kubectl(['delete', 'raycluster,pods,logs.kwok.x-k8s.io,rolebinding', '-n', NS, '--all', '--ignore-not-found', '--wait=false']);
  rmSync(dir, { recursive: true, force: true });
}
