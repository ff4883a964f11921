use super::*;

const T0: i64 = 1_796_600_000;

fn cluster(workers: u64) -> ClusterProgress {
    ClusterProgress { created: T0, workers_desired: workers, ..ClusterProgress::default() }
}

fn pod(name: &str, head: bool) -> PodProgress {
    PodProgress { name: name.into(), head, created: T0 + 1, ..PodProgress::default() }
}

/// A pod scheduled, running and ready at these offsets from T0.
fn started(name: &str, head: bool, scheduled: i64, running: i64, ready: i64) -> PodProgress {
    PodProgress {
        scheduled_at: Some(T0 + scheduled),
        running_at: Some(T0 + running),
        ready_at: Some(T0 + ready),
        ..pod(name, head)
    }
}

fn states(waiting: &Waiting) -> Vec<(&str, &str, Option<i64>)> {
    waiting.stages.iter().map(|s| (s.name.as_str(), s.state.as_str(), s.took_s)).collect()
}

#[test]
fn a_cluster_that_became_ready_shows_each_stages_duration() {
    let mut ready = cluster(2);
    ready.head_ready_since = Some(T0 + 31);
    let pods = [
        started("c-head", true, 2, 12, 30),
        started("c-w1", false, 3, 14, 40),
        started("c-w2", false, 5, 15, 44),
    ];
    let waiting = waiting(&ready, &pods, T0 + 600).unwrap();
    assert_eq!(
        states(&waiting),
        [
            ("created", "done", Some(0)),
            ("scheduled", "done", Some(5)),
            ("running", "done", Some(10)),
            ("head", "done", Some(15)),
            ("workers", "done", Some(14)),
            ("ready", "done", Some(0)),
        ]
    );
    assert_eq!((waiting.current, waiting.reason, waiting.time_to_ready_s), (None, None, Some(44)));
}

#[test]
fn an_unschedulable_worker_holds_the_cluster_with_the_schedulers_words() {
    let mut c = cluster(2);
    c.head_ready_since = Some(T0 + 31);
    let message = "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) didn't match \
                   Pod's node affinity/selector.";
    let stuck = PodProgress { unschedulable: Some(message.into()), ..pod("c-w2", false) };
    let pods = [started("c-head", true, 2, 12, 30), started("c-w1", false, 3, 14, 40), stuck];
    let waiting = waiting(&c, &pods, T0 + 300).unwrap();
    assert_eq!(
        states(&waiting)[..3],
        [("created", "done", Some(0)), ("scheduled", "now", Some(300)), ("running", "later", None)]
    );
    assert_eq!(waiting.stages[1].progress, "2 of 3 pods");
    let reason = waiting.reason.unwrap();
    assert_eq!(reason.kind, "unschedulable");
    assert_eq!(reason.pods, ["c-w2"]);
    assert_eq!(
        reason.message,
        format!("pod c-w2 cannot be placed on any node; the scheduler says: {message}")
    );
    assert_eq!(waiting.time_to_ready_s, None);
}

#[test]
fn a_crash_looping_head_is_named_with_its_last_lines() {
    let trouble = Trouble {
        container: "ray-head".into(),
        reason: "CrashLoopBackOff".into(),
        message: "back-off 40s restarting failed container".into(),
        restarts: 3,
        last_lines: "ValueError: bad address\n".into(),
    };
    let head =
        PodProgress { scheduled_at: Some(T0 + 2), trouble: Some(trouble), ..pod("c-head", true) };
    let waiting = waiting(&cluster(0), &[head], T0 + 90).unwrap();
    assert_eq!(waiting.current.as_deref(), Some("running"));
    let reason = waiting.reason.unwrap();
    assert_eq!(reason.kind, "crash-loop");
    assert_eq!(
        reason.message,
        "container ray-head of c-head keeps crashing: restarted 3 times (CrashLoopBackOff): \
         back-off 40s restarting failed container"
    );
    assert_eq!(reason.last_lines, "ValueError: bad address\n");
}

#[test]
fn an_image_that_does_not_pull_and_a_quota_refusal_are_said_as_such() {
    let trouble = Trouble {
        container: "ray-worker".into(),
        reason: "ImagePullBackOff".into(),
        message: "Back-off pulling image \"rayproject/ray:nope\"".into(),
        ..Trouble::default()
    };
    let worker =
        PodProgress { scheduled_at: Some(T0 + 2), trouble: Some(trouble), ..pod("c-w1", false) };
    let head = started("c-head", true, 2, 10, 20);
    let pulling = waiting(&cluster(1), &[head.clone(), worker], T0 + 60).unwrap();
    assert_eq!(pulling.current.as_deref(), Some("running"));
    let reason = pulling.reason.unwrap();
    assert_eq!(reason.kind, "image-pull");
    assert_eq!(
        reason.message,
        "container ray-worker of c-w1 cannot pull its image (ImagePullBackOff): Back-off pulling \
         image \"rayproject/ray:nope\""
    );

    // KubeRay could not create the second worker: the quota says no.
    let mut refused = cluster(2);
    refused.refusals = vec![
        Refusal { reason: "FailedToCreateWorkerPod".into(), message: "old".into(), at: T0 - 100 },
        Refusal {
            reason: "FailedToCreateWorkerPod".into(),
            message: "pods \"c-w2\" is forbidden: exceeded quota: gpus, requested: \
                      requests.nvidia.com/gpu=8, used: requests.nvidia.com/gpu=8, limited: \
                      requests.nvidia.com/gpu=8"
                .into(),
            at: T0 + 5,
        },
    ];
    let pods = [head, started("c-w1", false, 2, 10, 20)];
    let waiting = waiting(&refused, &pods, T0 + 60).unwrap();
    assert_eq!(waiting.current.as_deref(), Some("scheduled"));
    assert_eq!(waiting.stages[1].progress, "2 of 3 pods");
    let reason = waiting.reason.unwrap();
    assert_eq!(reason.kind, "quota");
    assert!(reason.message.starts_with("KubeRay could not create a pod (FailedToCreateWorkerPod): pods \"c-w2\" is forbidden: exceeded quota: gpus"), "{}", reason.message);
}

#[test]
fn a_head_that_runs_but_does_not_answer_is_said_after_a_minute() {
    let head = PodProgress {
        scheduled_at: Some(T0 + 2),
        running_at: Some(T0 + 10),
        ..pod("c-head", true)
    };
    let c = cluster(0);
    let early = waiting(&c, std::slice::from_ref(&head), T0 + 40).unwrap();
    assert_eq!((early.current.as_deref(), early.reason), (Some("head"), None));
    let late = waiting(&c, std::slice::from_ref(&head), T0 + 100).unwrap();
    let reason = late.reason.unwrap();
    assert_eq!(reason.kind, "head-not-answering");
    assert_eq!(reason.message, "Ray's head has run for 90s without answering");
    // raydar's own read failing says why, once the head has had its time.
    let mut unanswered = cluster(0);
    unanswered.head_unanswered = Some("connection refused".into());
    assert_eq!(waiting(&unanswered, std::slice::from_ref(&head), T0 + 20).unwrap().reason, None);
    let reason = waiting(&unanswered, &[head], T0 + 80).unwrap().reason.unwrap();
    assert_eq!(reason.message, "Ray's head has run for 70s without answering: connection refused");
}

#[test]
fn a_suspended_cluster_waits_for_nothing_and_missing_pods_are_counted() {
    let suspended = ClusterProgress { suspended: true, ..cluster(1) };
    assert_eq!(waiting(&suspended, &[], T0), None);
    // KubeRay has made no pod yet: scheduling has not ended, with nothing said to hold it.
    let fresh = waiting(&cluster(3), &[], T0 + 4).unwrap();
    assert_eq!(fresh.current.as_deref(), Some("scheduled"));
    assert_eq!(fresh.stages[1].progress, "0 of 4 pods");
    assert_eq!(fresh.reason, None);
}

#[test]
fn the_fleet_groups_waiting_clusters_by_reason_and_templates_by_time_to_ready() {
    let stuck = |name: &str, since: i64| {
        let row = fleet::WaitingCluster {
            namespace: "ml".into(),
            name: name.into(),
            template: "gpu".into(),
            owner: "ada".into(),
            stage: String::new(),
            since,
            message: String::new(),
        };
        let pod = PodProgress {
            unschedulable: Some("0/4 nodes".into()),
            ..pod(&format!("{name}-head"), true)
        };
        let mut c = cluster(0);
        c.created = since;
        (row, waiting(&c, &[pod], T0 + 100).unwrap())
    };
    let on_its_way = {
        let (row, _) = stuck("fresh", T0 + 90);
        (row, waiting(&cluster(0), &[], T0 + 100).unwrap())
    };
    let ready = {
        let (row, _) = stuck("done", T0);
        let mut c = cluster(0);
        c.head_ready_since = Some(T0 + 3);
        (row, waiting(&c, &[started("done-head", true, 1, 2, 3)], T0 + 100).unwrap())
    };
    let groups = fleet::group(vec![on_its_way, stuck("late", T0 + 50), ready, stuck("early", T0)]);
    let shown: Vec<(&str, &str, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            (
                g.kind.as_str(),
                g.label.as_str(),
                g.clusters.iter().map(|c| c.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("unschedulable", "Unschedulable", vec!["early", "late"]),
            ("starting", "On its way", vec!["fresh"]),
        ]
    );
    assert_eq!(groups[0].clusters[0].stage, "Pods scheduled");
    assert!(groups[0].clusters[0].message.ends_with("the scheduler says: 0/4 nodes"));

    let samples = (1..=20).map(|s| ("gpu".to_owned(), s * 1000)).chain([("cpu".to_owned(), 4000)]);
    let starts = fleet::template_starts(samples);
    let shown: Vec<(&str, u32, f64, f64)> =
        starts.iter().map(|t| (t.template.as_str(), t.clusters, t.p50_s, t.p95_s)).collect();
    assert_eq!(shown, [("cpu", 1, 4.0, 4.0), ("gpu", 20, 10.0, 19.0)]);
}
