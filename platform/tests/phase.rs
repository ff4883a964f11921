//! The phase rule over every combination of the conditions KubeRay writes, and over the
//! condition sets KubeRay actually produces during a cluster's life.

use raydar_platform::status::condition::*;
use raydar_platform::{ClusterCondition, ClusterPhase};

const TYPES: [&str; 5] = [PROVISIONED, HEAD_POD_READY, REPLICA_FAILURE, SUSPENDING, SUSPENDED];
/// `None` is a condition KubeRay has not written (yet).
const STATES: [Option<&str>; 4] = [None, Some("True"), Some("False"), Some("Unknown")];

fn cond(type_: &str, status: &str, reason: &str) -> ClusterCondition {
    ClusterCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(String::new()),
        last_transition_time: None,
    }
}

/// Every assignment of absent/True/False/Unknown to the five condition types: 4^5 = 1024 cases.
fn all_condition_sets() -> Vec<Vec<ClusterCondition>> {
    let mut sets = vec![vec![]];
    for type_ in TYPES {
        sets = sets
            .into_iter()
            .flat_map(|set| {
                STATES.iter().map(move |state| {
                    let mut set = set.clone();
                    if let Some(status) = state {
                        set.push(cond(type_, status, &format!("{type_}Reason")));
                    }
                    set
                })
            })
            .collect();
    }
    sets
}

#[test]
fn every_combination_follows_the_dashboard_rule() {
    let sets = all_condition_sets();
    assert_eq!(sets.len(), 1024);
    for set in sets {
        let status_of = |t: &str| set.iter().find(|c| c.type_ == t).map(|c| c.status.as_str());
        let phase = ClusterPhase::from_status(&set, Some("ready"));
        let expected = if status_of(SUSPENDED) == Some("True") {
            ClusterPhase::Suspended
        } else if status_of(SUSPENDING) == Some("True") {
            ClusterPhase::Suspending
        } else if status_of(HEAD_POD_READY) == Some("True")
            && status_of(PROVISIONED) != Some("False")
        {
            ClusterPhase::Ready
        } else if status_of(REPLICA_FAILURE) == Some("True") {
            ClusterPhase::Failed(format!("{REPLICA_FAILURE}Reason"))
        } else if set.is_empty() {
            // Only a cluster without conditions falls back to the deprecated state.
            ClusterPhase::Ready
        } else {
            ClusterPhase::Provisioning
        };
        assert_eq!(phase, expected, "conditions {set:?}");
    }
}

#[test]
fn a_cluster_is_never_ready_while_its_head_is_not() {
    for set in all_condition_sets() {
        let head_ready = set.iter().any(|c| c.type_ == HEAD_POD_READY && c.status == "True");
        if !head_ready {
            assert_ne!(ClusterPhase::from_status(&set, None), ClusterPhase::Ready, "{set:?}");
        }
    }
}

/// The condition sets KubeRay v1.5 writes as a cluster is created, becomes ready, loses a
/// worker, is suspended and resumed (reasons from ray-operator/apis/ray/v1/raycluster_types.go).
#[test]
fn a_cluster_lifecycle_as_kuberay_reports_it() {
    let steps: Vec<(Vec<ClusterCondition>, ClusterPhase)> = vec![
        (vec![], ClusterPhase::Provisioning),
        (
            vec![
                cond(PROVISIONED, "False", "RayClusterPodsProvisioning"),
                cond(HEAD_POD_READY, "False", "HeadPodNotFound"),
            ],
            ClusterPhase::Provisioning,
        ),
        (
            vec![
                cond(PROVISIONED, "False", "RayClusterPodsProvisioning"),
                cond(HEAD_POD_READY, "True", "HeadPodRunningAndReady"),
            ],
            ClusterPhase::Provisioning,
        ),
        (
            vec![
                cond(PROVISIONED, "True", "AllPodRunningAndReadyFirstTime"),
                cond(HEAD_POD_READY, "True", "HeadPodRunningAndReady"),
            ],
            ClusterPhase::Ready,
        ),
        (
            // Provisioned stays True after the first time: a lost worker does not un-ready it.
            vec![
                cond(PROVISIONED, "True", "AllPodRunningAndReadyFirstTime"),
                cond(HEAD_POD_READY, "True", "HeadPodRunningAndReady"),
                cond(REPLICA_FAILURE, "True", "FailedCreateWorkerPod"),
            ],
            ClusterPhase::Ready,
        ),
        (
            vec![
                cond(PROVISIONED, "False", "RayClusterPodsProvisioning"),
                cond(HEAD_POD_READY, "False", "HeadPodNotFound"),
                cond(REPLICA_FAILURE, "True", "FailedCreateHeadPod"),
            ],
            ClusterPhase::Failed("FailedCreateHeadPod".into()),
        ),
        (
            vec![
                cond(PROVISIONED, "True", "AllPodRunningAndReadyFirstTime"),
                cond(HEAD_POD_READY, "True", "HeadPodRunningAndReady"),
                cond(SUSPENDING, "True", "RayClusterSuspending"),
            ],
            ClusterPhase::Suspending,
        ),
        (
            vec![
                cond(PROVISIONED, "False", "RayClusterPodsProvisioning"),
                cond(HEAD_POD_READY, "False", "HeadPodNotFound"),
                cond(SUSPENDING, "False", "RayClusterSuspending"),
                cond(SUSPENDED, "True", "RayClusterSuspended"),
            ],
            ClusterPhase::Suspended,
        ),
        (
            vec![
                cond(PROVISIONED, "False", "RayClusterPodsProvisioning"),
                cond(HEAD_POD_READY, "False", "HeadPodNotFound"),
                cond(SUSPENDED, "False", "RayClusterSuspended"),
            ],
            ClusterPhase::Provisioning,
        ),
    ];
    for (conditions, expected) in steps {
        assert_eq!(ClusterPhase::from_status(&conditions, None), expected, "{conditions:?}");
    }
}

#[test]
fn operators_without_conditions_fall_back_to_the_deprecated_state() {
    assert_eq!(ClusterPhase::from_status(&[], Some("ready")), ClusterPhase::Ready);
    assert_eq!(ClusterPhase::from_status(&[], Some("suspended")), ClusterPhase::Suspended);
    assert_eq!(
        ClusterPhase::from_status(&[], Some("failed")),
        ClusterPhase::Failed("failed".into())
    );
    assert_eq!(ClusterPhase::from_status(&[], None), ClusterPhase::Provisioning);
    // With conditions present, the deprecated state is ignored.
    let provisioning = [cond(HEAD_POD_READY, "False", "HeadPodNotFound")];
    assert_eq!(ClusterPhase::from_status(&provisioning, Some("ready")), ClusterPhase::Provisioning);
}

#[test]
fn a_failure_without_a_reason_still_says_what_failed() {
    let mut c = cond(REPLICA_FAILURE, "True", "");
    c.reason = None;
    assert_eq!(
        ClusterPhase::from_status(&[c], None),
        ClusterPhase::Failed("ReplicaFailure".into())
    );
}
