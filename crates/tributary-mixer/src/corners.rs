//! Rounded corners of a tile, anti-aliased: the four corner squares of what lies under the
//! tile are kept before it is drawn and put back afterwards, weighted by how much of each
//! pixel falls outside the rounded box. Only `4·r²` pixels are touched, whatever the
//! tile's size.

use crate::frame::{I420, chroma_size};

/// A box on the canvas, `[x0, x1) × [y0, y1)`, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

/// What was under a tile's corners, to put back once it is drawn.
pub struct Saved {
    bounds: Bounds,
    radius: f32,
    /// Per corner: luma `(x, y, w, h, pixels)` and chroma `(x, y, w, h, u, v)`.
    luma: Vec<(u32, u32, u32, u32, Vec<u8>)>,
    chroma: Vec<ChromaPatch>,
}

type ChromaPatch = (u32, u32, u32, u32, Vec<u8>, Vec<u8>);

/// How much of the pixel centred at `(x, y)` lies inside the rounded box (0–255).
fn coverage(b: Bounds, r: f32, x: f32, y: f32) -> u8 {
    let cx = x.clamp(b.x0 as f32 + r, b.x1 as f32 - r);
    let cy = y.clamp(b.y0 as f32 + r, b.y1 as f32 - r);
    let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
    ((r - d + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Keeps the canvas under the corners of `bounds` rounded by `radius` (clamped to half
/// the box). `None` when there is nothing to round.
pub fn save(canvas: &I420, bounds: Bounds, radius: u32) -> Option<Saved> {
    let (w, h) = (bounds.x1 - bounds.x0, bounds.y1 - bounds.y0);
    let r = (radius as i64).min(w / 2).min(h / 2);
    if r <= 0 {
        return None;
    }
    let (cw, ch) = chroma_size(canvas.width, canvas.height);
    let mut saved = Saved {
        bounds,
        radius: r as f32,
        luma: Vec::with_capacity(4),
        chroma: Vec::with_capacity(4),
    };
    for (x, y) in [
        (bounds.x0, bounds.y0),
        (bounds.x1 - r, bounds.y0),
        (bounds.x0, bounds.y1 - r),
        (bounds.x1 - r, bounds.y1 - r),
    ] {
        if let Some((x, y, w, h)) = clip(x, y, r, r, canvas.width, canvas.height) {
            saved
                .luma
                .push((x, y, w, h, copy(&canvas.y, canvas.width, x, y, w, h)));
        }
        // The chroma samples the corner touches.
        let (cx0, cy0) = (x.div_euclid(2), y.div_euclid(2));
        let (cx1, cy1) = ((x + r + 1).div_euclid(2), (y + r + 1).div_euclid(2));
        if let Some((x, y, w, h)) = clip(cx0, cy0, cx1 - cx0, cy1 - cy0, cw, ch) {
            saved.chroma.push((
                x,
                y,
                w,
                h,
                copy(&canvas.u, cw, x, y, w, h),
                copy(&canvas.v, cw, x, y, w, h),
            ));
        }
    }
    Some(saved)
}

/// Puts back what lies outside the rounded box.
pub fn restore(canvas: &mut I420, saved: &Saved) {
    let (b, r) = (saved.bounds, saved.radius);
    for (x, y, w, h, px) in &saved.luma {
        for row in 0..*h {
            for col in 0..*w {
                let (cx, cy) = (x + col, y + row);
                let a = coverage(b, r, cx as f32 + 0.5, cy as f32 + 0.5);
                let d = (cy * canvas.width + cx) as usize;
                canvas.y[d] = mix(canvas.y[d], px[(row * w + col) as usize], a);
            }
        }
    }
    let cw = canvas.chroma_width();
    for (x, y, w, h, u, v) in &saved.chroma {
        for row in 0..*h {
            for col in 0..*w {
                let (cx, cy) = (x + col, y + row);
                // A chroma sample covers luma [2cx, 2cx+2): its centre is 2cx + 1.
                let a = coverage(b, r, (2 * cx + 1) as f32, (2 * cy + 1) as f32);
                let d = (cy * cw + cx) as usize;
                let s = (row * w + col) as usize;
                canvas.u[d] = mix(canvas.u[d], u[s], a);
                canvas.v[d] = mix(canvas.v[d], v[s], a);
            }
        }
    }
}

fn clip(x: i64, y: i64, w: i64, h: i64, cw: u32, ch: u32) -> Option<(u32, u32, u32, u32)> {
    let (x0, y0) = (x.max(0), y.max(0));
    let (x1, y1) = ((x + w).min(cw as i64), (y + h).min(ch as i64));
    (x1 > x0 && y1 > y0).then(|| (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
}

fn copy(plane: &[u8], stride: u32, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h) as usize);
    for row in y..y + h {
        let s = (row * stride + x) as usize;
        out.extend_from_slice(&plane[s..s + w as usize]);
    }
    out
}

/// `a` of `new` over `old`.
fn mix(new: u8, old: u8, a: u8) -> u8 {
    let a = a as u32;
    ((new as u32 * a + old as u32 * (255 - a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_show_what_was_under_and_edges_stay_drawn() {
        let mut canvas = I420::filled(100, 100, 0x0000ff);
        let b = Bounds {
            x0: 10,
            y0: 10,
            x1: 90,
            y1: 70,
        };
        let saved = save(&canvas, b, 20).unwrap();
        // "Draw" the tile: red over the box.
        let red = I420::filled(80, 60, 0xff0000);
        for row in 0..60 {
            let d = ((10 + row) * 100 + 10) as usize;
            canvas.y[d..d + 80].copy_from_slice(&red.y[(row * 80) as usize..][..80]);
        }
        for row in 0..30u32 {
            let d = ((5 + row) * 50 + 5) as usize;
            canvas.u[d..d + 40].copy_from_slice(&red.u[(row * 40) as usize..][..40]);
            canvas.v[d..d + 40].copy_from_slice(&red.v[(row * 40) as usize..][..40]);
        }
        restore(&mut canvas, &saved);
        let is = |p: (u8, u8, u8), rgb: u32| {
            let w = (
                (rgb >> 16) as i32,
                ((rgb >> 8) & 0xff) as i32,
                (rgb & 0xff) as i32,
            );
            (p.0 as i32 - w.0).abs() < 8
                && (p.1 as i32 - w.1).abs() < 8
                && (p.2 as i32 - w.2).abs() < 8
        };
        for (x, y) in [(10, 10), (89, 10), (10, 69), (89, 69), (12, 12)] {
            assert!(
                is(canvas.rgb(x, y), 0x0000ff),
                "corner ({x},{y}) shows what was under"
            );
        }
        for (x, y) in [(50, 40), (50, 10), (10, 40), (89, 40), (50, 69), (30, 30)] {
            assert!(is(canvas.rgb(x, y), 0xff0000), "({x},{y}) is the tile");
        }
        // Anti-aliased: along a row crossing the arc, some pixels are in between.
        let arc = (10..30)
            .map(|x| canvas.rgb(x, 12))
            .filter(|p| !is(*p, 0xff0000) && !is(*p, 0x0000ff))
            .count();
        assert!(arc >= 1, "a blended pixel on the arc");
        // A radius larger than half the box is clamped (a pill, not an error).
        assert!(save(&canvas, b, 100).is_some());
        assert!(save(&canvas, b, 0).is_none());
    }
}
