//! SCALE-Sim topology CSV import and export.
//!
//! Columns: `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
//! Channels, Num Filter, Strides` (SCALE-Sim writes a trailing comma). SCALE-Sim
//! has no padding, so export writes the pre-padded map size (`in + 2`) and
//! import subtracts the padding again. Only 3x3 filters on square maps are
//! accepted: that is the only operator the array has.

use std::fmt::Write as _;
use std::path::Path;

use repopt_spec::{conv_out_size, ConvLayer};

use crate::workload::{Workload, WorkloadLayer};
use crate::SimError;

pub const HEADER: [&str; 8] = [
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
];

/// The topology CSV of a workload (padded map sizes, as SCALE-Sim expects).
pub fn export(w: &Workload) -> String {
    let mut s = HEADER.join(", ");
    s.push_str(",\n");
    for l in &w.layers {
        let c = &l.conv;
        let _ = writeln!(
            s,
            "{}, {}, {}, 3, 3, {}, {}, {},",
            l.name,
            c.in_size + 2,
            c.in_size + 2,
            c.in_channels,
            c.out_channels,
            c.stride
        );
    }
    s
}

/// Parses a topology CSV; `origin` names it in errors, `name` becomes the
/// workload's name.
pub fn import(text: &str, origin: &str, name: &str) -> Result<Workload, SimError> {
    let err = |line: usize, message: String| SimError::Topology {
        origin: origin.into(),
        location: format!("line {line}"),
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let (hl, header) = lines
        .next()
        .ok_or_else(|| err(1, "the file is empty (expected a header row)".into()))?;
    let cols: Vec<String> = split(header).map(|c| c.to_ascii_lowercase()).collect();
    if cols.len() < HEADER.len()
        || cols
            .iter()
            .zip(HEADER)
            .any(|(c, h)| c.as_str() != h.to_ascii_lowercase())
    {
        return Err(err(
            hl,
            format!(
                "header must start with the columns `{}` (got `{header}`)",
                HEADER.join(", ")
            ),
        ));
    }
    let mut layers: Vec<WorkloadLayer> = Vec::new();
    for (ln, line) in lines {
        let f: Vec<&str> = split(line).collect();
        if f.len() < HEADER.len() {
            return Err(err(
                ln,
                format!("expected {} columns, found {}", HEADER.len(), f.len()),
            ));
        }
        let num = |i: usize| -> Result<usize, SimError> {
            f[i].parse::<usize>().map_err(|_| {
                err(
                    ln,
                    format!("`{}` = `{}` is not a non-negative integer", HEADER[i], f[i]),
                )
            })
        };
        let lname = f[0].to_string();
        let (h, wd, fh, fw, ch, nf, st) = (
            num(1)?,
            num(2)?,
            num(3)?,
            num(4)?,
            num(5)?,
            num(6)?,
            num(7)?,
        );
        let at = |m: String| err(ln, format!("layer `{lname}`: {m}"));
        if fh != 3 || fw != 3 {
            return Err(at(format!(
                "filter {fh}x{fw} is not supported: the array only runs 3x3 convolutions"
            )));
        }
        if h != wd {
            return Err(at(format!("IFMAP {h}x{wd} is not square")));
        }
        if h < 3 {
            return Err(at(format!(
                "IFMAP Height {h} is smaller than 3: sizes are padded (input + 2), \
                 so a 1x1 input map is written as 3"
            )));
        }
        if ch == 0 || nf == 0 {
            return Err(at("Channels and Num Filter must be at least 1".into()));
        }
        if st != 1 && st != 2 {
            return Err(at(format!("stride {st} is not supported (1 or 2)")));
        }
        let in_size = h - 2;
        if let Some(prev) = layers.last() {
            if prev.conv.out_size != in_size || prev.conv.out_channels != ch {
                return Err(at(format!(
                    "input {in_size}x{in_size}x{ch} (after removing the padding) does not match \
                     the previous layer's output {s}x{s}x{c}",
                    s = prev.conv.out_size,
                    c = prev.conv.out_channels
                )));
            }
        }
        let index = layers.len();
        layers.push(WorkloadLayer {
            name: lname,
            conv: ConvLayer {
                index,
                stage: 0,
                block: index,
                in_channels: ch,
                out_channels: nf,
                stride: st,
                in_size,
                out_size: conv_out_size(in_size, st),
                has_identity: ch == nf && st == 1,
            },
        });
    }
    if layers.is_empty() {
        return Err(err(hl, "no layers after the header".into()));
    }
    Ok(Workload {
        name: name.into(),
        layers,
    })
}

/// Reads a topology CSV file; the workload is named after the file stem.
pub fn import_file(path: &Path) -> Result<Workload, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "topology".into());
    import(&text, &path.display().to_string(), &name)
}

fn split(line: &str) -> impl Iterator<Item = &str> {
    let trimmed = line.trim().trim_end_matches(',');
    trimmed.split(',').map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use repopt_spec::preset;

    #[test]
    fn round_trip_every_preset() {
        for name in repopt_spec::PRESETS {
            let w = Workload::from_spec(&preset(name).unwrap());
            let csv = export(&w);
            let back = import(&csv, "mem", &w.name).unwrap();
            assert_eq!(back.layers.len(), w.layers.len());
            for (a, b) in w.layers.iter().zip(&back.layers) {
                assert_eq!(a.name, b.name);
                let (x, y) = (a.conv, b.conv);
                assert_eq!(
                    (
                        x.in_channels,
                        x.out_channels,
                        x.stride,
                        x.in_size,
                        x.out_size
                    ),
                    (
                        y.in_channels,
                        y.out_channels,
                        y.stride,
                        y.in_size,
                        y.out_size
                    )
                );
            }
            assert_eq!(export(&back), csv);
        }
    }

    #[test]
    fn padded_sizes_and_header() {
        let w = Workload::from_spec(&preset("tiny").unwrap());
        let csv = export(&w);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
        );
        assert_eq!(lines.next().unwrap(), "stage0, 30, 30, 3, 3, 1, 16, 2,");
    }

    #[test]
    fn rejects_bad_rows_with_clear_messages() {
        let h = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";
        let cases = [
            (
                "conv1, 230, 230, 7, 7, 3, 64, 2,",
                "filter 7x7 is not supported",
            ),
            ("c, 30, 28, 3, 3, 1, 16, 1,", "not square"),
            ("c, 30, 30, 3, 3, 1, 16, 3,", "stride 3"),
            ("c, 30, 30, 3, x, 1, 16, 1,", "`Filter Width` = `x`"),
            (
                "a, 30, 30, 3, 3, 1, 16, 2,\nb, 30, 30, 3, 3, 16, 16, 1,",
                "does not match the previous layer",
            ),
        ];
        for (body, msg) in cases {
            let e = import(&format!("{h}{body}\n"), "t.csv", "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(msg), "{e}");
            assert!(e.contains("t.csv"), "{e}");
        }
        let e = import("a,b\n", "t.csv", "t").unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
    }
}
