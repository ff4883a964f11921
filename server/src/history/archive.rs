//! One job's driver log as history archives it: every line in order, in gzip-compressed chunks
//! of about [`CHUNK_TEXT`] of text, up to a cap per job, and how complete it is.
//!
//! Lines come numbered (from 1) as the shared log stream numbers them, so a gap is seen: the
//! archive then knows it is not whole, and [`crate::history::jobs`] reads the log again at the
//! job's end to replace it ([`Archive::whole`]).

use std::io::Write;
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;
use platform::history::{ArchiveState, LogArchive};

use super::record::{JobLogChunk, Record};

/// Text gathered before it is compressed and written as one chunk.
pub const CHUNK_TEXT: usize = 256 * 1024;

/// A job's log being archived.
pub struct Archive {
    cluster: String,
    job: String,
    /// Most bytes of text kept.
    cap: u64,
    /// The number of the next line expected.
    next: u64,
    /// Lines and bytes kept so far (written or pending).
    lines: u64,
    bytes: u64,
    /// Text not yet written: lines `pending_first..`, each ending in a newline.
    pending: Vec<u8>,
    pending_first: u64,
    pending_lines: u64,
    /// Whether the next chunk replaces what was archived before (the first one does).
    replace: bool,
    /// Lines past the cap, not kept.
    past_cap: u64,
    /// Lines never seen (a viewer's skip, or a stream that began late).
    missed: u64,
}

impl Archive {
    /// A new archive of job `job` of cluster `cluster` (uid), keeping at most `cap` bytes.
    pub fn new(cluster: &str, job: &str, cap: u64) -> Archive {
        Archive {
            cluster: cluster.to_owned(),
            job: job.to_owned(),
            cap,
            next: 1,
            lines: 0,
            bytes: 0,
            pending: Vec::new(),
            pending_first: 1,
            pending_lines: 0,
            replace: true,
            past_cap: 0,
            missed: 0,
        }
    }

    /// A whole log read at once (`text`, as Ray gives it), archived in place of anything before.
    pub fn whole(cluster: &str, job: &str, cap: u64, text: &str) -> (Vec<Record>, LogArchive) {
        let mut archive = Archive::new(cluster, job, cap);
        let mut lines = crate::logs::Lines::default();
        let mut all = Vec::new();
        lines.split(text.as_bytes(), |raw| all.push(crate::logs::text(raw)));
        lines.finish(|raw| all.push(crate::logs::text(raw)));
        let mut records = archive.take(1, &all);
        records.extend(archive.flush());
        let state = archive.state(true, "");
        (records, state)
    }

    /// Lines numbered from `first`; the chunks now ready to write.
    pub fn take(&mut self, first: u64, lines: &[Arc<str>]) -> Vec<Record> {
        let mut ready = Vec::new();
        for (n, line) in (first..).zip(lines) {
            if n < self.next {
                continue;
            }
            if n > self.next {
                self.missed += n - self.next;
            }
            self.next = n + 1;
            let size = line.len() as u64 + 1;
            if self.past_cap > 0 || self.bytes + size > self.cap {
                self.past_cap += 1;
                continue;
            }
            if self.pending_lines == 0 {
                self.pending_first = n;
            } else if n != self.pending_first + self.pending_lines {
                // A gap inside a chunk: the chunk ends before it.
                ready.extend(self.flush());
                self.pending_first = n;
            }
            self.pending.extend_from_slice(line.as_bytes());
            self.pending.push(b'\n');
            self.pending_lines += 1;
            self.lines += 1;
            self.bytes += size;
            if self.pending.len() >= CHUNK_TEXT {
                ready.extend(self.flush());
            }
        }
        ready
    }

    /// `count` lines the stream skipped, through line `through`.
    pub fn skipped(&mut self, count: u64, through: u64) {
        self.missed += count;
        self.next = self.next.max(through + 1);
    }

    /// Whether lines were missed: the archive is not the whole log.
    pub fn has_gaps(&self) -> bool {
        self.missed > 0
    }

    /// The pending text as a chunk, if any.
    pub fn flush(&mut self) -> Option<Record> {
        if self.pending_lines == 0 {
            return None;
        }
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(self.pending.len() / 4), Compression::fast());
        // Writing into memory cannot fail.
        let _ = encoder.write_all(&self.pending);
        let data = encoder.finish().unwrap_or_default();
        let chunk = JobLogChunk {
            cluster: self.cluster.clone(),
            job: self.job.clone(),
            first_line: self.pending_first,
            lines: self.pending_lines,
            data,
            replace: std::mem::take(&mut self.replace),
        };
        self.pending.clear();
        self.pending_lines = 0;
        Some(Record::JobLog(Box::new(chunk)))
    }

    /// How complete the archive is: `ended` whether the log ended with the job, else `why` not.
    pub fn state(&self, ended: bool, why: &str) -> LogArchive {
        let mut notes = Vec::new();
        let state = if !ended {
            notes.push(why.to_owned());
            ArchiveState::Partial
        } else if self.missed > 0 {
            notes.push(format!("{} lines were missed", self.missed));
            ArchiveState::Partial
        } else if self.past_cap > 0 {
            ArchiveState::Cut
        } else {
            ArchiveState::Complete
        };
        if self.past_cap > 0 {
            notes.push(format!(
                "cut at {} MiB (--history-job-log-mib): the {} lines after line {} are not kept",
                self.cap >> 20,
                self.past_cap,
                self.lines
            ));
        }
        LogArchive { state, note: notes.join("; "), lines: self.lines, bytes: self.bytes }
    }

    /// How it stands while the job runs.
    pub fn running(&self) -> LogArchive {
        LogArchive {
            state: ArchiveState::Archiving,
            note: String::new(),
            lines: self.lines,
            bytes: self.bytes,
        }
    }
}

/// The text of a stored chunk.
pub fn unpack(data: &[u8]) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(data)
        .read_to_string(&mut text)
        .map_err(|e| format!("an archived log chunk cannot be read: {e}"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::RangeInclusive<u64>) -> Vec<Arc<str>> {
        range.map(|n| Arc::from(format!("line {n}"))).collect()
    }

    fn chunks(records: &[Record]) -> Vec<(u64, u64, String, bool)> {
        records
            .iter()
            .map(|r| match r {
                Record::JobLog(c) => (c.first_line, c.lines, unpack(&c.data).unwrap(), c.replace),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_are_kept_in_order_once_and_compressed() {
        let mut archive = Archive::new("uid", "job", 1 << 20);
        assert!(archive.take(1, &lines(1..=3)).is_empty(), "a small log waits for its flush");
        // A replay of lines already in hand changes nothing.
        assert!(archive.take(2, &lines(2..=5)).is_empty());
        let flushed: Vec<Record> = archive.flush().into_iter().collect();
        let got = chunks(&flushed);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1, got[0].3), (1, 5, true));
        assert_eq!(got[0].2, "line 1\nline 2\nline 3\nline 4\nline 5\n");
        archive.take(6, &lines(6..=6));
        let next = chunks(&archive.flush().into_iter().collect::<Vec<_>>());
        assert_eq!((next[0].0, next[0].1, next[0].3), (6, 1, false), "only the first replaces");
        let state = archive.state(true, "");
        assert_eq!(
            (state.state, state.lines, state.note.as_str()),
            (ArchiveState::Complete, 6, "")
        );
        assert_eq!(state.bytes, 6 * 7);
    }

    #[test]
    fn a_big_log_goes_in_chunks_that_compress() {
        let mut archive = Archive::new("uid", "job", 1 << 30);
        let many: Vec<Arc<str>> =
            (1..=100_000u64).map(|n| Arc::from(format!("step {n}: loss 0.{n:05}"))).collect();
        let mut records = archive.take(1, &many);
        records.extend(archive.flush());
        let got = chunks(&records);
        assert!(got.len() > 3, "{} chunks", got.len());
        let text: String = got.iter().map(|c| c.2.as_str()).collect();
        assert_eq!(text.lines().count(), 100_000);
        assert_eq!(text.lines().last(), Some("step 100000: loss 0.100000"));
        let stored: usize =
            records.iter().map(|r| if let Record::JobLog(c) = r { c.data.len() } else { 0 }).sum();
        assert!(stored * 3 < text.len(), "{stored} bytes stored for {} of text", text.len());
        let firsts: Vec<u64> = got.iter().map(|c| c.0).collect();
        let counts: u64 = got.iter().map(|c| c.1).sum();
        assert_eq!((firsts[0], counts), (1, 100_000));
    }

    #[test]
    fn past_the_cap_lines_are_counted_and_the_archive_says_cut() {
        let mut archive = Archive::new("uid", "job", 3 << 20);
        let line: Arc<str> = Arc::from("x".repeat(1023));
        let megabytes: Vec<Arc<str>> = vec![line; 4 * 1024];
        let mut records = archive.take(1, &megabytes);
        records.extend(archive.flush());
        let state = archive.state(true, "");
        assert_eq!(state.state, ArchiveState::Cut);
        assert_eq!((state.lines, state.bytes), (3 * 1024, 3 << 20));
        assert!(
            state.note.contains("cut at 3 MiB (--history-job-log-mib)")
                && state.note.contains("the 1024 lines after line 3072"),
            "{}",
            state.note
        );
    }

    #[test]
    fn a_gap_is_seen_and_makes_the_archive_partial() {
        let mut archive = Archive::new("uid", "job", 1 << 20);
        archive.take(1, &lines(1..=2));
        archive.skipped(5, 7);
        let records: Vec<Record> =
            archive.take(8, &lines(8..=9)).into_iter().chain(archive.flush()).collect();
        let got = chunks(&records);
        assert_eq!(got.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(), [(1, 2), (8, 2)]);
        assert!(archive.has_gaps());
        let state = archive.state(true, "");
        assert_eq!(state.state, ArchiveState::Partial);
        assert_eq!(state.note, "5 lines were missed");
        // A log that ended without its job (the head went away) is partial, and says why.
        let cut_short = Archive::new("uid", "job", 1 << 20).state(false, "the head went away");
        assert_eq!(
            (cut_short.state, cut_short.note.as_str()),
            (ArchiveState::Partial, "the head went away")
        );
    }

    #[test]
    fn a_whole_log_replaces_what_was_archived() {
        let (records, state) =
            Archive::whole("uid", "job", 1 << 20, "a\r\nb\nlast without newline");
        let got = chunks(&records);
        assert_eq!(got, [(1, 3, "a\nb\nlast without newline\n".to_owned(), true)]);
        assert_eq!((state.state, state.lines), (ArchiveState::Complete, 3));
    }
}
