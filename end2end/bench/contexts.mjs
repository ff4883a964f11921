// make bench: one raydar over two Kubernetes clusters (--contexts) next to one over a single
// cluster holding the same total. Builds 5,000 RayClusters and 25,000 Ray pods on each of the
// local control plane and a second one (deploy/local/second-plane.sh), and measures a raydar-server
// started over both: its time to first sync (from its start until /metrics counts every cluster
// and pod built, by context) and its memory (RSS) then. Then builds the second half on the first
// plane too, and measures a raydar-server over that one plane of 10,000 and 50,000, the baseline.
// Each is started twice. Prints each, the ratios (target <= 1.1), and removes both fleets.
//
// The fleet's objects and how they are written: fleet-objects.mjs.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lib.mjs';
import { now, kubectlProxy } from './common.mjs';
import { buildFleet, kubeWriter, removeFleet } from './fleet-objects.mjs';

const CLUSTERS = Number(process.env.BENCH_CONTEXTS_CLUSTERS ?? 5_000);
const PODS_PER_CLUSTER = 5;
const ROUNDS = 2;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const local = process.env.RAYDAR_LOCAL;
const repo = new URL('../..', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'raydar-bench-contexts-'));

/** The sum of a `raydar_context_…` gauge over its contexts, in the exposition `text`. */
const summed = (text, name) =>
  [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);

/**
 * A raydar-server over `contexts` ([name, kubeconfig]); resolves once it keeps at least `want`
 * clusters and pods over them all, with how long that took from its start and its RSS (MiB) then.
 */
async function measure(label, contexts, want) {
  const file = join(scratch, `${label}.yaml`);
  writeFileSync(file, `contexts:\n${contexts.map(([name, kubeconfig]) => `  - name: ${name}\n    kubeconfig: ${kubeconfig}\n`).join('')}`);
  const port = await freePort();
  const data = mkdtempSync(join(scratch, 'data-'));
  const started = now();
  const server = spawn(process.env.RAYDAR_SERVER, ['--addr', `127.0.0.1:${port}`, '--auth', 'dev', '--data-dir', data,
    '--contexts', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    let kept = { clusters: 0, pods: 0 };
    while (kept.clusters < want.clusters || kept.pods < want.pods) {
      if (server.exitCode !== null) throw new Error(`raydar-server (${label}) exited ${server.exitCode}`);
      if (now() - started > 300_000) throw new Error(`raydar-server (${label}) keeps ${JSON.stringify(kept)} of ${JSON.stringify(want)} after 5 minutes`);
      await sleep(20);
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
      kept = { clusters: summed(text, 'raydar_context_rayclusters'), pods: summed(text, 'raydar_context_ray_pods') };
    }
    const synced = now() - started;
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]) / 1024;
    return { synced, rss, ...kept };
  } finally {
    server.kill();
    await new Promise((r) => (server.exitCode === null ? server.once('exit', r) : r()));
    rmSync(data, { recursive: true, force: true });
  }
}

const second = execFileSync(join(repo, 'deploy/local/second-plane.sh'), ['up'], { encoding: 'utf8' }).trim();
const proxies = [await kubectlProxy(), await kubectlProxy(join(second, 'kubeconfig'))];
const [first, other] = proxies.map((p) => kubeWriter(p.url));
const half = (from) => Array.from({ length: CLUSTERS }, (_, i) => from + i);
try {
  let t = now();
  await Promise.all([buildFleet(first, half(0), PODS_PER_CLUSTER), buildFleet(other, half(CLUSTERS), PODS_PER_CLUSTER)]);
  console.log(`\ntwo planes: ${CLUSTERS} RayClusters and ${CLUSTERS * PODS_PER_CLUSTER} Ray pods on each, built in ${((now() - t) / 1000).toFixed(1)} s`);
  const want = { clusters: 2 * CLUSTERS, pods: 2 * CLUSTERS * PODS_PER_CLUSTER };
  const two = [['first', join(local, 'kubeconfig-raydar')], ['second', join(second, 'kubeconfig-raydar')]];
  const twoRuns = [];
  for (let r = 0; r < ROUNDS; r++) twoRuns.push(await measure('two', two, want));

  t = now();
  await buildFleet(first, half(CLUSTERS), PODS_PER_CLUSTER);
  console.log(`one plane: the second ${CLUSTERS} and their pods built on the first too, in ${((now() - t) / 1000).toFixed(1)} s`);
  const oneRuns = [];
  for (let r = 0; r < ROUNDS; r++) oneRuns.push(await measure('one', [['first', join(local, 'kubeconfig-raydar')]], want));

  const mean = (xs, f) => xs.reduce((n, x) => n + f(x), 0) / xs.length;
  const line = (label, runs) => console.log(`  ${label.padEnd(44)} ${runs.map((r) =>
    `${(r.synced / 1000).toFixed(2)} s ${r.rss.toFixed(1)} MiB (${r.clusters} clusters, ${r.pods} pods)`).join('   ')}`);
  console.log('\nraydar-server from its start to every cluster and pod kept, and its RSS then');
  line(`two contexts of ${CLUSTERS} + ${CLUSTERS * PODS_PER_CLUSTER} pods each`, twoRuns);
  line(`one context of ${2 * CLUSTERS} + ${2 * CLUSTERS * PODS_PER_CLUSTER} pods (baseline)`, oneRuns);
  const ratio = (f) => (mean(twoRuns, f) / mean(oneRuns, f)).toFixed(2);
  console.log(`  ratio two/one: time to first sync ${ratio((r) => r.synced)}, memory ${ratio((r) => r.rss)}   (target <= 1.10)`);
} finally {
  await Promise.all([removeFleet(first), removeFleet(other)]).catch((e) => console.error(`removing the fleets: ${e.message}`));
  for (const p of proxies) p.stop();
  execFileSync(join(repo, 'deploy/local/second-plane.sh'), ['down']);
  rmSync(scratch, { recursive: true, force: true });
}
