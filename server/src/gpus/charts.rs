//! A cluster's GPU charts, drawn with plotters as SVG.
//!
//! Each chart has one line per GPU and, for utilization, the cluster's average drawn thicker; the
//! legend beside the plot names every line with its latest value, so a reader gets "how busy is
//! it now" without reading the plot. Charts come in the page's two themes (the page picks with
//! `prefers-color-scheme`), in the colours of its stylesheet.
//!
//! The SVG is served as an image (`<img>`), and plotters escapes every text it writes, so a GPU
//! or node name from an exporter can never become markup.

use platform::utilization::{Chart, Window};
use plotters::prelude::*;

/// A chart's width and height, pixels.
pub const SIZE: (u32, u32) = (760, 250);
/// Width of the plot; the legend takes the rest.
const PLOT_WIDTH: u32 = 560;

/// Light or dark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// Reads `light` or `dark`; otherwise says what is allowed.
    pub fn parse(text: &str) -> Result<Theme, String> {
        match text {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            other => Err(format!("theme: {other:?} is not light or dark")),
        }
    }
}

/// The stylesheet's colours (style/main.css: --panel, --text, --line, --muted) and eight line
/// colours told apart in both themes (Okabe–Ito, lightened for dark).
struct Palette {
    background: RGBColor,
    text: RGBColor,
    grid: RGBColor,
    axis: RGBColor,
    lines: [RGBColor; 8],
}

/// Colours as the stylesheet writes them (`#rrggbb`, as numbers): background, text, grid, axis,
/// then the eight lines.
const LIGHT: [u32; 12] = [
    0xffffff, 0x1b1f24, 0xdde1e6, 0x5c6670, //
    0x0072b2, 0xe69f00, 0x009e73, 0xcc79a7, 0x56b4e9, 0xd55e00, 0x8a8a00, 0x8c564b,
];
const DARK: [u32; 12] = [
    0x161b22, 0xe6edf3, 0x2d333b, 0x8d96a0, //
    0x58a6ff, 0xf0b443, 0x2bc49a, 0xe08fc3, 0x8fd3ff, 0xff7a33, 0xc8c83c, 0xc49a8a,
];

fn palette(theme: Theme) -> Palette {
    let hex = match theme {
        Theme::Light => LIGHT,
        Theme::Dark => DARK,
    };
    let rgb = |i: usize| {
        let [_, r, g, b] = hex[i].to_be_bytes();
        RGBColor(r, g, b)
    };
    Palette {
        background: rgb(0),
        text: rgb(1),
        grid: rgb(2),
        axis: rgb(3),
        lines: std::array::from_fn(|i| rgb(4 + i)),
    }
}

/// One line: its legend label and points (seconds before now, value), oldest first.
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    fn latest(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }
}

/// What one chart shows.
#[derive(Clone, Debug)]
pub struct ChartData {
    pub chart: Chart,
    pub window: Window,
    /// One line per GPU.
    pub gpus: Vec<Line>,
    /// The cluster's average (utilization only).
    pub average: Option<Line>,
    /// Top of the value axis: 100 %, the GPUs' memory, or a power ceiling.
    pub y_max: f64,
}

/// A value with its unit, as the legend and axis write it.
pub fn format_value(chart: Chart, value: f64) -> String {
    match chart {
        Chart::Utilization => format!("{value:.0} %"),
        Chart::Memory => format!("{value:.1} GiB"),
        Chart::Power => format!("{value:.0} W"),
    }
}

fn axis_label(chart: Chart, value: f64) -> String {
    match chart {
        Chart::Utilization => format!("{value:.0} %"),
        Chart::Memory => format!("{value:.0} GiB"),
        Chart::Power => format!("{value:.0} W"),
    }
}

/// The time axis' unit: minutes for the short windows, hours for 6 hours, so its ticks fall on
/// round numbers.
fn time_unit(window: Window) -> (f64, &'static str) {
    if window == Window::Hours6 {
        (3600.0, "h")
    } else {
        (60.0, "min")
    }
}

/// How far back a tick is, in the axis' unit: `now`, `-10 min`, `-2 h`.
fn time_label(window: Window, ago: f64) -> String {
    if ago.abs() < 1e-9 {
        "now".into()
    } else {
        format!("{ago:.0} {}", time_unit(window).1)
    }
}

/// Draws `data` as an SVG document.
pub fn render(data: &ChartData, theme: Theme) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, data, theme)
        .map_err(|e| format!("drawing the {} chart: {e}", data.chart.as_str()))?;
    Ok(svg)
}

fn draw<'a>(
    svg: &'a mut String,
    data: &ChartData,
    theme: Theme,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let colours = palette(theme);
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&colours.background)?;
    let (plot, legend) = root.split_horizontally(PLOT_WIDTH);
    let (unit, _) = time_unit(data.window);
    let span = f64::from(data.window.seconds()) / unit;
    let y_max = if data.y_max.is_finite() && data.y_max > 0.0 { data.y_max } else { 1.0 };
    let font = |size: u32, colour: &RGBColor| ("sans-serif", size).into_font().color(colour);
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .margin_right(16)
        .x_label_area_size(26)
        .y_label_area_size(64)
        .build_cartesian_2d(-span..0.0, 0.0..y_max)?;
    let chart_kind = data.chart;
    let window = data.window;
    chart
        .configure_mesh()
        .bold_line_style(colours.grid)
        .light_line_style(colours.background)
        .axis_style(colours.axis)
        .label_style(font(14, &colours.axis))
        .x_labels(7)
        .y_labels(5)
        .x_label_formatter(&|x| time_label(window, *x))
        .y_label_formatter(&|y| axis_label(chart_kind, *y))
        .draw()?;
    let clamp = |(x, y): (f64, f64)| ((x / unit).max(-span), y.clamp(0.0, y_max));
    for (i, line) in data.gpus.iter().enumerate() {
        let colour = colours.lines[i % colours.lines.len()];
        chart.draw_series(LineSeries::new(
            line.points.iter().copied().map(clamp),
            colour.stroke_width(2),
        ))?;
    }
    if let Some(average) = &data.average {
        chart.draw_series(LineSeries::new(
            average.points.iter().copied().map(clamp),
            colours.text.stroke_width(3),
        ))?;
    }
    // The legend: the average first, then each GPU, each with its latest value.
    let mut entries: Vec<(RGBColor, u32, String)> = Vec::new();
    let entry = |line: &Line| match line.latest() {
        Some(v) => format!("{}: {}", line.label, format_value(chart_kind, v)),
        None => format!("{}: no data", line.label),
    };
    if let Some(average) = &data.average {
        entries.push((colours.text, 3, entry(average)));
    }
    for (i, line) in data.gpus.iter().enumerate() {
        entries.push((colours.lines[i % colours.lines.len()], 2, entry(line)));
    }
    let rows = entries.len().max(1) as i32;
    let step = ((SIZE.1 as i32 - 20) / rows).clamp(12, 22);
    for (i, (colour, width, text)) in entries.into_iter().enumerate() {
        let y = 16 + i as i32 * step;
        legend.draw(&PathElement::new(vec![(6, y), (28, y)], colour.stroke_width(width)))?;
        legend.draw(&Text::new(text, (34, y - 8), font(15, &colours.text)))?;
    }
    if data.gpus.is_empty() {
        legend.draw(&Text::new("no GPUs held".to_owned(), (6, 10), font(15, &colours.axis)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(label: &str) -> ChartData {
        let points = |base: f64| {
            (0..60).map(|i| (f64::from(i - 59) * 15.0, base + f64::from(i % 7))).collect()
        };
        ChartData {
            chart: Chart::Utilization,
            window: Window::Minutes15,
            gpus: vec![
                Line { label: label.into(), points: points(60.0) },
                Line { label: "GPU 1".into(), points: points(20.0) },
            ],
            average: Some(Line { label: "average".into(), points: points(40.0) }),
            y_max: 100.0,
        }
    }

    #[test]
    fn the_legend_names_each_line_with_its_latest_value() {
        let svg = render(&data("GPU 0"), Theme::Light).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        // The last point is i = 59: base + 59 % 7 = base + 3.
        for text in ["GPU 0: 63 %", "GPU 1: 23 %", "average: 43 %", "-10 min", "now", "100 %"] {
            assert!(svg.contains(text), "{text:?} missing from the chart");
        }
        assert!(
            svg.contains("#FFFFFF") || svg.contains("#ffffff") || svg.contains("rgb(255,255,255)"),
            "light background"
        );
    }

    #[test]
    fn themes_differ_and_names_stay_text() {
        let light = render(&data("GPU 0"), Theme::Light).unwrap();
        let dark = render(&data("GPU 0"), Theme::Dark).unwrap();
        assert_ne!(light, dark);
        let svg = render(&data("<script>alert(1)</script>"), Theme::Dark).unwrap();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "a name is escaped");
        assert_eq!(Theme::parse("sepia").unwrap_err(), "theme: \"sepia\" is not light or dark");
    }

    #[test]
    fn a_cluster_without_gpus_says_so() {
        let mut empty = data("GPU 0");
        empty.gpus.clear();
        empty.average = None;
        assert!(render(&empty, Theme::Light).unwrap().contains("no GPUs held"));
    }
}
