//! Line charts rendered to PNG and SVG with plotters, using an embedded DejaVu Sans font (no
//! system fonts, no display).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// A chart that could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart {path}: {message}")]
pub struct PlotError {
    /// The file being written.
    pub path: std::path::PathBuf,
    /// What failed.
    pub message: String,
}

/// PNG size in pixels.
pub const PNG_SIZE: (u32, u32) = (960, 600);

/// One named line, optionally with a shaded band `(x, low, high)` around it.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Optional band, e.g. min..max over seeds.
    pub band: Vec<(f64, f64, f64)>,
    /// Draw dashed (e.g. training curves next to validation curves).
    pub dashed: bool,
    /// Draw markers only (a scatter plot).
    pub markers_only: bool,
    /// Colour index; series with the same index share a colour.
    pub color: usize,
}

/// A chart: title, axis labels, log scales, series.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Logarithmic x axis (non-positive x are dropped).
    pub log_x: bool,
    /// Logarithmic y axis (non-positive y are dropped).
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Image size in pixels (default [`PNG_SIZE`]).
    pub size: Option<(u32, u32)>,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| ())
            .expect("the embedded DejaVu font is valid");
    });
}

/// Colour of series index `i`.
pub fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

impl Chart {
    /// Writes `<base>.png` and `<base>.svg`, each atomically (drawn to a temporary file, then
    /// renamed into place).
    pub fn render(&self, base: &Path) -> Result<(), PlotError> {
        register_font();
        let size = self.size.unwrap_or(PNG_SIZE);
        for ext in ["png", "svg"] {
            // Append (not replace) the extension: `representation_lambda-0.1` keeps its dot.
            let mut name = base.as_os_str().to_owned();
            name.push(format!(".{ext}"));
            let path = std::path::PathBuf::from(name);
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let tmp = path.with_file_name(format!(
                ".{}.tmp{}.{ext}",
                file_name.unwrap_or_default(),
                std::process::id()
            ));
            let failed = |message: String| PlotError {
                path: path.clone(),
                message,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
            }
            let drawn = if ext == "png" {
                self.draw(BitMapBackend::new(&tmp, size).into_drawing_area())
            } else {
                self.draw(SVGBackend::new(&tmp, size).into_drawing_area())
            };
            drawn
                .and_then(|()| crate::fsutil::commit(&tmp, &path).map_err(|e| e.to_string()))
                .map_err(|message| {
                    let _ = std::fs::remove_file(&tmp);
                    failed(message)
                })?;
        }
        Ok(())
    }

    fn transform(&self, (x, y): (f64, f64)) -> Option<(f64, f64)> {
        let x = if self.log_x {
            (x > 0.0).then(|| x.log10())?
        } else {
            x
        };
        let y = if self.log_y {
            (y > 0.0).then(|| y.log10())?
        } else {
            y
        };
        (x.is_finite() && y.is_finite()).then_some((x, y))
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(plot_error)?;
        let lines: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().filter_map(|&p| self.transform(p)).collect())
            .collect();
        let bands: Vec<Vec<(f64, f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.band
                    .iter()
                    .filter_map(|&(x, lo, hi)| {
                        let (tx, tlo) = self.transform((x, lo))?;
                        let (_, thi) = self.transform((x, hi))?;
                        Some((tx, tlo, thi))
                    })
                    .collect()
            })
            .collect();
        let xs = lines.iter().flatten().map(|p| p.0);
        let ys = lines
            .iter()
            .flatten()
            .map(|p| p.1)
            .chain(bands.iter().flatten().flat_map(|b| [b.1, b.2]));
        let (x_range, y_range) = (padded(xs), padded(ys));
        let (log_x, log_y) = (self.log_x, self.log_y);
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range, y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE) // major grid only: clearer, and the PNGs compress well
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .x_label_formatter(&|v| tick(*v, log_x))
            .y_label_formatter(&|v| tick(*v, log_y))
            .draw()
            .map_err(plot_error)?;
        for ((series, line), band) in self.series.iter().zip(&lines).zip(&bands) {
            let colour = color(series.color);
            if band.len() >= 2 {
                let polygon: Vec<(f64, f64)> = band
                    .iter()
                    .map(|b| (b.0, b.2))
                    .chain(band.iter().rev().map(|b| (b.0, b.1)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        polygon,
                        colour.mix(0.18).filled(),
                    )))
                    .map_err(plot_error)?;
            }
            let style = colour.stroke_width(2);
            let drawn = if series.markers_only {
                chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            } else if series.dashed {
                chart.draw_series(DashedLineSeries::new(line.clone(), 8, 5, style))
            } else {
                chart.draw_series(LineSeries::new(line.clone(), style))
            };
            drawn
                .map_err(plot_error)?
                .label(&series.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
                });
            if line.len() <= 40 && !series.markers_only {
                chart
                    .draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(plot_error)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 16))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    }
}

fn tick(value: f64, log: bool) -> String {
    if log {
        format!("{:.0e}", 10f64.powf(value))
    } else if value != 0.0 && (value.abs() < 1e-3 || value.abs() >= 1e5) {
        format!("{value:.1e}")
    } else {
        format!("{}", (value * 1e4).round() / 1e4)
    }
}

fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - 0.05 * span)..(hi + 0.05 * span)
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(
    error: DrawingAreaErrorKind<E>,
) -> String {
    error.to_string()
}
