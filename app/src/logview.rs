//! The log viewer's live part in the browser: one `EventSource` on the server's stream of a log,
//! and the lines written straight into the page's DOM.
//!
//! Straight DOM, not a reactive list: a log grows by thousands of lines a second, and appending a
//! node per line costs the same at line 10 and at line 20,000, where re-rendering a keyed list
//! would compare every line on every batch. It is also plain, non-generic code, so it stays in
//! the log page's wasm chunk instead of growing the first load (see [`crate::live::listen`]).
//!
//! - Every line is set as text (`textContent`), never parsed as HTML: a log line of markup reads
//!   as markup. ANSI colours become classes on text runs ([`platform::ansi`]).
//! - Lines are numbered by the server; the browser's `EventSource` reconnects by itself and sends
//!   the last number it saw, and lines at or below the last shown number are dropped here too, so
//!   a reconnect shows no line twice.
//! - Pause holds new lines back (counting them on the button) until Resume; at most
//!   [`MAX_LINES`] are held, older ones are dropped and counted.
//! - The page keeps the newest [`MAX_LINES`] lines (up to a chunk more: old lines go a chunk at
//!   a time) and says how many older ones it let go.
//! - Search shows only the lines containing its text (case-insensitive).
//! - A batch of lines goes into the page as one fragment, and the log follows its end only while
//!   the reader is at the end: scrolled up, the view stays where it is. The scroll to the end
//!   happens once per frame, whatever the number of batches in it: each batch is then one DOM
//!   insertion, and layout runs once per frame, as the browser would run it anyway.

use std::cell::RefCell;
use std::rc::Rc;

use platform::ansi::{plain, runs};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{
    Document, DocumentFragment, Element, Event, EventSource, EventTarget, HtmlElement,
    HtmlInputElement, Node,
};

use crate::live::{listen, parse};

/// Lines the page keeps (plus at most one chunk's worth, and at most holds while paused); a long
/// log cannot exhaust the tab.
pub const MAX_LINES: usize = 20_000;

/// Lines per chunk: a few screens, so that only one or two chunks are ever in view.
const CHUNK_LINES: usize = 200;

/// Frames the scroll to the end may take to settle while skipped chunks come into view and take
/// their real height (each frame brings the view closer; two or three are usual).
const SETTLE_FRAMES: u8 = 20;

/// A shown line: its number (0 for a marker), its text without colours (for search), its element.
struct Shown {
    n: u64,
    text: String,
    el: Element,
}

/// The viewer's state, shared by its event handlers.
struct Pane {
    doc: Document,
    /// An empty `div.line`: each line is a copy of it, one call into the DOM where creating and
    /// naming an element is two.
    line: Element,
    /// `.log`: the scrolled box.
    log: HtmlElement,
    /// `.log-lines`: where the chunks of lines go.
    lines: Element,
    /// The chunks (`.log-chunk`) holding the shown lines, oldest first, with their line counts.
    /// Full ones are marked `full`: out of view, the browser skips their layout and paint
    /// (`content-visibility: auto`, style/main.css), which keeps a page of 20,000 lines as quick
    /// to add to as an empty one. A skipped chunk is sized by its last rendered height (or an
    /// estimate, if it filled up out of view), so the scroll to the end settles over a few frames.
    chunks: std::collections::VecDeque<(Element, usize)>,
    /// The batch being put together, inserted into `lines` at once.
    batch: Option<DocumentFragment>,
    /// The reader is at the end of the log: new lines scroll into view.
    pinned: bool,
    /// The frame a scroll to the end is asked for (cancelled when the viewer closes).
    frame: Option<i32>,
    /// Frames in a row the scroll to the end has found the log grown under it.
    settle: u8,
    /// Where the reader's last scroll left the view (its top): a scroll up is the reader's.
    last_top: i32,
    /// Runs that scroll (set once the pane exists).
    to_end: Option<Closure<dyn FnMut()>>,
    /// What the state line says now: written only when it changes.
    state_now: String,
    pause: Element,
    state: Element,
    matches: Element,
    dropped_note: Element,
    shown: std::collections::VecDeque<Shown>,
    /// Lines that arrived while paused, oldest first.
    held: std::collections::VecDeque<(u64, String)>,
    paused: bool,
    /// The search text in lower case; empty shows every line.
    needle: String,
    /// The highest line number received: a resumed stream never shows a line twice.
    last: u64,
    /// Lines let go from the page (and from the held lines) to stay within [`MAX_LINES`].
    dropped: u64,
    /// The count the dropped note last said.
    noted: u64,
    /// Shown lines that contain the search text, kept as lines come and go.
    found: usize,
    ended: bool,
}

#[derive(Deserialize)]
struct Lines {
    first: u64,
    lines: Vec<String>,
}

#[derive(Deserialize)]
struct Skipped {
    count: u64,
    reason: String,
}

/// The open viewer; dropping it closes the stream.
pub struct Viewer {
    source: EventSource,
    pane: Rc<RefCell<Pane>>,
    _handlers: Vec<Closure<dyn FnMut(Event)>>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.source.close();
        // The frame's closure goes with the pane: the browser must not call it after.
        if let (Some(frame), Some(window)) =
            (self.pane.borrow_mut().frame.take(), web_sys::window())
        {
            let _ = window.cancel_animation_frame(frame);
        }
    }
}

/// Starts the viewer inside `root` (the server-rendered `.log-view`), reading `stream`.
///
/// `None` when the page lacks its parts or the browser refuses the stream; the page then keeps
/// its Download link, which works without script.
#[inline(never)]
pub fn start(root: &Element, stream: &str) -> Option<Viewer> {
    let part = |selector: &str| root.query_selector(selector).ok().flatten();
    let doc = web_sys::window()?.document()?;
    let line = doc.create_element("div").ok()?;
    line.set_class_name("line");
    let pane = Rc::new(RefCell::new(Pane {
        doc,
        line,
        log: part(".log")?.dyn_into().ok()?,
        lines: part(".log-lines")?,
        chunks: Default::default(),
        batch: None,
        pinned: true,
        frame: None,
        settle: 0,
        last_top: 0,
        to_end: None,
        state_now: String::new(),
        pause: part("button.pause")?,
        state: part(".log-state")?,
        matches: part(".matches")?,
        dropped_note: part(".dropped")?,
        shown: Default::default(),
        held: Default::default(),
        paused: false,
        needle: String::new(),
        last: 0,
        dropped: 0,
        noted: 0,
        found: 0,
        ended: false,
    }));
    let search: HtmlInputElement = part("input.search")?.dyn_into().ok()?;
    // Weak: the pane owns this closure, which must not keep the pane (and its lines) alive.
    let p = Rc::downgrade(&pane);
    pane.borrow_mut().to_end = Some(Closure::new(move || {
        let Some(pane) = p.upgrade() else { return };
        let mut pane = pane.borrow_mut();
        pane.frame = None;
        if pane.pinned {
            let end = pane.log.scroll_height();
            pane.log.set_scroll_top(end);
            // A skipped chunk that comes into view is laid out only now, at its real height, and
            // moves the end: once more in the next frame, until the view stays at the end.
            let short =
                pane.log.scroll_height() - pane.log.scroll_top() - pane.log.client_height() > 1;
            if short && pane.settle < SETTLE_FRAMES {
                pane.settle += 1;
                pane.ask_frame();
            } else {
                pane.settle = 0;
            }
        }
    }));
    let source = EventSource::new(&crate::api::rest::here(stream.to_owned())).ok()?;

    let mut handlers = Vec::new();
    let mut on = |target: &EventTarget, name: &str, f: Box<dyn FnMut(Event)>| {
        handlers.push(listen(target, name, f))
    };
    let stream: &EventTarget = &source;
    let p = pane.clone();
    on(
        stream,
        "lines",
        Box::new(move |e| {
            if let Some(batch) = parse::<Lines>(&e) {
                let mut pane = p.borrow_mut();
                pane.set_state("live", "live");
                pane.receive(batch);
            }
        }),
    );
    let p = pane.clone();
    on(
        stream,
        "skipped",
        Box::new(move |e| {
            if let Some(s) = parse::<Skipped>(&e) {
                p.borrow_mut().marker(&format!("… {} lines skipped: {}", s.count, s.reason));
            }
        }),
    );
    let (p, closer) = (pane.clone(), source.clone());
    on(
        stream,
        "end",
        Box::new(move |e| {
            // The log is complete: stop the browser from reconnecting for more.
            closer.close();
            let why = parse::<serde_json::Value>(&e)
                .and_then(|v| v["reason"].as_str().map(str::to_owned));
            let mut pane = p.borrow_mut();
            pane.ended = true;
            pane.set_state(
                "ended",
                &format!("complete: {}", why.as_deref().unwrap_or("the log ended")),
            );
        }),
    );
    let p = pane.clone();
    on(
        stream,
        "problem",
        Box::new(move |e| {
            let why =
                parse::<serde_json::Value>(&e).and_then(|v| v["error"].as_str().map(str::to_owned));
            p.borrow_mut()
                .set_state("trouble", why.as_deref().unwrap_or("trouble reading the log"));
        }),
    );
    let (p, watcher) = (pane.clone(), source.clone());
    on(
        stream,
        "error",
        Box::new(move |_| {
            // EventSource retries by itself, resuming after the last line it saw; an error answer
            // (4xx/5xx) ends it instead (readyState CLOSED): then say why.
            let mut pane = p.borrow_mut();
            if pane.ended {
                return;
            }
            if watcher.ready_state() == EventSource::CLOSED {
                pane.set_state("trouble", "raydar refused the log stream (reload to retry)");
            } else {
                pane.set_state("reconnecting", "reconnecting…");
            }
        }),
    );
    let (p, scrolled) = (pane.clone(), pane.borrow().log.clone());
    on(
        &scrolled.clone().into(),
        "scroll",
        Box::new(move |_| {
            // At the end (within two lines) is where the reader wants to stay. Only a scroll up
            // lets go of the end: the log growing or shrinking around the view moves it too, and
            // that is not the reader leaving.
            let top = scrolled.scroll_top();
            let mut pane = p.borrow_mut();
            let at_end = pane.at_end();
            if at_end || top < pane.last_top {
                pane.pinned = at_end;
            }
            pane.last_top = top;
        }),
    );
    let p = pane.clone();
    let button: EventTarget = pane.borrow().pause.clone().into();
    on(&button, "click", Box::new(move |_| p.borrow_mut().toggle_pause()));
    let (p, input) = (pane.clone(), search.clone());
    let typed: &EventTarget = &search;
    on(typed, "input", Box::new(move |_| p.borrow_mut().search(&input.value())));
    Some(Viewer { source, pane, _handlers: handlers })
}

impl Pane {
    fn set_state(&mut self, state: &str, text: &str) {
        // Every batch says "live": only a change touches the page.
        if self.state_now != text {
            let _ = self.state.set_attribute("data-state", state);
            self.state.set_text_content(Some(text));
            self.state_now = text.to_owned();
        }
    }

    /// Inserts the lines put together so far into the newest chunk.
    fn flush_batch(&mut self) {
        if let (Some(batch), Some((chunk, _))) = (self.batch.take(), self.chunks.back()) {
            let _ = chunk.append_child(&batch);
        }
    }

    /// Inserts the lines put together since the last call, and asks for the end to be shown.
    fn flush(&mut self) {
        self.flush_batch();
        if self.pinned {
            self.ask_frame();
        }
    }

    /// Asks for a scroll to the end in the next frame, once however many batches ask.
    fn ask_frame(&mut self) {
        if self.frame.is_none() {
            if let (Some(window), Some(to_end)) = (web_sys::window(), self.to_end.as_ref()) {
                self.frame = window.request_animation_frame(to_end.as_ref().unchecked_ref()).ok();
            }
        }
    }

    /// Whether the view shows the end of the log (within two lines).
    fn at_end(&self) -> bool {
        self.log.scroll_top() + self.log.client_height() + 40 >= self.log.scroll_height()
    }

    /// A batch from the server, numbered from `first`: shown, or held while paused.
    fn receive(&mut self, batch: Lines) {
        // A reader who went back to the end holds it even if these lines come before the browser
        // tells of that scroll (its event waits for the next frame, and would then measure the
        // log grown by this batch and take the reader for one who scrolled up).
        if !self.pinned && self.at_end() {
            self.pinned = true;
        }
        for (i, text) in batch.lines.into_iter().enumerate() {
            let n = batch.first + i as u64;
            if n <= self.last {
                continue; // already here: the stream resumed from an earlier line
            }
            self.last = n;
            if self.paused {
                self.held.push_back((n, text));
                if self.held.len() > MAX_LINES {
                    self.held.pop_front();
                    self.dropped += 1;
                }
            } else {
                self.append(n, text);
            }
        }
        self.flush();
        self.trim();
        if self.paused {
            self.pause.set_text_content(Some(&format!("Resume ({} new)", self.held.len())));
        }
        self.count_matches();
    }

    fn append(&mut self, n: u64, text: String) {
        let Ok(el) = self.line.clone_node() else { return };
        let el: Element = el.unchecked_into();
        // Most lines have no colour: one text node, no parsing.
        let shown = if text.contains('\x1b') {
            for run in runs(&text) {
                if let Ok(span) = self.doc.create_element("span") {
                    if !run.class.is_empty() {
                        span.set_class_name(&run.class);
                    }
                    span.set_text_content(Some(&run.text));
                    let _ = el.append_child(&span);
                }
            }
            plain(&text)
        } else {
            el.set_text_content(Some(&text));
            text
        };
        self.show(n, shown, el);
    }

    /// A note among the lines (not a line of the log): how many lines the server skipped.
    fn marker(&mut self, text: &str) {
        let Ok(el) = self.doc.create_element("div") else { return };
        el.set_class_name("line marker");
        el.set_text_content(Some(text));
        self.show(0, String::new(), el);
        self.flush();
        self.trim();
    }

    /// Whether line `n` with `text` contains the search text, ignoring case.
    fn matches(&self, n: u64, text: &str) -> bool {
        n != 0 && text.to_lowercase().contains(&self.needle)
    }

    fn show(&mut self, n: u64, text: String, el: Element) {
        if !self.needle.is_empty() {
            if self.matches(n, &text) {
                self.found += 1;
            } else {
                let _ = el.set_attribute("hidden", "");
            }
        }
        // A full chunk: what is gathered goes into it, and the next lines into a new one.
        if self.chunks.back().is_none_or(|(_, count)| *count >= CHUNK_LINES) {
            self.flush_batch();
            // Only a full chunk could be skipped out of view: the browser sizes a skipped chunk by
            // its last rendered height, which a chunk still growing would outdate.
            if let Some((full, _)) = self.chunks.back() {
                full.set_class_name("log-chunk full");
            }
            let Ok(chunk) = self.doc.create_element("div") else { return };
            chunk.set_class_name("log-chunk");
            let _ = self.lines.append_child(&chunk);
            self.chunks.push_back((chunk, 0));
        }
        if let Some((_, count)) = self.chunks.back_mut() {
            *count += 1;
        }
        let into: Option<Node> = match &self.batch {
            Some(batch) => Some(batch.clone().into()),
            None => {
                let batch = self.doc.create_document_fragment();
                self.batch = Some(batch.clone());
                Some(batch.into())
            }
        };
        if let Some(into) = into {
            let _ = into.append_child(&el);
        }
        self.shown.push_back(Shown { n, text, el });
    }

    /// Lets the oldest lines go beyond [`MAX_LINES`], a whole chunk at a time, saying how many.
    /// One removal of a chunk lets 200 lines go: removed line by line, a log flooding in cost a
    /// DOM removal for every line added once the page was full. So the page holds up to a chunk
    /// more than [`MAX_LINES`].
    fn trim(&mut self) {
        let mut let_go = 0;
        while self.chunks.len() > 1 && self.shown.len() - self.chunks[0].1 >= MAX_LINES {
            let Some((chunk, count)) = self.chunks.pop_front() else { break };
            chunk.remove();
            let gone: Vec<Shown> = self.shown.drain(..count).collect();
            for old in gone {
                let_go += u64::from(old.n != 0);
                if !self.needle.is_empty() && self.matches(old.n, &old.text) {
                    self.found -= 1;
                }
            }
        }
        self.dropped += let_go;
        // Only when the count changed: once lines are let go, every batch would otherwise rewrite
        // the note (a style and layout pass per batch while a log floods in).
        if self.dropped != self.noted {
            self.noted = self.dropped;
            self.dropped_note.set_text_content(Some(&format!(
                "{} earlier lines are no longer shown here; Download has the whole log.",
                self.dropped
            )));
            let _ = self.dropped_note.remove_attribute("hidden");
        }
    }

    fn toggle_pause(&mut self) {
        if self.paused {
            self.paused = false;
            for (n, text) in std::mem::take(&mut self.held) {
                self.append(n, text);
            }
            self.flush();
            self.trim();
            self.count_matches();
            self.pause.set_text_content(Some("Pause"));
        } else {
            self.paused = true;
            self.pause.set_text_content(Some("Resume (0 new)"));
        }
        let _ =
            self.pause.set_attribute("aria-pressed", if self.paused { "true" } else { "false" });
    }

    fn search(&mut self, text: &str) {
        self.needle = text.trim().to_lowercase();
        self.found = 0;
        for line in &self.shown {
            let visible = self.needle.is_empty() || self.matches(line.n, &line.text);
            self.found += usize::from(visible && !self.needle.is_empty());
            let _ = line.el.toggle_attribute_with_force("hidden", !visible);
        }
        self.count_matches();
    }

    fn count_matches(&self) {
        if self.needle.is_empty() {
            let _ = self.matches.set_attribute("hidden", "");
            return;
        }
        self.matches.set_text_content(Some(&format!("{} matching lines", self.found)));
        let _ = self.matches.remove_attribute("hidden");
    }
}
