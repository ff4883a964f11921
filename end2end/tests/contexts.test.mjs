// One raydar over two Kubernetes clusters (--contexts), in a browser: the local control plane and a
// second one started here (deploy/local/second-plane.sh). The list shows a Ray cluster of each in
// one table, each row naming its Kubernetes cluster and leading to its page there; a cluster made
// on either arrives by push; the fleet page adds up each one's GPUs and the RayJob list shows
// both's; with the second plane stopped its rows say stale while the first's list stays live, and
// a launch from the form goes to the Kubernetes cluster it names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, launch, pageState, smallCluster, startRaydar, watchPage } from '../lib.mjs';

const NS = 'raydar-e2e-contexts';
const run = Date.now().toString(36).slice(-5);
const script = new URL('../../deploy/local/second-plane.sh', import.meta.url).pathname;
const local = process.env.RAYDAR_LOCAL ?? new URL('../../.local', import.meta.url).pathname;
let second, raydar, browser, scratch;

/** kubectl on the second plane, as its admin. */
const kubectl2 = (args, input) => execFileSync('kubectl', ['--kubeconfig', join(second, 'kubeconfig'), ...args],
  { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/** A RayCluster KubeRay leaves alone (another controller manages it): a row, no pods. */
const leftAlone = (name) => smallCluster(NS, name, { spec: { managedBy: 'kueue.x-k8s.io/multikueue' } });

const namespace = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

before(async () => {
  second = execFileSync(script, ['up'], { encoding: 'utf8' }).trim();
  // The same namespace on both: only the Kubernetes cluster tells their clusters apart.
  kubectl(['apply', '-f', '-'], namespace);
  kubectl2(['apply', '-f', '-'], namespace);
  kubectl(['apply', '-f', '-'], leftAlone(`east-${run}`));
  kubectl2(['apply', '-f', '-'], leftAlone(`west-${run}`));
  scratch = mkdtempSync(join(tmpdir(), 'raydar-e2e-contexts-'));
  const file = join(scratch, 'contexts.yaml');
  writeFileSync(file, ['contexts:',
    `  - name: first\n    kubeconfig: ${join(local, 'kubeconfig-raydar')}`,
    `  - name: second\n    kubeconfig: ${join(second, 'kubeconfig-raydar')}`, ''].join('\n'));
  raydar = await startRaydar(['--auth', 'dev', '--dev-user', 'developer', '--contexts', file]);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  raydar?.stop();
  kubectl(['delete', 'raycluster', '-n', NS, '--all', '--wait=false']);
  execFileSync(script, ['down']);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('one list over two Kubernetes clusters: each row names its own, a stopped one is stale, the other stays live and launchable', async () => {
  const list = await browser.newPage();
  const said = watchPage(list);
  const row = (name) => list.locator(`tr[data-cluster="${NS}/${name}"]`);
  const fail = async (e) => { throw new Error(`${e.message}\n${await pageState(list, said)}`); };
  await list.goto(`${raydar.url}/?namespace=${NS}`);
  await list.locator('[data-stream="live"]').waitFor({ timeout: 15_000 }).catch(fail);

  // A Ray cluster of each Kubernetes cluster, in one table, each naming its own.
  const east = row(`east-${run}`), west = row(`west-${run}`);
  assert.equal(await east.locator('td').first().innerText(), 'first');
  assert.equal(await west.locator('td').first().innerText(), 'second');
  assert.ok(await list.getByRole('columnheader', { name: 'Kubernetes' }).isVisible(), 'the column is shown');
  const nav = list.locator('nav.phases .contexts');
  assert.match(await nav.innerText(), /Kubernetes: All first second/);

  // Made on the second, it arrives by push, on that one.
  kubectl2(['apply', '-f', '-'], leftAlone(`later-${run}`));
  await row(`later-${run}`).waitFor({ timeout: 20_000 }).catch(fail);
  assert.equal(await row(`later-${run}`).locator('td').first().innerText(), 'second');

  // A row leads to its cluster's page on its Kubernetes cluster, whose own stream is live.
  const page = await browser.newPage();
  const pageSaid = watchPage(page);
  await page.goto(`${raydar.url}/`);
  await page.locator(`tr[data-cluster="${NS}/west-${run}"] th a`).click();
  await page.waitForURL(`${raydar.url}/clusters/${NS}/west-${run}?context=second`, { timeout: 10_000 });
  await page.locator('.cluster-header .live[data-stream="live"]').waitFor({ timeout: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(page, pageSaid)}`); });
  assert.equal(await page.locator('dd.context').innerText(), 'second');
  // The first has no cluster of that name: its page says so.
  await page.goto(`${raydar.url}/clusters/${NS}/west-${run}?context=first`);
  await page.locator(`[data-gone="${NS}/west-${run}"]`).waitFor({ timeout: 10_000 });
  await page.close();

  // One Kubernetes cluster's list alone, by the nav's link.
  const only = await browser.newPage();
  await only.goto(`${raydar.url}/?namespace=${NS}&context=first`);
  await only.locator('[data-stream="live"]').waitFor({ timeout: 15_000 });
  assert.equal(await only.locator(`tr[data-cluster="${NS}/west-${run}"]`).count(), 0, 'not the second\'s');
  assert.equal(await only.locator(`tr[data-cluster="${NS}/east-${run}"]`).count(), 1);
  assert.equal(await only.getByRole('link', { name: 'Launch a cluster' }).getAttribute('href'), '/launch?context=first');

  // The fleet page of the second: a line of totals for each Kubernetes cluster (each one's own
  // fleet page by its link), the second's marked, and the rest of the page about the second.
  const gpus = await browser.newPage();
  const gpusSaid = watchPage(gpus);
  await gpus.goto(`${raydar.url}/gpus?context=second`);
  await gpus.locator('table.fleet-contexts').waitFor({ timeout: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(gpus, gpusSaid)}`); });
  const lines = await gpus.locator('table.fleet-contexts tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.context));
  assert.deepEqual(lines, ['first', 'second']);
  assert.equal(await gpus.locator('table.fleet-contexts a[aria-current="page"]').innerText(), 'second');
  assert.equal(await gpus.locator('p.fleet-context strong').innerText(), 'second');
  assert.equal(await gpus.locator('tr[data-context="first"] th a').getAttribute('href'), '/gpus?context=first');
  await gpus.close();

  // The RayJobs of every Kubernetes cluster in one list, each naming its own, its cluster's link
  // on it.
  kubectl2(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'ray.io/v1', kind: 'RayJob',
    metadata: { name: `job-${run}`, namespace: NS },
    spec: { entrypoint: "python -c 'print(1)'", submissionMode: 'HTTPMode',
      clusterSelector: { 'ray.io/cluster': `west-${run}` } } }));
  const jobs = await browser.newPage();
  const jobsSaid = watchPage(jobs);
  await jobs.goto(`${raydar.url}/jobs?namespace=${NS}`);
  const job = jobs.locator(`tr[data-rayjob="${NS}/job-${run}"]`);
  await job.waitFor({ timeout: 20_000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(jobs, jobsSaid)}`); });
  assert.equal(await job.locator('td.context').innerText(), 'second');
  assert.equal(await job.locator('td a').first().getAttribute('href'), `/clusters/${NS}/west-${run}?context=second`);
  await jobs.close();

  // The second stops: its rows stay, said stale; the first's stay live.
  execFileSync(script, ['down']);
  await west.locator('.stale').waitFor({ timeout: 60_000 }).catch(fail);
  assert.equal(await east.locator('.stale').count(), 0, 'the first is not stale');
  assert.match(await list.locator('.list-header .live').innerText(), /second/);
  await only.locator('[data-stream="live"]').waitFor({ timeout: 5_000 });
  assert.equal(await only.locator('.list-header .live').innerText(), 'live', 'the first\'s own list is live');

  // And launchable: the form names the Kubernetes cluster it launches on.
  const form = await browser.newPage();
  const formSaid = watchPage(form);
  await form.goto(`${raydar.url}/launch?template=cpu-small&context=first`);
  await form.locator('form.launch-form[data-live="true"]').waitFor({ timeout: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(form, formSaid)}`); });
  assert.match(await form.locator('p.contexts').innerText(), /On Kubernetes cluster first/);
  const launched = `form-${run}`;
  await form.getByLabel('Namespace').fill(NS);
  await form.getByLabel('Cluster name').fill(launched);
  await form.locator('pre.manifest').filter({ hasText: `name: ${launched}` }).waitFor({ timeout: 15_000 });
  await form.getByRole('button', { name: 'Launch' }).click();
  await form.waitForURL(`${raydar.url}/clusters/${NS}/${launched}?context=first`, { timeout: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await pageState(form, formSaid)}`); });
  await row(launched).waitFor({ timeout: 20_000 }).catch(fail);
  assert.equal(await row(launched).locator('td').first().innerText(), 'first');
  kubectl(['get', 'raycluster', '-n', NS, launched]);
  await Promise.all([list.close(), only.close(), form.close()]);
});
