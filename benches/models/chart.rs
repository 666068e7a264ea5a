//! `docs/models.svg`: four panels over the connection counts (round trips/s, server CPU per
//! round trip, failed connections, server memory) with one line per server model, drawn with
//! plotters' SVG backend (text is left to the SVG viewer's fonts: no font crate is built).

use std::path::Path;

use plotters::coord::ranged1d::{SegmentValue, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{label, thousands, Figures, Load, Run};

const WIDTH: u32 = 1560;
const HEIGHT: u32 = 900;
const FONT: &str = "sans-serif";

/// How one model is drawn.
struct Look {
    color: RGBColor,
    /// The seed's models are dashed.
    dashed: bool,
    /// grove's lines are thicker.
    width: u32,
    /// Filled markers for grove, hollow ones for the others.
    filled: bool,
}

fn look(kind: &str) -> Look {
    let (color, dashed, width, filled) = match kind {
        "fork" => (RGBColor(214, 39, 40), true, 2, false),
        "threads" => (RGBColor(255, 127, 14), true, 2, false),
        "poll" => (RGBColor(140, 86, 75), true, 2, false),
        "busy" => (RGBColor(110, 110, 110), true, 2, false),
        "grove" => (RGBColor(0, 120, 0), false, 4, true),
        "grove-mt" => (RGBColor(120, 200, 40), false, 4, true),
        "grove-prefork" => (RGBColor(0, 150, 140), false, 4, true),
        "tokio-mt" => (RGBColor(31, 119, 180), false, 2, false),
        "may-mt" => (RGBColor(148, 103, 189), false, 2, false),
        "gevent" => (RGBColor(227, 119, 194), false, 2, false),
        _ => (RGBColor(0, 0, 0), false, 1, false),
    };
    Look {
        color,
        dashed,
        width,
        filled,
    }
}

/// One panel: what it shows of a cell, and how its y axis runs.
struct Panel {
    caption: &'static str,
    y_desc: &'static str,
    log: bool,
    value: fn(&Figures, Load) -> Option<f64>,
    format: fn(f64) -> String,
    /// A note written next to a point, and whether it is an alarm (red, with a cross).
    note: fn(&Figures) -> Option<(String, bool)>,
}

fn no_note(_: &Figures) -> Option<(String, bool)> {
    None
}

const PANELS: [Panel; 5] = [
    Panel {
        caption: "Round trips per second (higher is better; × = connections failed)",
        y_desc: "round trips / s",
        log: false,
        value: |f, _| Some(f.rts_per_sec),
        format: |v| thousands(v),
        note: |f| (f.errors > 0).then(|| (format!("{} failed", f.errors), true)),
    },
    Panel {
        caption: "Server CPU per round trip, user + sys (lower is better)",
        y_desc: "µs per round trip (log)",
        log: true,
        value: |f, _| f.cpu_us_per_rt,
        format: |v| short(v),
        note: no_note,
    },
    Panel {
        caption: "Failed connections (lower is better)",
        y_desc: "% of the connections",
        log: false,
        value: |f, conns| Some((f.errors as f64 * 100.0 / conns.open as f64).min(100.0)),
        format: |v| format!("{v:.0}%"),
        note: no_note,
    },
    Panel {
        caption: "Server memory: peak RSS summed over its processes",
        y_desc: "MiB (log)",
        log: true,
        value: |f, _| Some((f.peak_rss_kib as f64 / 1024.0).max(0.1)),
        format: |v| short(v),
        // Forked processes share most pages: where the sum counts them many times over, their
        // proportional share (PSS) is the real cost.
        note: |f| {
            (f.procs > 10 && f.peak_rss_kib > 2 * f.pss_kib).then(|| {
                (
                    format!("PSS {} MiB", short(f.pss_kib as f64 / 1024.0)),
                    false,
                )
            })
        },
    },
    Panel {
        caption: "Server CPU with every connection open and silent",
        y_desc: "% of a core",
        log: false,
        value: |f, _| f.idle_cpu_percent,
        format: |v| format!("{v:.0}%"),
        note: no_note,
    },
];

/// 0.25 → "0.25", 3 → "3", 1500 → "1,500".
fn short(v: f64) -> String {
    if v >= 10.0 {
        thousands(v)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Error = Box<dyn std::error::Error>;

/// Draws the chart of `run` into `path`.
pub fn draw(path: &Path, run: &Run) -> Result<(), Error> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "The seed's server models, 64-byte echoes: server on 1 CPU, client on the other ({} s per cell)",
        run.secs
    );
    let area = root.titled(&title, (FONT, 22))?;
    let cells = area.split_evenly((2, 3));
    for (panel, cell) in PANELS.iter().zip(&cells) {
        draw_panel(cell, panel, run)?;
    }
    draw_legend(&cells[PANELS.len()], run)?;
    root.present()?;
    Ok(())
}

/// A point of one model in one panel.
struct Point {
    /// Index of the connection count.
    x: usize,
    y: f64,
    /// Whether every connection is busy at this load (lines join only such loads, and join
    /// the partly idle loads only among themselves).
    all_busy: bool,
    note: Option<(String, bool)>,
}

/// The points of `kind` in `panel`.
fn points(run: &Run, kind: &str, panel: &Panel) -> Vec<Point> {
    let mut points = Vec::new();
    for (x, &conns) in run.conns.iter().enumerate() {
        let row = run.rows.iter().find(|r| r.kind == kind && r.conns == conns);
        let Some(Ok(f)) = row.map(|r| &r.result) else {
            continue;
        };
        if let Some(y) = (panel.value)(f, conns).filter(|v| !panel.log || *v > 0.0) {
            let note = (panel.note)(f);
            let all_busy = conns.busy == conns.open;
            points.push(Point {
                x,
                y,
                all_busy,
                note,
            });
        }
    }
    points
}

fn draw_panel(area: &Area, panel: &Panel, run: &Run) -> Result<(), Error> {
    let all: Vec<f64> = run
        .kinds
        .iter()
        .flat_map(|k| points(run, k, panel))
        .map(|p| p.y)
        .collect();
    // Percent panels keep at least 0–10% so that 0 sits at the bottom, not mid-panel.
    let floor = if panel.y_desc.starts_with('%') {
        10.0
    } else {
        1.0
    };
    let max = all.iter().cloned().fold(f64::MIN, f64::max).max(floor);
    let min = all.iter().cloned().fold(f64::MAX, f64::min).min(max);
    let x = (0..run.conns.len() - 1).into_segmented();
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.caption, (FONT, 16))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(76);
    if panel.log {
        let y = ((min / 1.5).max(0.01)..max * 1.5).log_scale();
        fill(builder.build_cartesian_2d(x, y)?, panel, run)
    } else {
        fill(builder.build_cartesian_2d(x, 0.0..max * 1.12)?, panel, run)
    }
}

/// Draws the mesh and every model's line into a panel's chart.
fn fill<X, Y>(
    mut chart: ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    panel: &Panel,
    run: &Run,
) -> Result<(), Error>
where
    X: Ranged<ValueType = SegmentValue<usize>> + ValueFormatter<SegmentValue<usize>>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let x_label = |x: &SegmentValue<usize>| match x {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            run.conns
                .get(*i)
                .map_or(String::new(), |c| match c.busy == c.open {
                    true => c.open.to_string(),
                    false => format!("{} ({} busy)", c.open, c.busy),
                })
        }
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| (panel.format)(*v))
        .y_desc(panel.y_desc)
        .x_desc("connections")
        .label_style((FONT, 13))
        .draw()?;
    for kind in &run.kinds {
        draw_series(&mut chart, &points(run, kind, panel), kind)?;
    }
    Ok(())
}

/// One model's line, its markers and their notes.
fn draw_series<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    points: &[Point],
    kind: &str,
) -> Result<(), Error>
where
    X: Ranged<ValueType = SegmentValue<usize>>,
    Y: Ranged<ValueType = f64>,
{
    let look = look(kind);
    let line = look.color.stroke_width(look.width);
    let coords: Vec<_> = points
        .iter()
        .map(|p| (SegmentValue::CenterOf(p.x), p.y))
        .collect();
    for all_busy in [true, false] {
        let part: Vec<_> = points
            .iter()
            .zip(&coords)
            .filter(|(p, _)| p.all_busy == all_busy)
            .map(|(_, c)| c.clone())
            .collect();
        if look.dashed {
            chart.draw_series(DashedLineSeries::new(part, 8, 5, line))?;
        } else {
            chart.draw_series(LineSeries::new(part, line))?;
        }
    }
    let marker = if look.filled {
        look.color.filled()
    } else {
        look.color.stroke_width(2)
    };
    chart.draw_series(coords.iter().map(|c| Circle::new(c.clone(), 4, marker)))?;
    for (point, c) in points.iter().zip(&coords) {
        let Some((text, alarm)) = &point.note else {
            continue;
        };
        let color = if *alarm {
            RGBColor(200, 0, 0)
        } else {
            look.color
        };
        if *alarm {
            chart.draw_series([Cross::new(c.clone(), 7, color.stroke_width(3))])?;
        }
        let style = TextStyle::from((FONT, 12)).color(&color);
        chart.draw_series([
            EmptyElement::at(c.clone()) + Text::new(text.clone(), (8, -14), style)
        ])?;
    }
    Ok(())
}

/// The key: one entry per model, and how the run was set up.
fn draw_legend(area: &Area, run: &Run) -> Result<(), Error> {
    let row_height = 25;
    let mut y = 30;
    for kind in &run.kinds {
        let x = 24;
        let look = look(kind);
        let line = look.color.stroke_width(look.width);
        if look.dashed {
            area.draw(&PathElement::new(vec![(x, y), (x + 14, y)], line))?;
            area.draw(&PathElement::new(vec![(x + 22, y), (x + 36, y)], line))?;
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 36, y)], line))?;
        }
        let marker = if look.filled {
            look.color.filled()
        } else {
            look.color.stroke_width(2)
        };
        area.draw(&Circle::new((x + 18, y), 4, marker))?;
        let style = TextStyle::from((FONT, 15)).pos(Pos::new(HPos::Left, VPos::Center));
        let ran = run.rows.iter().any(|r| &r.kind == kind && r.result.is_ok());
        let text = match ran {
            true => label(kind, run.workers),
            false => format!("{} — not run", label(kind, run.workers)),
        };
        area.draw(&Text::new(text, (x + 46, y), style))?;
        y += row_height;
    }
    let notes = [
        "Dashed: the seed's models, in plain Rust std.".to_string(),
        "Every server is pinned to CPU 0, with all its threads and processes;".to_string(),
        "the client (echo's, one epoll thread) to CPU 1.".to_string(),
        format!(
            "{} workers = this machine's cores, all on the server's one CPU.",
            run.workers
        ),
        format!("Taken {} (1-minute load average at the start).", run.taken),
        "Lines join the loads with every connection busy; a load with most".into(),
        "connections open but silent stands apart.".into(),
    ];
    let style = TextStyle::from((FONT, 13)).color(&RGBColor(80, 80, 80));
    y += 10;
    for note in notes {
        area.draw(&Text::new(note, (24, y), style.clone()))?;
        y += 18;
    }
    Ok(())
}
