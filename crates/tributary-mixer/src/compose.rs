//! Composition of one output picture: background, then each visible input in its rect
//! (lowest `Layer` first, ties in list order) with its blurred margins, label and rounded
//! corners, then the watermark with its alpha.
//!
//! Pure: the pictures come in already scaled (see [`fitted_size`]); this module only
//! places, clips and blends, so it is exact and testable pixel by pixel.

use tributary_core::mix::{Padding, Rect, RenderMode};

use crate::corners::{self, Bounds};
use crate::frame::{I420, I420A};

/// The size a `src_w × src_h` picture is scaled to before it is drawn into a
/// `rect_w × rect_h` rect. Crop covers the rect (the overflow is cut, centred); Fit stays
/// inside it (the rest shows the background). Sizes are even and at least 2.
pub fn fitted_size(
    src_w: u32,
    src_h: u32,
    rect_w: u32,
    rect_h: u32,
    mode: RenderMode,
) -> (u32, u32) {
    if src_w == 0 || src_h == 0 || rect_w == 0 || rect_h == 0 {
        return (even(rect_w), even(rect_h));
    }
    let (sw, sh, rw, rh) = (src_w as u64, src_h as u64, rect_w as u64, rect_h as u64);
    // Compare the scale factors rw/sw and rh/sh without floats: rw*sh vs rh*sw.
    let width_bound = rw * sh <= rh * sw;
    let (w, h) = match (mode, width_bound) {
        // Fit, limited by width: full width, height follows.
        (RenderMode::Fit, true) => (rw, (sh * rw).div_ceil(sw).min(rh)),
        (RenderMode::Fit, false) => ((sw * rh).div_ceil(sh).min(rw), rh),
        // Crop covers: the other way round.
        (RenderMode::Crop, true) => ((sw * rh).div_ceil(sh).max(rw), rh),
        (RenderMode::Crop, false) => (rw, (sh * rw).div_ceil(sw).max(rh)),
    };
    // A source of extreme aspect ratio would be scaled far beyond its rect only to be
    // cropped away: cap the work at four times the rect each way.
    let (w, h) = (w.min(4 * rw), h.min(4 * rh));
    (even_up(w as u32), even_up(h as u32))
}

fn even(v: u32) -> u32 {
    (v & !1).max(2)
}

fn even_up(v: u32) -> u32 {
    (v + (v & 1)).max(2)
}

/// One visible input (or still image) for this tick.
pub struct Layer<'a> {
    pub rect: Rect,
    /// `None`: nothing to show (no video yet, or gone): the background shows.
    pub picture: Option<&'a I420>,
    /// A still image with alpha (drawn instead of `picture`): an image layer, or the
    /// input's placeholder.
    pub image: Option<&'a I420A>,
    /// Rounded corners of what is drawn, pixels.
    pub radius: u32,
    /// Margins of the rect shown blurred.
    pub blur: Option<Padding>,
    /// A label and its top-left corner on the canvas; clipped to the rect.
    pub label: Option<(&'a I420A, i32, i32)>,
}

impl<'a> Layer<'a> {
    /// A plain layer: no corners, blur or label.
    pub fn plain(rect: Rect, picture: Option<&'a I420>, image: Option<&'a I420A>) -> Self {
        Layer {
            rect,
            picture,
            image,
            radius: 0,
            blur: None,
            label: None,
        }
    }
}

/// Composes into `canvas` (same size as `background`).
pub fn compose(
    canvas: &mut I420,
    background: &I420,
    layers: &mut [Layer],
    watermark: Option<(&I420A, Rect)>,
) {
    match covered(canvas, layers) {
        Some((luma, chroma)) if !luma.is_empty() => {
            let (cw, ch) = crate::frame::chroma_size(canvas.width, canvas.height);
            copy_uncovered(
                &mut canvas.y,
                &background.y,
                canvas.width,
                canvas.height,
                &luma,
            );
            copy_uncovered(&mut canvas.u, &background.u, cw, ch, &chroma);
            copy_uncovered(&mut canvas.v, &background.v, cw, ch, &chroma);
        }
        _ => {
            canvas.y.copy_from_slice(&background.y);
            canvas.u.copy_from_slice(&background.u);
            canvas.v.copy_from_slice(&background.v);
        }
    }
    // Stable: equal layers keep list order.
    layers.sort_by_key(|l| l.rect.layer);
    for layer in layers.iter() {
        let size = match (layer.image, layer.picture) {
            (Some(img), _) => Some((img.picture.width, img.picture.height)),
            (None, Some(p)) => Some((p.width, p.height)),
            (None, None) => None,
        };
        // Corners round what is drawn: the picture's box inside the rect.
        let saved = size
            .filter(|_| layer.radius > 0)
            .and_then(|(w, h)| corners::save(canvas, drawn_box(w, h, layer.rect), layer.radius));
        if let Some(img) = layer.image {
            blend(canvas, img, layer.rect);
        } else if let Some(p) = layer.picture {
            draw(canvas, p, layer.rect);
        }
        if let Some(pad) = layer.blur.filter(|_| size.is_some()) {
            crate::blur::margins(canvas, layer.rect, pad);
        }
        if let Some((label, x, y)) = layer.label {
            blend_at(canvas, label, x, y, layer.rect);
        }
        if let Some(saved) = saved {
            corners::restore(canvas, &saved);
        }
    }
    if let Some((overlay, rect)) = watermark {
        blend(canvas, overlay, rect);
    }
}

/// Where opaque pictures will overwrite every sample, luma and chroma, so the background
/// need not be copied there first (a 2×2 layout covers the whole canvas: the copy was a
/// canvas-sized memcpy per tick for nothing). Only plain pictures count: an image or
/// placeholder blends with what is under it, and rounded corners put back what was under
/// them. `None` when some layer blurs its margins: the blur reads around what is drawn.
fn covered(canvas: &I420, layers: &[Layer]) -> Option<(Vec<Bounds>, Vec<Bounds>)> {
    if layers.iter().any(|l| l.blur.is_some()) {
        return None;
    }
    let mut luma = Vec::new();
    let mut chroma = Vec::new();
    for l in layers.iter().filter(|l| l.image.is_none() && l.radius == 0) {
        let Some(p) = l.picture else { continue };
        let Some((dx, dy, sx, sy, w, h)) = visible(canvas, p.width, p.height, l.rect) else {
            continue;
        };
        luma.push(area(dx, dy, w, h));
        // Exactly what `draw` writes of the chroma planes.
        let (cx, cy, _, _, cw, ch) = chroma_region(canvas, p, dx, dy, sx, sy, w, h);
        chroma.push(area(cx, cy, cw, ch));
    }
    Some((luma, chroma))
}

/// The `w × h` area at `(x, y)`.
fn area(x: u32, y: u32, w: u32, h: u32) -> Bounds {
    let (x, y) = (i64::from(x), i64::from(y));
    Bounds {
        x0: x,
        y0: y,
        x1: x + i64::from(w),
        y1: y + i64::from(h),
    }
}

/// Copies a `width × height` plane from `src` to `dst` except inside `boxes`.
fn copy_uncovered(dst: &mut [u8], src: &[u8], width: u32, height: u32, boxes: &[Bounds]) {
    let mut spans: Vec<(u32, u32)> = Vec::with_capacity(boxes.len());
    let w = width as usize;
    for y in 0..height {
        let row = y as usize * w;
        let mut copy = |a: u32, b: u32| {
            let (a, b) = (row + a as usize, row + b as usize);
            dst[a..b].copy_from_slice(&src[a..b]);
        };
        spans.clear();
        let (yy, right) = (i64::from(y), i64::from(width));
        spans.extend(
            boxes
                .iter()
                .filter(|b| b.y0 <= yy && yy < b.y1)
                .map(|b| (b.x0.clamp(0, right) as u32, b.x1.clamp(0, right) as u32)),
        );
        spans.sort_unstable();
        let mut x = 0;
        for &(a, b) in &spans {
            if a > x {
                copy(x, a);
            }
            x = x.max(b);
        }
        if x < width {
            copy(x, width);
        }
    }
}

/// Where a `w × h` picture centred on `rect` lands, clipped to the rect (not the canvas:
/// a tile partly off the canvas keeps its corners where they are).
fn drawn_box(w: u32, h: u32, rect: Rect) -> Bounds {
    let px = rect.left as i64 + (rect.width() as i64 - w as i64) / 2;
    let py = rect.top as i64 + (rect.height() as i64 - h as i64) / 2;
    Bounds {
        x0: px.max(rect.left as i64),
        y0: py.max(rect.top as i64),
        x1: (px + w as i64).min(rect.right as i64),
        y1: (py + h as i64).min(rect.bottom as i64),
    }
}

/// The part of `pic` (centred on `rect`) that lands inside both `rect` and the canvas:
/// `(dst_x, dst_y, src_x, src_y, w, h)`.
fn visible(canvas: &I420, pw: u32, ph: u32, rect: Rect) -> Option<(u32, u32, u32, u32, u32, u32)> {
    // The picture's top-left when centred on the rect.
    let px = rect.left as i64 + (rect.width() as i64 - pw as i64) / 2;
    let py = rect.top as i64 + (rect.height() as i64 - ph as i64) / 2;
    visible_at(canvas, pw, ph, px, py, rect)
}

/// The part of a `pw × ph` picture placed with its top-left at `(px, py)` that lands
/// inside both `rect` and the canvas.
fn visible_at(
    canvas: &I420,
    pw: u32,
    ph: u32,
    px: i64,
    py: i64,
    rect: Rect,
) -> Option<(u32, u32, u32, u32, u32, u32)> {
    let (pw, ph) = (pw as i64, ph as i64);
    let x0 = px.max(rect.left as i64).max(0);
    let y0 = py.max(rect.top as i64).max(0);
    let x1 = (px + pw).min(rect.right as i64).min(canvas.width as i64);
    let y1 = (py + ph).min(rect.bottom as i64).min(canvas.height as i64);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    Some((
        x0 as u32,
        y0 as u32,
        (x0 - px) as u32,
        (y0 - py) as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    ))
}

/// Copies `pic`, centred on `rect` and clipped to it and to the canvas.
pub fn draw(canvas: &mut I420, pic: &I420, rect: Rect) {
    let Some((dx, dy, sx, sy, w, h)) = visible(canvas, pic.width, pic.height, rect) else {
        return;
    };
    copy_plane(
        &mut canvas.y,
        canvas.width,
        &pic.y,
        pic.width,
        (dx, dy, sx, sy, w, h),
    );
    let (cdw, csw) = (canvas.chroma_width(), pic.chroma_width());
    let c = chroma_region(canvas, pic, dx, dy, sx, sy, w, h);
    copy_plane(&mut canvas.u, cdw, &pic.u, csw, c);
    copy_plane(&mut canvas.v, cdw, &pic.v, csw, c);
}

#[allow(clippy::too_many_arguments)]
fn chroma_region(
    canvas: &I420,
    pic: &I420,
    dx: u32,
    dy: u32,
    sx: u32,
    sy: u32,
    w: u32,
    h: u32,
) -> (u32, u32, u32, u32, u32, u32) {
    let (cdw, cdh) = crate::frame::chroma_size(canvas.width, canvas.height);
    let (csw, csh) = crate::frame::chroma_size(pic.width, pic.height);
    let (cdx, cdy, csx, csy) = (dx / 2, dy / 2, sx / 2, sy / 2);
    let cw = (dx + w).div_ceil(2).min(cdw) - cdx;
    let ch = (dy + h).div_ceil(2).min(cdh) - cdy;
    let cw = cw.min(csw.saturating_sub(csx));
    let ch = ch.min(csh.saturating_sub(csy));
    (cdx, cdy, csx, csy, cw, ch)
}

fn copy_plane(
    dst: &mut [u8],
    dst_stride: u32,
    src: &[u8],
    src_stride: u32,
    r: (u32, u32, u32, u32, u32, u32),
) {
    let (dx, dy, sx, sy, w, h) = r;
    for row in 0..h {
        let d = ((dy + row) * dst_stride + dx) as usize;
        let s = ((sy + row) * src_stride + sx) as usize;
        dst[d..d + w as usize].copy_from_slice(&src[s..s + w as usize]);
    }
}

/// Draws `overlay` centred on `rect` with its alpha: `out = a·src + (1 − a)·dst`.
pub fn blend(canvas: &mut I420, overlay: &I420A, rect: Rect) {
    let pic = &overlay.picture;
    if let Some(region) = visible(canvas, pic.width, pic.height, rect) {
        blend_region(canvas, overlay, region);
    }
}

/// Draws `overlay` with its top-left at `(x, y)`, clipped to `clip` and the canvas.
pub fn blend_at(canvas: &mut I420, overlay: &I420A, x: i32, y: i32, clip: Rect) {
    let pic = &overlay.picture;
    if let Some(region) = visible_at(canvas, pic.width, pic.height, x as i64, y as i64, clip) {
        blend_region(canvas, overlay, region);
    }
}

fn blend_region(canvas: &mut I420, overlay: &I420A, region: (u32, u32, u32, u32, u32, u32)) {
    let pic = &overlay.picture;
    let (dx, dy, sx, sy, w, h) = region;
    for row in 0..h {
        for col in 0..w {
            let s = ((sy + row) * pic.width + sx + col) as usize;
            let d = ((dy + row) * canvas.width + dx + col) as usize;
            canvas.y[d] = mix(pic.y[s], canvas.y[d], overlay.alpha[s]);
        }
    }
    let (cdx, cdy, csx, csy, cw, ch) = chroma_region(canvas, pic, dx, dy, sx, sy, w, h);
    let (cdw, csw) = (canvas.chroma_width(), pic.chroma_width());
    for row in 0..ch {
        for col in 0..cw {
            // The alpha of the block's top-left luma sample.
            let ay = ((csy + row) * 2).min(pic.height - 1);
            let ax = ((csx + col) * 2).min(pic.width - 1);
            let a = overlay.alpha[(ay * pic.width + ax) as usize];
            let s = ((csy + row) * csw + csx + col) as usize;
            let d = ((cdy + row) * cdw + cdx + col) as usize;
            canvas.u[d] = mix(pic.u[s], canvas.u[d], a);
            canvas.v[d] = mix(pic.v[s], canvas.v[d], a);
        }
    }
}

fn mix(src: u8, dst: u8, a: u8) -> u8 {
    // Labels and watermarks are mostly fully transparent or opaque.
    match a {
        0 => dst,
        255 => src,
        _ => {
            let a = a as u32;
            ((src as u32 * a + dst as u32 * (255 - a) + 127) / 255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: u32 = 0xff0000;
    const GREEN: u32 = 0x00ff00;
    const BLUE: u32 = 0x0000ff;
    const BG: u32 = 0x87cefa;

    fn rect(layer: i32, left: i32, top: i32, right: i32, bottom: i32) -> Rect {
        Rect {
            layer,
            left,
            top,
            right,
            bottom,
        }
    }

    fn close(a: (u8, u8, u8), rgb: u32) -> bool {
        let b = ((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8);
        [(a.0, b.0), (a.1, b.1), (a.2, b.2)]
            .iter()
            .all(|(x, y)| (*x as i32 - *y as i32).abs() <= 4)
    }

    /// Scales a solid picture as the live path would, then composes.
    fn scaled(src_w: u32, src_h: u32, rgb: u32, r: Rect, mode: RenderMode) -> I420 {
        let (w, h) = fitted_size(src_w, src_h, r.width() as u32, r.height() as u32, mode);
        I420::filled(src_w, src_h, rgb).resize_nearest(w, h)
    }

    /// The background is copied only where no opaque picture lands: whatever a reused
    /// canvas held before never shows, for layouts with overlaps, odd sizes and offsets,
    /// rects partly off the canvas, corners, images and labels.
    #[test]
    fn a_reused_canvas_never_shows_through() {
        let mut seed = 0x2545_f491_u64;
        let mut next = |m: u32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as u32) % m
        };
        let bg = I420::filled(97, 61, BG);
        for case in 0..300 {
            let n = 1 + next(5) as usize;
            let mut pics = Vec::new();
            let mut rects = Vec::new();
            for _ in 0..n {
                let (l, t) = (next(120) as i32 - 20, next(80) as i32 - 15);
                let r = rect(
                    next(3) as i32,
                    l,
                    t,
                    l + 1 + next(110) as i32,
                    t + 1 + next(70) as i32,
                );
                let colour = [RED, GREEN, BLUE][next(3) as usize];
                pics.push(I420::filled(1 + next(100), 1 + next(70), colour));
                rects.push(r);
            }
            let image = I420A {
                picture: I420::filled(20, 14, GREEN),
                alpha: vec![128; 20 * 14],
            };
            let layers = || -> Vec<Layer> {
                pics.iter()
                    .zip(&rects)
                    .enumerate()
                    .map(|(i, (p, r))| Layer {
                        rect: *r,
                        picture: Some(p),
                        image: (i % 4 == 3).then_some(&image),
                        radius: if i % 3 == 2 { 5 } else { 0 },
                        blur: None,
                        label: (i % 2 == 1).then_some((&image, r.left + 2, r.top + 2)),
                    })
                    .collect()
            };
            let mut clean = bg.clone();
            compose(&mut clean, &bg, &mut layers(), None);
            for garbage in [0u32, 0xffffff, 0x123456] {
                let mut reused = I420::filled(97, 61, garbage);
                compose(&mut reused, &bg, &mut layers(), None);
                assert!(
                    reused == clean,
                    "case {case}: stale pixels with {garbage:06x}"
                );
            }
        }
    }

    #[test]
    fn copying_around_boxes_copies_everything_else() {
        let src: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let mut dst = vec![0u8; 200];
        // Two overlapping boxes and one past the right edge, on a 20 × 10 plane.
        copy_uncovered(
            &mut dst,
            &src,
            20,
            10,
            &[area(2, 1, 6, 3), area(5, 3, 7, 3), area(15, 8, 15, 2)],
        );
        for y in 0..10u32 {
            for x in 0..20u32 {
                let inside = |b: (u32, u32, u32, u32)| b.0 <= x && x < b.2 && b.1 <= y && y < b.3;
                let covered = [(2, 1, 8, 4), (5, 3, 12, 6), (15, 8, 30, 10)]
                    .into_iter()
                    .any(inside);
                let i = (y * 20 + x) as usize;
                assert_eq!(dst[i], if covered { 0 } else { src[i] }, "({x},{y})");
            }
        }
    }

    #[test]
    fn inputs_land_in_their_rects_and_layers_decide_overlaps() {
        let bg = I420::filled(320, 240, BG);
        let mut canvas = bg.clone();
        let left = rect(0, 0, 0, 160, 240);
        let right = rect(0, 160, 0, 320, 240);
        // A blue box over the middle, on a higher layer but listed first.
        let top = rect(5, 120, 80, 200, 160);
        let (r, g, b) = (
            scaled(64, 48, RED, left, RenderMode::Crop),
            scaled(64, 48, GREEN, right, RenderMode::Crop),
            scaled(64, 48, BLUE, top, RenderMode::Crop),
        );
        let mut layers = [
            Layer::plain(top, Some(&b), None),
            Layer::plain(left, Some(&r), None),
            Layer::plain(right, Some(&g), None),
        ];
        compose(&mut canvas, &bg, &mut layers, None);
        assert!(close(canvas.rgb(40, 40), RED));
        assert!(close(canvas.rgb(280, 200), GREEN));
        assert!(close(canvas.rgb(160, 120), BLUE), "higher layer wins");
        assert!(close(canvas.rgb(110, 120), RED));
    }

    #[test]
    fn equal_layers_keep_list_order() {
        let bg = I420::filled(100, 100, BG);
        let mut canvas = bg.clone();
        let full = rect(1, 0, 0, 100, 100);
        let (a, b) = (I420::filled(100, 100, RED), I420::filled(100, 100, GREEN));
        let mut layers = [
            Layer::plain(full, Some(&a), None),
            Layer::plain(full, Some(&b), None),
        ];
        compose(&mut canvas, &bg, &mut layers, None);
        assert!(
            close(canvas.rgb(50, 50), GREEN),
            "the later entry is on top"
        );
    }

    #[test]
    fn crop_fills_and_fit_shows_background_bars() {
        // A 4:3 source into a square rect.
        let sq = rect(0, 0, 0, 120, 120);
        let bg = I420::filled(120, 120, BG);
        assert_eq!(
            fitted_size(160, 120, 120, 120, RenderMode::Crop),
            (160, 120)
        );
        assert_eq!(fitted_size(160, 120, 120, 120, RenderMode::Fit), (120, 90));
        assert_eq!(fitted_size(120, 160, 120, 120, RenderMode::Fit), (90, 120));

        let mut canvas = bg.clone();
        let p = scaled(160, 120, RED, sq, RenderMode::Crop);
        compose(
            &mut canvas,
            &bg,
            &mut [Layer::plain(sq, Some(&p), None)],
            None,
        );
        for (x, y) in [(0, 0), (119, 0), (0, 119), (60, 60), (119, 119)] {
            assert!(close(canvas.rgb(x, y), RED), "crop covers ({x},{y})");
        }

        let mut canvas = bg.clone();
        let p = scaled(160, 120, RED, sq, RenderMode::Fit);
        compose(
            &mut canvas,
            &bg,
            &mut [Layer::plain(sq, Some(&p), None)],
            None,
        );
        assert!(close(canvas.rgb(60, 60), RED));
        // 90 high, centred: rows 0..15 and 105..120 are bars.
        assert!(close(canvas.rgb(60, 5), BG), "fit leaves a top bar");
        assert!(close(canvas.rgb(60, 114), BG), "fit leaves a bottom bar");
        assert!(close(canvas.rgb(60, 20), RED));
    }

    #[test]
    fn missing_pictures_and_off_canvas_rects_leave_the_background() {
        let bg = I420::filled(64, 64, BG);
        let mut canvas = I420::filled(64, 64, 0);
        let p = I420::filled(40, 40, RED);
        let mut layers = [
            Layer::plain(rect(0, 0, 0, 32, 32), None, None),
            Layer::plain(rect(0, 50, 50, 90, 90), Some(&p), None),
        ];
        compose(&mut canvas, &bg, &mut layers, None);
        assert!(close(canvas.rgb(10, 10), BG));
        assert!(close(canvas.rgb(63, 63), RED), "clipped to the canvas");
        assert!(close(canvas.rgb(40, 40), BG));
    }

    #[test]
    fn image_layers_interleave_with_inputs_by_layer() {
        let bg = I420::filled(64, 64, BG);
        let mut canvas = bg.clone();
        let red = I420::filled(64, 64, RED);
        let green = I420::from_rgba(64, 64, &[0, 255, 0, 255].repeat(64 * 64));
        let full = |layer| rect(layer, 0, 0, 64, 64);
        // An opaque image on layer 2 over a video on layer 1, under a video on layer 3
        // that covers only the left half.
        let half = I420::filled(32, 64, BLUE);
        let mut layers = [
            Layer::plain(rect(3, 0, 0, 32, 64), Some(&half), None),
            Layer::plain(full(2), None, Some(&green)),
            Layer::plain(full(1), Some(&red), None),
        ];
        compose(&mut canvas, &bg, &mut layers, None);
        assert!(close(canvas.rgb(16, 32), BLUE));
        assert!(close(canvas.rgb(48, 32), GREEN));
    }

    #[test]
    fn watermark_alpha_is_honoured() {
        let bg = I420::filled(64, 64, BLUE);
        let mut canvas = bg.clone();
        // Left half opaque white, right half 50 % white, a transparent strip at the bottom.
        let (w, h) = (32u32, 32u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 4) as usize;
                let a = if y >= 24 {
                    0
                } else if x < 16 {
                    255
                } else {
                    128
                };
                rgba[i..i + 4].copy_from_slice(&[255, 255, 255, a]);
            }
        }
        let mark = I420::from_rgba(w, h, &rgba);
        compose(
            &mut canvas,
            &bg,
            &mut [],
            Some((&mark, rect(0, 0, 0, 32, 32))),
        );
        assert!(close(canvas.rgb(4, 4), 0xffffff));
        let half = canvas.rgb(24, 4);
        assert!(
            close(half, 0x8080ff) || close(half, 0x7f7fff),
            "50 % white over blue: {half:?}"
        );
        assert!(close(canvas.rgb(4, 28), BLUE), "alpha 0 keeps the canvas");
        assert!(close(canvas.rgb(40, 40), BLUE));
    }
}
