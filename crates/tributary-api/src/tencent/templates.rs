//! `MixStreamTemplateId` layouts as data (spec `tencent-live-api.md` §4.7): for each
//! template, the number of visual inputs it takes and, per layer above the background, a
//! box function of the background size. Layer 1 is always the full-frame background.
//!
//! The vendor documents the layouts only as approximations ("values are approximate,
//! not exact"): the small pictures fit their box keeping their aspect ratio. Explicit
//! `LayoutParams` given with a template override these boxes.

/// Where one layer goes: a box on a `W × H` background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub layer: u32,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// How a small picture is anchored in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
    BottomCentre,
    /// Side by side, vertically centred: left or right half (template 390).
    HalfLeft,
    HalfRight,
    /// Stacked, horizontally centred: top or bottom half (template 391).
    HalfTop,
    HalfBottom,
    /// A fixed 120 px-wide window at (244, 400) (template 50).
    Fixed50,
}

/// The margin the vendor's layouts keep from the edges.
const MARGIN: u32 = 20;

struct Template {
    id: u32,
    /// Visual inputs, background included.
    inputs: usize,
    /// The background must be a canvas (InputType 3).
    canvas_background: bool,
    /// Box size as a fraction of the background: (numerator, denominator).
    scale: (u32, u32),
    /// Anchors of layers 2, 3, …
    anchors: &'static [Anchor],
}

use Anchor::*;

const TEMPLATES: &[Template] = &[
    Template {
        id: 10,
        inputs: 2,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopLeft],
    },
    Template {
        id: 20,
        inputs: 2,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[BottomRight],
    },
    Template {
        id: 30,
        inputs: 2,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[BottomLeft],
    },
    Template {
        id: 40,
        inputs: 2,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopRight],
    },
    Template {
        id: 50,
        inputs: 2,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[Fixed50],
    },
    Template {
        id: 310,
        inputs: 3,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopLeft, BottomRight],
    },
    Template {
        id: 390,
        inputs: 3,
        canvas_background: true,
        scale: (1, 2),
        anchors: &[HalfLeft, HalfRight],
    },
    Template {
        id: 391,
        inputs: 3,
        canvas_background: true,
        scale: (1, 2),
        anchors: &[HalfTop, HalfBottom],
    },
    Template {
        id: 410,
        inputs: 4,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopLeft, BottomRight, BottomLeft],
    },
    Template {
        id: 510,
        inputs: 5,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopLeft, BottomRight, TopRight, BottomLeft],
    },
    Template {
        id: 590,
        inputs: 5,
        canvas_background: true,
        scale: (20, 43),
        anchors: &[TopLeft, TopRight, BottomLeft, BottomRight],
    },
    Template {
        id: 610,
        inputs: 6,
        canvas_background: false,
        scale: (1, 3),
        anchors: &[TopLeft, BottomRight, TopRight, BottomCentre, BottomLeft],
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("MixStreamTemplateId {0} does not exist")]
    Unknown(u32),
    #[error("template {id} takes {expected} visual inputs, got {got}")]
    NotMatchInputNum {
        id: u32,
        expected: usize,
        got: usize,
    },
    #[error("template {0} needs a canvas (InputType 3) as layer 1")]
    NeedsCanvas(u32),
}

/// Every template: its id, visual input count (background included) and whether layer 1
/// must be a canvas — what the console offers as layout presets.
pub fn catalogue() -> impl Iterator<Item = (u32, usize, bool)> {
    TEMPLATES
        .iter()
        .map(|t| (t.id, t.inputs, t.canvas_background))
}

/// The template's visual input count and whether layer 1 must be a canvas.
pub fn requirements(id: u32) -> Result<(usize, bool), TemplateError> {
    TEMPLATES
        .iter()
        .find(|t| t.id == id)
        .map(|t| (t.inputs, t.canvas_background))
        .ok_or(TemplateError::Unknown(id))
}

/// The boxes of every layer for template `id` on a `w × h` background: layer 1 covers
/// it, the others follow the template. `visual` is the number of visual inputs given and
/// `canvas` whether layer 1 is a canvas.
pub fn layout(
    id: u32,
    w: u32,
    h: u32,
    visual: usize,
    canvas: bool,
) -> Result<Vec<Placed>, TemplateError> {
    let t = TEMPLATES
        .iter()
        .find(|t| t.id == id)
        .ok_or(TemplateError::Unknown(id))?;
    if visual != t.inputs {
        return Err(TemplateError::NotMatchInputNum {
            id,
            expected: t.inputs,
            got: visual,
        });
    }
    if t.canvas_background && !canvas {
        return Err(TemplateError::NeedsCanvas(id));
    }
    let (num, den) = t.scale;
    let (bw, bh) = (w * num / den, h * num / den);
    let mut out = vec![Placed {
        layer: 1,
        x: 0,
        y: 0,
        width: w,
        height: h,
    }];
    for (i, anchor) in t.anchors.iter().enumerate() {
        let right = w.saturating_sub(MARGIN + bw);
        let bottom = h.saturating_sub(MARGIN + bh);
        let (x, y, bw, bh) = match anchor {
            TopLeft => (MARGIN, MARGIN, bw, bh),
            TopRight => (right, MARGIN, bw, bh),
            BottomLeft => (MARGIN, bottom, bw, bh),
            BottomRight => (right, bottom, bw, bh),
            BottomCentre => ((w - bw) / 2, bottom, bw, bh),
            HalfLeft => (MARGIN, (h - bh) / 2, bw, bh),
            HalfRight => (w - bw, (h - bh) / 2, bw, bh),
            HalfTop => ((w.saturating_sub(bw + MARGIN)) / 2, 10, bw, bh),
            // The vendor's "h + 20" would overflow a background of exactly 2h: clamp.
            HalfBottom => (
                (w.saturating_sub(bw + MARGIN)) / 2,
                (bh + MARGIN).min(h - bh),
                bw,
                bh,
            ),
            Fixed50 => (
                244.min(w.saturating_sub(120)),
                400.min(h.saturating_sub(bh)),
                120,
                bh,
            ),
        };
        out.push(Placed {
            layer: i as u32 + 2,
            x,
            y,
            width: bw,
            height: bh,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_fits_its_background_and_counts_its_inputs() {
        for t in TEMPLATES {
            let boxes = layout(t.id, 1280, 720, t.inputs, true).unwrap();
            assert_eq!(boxes.len(), t.inputs, "template {}", t.id);
            assert_eq!(
                boxes[0],
                Placed {
                    layer: 1,
                    x: 0,
                    y: 0,
                    width: 1280,
                    height: 720
                }
            );
            for b in &boxes {
                assert!(
                    b.x + b.width <= 1280 && b.y + b.height <= 720,
                    "template {}: {b:?}",
                    t.id
                );
                assert!(b.width > 0 && b.height > 0);
            }
            let layers: Vec<u32> = boxes.iter().map(|b| b.layer).collect();
            assert_eq!(layers, (1..=t.inputs as u32).collect::<Vec<_>>());
            assert_eq!(
                layout(t.id, 1280, 720, t.inputs + 1, true),
                Err(TemplateError::NotMatchInputNum {
                    id: t.id,
                    expected: t.inputs,
                    got: t.inputs + 1
                })
            );
        }
        assert_eq!(
            layout(11, 1280, 720, 2, false),
            Err(TemplateError::Unknown(11))
        );
    }

    #[test]
    fn the_documented_positions() {
        // 10: top-left PiP at (20, 20), a third of the background.
        let b = layout(10, 1280, 720, 2, false).unwrap();
        assert_eq!(
            b[1],
            Placed {
                layer: 2,
                x: 20,
                y: 20,
                width: 426,
                height: 240
            }
        );
        // 20: bottom-right.
        let b = layout(20, 1280, 720, 2, false).unwrap();
        assert_eq!((b[1].x, b[1].y), (1280 - 20 - 426, 720 - 20 - 240));
        // 390: two halves side by side, vertically centred, on a canvas only.
        assert_eq!(
            layout(390, 1920, 1080, 3, false),
            Err(TemplateError::NeedsCanvas(390))
        );
        let b = layout(390, 1920, 1080, 3, true).unwrap();
        assert_eq!(
            b[1],
            Placed {
                layer: 2,
                x: 20,
                y: 270,
                width: 960,
                height: 540
            }
        );
        assert_eq!(
            b[2],
            Placed {
                layer: 3,
                x: 960,
                y: 270,
                width: 960,
                height: 540
            }
        );
        // 590: a 2×2 grid of 20/43 of the background.
        let b = layout(590, 1290, 860, 5, true).unwrap();
        assert_eq!((b[1].width, b[1].height), (600, 400));
        assert_eq!((b[4].x, b[4].y), (1290 - 20 - 600, 860 - 20 - 400));
        // 610: the fourth small picture is bottom-centre.
        let b = layout(610, 1280, 720, 6, false).unwrap();
        assert_eq!(b[4].x, (1280 - 426) / 2);
    }
}
