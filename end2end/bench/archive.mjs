// make bench: what archiving a Ray job's driver log costs its live viewers. The same flood
// (BENCH_LOG_LINES, 100,000 lines) of a real Ray job, read through raydar's stream API by a raydar
// that archives job logs (the default) and by one that does not (--history-job-log-mib 0), five
// rounds each, alternating; each raydar runs alone while it is measured (make bench runs this
// with RAYDAR_HISTORY_JOB_LOG_MIB=0, so the main one archives nothing meanwhile). Prints lines
// per second of each round and the ratio of the medians (target: with archiving ≥ 0.95× without),
// and checks that the archive of each "on" round holds every line.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, smallCluster, ensureNamespace, headIp, submitJob, startRaydar } from '../lib.mjs';
import { quantile } from './common.mjs';

const FLOOD = Number(process.env.BENCH_LOG_LINES ?? 100_000);
const ROUNDS = 5;
const namespace = 'raydar-bench-archive';
const cluster = `arch-${Date.now().toString(36).slice(-5)}`;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const DEV = ['--auth', 'dev', '--dev-user', 'developer', '--dev-groups', 'dev'];

/** Reads the job's log stream from `url` until its end; first and last line times, lines. */
async function read(url, job) {
  const path = `/api/v1/clusters/${namespace}/${cluster}/jobs/${job}/logs/stream`;
  for (let tries = 0; ; tries++) {
    const res = await fetch(`${url}${path}`);
    if (res.ok) {
      const decoder = new TextDecoder();
      let buf = '';
      const seen = { first: null, last: null, count: 0 };
      for await (const chunk of res.body) {
        const t = performance.now();
        buf += decoder.decode(chunk, { stream: true });
        const blocks = buf.split('\n\n');
        buf = blocks.pop();
        for (const block of blocks) {
          const event = /^event: ?(.*)$/m.exec(block)?.[1];
          if (event === 'end') return seen;
          if (event !== 'lines') continue;
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          for (const line of JSON.parse(data).lines) {
            if (!/^line \d+$/.test(line)) continue;
            seen.first ??= t;
            seen.last = t;
            seen.count++;
          }
        }
      }
      return seen;
    }
    // Ray may not know the job for a moment after the submit.
    if (tries > 50) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    await sleep(200);
  }
}

/** One round: a raydar with `archiving` on or off, alone, reading one flood. */
async function round(ip, n, archiving) {
  const data = mkdtempSync(join(tmpdir(), 'raydar-bench-archive-'));
  const flags = [...DEV, '--data-dir', data, '--history-job-log-mib', archiving ? '64' : '0'];
  const raydar = await startRaydar(flags);
  try {
    const job = `flood-${n}-${archiving ? 'on' : 'off'}`;
    // A pause first, so that history finds the job (it looks every 10 s) and archives the flood
    // as it streams, as it would a long job's.
    submitJob(ip, job, [
      'import sys, time',
      'time.sleep(12)',
      `for i in range(${FLOOD}):`,
      '    sys.stdout.write(f"line {i}\\n")',
      'sys.stdout.flush()',
    ].join('\n'));
    const seen = await read(raydar.url, job);
    const rate = seen.count > 1 ? (seen.count - 1) / ((seen.last - seen.first) / 1000) : NaN;
    let archived = '';
    if (archiving) {
      const uid = kubectl(['get', 'raycluster', cluster, '-n', namespace, '-o', 'jsonpath={.metadata.uid}']).trim();
      for (let tries = 0; tries < 60; tries++) {
        const record = await (await fetch(`${raydar.url}/api/v1/history/clusters/${uid}`)).json();
        const log = record.jobs?.find((j) => j.id === job)?.log;
        archived = log ? `archived: ${log.state}, ${log.lines} lines` : 'not archived';
        if (log?.state === 'complete') break;
        await sleep(500);
      }
    }
    console.log(`  ${(archiving ? 'archiving on' : 'archiving off').padEnd(14)} ${Math.round(rate).toString().padStart(8)} lines/s` +
      `  (${seen.count} of ${FLOOD} lines to the stream API)${archived ? `  ${archived}` : ''}`);
    return rate;
  } finally {
    raydar.stop();
    await sleep(500);
    rmSync(data, { recursive: true, force: true });
  }
}

ensureNamespace(namespace);
kubectl(['apply', '-f', '-'], smallCluster(namespace, cluster));
try {
  const ip = await headIp(namespace, cluster, 120_000);
  // The head's dashboard answers once Ray is up.
  for (let i = 0; ; i++) {
    try { if ((await fetch(`http://${ip}:8265/api/version`)).ok) break; } catch {}
    if (i > 600) throw new Error(`the Ray head at ${ip} never answered`);
    await sleep(200);
  }
  console.log(`archiving a job's log: a ${FLOOD}-line flood read through raydar's stream API, with and without archiving`);
  const on = [], off = [];
  for (let n = 0; n < ROUNDS; n++) {
    on.push(await round(ip, n, true));
    off.push(await round(ip, n, false));
  }
  const [withArchive, without] = [quantile(on, 0.5), quantile(off, 0.5)];
  console.log(`  median: ${Math.round(withArchive)} lines/s archiving, ${Math.round(without)} lines/s not: ` +
    `${(withArchive / without).toFixed(3)}× (target ≥ 0.95×)`);
} finally {
  kubectl(['delete', 'rayclusters', '-n', namespace, '--all', '--ignore-not-found', '--wait=false']);
}
