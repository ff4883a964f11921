//! RayClusters as the CLI reads them from the apiserver.
//!
//! Read as `DynamicObject`s and converted, not through `Api<RayCluster>`: KubeRay's CRD stores
//! resource quantities as int-or-string, so a cluster asking for `cpu: 2` comes back with a JSON
//! number, which platform's lean `RayCluster` (quantities as strings) refuses. Numbers in
//! `limits` and `requests` become their text here, which is the same quantity.

use kube::api::{Api, ApiResource, DynamicObject};
use kube::Client;
use platform::kuberay::RayCluster;
use serde_json::Value;

/// The RayCluster API of one namespace, or of all with `None`.
pub fn api(client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<RayCluster>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// A RayCluster from what the apiserver sent; one whose spec raydar cannot read keeps its
/// metadata and status, so it is still listed (its workers and GPUs count as none).
pub fn ray_cluster(object: DynamicObject) -> RayCluster {
    let mut document = serde_json::to_value(&object).unwrap_or_default();
    quantities_as_text(&mut document);
    match serde_json::from_value::<RayCluster>(document.clone()) {
        Ok(cluster) => cluster,
        Err(_) => {
            let mut cluster = RayCluster::new(
                &object.metadata.name.clone().unwrap_or_default(),
                Default::default(),
            );
            cluster.metadata = object.metadata;
            cluster.status =
                document.get("status").cloned().and_then(|s| serde_json::from_value(s).ok());
            cluster
        }
    }
}

/// Turns number values of every `limits` and `requests` map into text, wherever they are.
fn quantities_as_text(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if let ("limits" | "requests", Value::Object(quantities)) =
                    (key.as_str(), &mut *child)
                {
                    for quantity in quantities.values_mut() {
                        if let Value::Number(n) = quantity {
                            *quantity = Value::String(n.to_string());
                        }
                    }
                }
                quantities_as_text(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(quantities_as_text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_quantities_are_read() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "demo", "namespace": "ml"},
            "spec": {
                "headGroupSpec": {"template": {"spec": {"containers": [
                    {"name": "head", "resources": {"limits": {"cpu": 2, "memory": "8Gi"}}}
                ]}}},
                "workerGroupSpecs": [{"groupName": "gpu", "replicas": 2, "template": {"spec": {"containers": [
                    {"name": "worker", "resources": {"limits": {"cpu": 64, "nvidia.com/gpu": 8}}}
                ]}}}]
            },
            "status": {"readyWorkerReplicas": 1}
        }))
        .unwrap();
        let summary = ray_cluster(object).summary();
        assert_eq!(
            (summary.name.as_str(), summary.gpus_desired, summary.workers_ready),
            ("demo", 16, 1)
        );
    }

    #[test]
    fn unreadable_spec_keeps_name_and_status() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "odd", "namespace": "ml"},
            "spec": {"workerGroupSpecs": "not a list"},
            "status": {"readyWorkerReplicas": 3}
        }))
        .unwrap();
        let summary = ray_cluster(object).summary();
        assert_eq!((summary.name.as_str(), summary.workers_ready), ("odd", 3));
    }
}
