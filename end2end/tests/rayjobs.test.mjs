// The RayJob list in a browser: a job submitted to a running cluster from its page's form becomes
// a KubeRay RayJob that the real operator posts to the real Ray head; the list shows it arrive and
// run to the end without a reload, and its row leads to the job's live log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, kubectl, smallCluster, useBrowser, waitForRay } from '../lib.mjs';

const NS = 'e2e-rayjobs';
const browser = useBrowser(NS);

test('a job submitted from a cluster\'s page shows on the RayJob list, runs to the end live, and its log follows', async () => {
  const name = `rj-${Date.now().toString(36).slice(-5)}`;
  kubectl(['apply', '-f', '-'], smallCluster(NS, name, { spec: { workerGroupSpecs: [] } }));
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/clusters/${NS}/${name}`);
    await waitForRay(page, NS, name);
    const jobs = await browser().newPage();
    await jobs.goto(`${base}/jobs?namespace=${NS}`);
    await jobs.locator('.rayjobs .empty, table.rayjobs-table').first().waitFor();

    // The page's form: a runtime environment that is not a JSON object is refused before
    // anything is sent; then the job is submitted as the page's user.
    const form = page.locator('section.submit-job');
    await form.getByLabel('Entrypoint').fill('python -c "print(\'rayjob says\', 6 * 7)"');
    await form.locator('summary').click();
    await form.locator('textarea[name="runtime-env"]').fill('[1]');
    await form.getByRole('button', { name: 'Submit' }).click();
    await form.getByRole('alert').filter({ hasText: 'must be a JSON object' }).waitFor();
    assert.equal(kubectl(['get', 'rayjobs', '-n', NS, '-o', 'name']).trim(), '', 'nothing made');
    await form.locator('textarea[name="runtime-env"]').fill('{"env_vars": {"FROM": "the form"}}');
    await form.getByRole('button', { name: 'Submit' }).click();
    const said = form.locator('p.submitted');
    await said.waitFor({ timeout: 30_000 });
    const made = { body: { name: await said.locator('code').textContent(), jobId: await said.locator('a').textContent() } };
    assert.equal(made.body.jobId, made.body.name, 'a defaulted name is the job id, once');
    assert.equal(await said.locator('a').getAttribute('href'), `/clusters/${NS}/${name}/jobs/${made.body.jobId}`);

    // The list follows it without a reload, to the end.
    const row = jobs.locator(`tr[data-rayjob="${NS}/${made.body.name}"]`);
    await row.waitFor({ timeout: 30_000 });
    await jobs.locator(`tr[data-rayjob="${NS}/${made.body.name}"][data-progress="Complete"][data-status="SUCCEEDED"]`)
      .waitFor({ timeout: 90_000 });
    const cells = await row.locator('td').allInnerTexts();
    assert.equal(cells[0], name, 'its cluster');
    assert.match(cells[3], /python -c/);
    assert.equal(cells[4], 'developer', 'made as the signed-in user');

    // Its row leads to the job's log.
    await row.getByRole('link', { name: 'Follow' }).click();
    await jobs.waitForURL(`${base}/clusters/${NS}/${name}/jobs/${made.body.jobId}`);
    await jobs.locator('.log-lines .line', { hasText: /^rayjob says 42$/ }).waitFor({ timeout: 30_000 });
    await jobs.locator('.log-state[data-state="ended"]').waitFor({ timeout: 30_000 });
    await jobs.close();
  } finally {
    await page.close();
    kubectl(['delete', 'rayjobs,rayclusters', '-n', NS, '--all', '--ignore-not-found', '--wait=false']);
  }
});

test('the launch form runs a job on a cluster of its own: previewed, run, followed to the end', async () => {
  const page = await browser().newPage();
  try {
    await page.goto(`${base}/launch?template=cpu-small`);
    await page.locator('form.launch-form[data-live="true"]').waitFor({ timeout: 30_000 });
    await page.getByLabel('Run a job on a cluster of its own').check();
    const name = `once-${Date.now().toString(36).slice(-5)}`;
    await page.getByLabel('Namespace').fill(NS);
    await page.getByLabel('Cluster name').fill(name);
    await page.getByLabel('workers').fill('0');
    // Without a command there is nothing to run: said at the field.
    await page.getByRole('button', { name: 'Run job' }).click();
    assert.equal(await page.getByLabel('Entrypoint').getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Entrypoint').fill('python -c "print(\'from the form\', 6 * 7)"');
    // The preview is the RayJob, the template's cluster inside it.
    const manifest = page.locator('pre.manifest');
    await manifest.filter({ hasText: 'kind: RayJob' }).waitFor({ timeout: 15_000 });
    const yaml = await manifest.textContent();
    assert.match(yaml, /shutdownAfterJobFinishes: true/);
    assert.match(yaml, /rayClusterSpec:/);
    assert.match(yaml, /raydar\.dev\/owner: developer/);

    await page.getByRole('button', { name: 'Run job' }).click();
    await page.waitForURL(`${base}/jobs?namespace=${NS}`, { timeout: 15_000 });
    const row = page.locator(`tr[data-rayjob="${NS}/${name}"]`);
    await row.waitFor({ timeout: 30_000 });
    await page.locator(`tr[data-rayjob="${NS}/${name}"][data-status="SUCCEEDED"]`).waitFor({ timeout: 150_000 });
    assert.match((await row.locator('td').allInnerTexts())[0], /\(its own\)$/);
    await row.getByRole('link', { name: 'Follow' }).click();
    await page.locator('.log-lines .line', { hasText: /^from the form 42$/ }).waitFor({ timeout: 30_000 });

    // History keeps the cluster KubeRay made for the RayJob as the RayJob's: the RayJob filter
    // lists it, the clusters filter does not.
    await page.goto(`${base}/history?kind=rayjob&q=${name}`);
    const past = page.locator(`tr[data-history][data-rayjob="${name}"]`);
    await past.waitFor({ timeout: 15_000 });
    assert.match(await past.locator('th').textContent(), new RegExp(`^${NS}/${name}-\\w+ for RayJob ${name}$`));
    await page.goto(`${base}/history?kind=cluster&q=${name}`);
    await page.locator('p.empty', { hasText: 'No cluster you may see matches.' }).waitFor({ timeout: 15_000 });
  } finally {
    await page.close();
    kubectl(['delete', 'rayjobs,rayclusters', '-n', NS, '--all', '--ignore-not-found', '--wait=false']);
  }
});
