//! Charts drawn by the server as SVG (no chart library, no script): a line chart of series over
//! buckets and a horizontal bar chart. Values arrive as the reports' decimal strings; they are
//! turned into floats only to place pixels, and the labels show the strings as given.

use std::fmt::Write;

/// One line or bar set: its name (shown in the legend) and values as decimal strings.
pub struct Series<'a> {
    pub name: &'a str,
    /// A colour with at least 4.5:1 contrast on white.
    pub colour: &'a str,
    pub values: Vec<String>,
}

const W: f64 = 640.0;
const H: f64 = 240.0;
const PAD_L: f64 = 70.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 44.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(s: &str) -> f64 {
    s.trim().parse::<f64>().unwrap_or(0.0)
}

/// A line per series over `labels` (x axis), with a zero line, min/max ticks and a legend.
/// `title` names the chart for screen readers (`role="img"` + `<title>`).
pub fn lines(id: &str, title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().map(|v| num(v)))
        .collect();
    let max = all.iter().copied().fold(0.0_f64, f64::max);
    let min = all.iter().copied().fold(0.0_f64, f64::min);
    let span = if max - min > 0.0 { max - min } else { 1.0 };
    let n = labels.len().max(1);
    let x = |i: usize| {
        PAD_L
            + if n == 1 {
                0.0
            } else {
                i as f64 * (W - PAD_L - PAD_R) / (n - 1) as f64
            }
    };
    let y = |v: f64| PAD_T + (max - v) / span * (H - PAD_T - PAD_B);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title>"#,
        esc(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{PAD_L}" x2="{}" y1="{y0:.1}" y2="{y0:.1}" stroke="#767676" stroke-width="1"/>"##,
        W - PAD_R,
        y0 = y(0.0)
    );
    for (v, label) in [(max, format!("{max:.2}")), (min, format!("{min:.2}"))] {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#333">{}</text>"##,
            PAD_L - 6.0,
            y(v) + 4.0,
            esc(&label)
        );
    }
    let step = n.div_ceil(7).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % step == 0) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11" fill="#333">{}</text>"##,
            x(i),
            H - PAD_B + 16.0,
            esc(label)
        );
    }
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(num(v))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2.5" points="{}"><title>{}</title></polyline>"#,
            s.colour,
            points.join(" "),
            esc(s.name)
        );
        for (i, v) in s.values.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
                x(i),
                y(num(v)),
                s.colour,
                esc(s.name),
                esc(labels.get(i).map_or("", String::as_str)),
                esc(v)
            );
        }
        let lx = PAD_L + k as f64 * 150.0;
        let _ = write!(
            svg,
            r##"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="12" fill="#111">{}</text>"##,
            H - 16.0,
            s.colour,
            lx + 16.0,
            H - 6.0,
            esc(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one per `(label, value)`, longest for the largest value.
pub fn bars(id: &str, title: &str, colour: &str, rows: &[(String, String)]) -> String {
    let row_h = 26.0;
    let height = PAD_T * 2.0 + row_h * rows.len().max(1) as f64;
    let max = rows
        .iter()
        .map(|(_, v)| num(v))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let left = 140.0;
    let width = W - left - 90.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {height}" role="img" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title>"#,
        esc(title)
    );
    for (i, (label, value)) in rows.iter().enumerate() {
        let top = PAD_T + i as f64 * row_h;
        let len = (num(value).max(0.0) / max * width).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="12" fill="#111">{}</text><rect x="{left}" y="{:.1}" width="{len:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#111">{}</text>"##,
            left - 6.0,
            top + 15.0,
            esc(label),
            top + 3.0,
            row_h - 8.0,
            left + len + 6.0,
            top + 15.0,
            esc(value)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_escaped_labelled_svg() {
        let svg = lines(
            "c",
            "GGR <&>",
            &["d1".into(), "d2".into()],
            &[Series {
                name: "GGR",
                colour: "#0b57d0",
                values: vec!["1.00".into(), "-2.50".into()],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("GGR &lt;&amp;&gt;"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("-2.50"));
        let b = bars("b", "Top", "#0b6b2e", &[("jdb".into(), "10.00".into())]);
        assert!(b.contains(">jdb<") && b.contains(">10.00<"));
    }
}
