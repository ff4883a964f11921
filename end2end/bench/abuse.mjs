// make bench: raydar under abuse. A raydar-server of its own (proxy mode, default limits) holds
//   - 1,000 open event streams (the cluster list's, 50 people with 20 pages each),
//   - 500 connections that send a request's first line and one header, then nothing (slowloris),
// and meanwhile answers the list page to someone else. Prints its memory (RSS) before, under and
// after the load, the page's time to answer next to the same measured before the load, and how
// many slow connections raydar closed once --header-timeout (10 s) was up.
// (100 viewers of one log, and their memory: bench/logs.mjs.)
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startRaydar, PROXY_MODE } from '../lib.mjs';
import { now, quantile, ms } from './common.mjs';

const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const PEOPLE = 50;
const SLOW = Number(process.env.BENCH_SLOW_HEADERS ?? 500);
const sleep = (t) => new Promise((r) => setTimeout(r, t));

const raydar = await startRaydar(PROXY_MODE);
const { hostname, port } = new URL(raydar.url);
const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${raydar.pid}/status`, 'utf8'))[1]) / 1024;
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** GET `path` as `user`; resolves with the status once the head arrives (the body is left open). */
function open(path, user) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: hostname, port, path, agent, headers: { 'x-forwarded-user': user } }, (res) => {
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

try {
  await pageTimes(5); // warm up
  const idle = { rss: rssMiB(), page: await pageTimes(40) };

  const streams = [];
  for (let i = 0; i < STREAMS; i++) streams.push(open('/api/v1/clusters/events', `bench-person-${i % PEOPLE}`));
  const opened = await Promise.all(streams);
  const live = opened.filter((s) => s.status === 200).length;

  const slow = [];
  let closedByRaydar = 0;
  for (let i = 0; i < SLOW; i++) {
    const socket = net.connect(port, hostname);
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}\r\nx-forwarded-user: bench-slow\r\n`));
    socket.on('close', () => { closedByRaydar++; });
    socket.on('error', () => {});
    slow.push(socket);
  }
  await sleep(1000);
  const loaded = { rss: rssMiB(), page: await pageTimes(40), streams: await metric('raydar_event_streams') };

  // --header-timeout is 10 s by default: every slow connection is closed by then.
  await sleep(11_000);
  const closed = closedByRaydar;

  for (const s of opened) s.req.destroy();
  for (const s of slow) s.destroy();
  await sleep(2000);
  const after = { rss: rssMiB(), streams: await metric('raydar_event_streams') };

  console.log(`\nraydar under abuse: ${STREAMS} event streams (${PEOPLE} people), ${SLOW} slow-header connections`);
  console.log(`  event streams opened             ${live}/${STREAMS} (raydar_event_streams ${loaded.streams}; after closing ${after.streams})`);
  console.log(`  slow-header connections closed   ${closed}/${SLOW} by raydar within 12 s (--header-timeout 10s)`);
  console.log(`  server RSS                       idle ${idle.rss.toFixed(1)} MiB, under load ${loaded.rss.toFixed(1)} MiB, after ${after.rss.toFixed(1)} MiB`);
  console.log('  list page, time to answer        p50          p99');
  for (const [label, xs] of [['idle (baseline)', idle.page], ['under load', loaded.page]]) {
    console.log(`    ${label.padEnd(28)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
  }
} finally {
  raydar.stop();
  agent.destroy();
}
