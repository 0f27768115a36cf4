//! The trade-off picture: jobs delayed by a cold start against idle warm
//! instance-hours, one line per strategy family as its knob is swept.
//!
//! Drawn and written as every plot is ([`crate::svg`]).

use super::Report;
use crate::svg::{self, text, PlotError};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 4] = [
    RGBColor(120, 120, 120),
    RGBColor(230, 120, 20),
    RGBColor(30, 120, 200),
    RGBColor(40, 160, 70),
];

/// Writes the SVG to `path`.
pub fn write(report: &Report, path: &Path) -> Result<(), PlotError> {
    svg::write(path, |out| draw(report, out))
}

fn draw(report: &Report, svg: &mut String) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let points = |k: usize| -> Vec<(f64, f64)> {
        report.curves[k]
            .points
            .iter()
            .map(|p| (p.metrics.idle_instance_hours, p.metrics.delayed as f64))
            .collect()
    };
    let all: Vec<(f64, f64)> = (0..report.curves.len()).flat_map(points).collect();
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-6) * 1.05;
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "pool replay: jobs delayed by a cold start vs idle warm instance-hours",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("idle warm instance-hours")
        .y_desc("jobs delayed")
        .draw()
        .map_err(text)?;
    for (k, curve) in report.curves.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let name = format!("{} ({})", curve.family.name(), curve.knob);
        chart
            .draw_series(LineSeries::new(points(k), colour.stroke_width(2)))
            .map_err(text)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(
                points(k)
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )
            .map_err(text)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(text)?;
    root.present().map_err(text)
}
