//! The replay's picture: cumulative shortage and slack per strategy, and one
//! instance's forecast band against its realised demand.
//!
//! Drawn and written as every plot is ([`crate::svg`]).

use super::{Band, Replay};
use crate::svg::{self, text, PlotError};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 6] = [
    RGBColor(120, 120, 120),
    RGBColor(230, 120, 20),
    RGBColor(150, 80, 190),
    RGBColor(30, 120, 200),
    RGBColor(210, 40, 40),
    RGBColor(40, 160, 70),
];

/// Writes the SVG to `path`.
pub fn write(replay: &Replay, path: &Path) -> Result<(), PlotError> {
    svg::write(path, |out| draw(replay, out))
}

fn draw(replay: &Replay, svg: &mut String) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (1000, 1050)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let panels = root.split_evenly((3, 1));
    let hours = |t: i64| (t - replay.start.timestamp()) as f64 / 3600.0;
    let x_end = hours(replay.end.timestamp()).max(1e-6);
    for (k, title) in [
        (0, "cumulative shortage (cost units x hours)"),
        (1, "cumulative slack (cost units x hours)"),
    ] {
        let series: Vec<(&str, Vec<(f64, f64)>)> = replay
            .tallies
            .iter()
            .map(|(kind, tally)| {
                let pts = replay
                    .times
                    .iter()
                    .zip(&tally.cumulative)
                    .map(|(&t, c)| {
                        (
                            hours(t) + replay.interval_minutes as f64 / 60.0,
                            if k == 0 { c.0 } else { c.1 },
                        )
                    })
                    .collect();
                (kind.name(), pts)
            })
            .collect();
        lines(&panels[k], title, x_end, &series)?;
    }
    band(&panels[2], &replay.band, &hours, x_end)?;
    root.present().map_err(text)
}

fn lines(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    x_end: f64,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end, 0.0..y_max)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("hours since start")
        .draw()
        .map_err(text)?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(text)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(text)
}

fn band(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    band: &Band,
    hours: &dyn Fn(i64) -> f64,
    x_end: f64,
) -> Result<(), String> {
    let step = band
        .steps
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .next()
        .unwrap_or(900);
    let y_max = band
        .actual
        .iter()
        .map(|p| p.1)
        .chain(
            band.steps
                .iter()
                .flat_map(|s| s.forecast.map(|f| f.1).into_iter().chain(s.alloc)),
        )
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let title = format!(
        "instance {}: cpu forecast mean..quantile (band), realised demand, mip allocation",
        band.instance
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end, 0.0..y_max)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("hours since start")
        .y_desc("cores")
        .draw()
        .map_err(text)?;
    let shade = RGBColor(30, 120, 200).mix(0.25);
    chart
        .draw_series(band.steps.iter().filter_map(|s| {
            let (t, (mean, q)) = (s.t, s.forecast?);
            let (a, b) = (hours(t), hours(t + step));
            Some(Polygon::new(
                vec![(a, mean), (b, mean), (b, q), (a, q)],
                shade.filled(),
            ))
        }))
        .map_err(text)?
        .label("forecast band")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled()));
    let actual = band.actual.iter().map(|&(t, v)| (hours(t), v));
    chart
        .draw_series(LineSeries::new(actual, BLACK.stroke_width(1)))
        .map_err(text)?
        .label("realised")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    let alloc: Vec<(f64, f64)> = band
        .steps
        .iter()
        .filter_map(|s| s.alloc.map(|a| [(hours(s.t), a), (hours(s.t + step), a)]))
        .flatten()
        .collect();
    if !alloc.is_empty() {
        let red = COLOURS[4];
        chart
            .draw_series(LineSeries::new(alloc, red.stroke_width(2)))
            .map_err(text)?
            .label("mip allocation")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(text)
}
