//! Minimal SVG line plots with logarithmic axes (DET curves).
//!
//! Written by hand rather than with a plotting crate: the output is a few hundred
//! bytes of deterministic SVG and needs no font files or system libraries.

/// One curve.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// (x, y) points; non-positive values are skipped on log axes.
    pub points: Vec<(f64, f64)>,
}

/// A plot with log10 axes over `x_range` × `y_range`.
#[derive(Debug, Clone)]
pub struct LogLogPlot {
    /// Title above the plot.
    pub title: String,
    /// Label of the horizontal (x) axis.
    pub x_label: String,
    /// Label of the vertical (y) axis.
    pub y_label: String,
    /// (min, max) of the x axis, both > 0; points outside are drawn at its edge.
    pub x_range: (f64, f64),
    /// (min, max) of the y axis, both > 0; points outside are drawn at its edge.
    pub y_range: (f64, f64),
    /// The curves, coloured in turn from six of matplotlib's tab10 colours.
    pub series: Vec<Series>,
    /// Vertical reference lines (x value, label), e.g. operating points.
    pub markers: Vec<(f64, String)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl LogLogPlot {
    /// The plot as a standalone 720 × 520 px SVG document: title, a grid line per decade,
    /// one polyline per series, legend on the right, markers as dashed vertical lines
    /// (those at x ≤ 0 skipped).
    pub fn to_svg(&self) -> String {
        let (w, h) = (720.0, 520.0);
        let (ml, mr, mt, mb) = (80.0, 200.0, 40.0, 60.0);
        let pw = w - ml - mr;
        let ph = h - mt - mb;
        let (x0, x1) = (self.x_range.0.log10(), self.x_range.1.log10());
        let (y0, y1) = (self.y_range.0.log10(), self.y_range.1.log10());
        let px = |x: f64| ml + (x.log10() - x0) / (x1 - x0) * pw;
        let py = |y: f64| mt + ph - (y.log10() - y0) / (y1 - y0) * ph;
        let mut s = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n"
        );
        s += &format!(
            "<text x='{}' y='22' text-anchor='middle' font-size='15'>{}</text>\n",
            ml + pw / 2.0,
            esc(&self.title)
        );
        // Grid and tick labels at each decade.
        let mut d = x0.ceil() as i32;
        while d as f64 <= x1 + 1e-9 {
            let x = px(10f64.powi(d));
            s += &format!(
                "<line x1='{x:.1}' y1='{mt}' x2='{x:.1}' y2='{}' stroke='#ddd'/>\n",
                mt + ph
            );
            s += &format!(
                "<text x='{x:.1}' y='{}' text-anchor='middle'>1e{d}</text>\n",
                mt + ph + 16.0
            );
            d += 1;
        }
        let mut d = y0.ceil() as i32;
        while d as f64 <= y1 + 1e-9 {
            let y = py(10f64.powi(d));
            s += &format!(
                "<line x1='{ml}' y1='{y:.1}' x2='{}' y2='{y:.1}' stroke='#ddd'/>\n",
                ml + pw
            );
            s += &format!(
                "<text x='{}' y='{:.1}' text-anchor='end'>1e{d}</text>\n",
                ml - 6.0,
                y + 4.0
            );
            d += 1;
        }
        s += &format!(
            "<rect x='{ml}' y='{mt}' width='{pw}' height='{ph}' fill='none' stroke='black'/>\n"
        );
        s += &format!(
            "<text x='{}' y='{}' text-anchor='middle'>{}</text>\n",
            ml + pw / 2.0,
            h - 18.0,
            esc(&self.x_label)
        );
        s += &format!(
            "<text x='20' y='{}' text-anchor='middle' transform='rotate(-90 20 {})'>{}</text>\n",
            mt + ph / 2.0,
            mt + ph / 2.0,
            esc(&self.y_label)
        );
        for (x, label) in &self.markers {
            if *x <= 0.0 {
                continue;
            }
            let xx = px(*x);
            s += &format!(
                "<line x1='{xx:.1}' y1='{mt}' x2='{xx:.1}' y2='{}' stroke='#999' stroke-dasharray='4 3'/>\n<text x='{:.1}' y='{}' font-size='10' fill='#555'>{}</text>\n",
                mt + ph,
                xx + 2.0,
                mt + 12.0,
                esc(label)
            );
        }
        for (i, series) in self.series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| *x > 0.0 && *y > 0.0)
                .map(|&(x, y)| {
                    let x = x.clamp(self.x_range.0, self.x_range.1);
                    let y = y.clamp(self.y_range.0, self.y_range.1);
                    format!("{:.1},{:.1}", px(x), py(y))
                })
                .collect();
            if !pts.is_empty() {
                s += &format!(
                    "<polyline fill='none' stroke='{c}' stroke-width='2' points='{}'/>\n",
                    pts.join(" ")
                );
            }
            let ly = mt + 10.0 + i as f64 * 18.0;
            s += &format!(
                "<line x1='{}' y1='{ly}' x2='{}' y2='{ly}' stroke='{c}' stroke-width='3'/><text x='{}' y='{}'>{}</text>\n",
                ml + pw + 10.0,
                ml + pw + 30.0,
                ml + pw + 35.0,
                ly + 4.0,
                esc(&series.name)
            );
        }
        s += "</svg>\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series_and_skips_zero_points() {
        let p = LogLogPlot {
            title: "DET <test>".into(),
            x_label: "FMR".into(),
            y_label: "FNMR".into(),
            x_range: (1e-6, 1.0),
            y_range: (1e-3, 1.0),
            series: vec![Series {
                name: "a".into(),
                points: vec![(1e-5, 0.1), (0.0, 0.5), (1e-2, 0.01)],
            }],
            markers: vec![(1e-5, "FMR 1e-5".into())],
        };
        let svg = p.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("DET &lt;test&gt;"));
        let poly = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(
            poly.matches(',').count(),
            2,
            "the zero point is skipped: {poly}"
        );
    }
}
