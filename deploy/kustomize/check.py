#!/usr/bin/env python3
"""Checks every overlay of deploy/kustomize against the local control plane (`make test`).

For each overlay in overlays/:
- it renders (`kubectl kustomize`);
- its RBAC grants no wildcard (`*` as a verb, resource or API group);
- the apiserver accepts all of it in a server-side dry run, without a warning, with raydar's
  namespace enforcing the restricted Pod Security Standard; and each Deployment's pod, sent as a
  Pod, passes that enforcement (a Deployment is only warned about), while the same pod made to
  allow privilege escalation is refused (so the check could fail);
- what raydar's identities may do, as `kubectl auth can-i --list` prints it for them in each
  namespace that matters, equals can-i/<overlay>.txt. The RBAC is applied for real under names
  of its own (a prefix: the rules are the same) and removed afterwards.

`check.py --update` writes can-i/*.txt from what the apiserver says now: for a deliberate change
of raydar's RBAC, which the diff in review then shows.

Needs kubectl on PATH and KUBECONFIG naming the local control plane as its admin.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OVERLAYS = os.path.join(HERE, "overlays")
EXPECTED = os.path.join(HERE, "can-i")
SERVICEMONITOR_CRD = os.path.join(
    os.environ.get("RAYDAR_LOCAL", os.path.join(HERE, "..", "..", ".local")),
    "share/prometheus-operator/crds/monitoring.coreos.com_servicemonitors.yaml",
)
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# raydar's identities, and where what they may do matters: raydar's own namespace, the GPU
# Operator's, two team namespaces a namespaced install lists, and one it does not.
IDENTITIES = ["raydar", "raydar-reclaimer"]
NAMESPACES = ["raydar", "gpu-operator", "team-a", "team-b", "team-elsewhere"]
PSA = "pod-security.kubernetes.io/enforce"


class CheckFailed(Exception):
    pass


def kubectl(*args, stdin=None, check=True):
    """Runs kubectl; its stdout, stderr and exit code. Every call has a timeout."""
    done = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise CheckFailed(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout, done.stderr, done.returncode


def render(overlay):
    out, _, _ = kubectl("kustomize", overlay)
    return out


def as_objects(manifests):
    """The objects of a multi-document YAML, as the apiserver would take them (a dry run)."""
    out, err, _ = kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=raydar-check",
        "-o", "json", "-f", "-", stdin=manifests,
    )
    listed = json.loads(out)
    objects = listed["items"] if listed.get("kind") == "List" else [listed]
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    return objects, warnings


def wildcards(objects):
    found = []
    for o in objects:
        if o["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in o.get("rules") or []:
            for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
                if "*" in (rule.get(field) or []):
                    found.append(f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}: {field} has *")
    return found


def check_pods(name, objects):
    """Each Deployment's pod passes the namespace's Pod Security enforcement; a worse one not."""
    for d in (o for o in objects if o["kind"] == "Deployment"):
        namespace = d["metadata"]["namespace"]
        labels, _, _ = kubectl("get", "namespace", namespace, "-o", "jsonpath={.metadata.labels}")
        if json.loads(labels or "{}").get(PSA) != "restricted":
            raise CheckFailed(f"{name}: namespace {namespace} does not enforce {PSA}=restricted")
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"check-{d['metadata']['name']}", "namespace": namespace},
            "spec": d["spec"]["template"]["spec"],
        }
        _, err, code = kubectl(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False
        )
        if code != 0 or "Warning:" in err:
            raise CheckFailed(f"{name}: Deployment {d['metadata']['name']}'s pod: {err.strip()}")
        pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        _, err, code = kubectl(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False
        )
        if code == 0 or "PodSecurity" not in err:
            raise CheckFailed(
                f"{name}: a pod allowing privilege escalation was not refused in {namespace}: "
                "the dry run proves nothing"
            )


def can_i(name):
    """What raydar's identities may do with this overlay's RBAC, applied under a prefix."""
    prefix = f"can-i-{name}-"
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".check-") as wrapper:
        with open(os.path.join(wrapper, "kustomization.yaml"), "w") as f:
            rel = os.path.relpath(os.path.join(OVERLAYS, name), wrapper)
            f.write(f"namePrefix: {prefix}\nresources: [{rel}]\n")
        prefixed = render(wrapper)
    objects, _ = as_objects(prefixed)
    rbac = [o for o in objects if o["kind"] in RBAC_KINDS]
    for o in rbac:
        for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            o["metadata"].pop(field, None)
    applied = json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac})
    kubectl("apply", "--server-side", "--field-manager=raydar-check", "-f", "-", stdin=applied)
    try:
        lines = []
        for identity in IDENTITIES:
            for namespace in NAMESPACES:
                out, _, _ = kubectl(
                    "auth", "can-i", "--list", "-n", namespace,
                    f"--as=system:serviceaccount:raydar:{prefix}{identity}",
                )
                # Sorted: the rules' order is the apiserver's, not raydar's.
                header, *rules = out.strip().splitlines()
                lines.append(f"## {identity} in {namespace}")
                lines.append(" ".join(header.split()))
                lines.extend(sorted(" ".join(rule.split()) for rule in rules))
        return "\n".join(lines) + "\n"
    finally:
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=applied,
                check=False)


def prepare():
    """The namespaces the overlays name, and the ServiceMonitor CRD, on the local plane."""
    for namespace in ("team-a", "team-b", "team-elsewhere"):
        kubectl("create", "namespace", namespace, check=False)
    if not os.path.exists(SERVICEMONITOR_CRD):
        raise CheckFailed(f"{SERVICEMONITOR_CRD} is missing: run deploy/local/build.sh share")
    kubectl("apply", "--server-side", "--field-manager=raydar-check", "-f", SERVICEMONITOR_CRD)
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com")


def main():
    update = "--update" in sys.argv[1:]
    try:
        prepare()
    except CheckFailed as e:
        sys.exit(f"deploy/kustomize: {e}")
    failures = []
    for name in sorted(os.listdir(OVERLAYS)):
        try:
            manifests = render(os.path.join(OVERLAYS, name))
            objects, warnings = as_objects(manifests)
            if warnings:
                raise CheckFailed(f"{name}: the dry run warns: {' '.join(warnings)}")
            if found := wildcards(objects):
                raise CheckFailed(f"{name}: wildcard RBAC: {'; '.join(found)}")
            check_pods(name, objects)
            said = can_i(name)
            expected_path = os.path.join(EXPECTED, f"{name}.txt")
            if update:
                os.makedirs(EXPECTED, exist_ok=True)
                with open(expected_path, "w") as f:
                    f.write(said)
            else:
                expected = open(expected_path).read() if os.path.exists(expected_path) else ""
                if said != expected:
                    raise CheckFailed(
                        f"{name}: what raydar may do differs from {expected_path}:\n"
                        + diff(expected, said)
                        + "\n(deliberate? deploy/kustomize/check.py --update, and commit it)"
                    )
            kinds = sorted({o["kind"] for o in objects})
            print(f"ok   {name}: {len(objects)} objects ({', '.join(kinds)})")
        except CheckFailed as e:
            failures.append(str(e))
            print(f"FAIL {e}")
    if failures:
        sys.exit(f"deploy/kustomize: {len(failures)} of the overlays failed")


def diff(expected, said):
    import difflib

    return "".join(
        difflib.unified_diff(
            expected.splitlines(True), said.splitlines(True), "expected", "the apiserver says"
        )
    )


if __name__ == "__main__":
    main()
