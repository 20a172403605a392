//! The SVG chart: the uncontended latency distribution per backend (left) and contended
//! acquisitions per second (right), both on log scales.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

fn err(e: impl std::fmt::Display) -> String {
    format!("chart: {e}")
}

/// `nines(p)` places percentile `p` so that 90, 99, 99.9 are evenly spaced.
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).max(1e-5).log10()
}

/// Writes the chart of `r` to `path` as SVG.
///
/// # Errors
/// When the file cannot be written; the message names the chart.
pub fn write_svg(r: &Report, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(720);

    let curves: Vec<(String, Vec<(f64, f64)>)> = r
        .backends
        .iter()
        .filter_map(|b| {
            let u = b.uncontended.as_ref()?;
            let pts: Vec<(f64, f64)> = u
                .curve
                .iter()
                .map(|&(p, v)| (nines(p), v.max(0.01)))
                .collect();
            (!pts.is_empty()).then(|| (b.label.clone(), pts))
        })
        .collect();
    let all = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi {
        (lo / 1.5, hi * 1.5)
    } else {
        (0.1, 1000.0)
    };
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "Uncontended acquire+release latency (µs, log)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..4f64, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .x_labels(5)
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "0".into(),
            1 => "90".into(),
            2 => "99".into(),
            3 => "99.9".into(),
            _ => "99.99".into(),
        })
        .y_desc("µs")
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(err)?;

    let bars: Vec<(String, f64)> = r
        .backends
        .iter()
        .filter_map(|b| Some((b.label.clone(), b.contended.as_ref()?.acquisitions_per_sec)))
        .collect();
    let top = bars.iter().map(|b| b.1).fold(10.0_f64, f64::max) * 2.0;
    let n = bars.len().max(1);
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&right)
        .caption(
            format!("Contended: {} clients, one key (grants/s, log)", r.clients),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (1f64..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("grants/s")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.35, 1.0), (x + 0.35, v.max(1.0))],
                Palette99::pick(i).filled(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
