//! Bytes to lines: CR-LF and CR endings, lossy UTF-8, over-long lines cut.

use std::sync::Arc;

/// Longest line kept, in bytes of its text; the rest is replaced by [`CUT_MARKER`].
pub const MAX_LINE: usize = 16 * 1024;
/// What ends a line that was cut at [`MAX_LINE`].
pub const CUT_MARKER: &str = "… [line cut at 16 KiB]";
/// Bytes of a line held while it is read: [`MAX_LINE`] plus room for a pod log's timestamp.
const MAX_RAW: usize = MAX_LINE + 64;

/// Splits a stream of bytes into lines, holding at most [`MAX_RAW`] bytes of an unfinished one.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Calls `each` with every line completed by `bytes`, without its `\n`, at most [`MAX_RAW`]
    /// bytes of it (a longer line is cut by [`text`]).
    pub fn split(&mut self, mut bytes: &[u8], mut each: impl FnMut(&[u8])) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let line = &bytes[..end];
            if self.partial.is_empty() {
                each(&line[..line.len().min(MAX_RAW)]);
            } else {
                self.keep(line);
                each(&self.partial);
                self.partial.clear();
            }
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
    }

    /// The unfinished last line, as a line: for when the log is complete.
    pub fn finish(&mut self, each: impl FnOnce(&[u8])) {
        if !self.partial.is_empty() {
            each(&self.partial);
            self.partial.clear();
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_RAW.saturating_sub(self.partial.len());
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// A line as it is sent: without a trailing CR, invalid UTF-8 replaced, cut after [`MAX_LINE`]
/// bytes (at a character boundary) with [`CUT_MARKER`].
pub fn text(raw: &[u8]) -> Arc<str> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.len() <= MAX_LINE {
        return Arc::from(String::from_utf8_lossy(raw));
    }
    // Back off to the start of a character cut in two (UTF-8 continuation bytes are 10xxxxxx).
    let mut end = MAX_LINE;
    while end > MAX_LINE - 3 && raw[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let mut line = String::from_utf8_lossy(&raw[..end]).into_owned();
    line.push_str(CUT_MARKER);
    Arc::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines.split(chunk, |raw| out.push(text(raw).to_string()));
        }
        lines.finish(|raw| out.push(text(raw).to_string()));
        out
    }

    #[test]
    fn lines_are_split_across_chunks_with_crlf_normalized() {
        assert_eq!(
            split_all(&[b"a\r", b"\nb", b"c\n", b"\n\r\n", b"last"]),
            ["a", "bc", "", "", "last"]
        );
        // A lone CR inside a line is the line's own.
        assert_eq!(split_all(&[b"50%\r100%\n"]), ["50%\r100%"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            split_all(&[b"ok \xff\xfe end\n", "caf\u{e9}\n".as_bytes()]),
            ["ok \u{fffd}\u{fffd} end", "caf\u{e9}"]
        );
        // A character split between chunks is whole again.
        let e = "\u{e9}".as_bytes();
        assert_eq!(split_all(&[&[b'x', e[0]], &[e[1], b'\n']]), ["x\u{e9}"]);
    }

    #[test]
    fn a_long_line_is_cut_at_16_kib_on_a_character_boundary() {
        let exact = "x".repeat(MAX_LINE);
        assert_eq!(
            split_all(&[exact.as_bytes(), b"\r\n"]),
            std::slice::from_ref(&exact),
            "16 KiB exactly is kept whole"
        );
        // 'é' takes bytes MAX_LINE-1 and MAX_LINE: it is dropped whole, not halved.
        let long = format!("{}é{}", "x".repeat(MAX_LINE - 1), "y".repeat(100_000));
        let chunks: Vec<&[u8]> = long.as_bytes().chunks(1000).chain([&b"\nnext\n"[..]]).collect();
        let lines = split_all(&chunks);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("{}{CUT_MARKER}", "x".repeat(MAX_LINE - 1)));
        assert_eq!(lines[1], "next");
    }
}
