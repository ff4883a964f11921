// Shared by the benchmarks: one clock, quantiles, and following a command's output line by line.
import { spawn } from 'node:child_process';

/** Milliseconds since the epoch, sub-millisecond: comparable with a browser's timeOrigin + now(). */
export const now = () => performance.timeOrigin + performance.now();

/** The q-quantile (0..1) of numbers, nearest rank. */
export function quantile(xs, q) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const ms = (x) => `${x.toFixed(1)} ms`;

/** Starts a child process and calls onLine(line, time) for each stdout line as it arrives. */
export function follow(cmd, args, onLine, env) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: env ?? process.env });
  let buf = '';
  child.stdout.on('data', (chunk) => {
    const t = now();
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i), t); buf = buf.slice(i + 1); }
  });
  return child;
}
