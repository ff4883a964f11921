// make bench: what authorization costs the list API. raydar behind a proxy (this benchmark adds
// the identity headers from loopback), running as its own ServiceAccount, 50 namespaces with a
// RayCluster each. carol may list RayClusters in 1 of them (raydar asks Kubernetes about each
// namespace, as her, and caches the answers); ops may list them everywhere (one cached answer: the
// baseline of a list with no per-namespace checks). p50/p99 of GET /api/v1/clusters with the
// answers cached, and carol's first, uncached list.
import { kubectl, startRaydar } from '../lib.mjs';
import { quantile, ms } from './common.mjs';

const NAMESPACES = 50;
const RUNS = Number(process.env.BENCH_AUTHZ_RUNS ?? 300);
const tag = Date.now().toString(36).slice(-5);
const ns = (i) => `authz-${tag}-${String(i).padStart(2, '0')}`;

const items = [];
for (let i = 0; i < NAMESPACES; i++) {
  items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns(i) } });
  items.push({ apiVersion: 'ray.io/v1', kind: 'RayCluster', metadata: { name: 'demo', namespace: ns(i) },
    spec: { managedBy: 'kueue.x-k8s.io/multikueue', headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [{ name: 'ray-head', image: 'rayproject/ray:2.46.0' }] } } } } });
}
const list = ['get', 'list', 'watch'];
items.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'lister', namespace: ns(0) },
  rules: [{ apiGroups: ['ray.io'], resources: ['rayclusters'], verbs: list }] });
items.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'lister', namespace: ns(0) },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'lister' },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'carol' }] });
items.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: `authz-bench-${tag}` },
  rules: [{ apiGroups: ['ray.io'], resources: ['rayclusters'], verbs: list }] });
items.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: `authz-bench-${tag}` },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `authz-bench-${tag}` },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'ops' }] });
kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));

const server = await startRaydar();
const { url } = server;
try {
  const get = async (user) => {
    const t = performance.now();
    const r = await fetch(`${url}/api/v1/clusters`, { headers: { 'x-forwarded-user': user } });
    const body = await r.json();
    return [performance.now() - t, body.items.filter((c) => c.namespace.startsWith(`authz-${tag}`)).length];
  };
  // Until the watch has all 50.
  for (let i = 0; (await get('ops'))[1] < NAMESPACES; i++) {
    if (i > 300) throw new Error('raydar never listed the 50 clusters');
    await new Promise((r) => setTimeout(r, 100));
  }
  const [cold, carolSees] = await get('carol');
  const times = { carol: [], ops: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const user of ['carol', 'ops']) times[user].push((await get(user))[0]);
  }
  console.log(`\nauthorization: GET /api/v1/clusters, ${NAMESPACES} namespaces with a cluster each, answers cached (${RUNS} requests each)`);
  console.log('                                          p50         p99');
  const row = (label, xs) => console.log(`  ${label.padEnd(36)} ${ms(quantile(xs, 0.5)).padStart(10)} ${ms(quantile(xs, 0.99)).padStart(11)}`);
  row('carol (may list in 1 of 50)', times.carol);
  row('ops (may list everywhere: baseline)', times.ops);
  const r50 = quantile(times.carol, 0.5) / quantile(times.ops, 0.5), r99 = quantile(times.carol, 0.99) / quantile(times.ops, 0.99);
  console.log(`  ratio carol/ops                      ${r50.toFixed(2).padStart(10)} ${r99.toFixed(2).padStart(11)}`);
  console.log(`  carol's first list (51 questions to Kubernetes, 16 at a time): ${ms(cold)}; she saw ${carolSees} cluster(s)`);
  if (carolSees !== 1) { console.error('carol should see exactly 1 cluster'); process.exitCode = 1; }
} finally {
  server.stop();
  kubectl(['delete', 'namespace', ...Array.from({ length: NAMESPACES }, (_, i) => ns(i)), '--wait=false']);
  kubectl(['delete', 'clusterrole,clusterrolebinding', `authz-bench-${tag}`, '--ignore-not-found']);
}
