//! `raydar jobs`: the Ray jobs of one running Ray cluster, as its dashboard lists them.

use platform::overview::RayJob;
use platform::template::Timestamp;

use crate::args::{JobsArgs, Output};
use crate::dashboard::Dashboard;
use crate::error::Result;
use crate::kubernetes::Kubernetes;
use crate::output::{print_json, print_text, table};

/// Longest entrypoint or message shown in a table cell; `-o json` has them whole.
const CELL: usize = 60;

/// `raydar jobs`.
pub async fn jobs(kubernetes: &Kubernetes, args: &JobsArgs, output: Output) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let dashboard = Dashboard::new(kubernetes, &namespace, &args.name)?;
    let jobs = dashboard.jobs().await?;
    match output {
        Output::Json => print_json(&jobs),
        Output::Text if jobs.is_empty() => {
            eprintln!("No Ray jobs on RayCluster {}.", dashboard.cluster());
        }
        Output::Text => print_text(&render_table(&jobs)),
    }
    Ok(())
}

/// The `jobs` table, newest first as given.
pub fn render_table(jobs: &[RayJob]) -> String {
    let header = ["ID", "STATUS", "START", "END", "ENTRYPOINT", "MESSAGE"];
    let mut cells = vec![header.map(str::to_owned).to_vec()];
    cells.extend(jobs.iter().map(|job| {
        vec![
            job.id.clone(),
            job.status.clone(),
            time(job.start_time),
            time(job.end_time),
            short(&job.entrypoint),
            short(job.message.as_deref().unwrap_or_default()),
        ]
    }));
    table(&cells)
}

/// A time Ray gives in Unix milliseconds, to the second in UTC; `-` if none.
fn time(unix_ms: Option<i64>) -> String {
    unix_ms
        .and_then(|ms| Timestamp::from_second(ms.div_euclid(1000)).ok())
        .map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// `text` on one line, cut to [`CELL`] characters; `-` if empty.
fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(CELL) {
        _ if line.is_empty() => "-".to_owned(),
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_id_status_times_and_one_line_texts() {
        let jobs = [
            RayJob {
                id: "train-x1".into(),
                status: "FAILED".into(),
                entrypoint: "python -c 'import sys;\n sys.exit(3)'".into(),
                message: Some("Job entrypoint command failed with exit code 3".into()),
                start_time: Some(1_795_697_696_343),
                end_time: Some(1_795_697_700_001),
                ..RayJob::default()
            },
            RayJob {
                id: "raysubmit_abc".into(),
                status: "PENDING".into(),
                entrypoint: "x".repeat(70),
                ..RayJob::default()
            },
        ];
        let text = render_table(&jobs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID "), "{text}");
        let cells: Vec<&str> =
            lines[1].split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(
            cells,
            [
                "train-x1",
                "FAILED",
                "2026-11-26T12:54:56Z",
                "2026-11-26T12:55:00Z",
                "python -c 'import sys; sys.exit(3)'",
                "Job entrypoint command failed with exit code 3"
            ]
        );
        let long = format!("{}…", "x".repeat(60));
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["raysubmit_abc", "PENDING", "-", "-", long.as_str(), "-"], "{text}");
    }
}
