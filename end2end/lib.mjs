// Shared by the browser tests and benchmarks: Debian chromium through playwright-core (no browser
// download), and kubectl against the local control plane (KUBECONFIG, PATH set by the Makefile).
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';

export const base = process.env.RAYDAR_URL ?? (() => { throw new Error('RAYDAR_URL is not set: run through scripts/raydar.sh run'); })();

/** Starts headless chromium (a fresh temporary profile each time). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Runs kubectl; `input` goes to its stdin. */
export function kubectl(args, input) {
  return execFileSync('kubectl', ['--request-timeout=20s', ...args], { input, encoding: 'utf8', timeout: 30_000 });
}

/** A small CPU RayCluster: a head and one worker. */
export function smallCluster(namespace, name, extra = {}) {
  const container = (n) => ({ name: n, image: 'rayproject/ray:2.46.0',
    resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '1', memory: '2Gi' } } });
  return JSON.stringify({
    apiVersion: 'ray.io/v1', kind: 'RayCluster',
    metadata: { name, namespace, ...(extra.metadata ?? {}) },
    spec: {
      headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [container('ray-head')] } } },
      workerGroupSpecs: [{ groupName: 'cpu', replicas: 1, minReplicas: 0, maxReplicas: 3, rayStartParams: {},
        template: { spec: { containers: [container('ray-worker')] } } }],
      ...(extra.spec ?? {}),
    },
  });
}

export function ensureNamespace(name) {
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

/**
 * For a test file: before its tests, makes sure `namespace` exists and starts one browser; after
 * them, closes it. Returns a getter for that browser.
 */
export function useBrowser(namespace) {
  let browser;
  before(async () => {
    ensureNamespace(namespace);
    browser = await launch();
  });
  after(async () => { await browser?.close(); });
  return () => browser;
}
