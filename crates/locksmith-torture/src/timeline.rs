//! The timeline picture: one row per client, its holds as bars coloured by key (the part after
//! its lease deadline drawn pale), pauses shaded, kills marked, violations as red lines across
//! every row. Drawn with `plotters` into an SVG file.

use std::collections::BTreeSet;
use std::path::Path;

use plotters::prelude::*;

use crate::checker::Findings;

const KEY_COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// Draws the timeline of `findings` into the SVG file `path`; `origin` is time zero (ns).
///
/// # Errors
/// When the picture cannot be drawn or written.
pub fn draw(path: &Path, findings: &Findings, origin: u64, title: &str) -> Result<(), String> {
    let secs = |t: u64| t.saturating_sub(origin) as f64 / 1e9;
    let clients: BTreeSet<u32> = findings.holds.iter().map(|h| h.client).collect();
    let clients: Vec<u32> = clients.into_iter().collect();
    let row = |c: u32| clients.iter().position(|x| *x == c).unwrap_or(0) as f64;
    let keys: BTreeSet<&str> = findings.holds.iter().map(|h| h.key.as_str()).collect();
    let keys: Vec<&str> = keys.into_iter().collect();
    let colour =
        |k: &str| KEY_COLOURS[keys.iter().position(|x| *x == k).unwrap_or(0) % KEY_COLOURS.len()];
    let end = findings
        .holds
        .iter()
        .map(|h| h.end)
        .chain(
            findings
                .faults
                .iter()
                .filter_map(|f| f.end.or(Some(f.start))),
        )
        .max()
        .map_or(1.0, |t| secs(t).max(0.001));

    let height = 120 + 28 * clients.len().max(1) as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("timeline {}: {e}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let rows = clients.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..end * 1.25, -0.5f64..rows - 0.5)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("seconds")
        .y_labels(clients.len().max(1))
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < clients.len() {
                format!("client {}", clients[i as usize])
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(err)?;

    // Faults that hit every client (network, server): a band across all rows.
    for f in findings.faults.iter().filter(|f| f.victim.is_none()) {
        let (x0, x1) = (secs(f.start), secs(f.end.unwrap_or(f.start)));
        let (top, bottom) = (rows - 0.5, -0.5);
        chart
            .draw_series([Rectangle::new(
                [(x0, bottom), (x1.max(x0 + end / 400.0), top)],
                RED.mix(0.12).filled(),
            )])
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                f.fault.clone(),
                (x0, top - 0.05),
                ("sans-serif", 11),
            )])
            .map_err(err)?;
    }
    for f in &findings.faults {
        let Some(v) = f.victim else { continue };
        let y = row(v);
        if clients.binary_search(&v).is_err() {
            continue;
        }
        let (x0, x1) = (secs(f.start), secs(f.end.unwrap_or(f.start)));
        if f.fault == "pause" {
            chart
                .draw_series([Rectangle::new(
                    [(x0, y - 0.48), (x1, y + 0.48)],
                    BLACK.mix(0.15).filled(),
                )])
                .map_err(err)?;
        }
        chart
            .draw_series([PathElement::new(
                vec![(x0, y - 0.48), (x0, y + 0.48)],
                BLACK.stroke_width(2),
            )])
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                f.fault.clone(),
                (x0, y + 0.45),
                ("sans-serif", 11),
            )])
            .map_err(err)?;
    }
    for key in &keys {
        let c = colour(key);
        let bars = findings
            .holds
            .iter()
            .filter(|h| h.key == *key)
            .flat_map(|h| {
                let y = row(h.client);
                let (s, v, e) = (secs(h.start), secs(h.valid_end()), secs(h.end));
                let mut out = vec![Rectangle::new(
                    [(s, y - 0.3), (v.max(s), y + 0.3)],
                    c.filled(),
                )];
                if e > v {
                    out.push(Rectangle::new(
                        [(v, y - 0.3), (e, y + 0.3)],
                        c.mix(0.3).filled(),
                    ));
                }
                out
            });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(format!("holds of {key}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    let violations: Vec<_> = findings.violations().collect();
    if !violations.is_empty() {
        chart
            .draw_series(violations.iter().map(|v| {
                PathElement::new(
                    vec![(secs(v.t), -0.5), (secs(v.t), rows - 0.5)],
                    RED.stroke_width(2),
                )
            }))
            .map_err(err)?
            .label("violation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], RED.stroke_width(2)));
    }
    // The x range runs a quarter past the end, so the legend sits on empty space.
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{FaultRecord, Finding, FindingKind, Hold};

    fn hold(client: u32, key: &str, start: u64, end: u64, lease_end: Option<u64>) -> Hold {
        Hold {
            client,
            key: key.into(),
            token: u64::from(client),
            invoke: start,
            start,
            end,
            lease_end,
            ended_by: "release",
        }
    }

    #[test]
    fn the_picture_names_clients_keys_faults_and_violations() {
        const S: u64 = 1_000_000_000;
        let findings = Findings {
            acquisitions: 3,
            holds: vec![
                hold(1, "a", S, 4 * S, Some(2 * S)),
                hold(2, "a", 3 * S, 5 * S, None),
                hold(7, "b", S, 2 * S, None),
            ],
            findings: vec![Finding {
                kind: FindingKind::OverlapInValidLeases,
                t: 3 * S,
                key: "a".into(),
                detail: String::new(),
            }],
            faults: vec![FaultRecord {
                fault: "pause".into(),
                start: S + S / 2,
                end: Some(4 * S),
                victim: Some(1),
                key: Some("a".into()),
                recovery_ns: Some(S),
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.svg");
        draw(&path, &findings, 0, "test run").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "client 1",
            "client 2",
            "client 7",
            "holds of a",
            "holds of b",
            "pause",
            "violation",
            "test run",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
