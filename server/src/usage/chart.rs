//! The tenant page's usage chart: bytes out per hour over a range, as the geometry of an SVG
//! bar chart the template draws (no script: the page's CSP allows none).

use super::report::TenantUsage;
use super::{HOUR, Range};

/// Drawing area, in SVG user units.
pub const WIDTH: i64 = 720;
pub const HEIGHT: i64 = 160;
/// Left margin for the value labels, bottom margin for the day labels, top margin for the
/// top value label (drawn centred on its line).
pub const LEFT: i64 = 64;
pub const BOTTOM: i64 = 20;
pub const TOP: i64 = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// The hover text: hour and amount.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Position along its axis.
    pub at: i64,
    pub label: String,
}

/// A chart ready to draw; `bars` is empty when nothing was metered.
#[derive(Debug, Clone)]
pub struct Chart {
    pub bars: Vec<Bar>,
    /// Value labels on the left (bottom, middle, top).
    pub y_ticks: Vec<Tick>,
    /// A label at each day's start.
    pub x_ticks: Vec<Tick>,
    pub total: String,
    pub partial: bool,
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub top: i64,
    pub plot_bottom: i64,
}

/// Bytes in binary units with three significant figures: `1.23 MiB`.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", n.max(0))
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

impl Chart {
    pub fn of(usage: &TenantUsage, range: &Range) -> Self {
        let hours = range.hours().max(1);
        let plot_width = (WIDTH - LEFT) as f64;
        let plot_height = (HEIGHT - BOTTOM - TOP) as f64;
        let slot = plot_width / hours as f64;
        let max = usage.hours.iter().map(|h| h.bytes_out).max().unwrap_or(0);
        let bars = if max == 0 {
            Vec::new()
        } else {
            usage
                .hours
                .iter()
                .zip(&usage.starts)
                .filter(|(h, _)| h.bytes_out > 0)
                .map(|(h, start)| {
                    let index = (start - range.from) / HOUR;
                    let height = (h.bytes_out as f64 / max as f64 * plot_height).max(1.0);
                    Bar {
                        x: format!("{:.2}", LEFT as f64 + index as f64 * slot),
                        y: format!("{:.2}", TOP as f64 + plot_height - height),
                        width: format!("{:.2}", (slot * 0.8).max(0.5)),
                        height: format!("{height:.2}"),
                        title: format!(
                            "{}: {}{}",
                            h.hour_start,
                            human_bytes(h.bytes_out),
                            if h.partial { " (hour still open)" } else { "" }
                        ),
                    }
                })
                .collect()
        };
        let y_ticks = if max == 0 {
            Vec::new()
        } else {
            [0, max / 2, max]
                .iter()
                .map(|&v| Tick {
                    at: TOP + ((1.0 - v as f64 / max as f64) * plot_height).round() as i64,
                    label: human_bytes(v),
                })
                .collect()
        };
        let first_day = range.from.div_euclid(86_400) * 86_400;
        let x_ticks = (0..)
            .map(|d| first_day + d * 86_400)
            .skip_while(|day| *day < range.from)
            .take_while(|day| *day < range.to)
            .map(|day| Tick {
                at: (LEFT as f64 + (day - range.from) as f64 / HOUR as f64 * slot).round() as i64,
                label: crate::clock::rfc3339(day).get(5..10).unwrap_or_default().to_owned(),
            })
            .collect();
        Self {
            bars,
            y_ticks,
            x_ticks,
            total: human_bytes(usage.total.bytes_out),
            partial: usage.hours.iter().any(|h| h.partial),
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            top: TOP,
            plot_bottom: HEIGHT - BOTTOM,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::HourRow;

    #[test]
    fn bytes_read_as_people_do() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(200 * 1024 * 1024), "200 MiB");
    }

    #[test]
    fn the_tallest_bar_fills_the_plot_and_days_are_labelled() {
        let range = Range { from: 1_699_920_000, to: 1_699_920_000 + 48 * HOUR }; // 2023-11-14T00:00Z
        let row = |hour: i64, bytes_out| HourRow {
            tenant_id: 83,
            hour_start: range.from + hour * HOUR,
            bytes_out,
            records_out: 0,
            bytes_in: 0,
            records_in: 0,
            outflow_bytes: 0,
            partial: false,
        };
        let usage = TenantUsage::new(83, &range, vec![row(0, 2048), row(47, 1024)]);
        let chart = Chart::of(&usage, &range);
        assert_eq!(chart.bars.len(), 2);
        assert_eq!(chart.bars[0].height, format!("{:.2}", (HEIGHT - BOTTOM - TOP) as f64));
        assert_eq!(chart.bars[0].y, format!("{:.2}", TOP as f64));
        assert_eq!(chart.y_ticks.iter().map(|t| t.at).collect::<Vec<_>>(), [HEIGHT - BOTTOM, TOP + 66, TOP]);
        assert_eq!(chart.total, "3.00 KiB");
        let days: Vec<&str> = chart.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(days, ["11-14", "11-15"]);
        assert!(Chart::of(&TenantUsage::new(83, &range, vec![]), &range).bars.is_empty());
    }
}
