//! Whether a pod may run on a node at all, as the scheduler's filters say: not cordoned, every
//! `NoSchedule`/`NoExecute` taint tolerated, every `nodeSelector` label present, and one of the
//! required node affinity's terms met.

use super::{Node, PodShape};

/// A node's taint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A pod's toleration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toleration {
    /// Empty with `Exists`: every taint.
    pub key: String,
    /// `Exists`, or `Equal` (the default).
    pub operator: String,
    pub value: String,
    /// Empty: every effect.
    pub effect: String,
}

impl Toleration {
    /// Whether it tolerates `taint`, by Kubernetes' rule.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if self.operator == "Exists" {
            return self.key.is_empty() || self.key == taint.key;
        }
        self.key == taint.key && self.value == taint.value
    }
}

/// One requirement of a node selector term (`matchExpressions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`.
    pub operator: String,
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a node with `labels` meets it; an operator Kubernetes does not know meets
    /// nothing (the apiserver refuses such a spec anyway).
    pub fn met_by(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let label = labels.get(&self.key);
        let number = |text: &str| text.parse::<i64>().ok();
        match self.operator.as_str() {
            "In" => label.is_some_and(|v| self.values.contains(v)),
            "NotIn" => label.is_none_or(|v| !self.values.contains(v)),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            "Gt" | "Lt" => {
                let (Some(have), Some(bound)) =
                    (label.and_then(|v| number(v)), self.values.first().and_then(|v| number(v)))
                else {
                    return false;
                };
                if self.operator == "Gt" {
                    have > bound
                } else {
                    have < bound
                }
            }
            _ => false,
        }
    }
}

/// Whether `node` may run a pod of `shape`; else why not, as "nodes …" words read after a count
/// ("are cordoned", "have taint gpu=true:NoSchedule, not tolerated").
pub fn admits(node: &Node, shape: &PodShape) -> Result<(), String> {
    if node.unschedulable {
        return Err("are cordoned".into());
    }
    for taint in &node.taints {
        if taint.effect == "PreferNoSchedule" {
            continue;
        }
        if !shape.tolerations.iter().any(|t| t.tolerates(taint)) {
            let value =
                if taint.value.is_empty() { String::new() } else { format!("={}", taint.value) };
            return Err(format!(
                "have taint {}{value}:{}, which it does not tolerate",
                taint.key, taint.effect
            ));
        }
    }
    for (key, value) in &shape.node_selector {
        if node.labels.get(key) != Some(value) {
            return Err(format!("do not match its nodeSelector {key}={value}"));
        }
    }
    let terms = &shape.affinity;
    // An empty term matches no node, as in Kubernetes.
    let met =
        |term: &Vec<Requirement>| !term.is_empty() && term.iter().all(|r| r.met_by(&node.labels));
    if !terms.is_empty() && !terms.iter().any(met) {
        return Err("do not meet its required node affinity".into());
    }
    Ok(())
}
