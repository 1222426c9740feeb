//! The optional HTML report: the summary table and, per endpoint and run, the throughput
//! of each second as an inline SVG line chart (no scripts, no external files).

use std::fmt::Write as _;

use crate::report::Report;
use crate::stats::Second;
use crate::xml::xml_escape;

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// The HTML page of `report`.
pub fn render(report: &Report) -> String {
    let mut series: Vec<(String, &[Second])> = Vec::new();
    for t in std::iter::once(&report.target).chain(report.null.as_ref()) {
        for r in &t.runs {
            series.push((format!("{} run {}", t.label, r.run + 1), &r.per_second));
        }
    }
    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cairn-bench</title>",
    );
    html.push_str("<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style></head><body>\n");
    let _ = writeln!(html, "<h1>cairn-bench {}</h1>", xml_escape(&report.version));
    let _ = writeln!(html, "<pre>{}</pre>", xml_escape(&report.summary()));
    let by_bytes = report.target.runs.iter().any(|r| r.bytes > 0);
    let _ = writeln!(
        html,
        "<h2>{} per second</h2>",
        if by_bytes {
            "Throughput (MiB/s)"
        } else {
            "Operations"
        }
    );
    html.push_str(&chart(&series, by_bytes));
    html.push_str("</body></html>\n");
    html
}

/// An SVG line chart of the series (MiB/s, or ops/s when nothing moved bytes).
fn chart(series: &[(String, &[Second])], by_bytes: bool) -> String {
    // The legend sits right of the plot, in `legend` pixels.
    let (w, h, pad, legend) = (900.0, 360.0, 50.0, 150.0);
    let value = |s: &Second| if by_bytes { s.mib } else { s.ops as f64 };
    let max_x = series
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(0)
        .max(2) as f64
        - 1.0;
    let max_y = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(value))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |i: usize| pad + i as f64 / max_x * (w - 2.0 * pad - legend);
    let y = |v: f64| h - pad - v / max_y * (h - 2.0 * pad);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\"/><line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>",
        h - pad,
        w - pad - legend,
        h - pad,
        h - pad
    );
    for k in 0..=4 {
        let v = max_y * k as f64 / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{v:.0}</text>",
            pad - 4.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">seconds into the measured window (0 to {max_x:.0})</text>",
        (w - legend) / 2.0,
        h - pad / 3.0
    );
    for (n, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:.1},{:.1}", x(i), y(value(s))))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{colour}\">{}</text>",
            w - legend,
            pad + 16.0 * n as f64,
            xml_escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_a_line_per_series() {
        let a = [
            Second {
                second: 0,
                ops: 1,
                mib: 1.0,
            },
            Second {
                second: 1,
                ops: 2,
                mib: 2.0,
            },
        ];
        let svg = chart(&[("a".into(), &a), ("b".into(), &a[..1])], true);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg"));
    }
}
