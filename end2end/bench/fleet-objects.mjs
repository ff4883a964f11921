// A fleet of RayClusters and Ray pods as the benchmarks build it on a local control plane
// (fleet.mjs, contexts.mjs): the objects, and writing them in bulk through `kubectl proxy`.
//
// The clusters name MultiKueue in spec.managedBy, so the real KubeRay operator leaves them alone
// (reconciling thousands of clusters into head pods is not what a 2-core machine is for) and the
// bench writes their status; the pods name a scheduler that does not exist, so neither
// kube-scheduler nor kwok spends CPU on them. raydar keeps of a pending pod what it keeps of a
// running one.

const PARALLEL = 24;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

/** Cluster `i`'s namespace (one of `namespaces`) and name. */
export const fleetNamespace = (i, namespaces = 20) => `raydar-fleet-${String(i % namespaces).padStart(2, '0')}`;
export const fleetName = (i) => `fleet-${String(i).padStart(5, '0')}`;

/** RayCluster `i` as a launch from a vetted template makes it: a head, one GPU worker group of `pods - 1`. */
export function fleetCluster(i, pods, namespaces) {
  const container = (name, gpus) => ({ name, image: 'rayproject/ray:2.46.0',
    resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '2', memory: '8Gi', ...(gpus ? { 'nvidia.com/gpu': String(gpus) } : {}) } } });
  return {
    apiVersion: 'ray.io/v1', kind: 'RayCluster',
    metadata: { name: fleetName(i), namespace: fleetNamespace(i, namespaces), labels: {
      'raydar.dev/team': `team-${i % 8}`, 'raydar.dev/owner': `user-${i % 50}`, 'raydar.dev/template': i % 3 ? 'gpu-small' : 'cpu-small' },
      annotations: { 'raydar.dev/expires-at': '2030-01-01T00:00:00Z' } },
    spec: {
      managedBy: 'kueue.x-k8s.io/multikueue',
      suspend: i % 10 === 0,
      headGroupSpec: { rayStartParams: { 'dashboard-host': '0.0.0.0' }, template: { spec: { containers: [container('ray-head', 0)] } } },
      workerGroupSpecs: [{ groupName: 'gpu', replicas: pods - 1, minReplicas: 0, maxReplicas: 8, rayStartParams: {},
        template: { spec: { containers: [container('ray-worker', 1)] } } }],
    },
  };
}

/** Ray pod `k` (0: the head) of cluster `i` as KubeRay makes it (labels, env, command, resources). */
export function fleetPod(i, k, namespaces) {
  const head = k === 0;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: `${fleetName(i)}-${head ? 'head' : `gpu-worker-${k}`}`, namespace: fleetNamespace(i, namespaces), labels: {
      'ray.io/is-ray-node': 'yes', 'ray.io/cluster': fleetName(i), 'ray.io/node-type': head ? 'head' : 'worker',
      'ray.io/group': head ? 'headgroup' : 'gpu', 'app.kubernetes.io/created-by': 'kuberay-operator', 'app.kubernetes.io/name': 'kuberay' },
      annotations: { 'ray.io/ft-enabled': 'false' } },
    spec: {
      schedulerName: 'raydar-fleet-nobody',
      containers: [{ name: head ? 'ray-head' : 'ray-worker', image: 'rayproject/ray:2.46.0',
        command: ['/bin/bash', '-lc', '--'], args: [`ulimit -n 65536; ray start ${head ? '--head' : '--address=head:6379'} --block`],
        env: [{ name: 'RAY_CLUSTER_NAME', value: fleetName(i) }, { name: 'RAY_USAGE_STATS_ENABLED', value: '0' },
          { name: 'RAY_CLOUD_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        ports: head ? [{ containerPort: 6379, name: 'gcs' }, { containerPort: 8265, name: 'dashboard' }] : [],
        resources: { limits: { cpu: '2', memory: '8Gi', ...(head ? {} : { 'nvidia.com/gpu': '1' }) } } }],
    },
  };
}

/** Runs `task(x)` for each x of `items`, `PARALLEL` at a time. */
export async function each(items, task) {
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < items.length) await task(items[next++]);
  }));
}

/** Writes to the apiserver behind `kubectl proxy` at `proxyUrl`, retrying what it sheds under a burst. */
export function kubeWriter(proxyUrl) {
  return async function kube(method, path, body, type = 'application/json') {
    for (let attempt = 0; ; attempt++) {
      const r = await fetch(`${proxyUrl}${path}`, { method, headers: { 'content-type': type }, body: body && JSON.stringify(body) });
      if (r.ok || r.status === 404 || r.status === 409) return r;
      // The apiserver sheds load with 429 under a burst: wait and try again.
      if (attempt < 20 && (r.status === 429 || r.status >= 500)) { await sleep(200 * (attempt + 1)); continue; }
      throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    }
  };
}

/**
 * Builds clusters `indices` (and their `pods` each) with `kube`: their namespaces, the clusters,
 * their status as KubeRay would write it (most ready, some provisioning, suspended ones
 * suspended), then the pods. Resolves with the milliseconds the clusters took.
 */
export async function buildFleet(kube, indices, pods, namespaces = 20) {
  const nss = [...new Set(indices.map((i) => fleetNamespace(i, namespaces)))];
  for (const name of nss) await kube('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const started = performance.now();
  await each(indices, (i) => kube('POST', `/apis/ray.io/v1/namespaces/${fleetNamespace(i, namespaces)}/rayclusters`, fleetCluster(i, pods, namespaces)));
  const clustersIn = performance.now() - started;
  await each(indices, (i) => kube('PATCH', `/apis/ray.io/v1/namespaces/${fleetNamespace(i, namespaces)}/rayclusters/${fleetName(i)}/status`,
    { status: { state: i % 10 === 0 ? 'suspended' : i % 7 === 0 ? '' : 'ready', readyWorkerReplicas: pods - 1,
      desiredWorkerReplicas: pods - 1 } }, 'application/merge-patch+json'));
  await each(indices.flatMap((i) => Array.from({ length: pods }, (_, k) => [i, k])),
    ([i, k]) => kube('POST', `/api/v1/namespaces/${fleetNamespace(i, namespaces)}/pods`, fleetPod(i, k, namespaces)));
  return clustersIn;
}

/** Deletes the fleet's namespaces: Kubernetes' namespace controller removes what is in them. */
export async function removeFleet(kube, namespaces = 20) {
  for (let n = 0; n < namespaces; n++) await kube('DELETE', `/api/v1/namespaces/${fleetNamespace(n, namespaces)}`);
}
