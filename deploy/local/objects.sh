#!/usr/bin/env bash
# What raydar needs in a local control plane (the one KUBECONFIG names): its CRD, the platform's
# vetted templates, raydar's own ServiceAccount (read + impersonate, as the cluster-wide install
# has it) and the local developer's RBAC. Used by `make controlplane` and second-plane.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
kubectl apply --server-side --field-manager=raydar-dev -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/rayclustertemplates.raydar.dev >/dev/null
kubectl apply --server-side --field-manager=raydar-dev -f deploy/templates/
kubectl apply --server-side --field-manager=raydar-dev -k deploy/kustomize/rbac/cluster-wide >/dev/null
kubectl apply --server-side --field-manager=raydar-dev -f deploy/local/dev-rbac.yaml >/dev/null
