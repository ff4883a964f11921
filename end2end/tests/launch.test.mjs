// Launching, changing and tearing down clusters from the pages, in a real browser, on the real
// control plane: the form generated from a vetted template, its checks as you type and the
// server's, the manifest preview, Launch, progress to Ready, suspend/resume, scale, tear down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, pageState, smallCluster, useBrowser, watchPage } from '../lib.mjs';

const namespace = 'raydar-e2e';
const browser = useBrowser(namespace);

const unique = (prefix) => `${prefix}-${Date.now().toString(36)}`;

/** The RayClusters of the test namespace whose names start with `prefix`. */
function clustersNamed(prefix) {
  const list = JSON.parse(kubectl(['get', 'rayclusters', '-n', namespace, '-o', 'json']));
  return list.items.map((c) => c.metadata.name).filter((n) => n.startsWith(prefix));
}

/** Opens the launch form of `template`, once the browser has taken it over. */
async function openForm(page, template) {
  const said = watchPage(page);
  await page.goto(`${base}/launch?template=${template}`);
  // Typing before the browser has taken the form over would be lost.
  await page.locator('form.launch-form[data-live="true"]').waitFor({ timeout: 15_000 }).catch(async (e) => {
    throw new Error(`${e.message}\n${await pageState(page, said)}`);
  });
  await page.getByText('Name the cluster to see its manifest.').waitFor();
}

test('launch from the form: preview, double-click Launch, one cluster, Ready, torn down, gone', async () => {
  const page = await browser().newPage();
  const list = await browser().newPage();
  await list.goto(`${base}/?namespace=${namespace}`);
  await list.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });

  await openForm(page, 'cpu-small');
  const name = unique('form');
  await page.getByLabel('Namespace').fill(namespace);
  await page.getByLabel('Cluster name').fill(name);
  // The server's dry-run answers with the exact manifest: owner from the server, not the form.
  const manifest = page.locator('pre.manifest');
  await manifest.filter({ hasText: `name: ${name}` }).waitFor({ timeout: 15_000 });
  const yaml = await manifest.textContent();
  assert.match(yaml, /raydar\.dev\/owner: developer/);
  assert.match(yaml, /raydar\.dev\/template: cpu-small/);
  assert.deepEqual(clustersNamed(name), [], 'a preview creates nothing');

  await page.getByRole('button', { name: 'Launch' }).dblclick();
  await page.waitForURL(`${base}/clusters/${namespace}/${name}`, { timeout: 15_000 });
  assert.deepEqual(clustersNamed(name), [name], 'a double click creates one cluster');

  // Progress to Ready shows on the cluster's page as it happens, and in the open list.
  const header = page.locator(`.cluster-header[data-cluster="${namespace}/${name}"]`);
  await header.waitFor({ timeout: 10_000 });
  await page.locator(`.cluster-header[data-phase="Ready"]`).waitFor({ timeout: 60_000 });
  await page.locator('dd.workers', { hasText: '1/1' }).waitFor({ timeout: 30_000 });
  await list.locator(`tr[data-cluster="${namespace}/${name}"][data-phase="Ready"]`).waitFor({ timeout: 10_000 });
  // Its start, stage by stage, on the same page: every stage done, and how long it took in all.
  const starting = page.locator('section.starting');
  await starting.locator('h2', { hasText: /^Started: Ready in \d/ }).waitFor({ timeout: 15_000 });
  assert.deepEqual(
    await starting.locator('li').evaluateAll((items) => items.map((i) => `${i.dataset.stage}:${i.dataset.state}`)),
    ['created:done', 'scheduled:done', 'running:done', 'head:done', 'workers:done', 'ready:done'],
  );

  // The confirmation names the cluster; after it, the cluster leaves this page and the list.
  const asked = new Promise((resolve) => page.once('dialog', async (dialog) => {
    resolve(dialog.message());
    await dialog.accept();
  }));
  await page.getByRole('button', { name: `Tear down ${namespace}/${name}` }).click();
  assert.match(await asked, new RegExp(`Tear down RayCluster ${namespace}/${name}\\?`));
  await page.locator(`[data-gone="${namespace}/${name}"]`).waitFor({ timeout: 30_000 });
  await list.locator(`tr[data-cluster="${namespace}/${name}"]`).waitFor({ state: 'detached', timeout: 30_000 });
  assert.deepEqual(clustersNamed(name), []);
  await page.close();
  await list.close();
});

test('bad input shows each field\'s error as it is typed, and Launch creates nothing', async () => {
  const page = await browser().newPage();
  await openForm(page, 'cpu-small');
  const name = unique('Bad_Name');
  await page.getByLabel('Namespace').fill(namespace);
  await page.getByLabel('Cluster name').fill(name);
  await page.getByLabel('workers').fill('99');
  await page.getByLabel('memory').fill('lots');

  const error = (field) => page.locator(`.field[data-field="${field}"] .field-error`);
  assert.match(await error('name').textContent(), /lowercase letters, digits and '-'/);
  assert.match(await error('workers').textContent(), /must be an integer from 0 to 4, got "99"/);
  assert.match(await error('memory').textContent(), /Kubernetes quantity/);
  assert.equal(await page.getByLabel('workers').getAttribute('aria-invalid'), 'true');
  assert.equal(await error('cpus').textContent(), '', 'a field left at its default has no error');

  await page.getByRole('button', { name: 'Launch' }).click();
  await page.getByRole('alert').filter({ hasText: 'Fix the fields marked above' }).waitFor({ timeout: 5_000 });
  assert.deepEqual(clustersNamed(name.toLowerCase()), []);

  // Fixed, the field's error goes as it is typed.
  await page.getByLabel('workers').fill('2');
  assert.equal(await error('workers').textContent(), '');
  await page.close();
});

test('the preview says whether the pods fit: each group, and a quota the launch would pass', async () => {
  // A namespace of its own with a quota of 4 GPUs, so no other test's clusters change the answer.
  const quotaNamespace = unique('raydar-e2e-quota');
  kubectl(['create', 'namespace', quotaNamespace]);
  try {
    kubectl(['create', 'quota', 'gpus', '--hard=requests.nvidia.com/gpu=4', '-n', quotaNamespace]);
    const page = await browser().newPage();
    await openForm(page, 'gpu-single-node');
    await page.getByLabel('Namespace').fill(quotaNamespace);
    await page.getByLabel('Cluster name').fill(unique('fit'));
    // 8 GPUs (the default) of 4: flagged, with the numbers; Launch stays (Kubernetes decides).
    const capacity = page.locator('.preview .capacity');
    await capacity.and(page.locator('[data-verdict="over-quota"]')).waitFor({ timeout: 15_000 });
    assert.equal(
      await capacity.locator('.summary').textContent(),
      'over quota: requests.nvidia.com/gpu (quota gpus): this launch 8, used 0 of 4: 4 over, pods past it will be refused',
    );
    // The nodes were read (raydar's own RBAC lets it): each group has its verdict.
    assert.match(await capacity.locator('li[data-group="head"]').textContent(), /^Head \(1\): /);
    assert.match(await capacity.locator('li[data-group="gpu"]').textContent(), /^Workers gpu \(1\): /);
    assert.equal(await capacity.locator('li.unknown').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Launch' }).isDisabled(), false);

    // 4 GPUs: within it, and the quota says what is left.
    await page.getByLabel('gpus').fill('4');
    await capacity.locator('li.quota', { hasText: 'this launch 4, used 0 of 4: 0 left after it' })
      .waitFor({ timeout: 15_000 });
    assert.notEqual(await capacity.getAttribute('data-verdict'), 'over-quota');
    await page.close();
  } finally {
    kubectl(['delete', 'namespace', quotaNamespace, '--wait=false']);
  }
});

test('a cluster that cannot be placed says why on its page, and on the fleet page with the others that wait', async () => {
  const name = unique('unplaced');
  const cluster = JSON.parse(smallCluster(namespace, name));
  // No node has this label: the scheduler can place neither pod.
  for (const group of [cluster.spec.headGroupSpec, cluster.spec.workerGroupSpecs[0]]) {
    group.template.spec.nodeSelector = { 'test.raydar.local/nowhere': 'true' };
  }
  kubectl(['apply', '-f', '-'], JSON.stringify(cluster));
  try {
    const page = await browser().newPage();
    await page.goto(`${base}/clusters/${namespace}/${name}`);
    const starting = page.locator('section.starting[data-current="scheduled"]');
    const reason = starting.locator('.waiting-reason[data-kind="unschedulable"]');
    await reason.waitFor({ timeout: 30_000 });
    assert.match(await reason.textContent(), /cannot be placed on any node; the scheduler says: 0\/\d+ nodes are available: .*didn't match Pod's node affinity\/selector/);
    assert.equal(await starting.locator('li[data-stage="created"]').getAttribute('data-state'), 'done');
    assert.match(await starting.locator('li[data-stage="scheduled"]').textContent(), /Pods scheduled0 of 2 pods, waiting \d+s/);

    // The fleet page groups it with the other clusters the scheduler cannot place.
    await page.goto(`${base}/gpus`);
    const row = page.locator(`table.starts-waiting[data-reason="unschedulable"] tr[data-cluster="${namespace}/${name}"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.match(await row.textContent(), /Pods scheduled/);
    assert.match(await page.locator('h3[data-reason="unschedulable"]').textContent(), /^Unschedulable \(\d+\)$/);
    await page.close();
  } finally {
    kubectl(['delete', 'raycluster', name, '-n', namespace, '--wait=false']);
  }
});

test('a refusal from Kubernetes reaches the form, and nothing is created', async () => {
  const page = await browser().newPage();
  await openForm(page, 'cpu-small');
  const name = unique('refused');
  // A well-formed namespace that does not exist: only Kubernetes can say so.
  await page.getByLabel('Namespace').fill('raydar-no-such-namespace');
  await page.getByLabel('Cluster name').fill(name);
  await page.locator('.preview').getByRole('alert').filter({ hasText: /not found/ }).waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Launch' }).click();
  await page.locator('.launch-actions').getByRole('alert').filter({ hasText: /not found/ }).waitFor({ timeout: 15_000 });
  const all = JSON.parse(kubectl(['get', 'rayclusters', '-A', '-o', 'json']));
  assert.equal(all.items.filter((c) => c.metadata.name === name).length, 0);
  await page.close();
});

test('suspend, resume and scale from the cluster page; bounds are held before anything is sent', async () => {
  const name = unique('day2');
  kubectl(['create', '-f', '-'], smallCluster(namespace, name));
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/clusters/${namespace}/${name}`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    const phase = (p) => page.locator(`.cluster-header[data-phase="${p}"]`);
    await phase('Ready').waitFor({ timeout: 60_000 });

    await page.getByRole('button', { name: 'Suspend' }).click();
    await phase('Suspended').waitFor({ timeout: 30_000 });
    assert.equal(JSON.parse(kubectl(['get', 'raycluster', '-n', namespace, name, '-o', 'json'])).spec.suspend, true);
    await page.getByRole('button', { name: 'Resume' }).click();
    await phase('Ready').waitFor({ timeout: 60_000 });

    const replicas = page.getByLabel('Replicas of group cpu');
    await replicas.fill('9');
    await page.getByRole('button', { name: 'Scale' }).click();
    await page.getByRole('alert').filter({ hasText: 'from 0 to 3' }).waitFor({ timeout: 5_000 });
    assert.equal(JSON.parse(kubectl(['get', 'raycluster', '-n', namespace, name, '-o', 'json'])).spec.workerGroupSpecs[0].replicas, 1);

    await replicas.fill('2');
    await page.getByRole('button', { name: 'Scale' }).click();
    await page.locator('tr[data-group="cpu"] td.replicas', { hasText: '2' }).waitFor({ timeout: 15_000 });
    await page.locator('dd.workers', { hasText: '/2' }).waitFor({ timeout: 30_000 });
    assert.equal(JSON.parse(kubectl(['get', 'raycluster', '-n', namespace, name, '-o', 'json'])).spec.workerGroupSpecs[0].replicas, 2);

    // Back to the list by its link: no reload, and the list (filled by the push stream) has it.
    await page.evaluate(() => { window.__raydarSameDocument = true; });
    await page.getByRole('link', { name: 'Ray clusters' }).click();
    await page.locator(`tr[data-cluster="${namespace}/${name}"]`, { hasText: '/2' }).waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => window.__raydarSameDocument), true, 'the list came without a reload');
  } finally {
    await page.close();
    kubectl(['delete', 'raycluster', '-n', namespace, name, '--ignore-not-found', '--wait=false']);
  }
});

test('tear down from the list: the confirmation names the cluster, and cancelling keeps it', async () => {
  const name = unique('list');
  kubectl(['create', '-f', '-'], smallCluster(namespace, name));
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/?namespace=${namespace}`);
    await page.getByText('live', { exact: true }).waitFor({ timeout: 15_000 });
    const row = page.locator(`tr[data-cluster="${namespace}/${name}"]`);
    await row.waitFor({ timeout: 10_000 });
    const button = page.getByRole('button', { name: `Tear down ${namespace}/${name}` });

    page.once('dialog', (dialog) => dialog.dismiss());
    await button.click();
    await page.getByRole('button', { name: `Tear down ${namespace}/${name}` }).filter({ hasText: /^Tear down$/ }).waitFor();
    assert.deepEqual(clustersNamed(name), [name], 'cancelled: still there');

    const asked = new Promise((resolve) => page.once('dialog', async (dialog) => {
      resolve(dialog.message());
      await dialog.accept();
    }));
    await button.click();
    assert.match(await asked, new RegExp(`${namespace}/${name}`));
    await row.waitFor({ state: 'detached', timeout: 30_000 });
  } finally {
    await page.close();
    kubectl(['delete', 'raycluster', '-n', namespace, name, '--ignore-not-found', '--wait=false']);
  }
});
