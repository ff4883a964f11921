//! ANSI colours in log lines: the SGR escape sequences (`ESC [ … m`) programs print for colour
//! and bold, turned into styled runs of plain text for the log viewer.
//!
//! Only the text of a run is ever shown, as text: a log line cannot inject markup. Every other
//! escape sequence (cursor movement, erase, OSC titles) is dropped, since a log viewer has no
//! cursor to move.

/// A run of text with one style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// CSS classes for the style, e.g. `ansi-fg-1 ansi-bold`; empty for plain text.
    pub class: String,
    /// The text, escape sequences removed.
    pub text: String,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    /// 0..=15: the 8 colours, then their bright versions.
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    fn class(&self) -> String {
        let mut classes = Vec::new();
        if let Some(c) = self.fg {
            classes.push(format!("ansi-fg-{c}"));
        }
        if let Some(c) = self.bg {
            classes.push(format!("ansi-bg-{c}"));
        }
        for (on, name) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(name.to_owned());
            }
        }
        classes.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                c @ 30..=37 => self.fg = Some((c - 30) as u8),
                39 => self.fg = None,
                c @ 40..=47 => self.bg = Some((c - 40) as u8),
                49 => self.bg = None,
                c @ 90..=97 => self.fg = Some((c - 90 + 8) as u8),
                c @ 100..=107 => self.bg = Some((c - 100 + 8) as u8),
                // 256-colour and true-colour forms: skip their arguments, keep the rest.
                38 | 48 => {
                    i += match codes.get(i + 1) {
                        Some(5) => 2,
                        Some(2) => 4,
                        _ => 0,
                    };
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Splits `line` into styled runs, dropping every escape sequence. Plain text is one run with
/// no class.
pub fn runs(line: &str) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |out: &mut Vec<Run>, text: &mut String, style: &Style| {
        if !text.is_empty() {
            out.push(Run { class: style.class(), text: std::mem::take(text) });
        }
    };
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            // Other control characters (except tab) would show as boxes.
            if !c.is_control() || c == '\t' {
                text.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('[') => {
                let mut params = String::new();
                let mut last = None;
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        last = Some(c);
                        break;
                    }
                    params.push(c);
                }
                if last == Some('m') {
                    let before = style;
                    style.apply(&params);
                    if style != before {
                        flush(&mut out, &mut text, &before);
                    }
                }
            }
            // OSC (`ESC ] … BEL` or `ESC ] … ESC \`): a terminal title or hyperlink, dropped.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    flush(&mut out, &mut text, &style);
    out
}

/// The line's text without escape sequences, for searching.
pub fn plain(line: &str) -> String {
    runs(line).into_iter().map(|r| r.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(class: &str, text: &str) -> Run {
        Run { class: class.into(), text: text.into() }
    }

    #[test]
    fn plain_text_is_one_unstyled_run() {
        assert_eq!(runs("epoch 3: loss 0.25"), [run("", "epoch 3: loss 0.25")]);
        assert_eq!(runs(""), []);
    }

    #[test]
    fn colours_and_bold_become_classes_and_reset_ends_them() {
        let line = "\u{1b}[32mINFO\u{1b}[0m ok \u{1b}[1;91mFAILED\u{1b}[22m still red\u{1b}[39m";
        assert_eq!(
            runs(line),
            [
                run("ansi-fg-2", "INFO"),
                run("", " ok "),
                run("ansi-fg-9 ansi-bold", "FAILED"),
                run("ansi-fg-9", " still red")
            ]
        );
        assert_eq!(plain(line), "INFO ok FAILED still red");
    }

    #[test]
    fn other_sequences_and_controls_are_dropped_and_markup_stays_text() {
        assert_eq!(runs("\u{1b}[2K\u{1b}[1Aprogress 50%\r"), [run("", "progress 50%")]);
        assert_eq!(runs("\u{1b}]0;title\u{7}<b>x</b>"), [run("", "<b>x</b>")]);
        assert_eq!(runs("\u{1b}[38;5;208mtoo many colours\u{1b}[m"), [run("", "too many colours")]);
        assert_eq!(runs("unterminated \u{1b}["), [run("", "unterminated ")]);
    }
}
