//! Blurred margins inside a tile (`BlurInfo`): the bands between the tile's edges and its
//! paddings are replaced by a blurred copy of what was drawn there, the centre stays sharp.
//!
//! The blur is a box filter run twice per axis (close to a Gaussian), radius
//! [`RADIUS`] luma pixels; a band's blur reads the sharp picture next to it (as far as the
//! filter reaches) and clamps at the tile's edges. Only the bands and that reach are
//! touched.

use tributary_core::mix::{Padding, Rect};

use crate::frame::{I420, chroma_size};

/// Blur radius in luma pixels (chroma: half).
pub const RADIUS: usize = 6;

/// Blurs the margins `pad` of `rect` (clipped to the canvas).
pub fn margins(canvas: &mut I420, rect: Rect, pad: Padding) {
    let (w, h) = (canvas.width as i64, canvas.height as i64);
    let x0 = (rect.left as i64).clamp(0, w);
    let y0 = (rect.top as i64).clamp(0, h);
    let x1 = (rect.right as i64).clamp(0, w);
    let y1 = (rect.bottom as i64).clamp(0, h);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    // The sharp centre, in canvas pixels.
    let inner = (
        rect.left as i64 + pad.left as i64,
        rect.top as i64 + pad.top as i64,
        rect.right as i64 - pad.right as i64,
        rect.bottom as i64 - pad.bottom as i64,
    );
    let region = (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
    let stride = canvas.width;
    blur_plane(&mut canvas.y, stride, region, inner, RADIUS);
    let (cw, ch) = chroma_size(canvas.width, canvas.height);
    let c = (
        region.0 / 2,
        region.1 / 2,
        (region.0 + region.2).div_ceil(2).min(cw) - region.0 / 2,
        (region.1 + region.3).div_ceil(2).min(ch) - region.1 / 2,
    );
    let inner_c = (
        inner.0 / 2,
        inner.1 / 2,
        (inner.2 + 1) / 2,
        (inner.3 + 1) / 2,
    );
    blur_plane(&mut canvas.u, cw, c, inner_c, RADIUS / 2);
    blur_plane(&mut canvas.v, cw, c, inner_c, RADIUS / 2);
}

/// Blurs the part of `region` outside `inner` (the margins): each margin band is blurred
/// from a copy of itself plus the `2·radius` of context two box passes reach, clamped to
/// `region`, so the cost follows the bands' area, not the tile's.
fn blur_plane(
    plane: &mut [u8],
    stride: u32,
    region: (u32, u32, u32, u32),
    inner: (i64, i64, i64, i64),
    radius: usize,
) {
    let (rx, ry, rw, rh) = (
        region.0 as i64,
        region.1 as i64,
        region.2 as i64,
        region.3 as i64,
    );
    if rw == 0 || rh == 0 || radius == 0 {
        return;
    }
    let (x1, y1) = (rx + rw, ry + rh);
    // The sharp centre clipped to the region (may be empty: all margin).
    let ix0 = inner.0.clamp(rx, x1);
    let iy0 = inner.1.clamp(ry, y1);
    let ix1 = inner.2.clamp(ix0, x1);
    let iy1 = inner.3.clamp(iy0, y1);
    // Top, bottom, left and right bands, [x0, x1) × [y0, y1).
    let bands = [
        (rx, ry, x1, iy0),
        (rx, iy1, x1, y1),
        (rx, iy0, ix0, iy1),
        (ix1, iy0, x1, iy1),
    ];
    let reach = 2 * radius as i64;
    let mut tmp: Vec<u32> = Vec::new();
    for (bx0, by0, bx1, by1) in bands {
        if bx1 <= bx0 || by1 <= by0 {
            continue;
        }
        // The band with the context its blur reads, inside the region.
        let (cx0, cy0) = ((bx0 - reach).max(rx), (by0 - reach).max(ry));
        let (cx1, cy1) = ((bx1 + reach).min(x1), (by1 + reach).min(y1));
        let (cw, ch) = ((cx1 - cx0) as usize, (cy1 - cy0) as usize);
        let mut buf: Vec<u16> = Vec::with_capacity(cw * ch);
        for row in cy0..cy1 {
            let s = row as usize * stride as usize + cx0 as usize;
            buf.extend(plane[s..s + cw].iter().map(|&p| p as u16));
        }
        box_blur(&mut buf, cw, ch, radius, &mut tmp);
        for y in by0..by1 {
            let src = (y - cy0) as usize * cw + (bx0 - cx0) as usize;
            let dst = y as usize * stride as usize + bx0 as usize;
            let n = (bx1 - bx0) as usize;
            for (d, s) in plane[dst..dst + n].iter_mut().zip(&buf[src..src + n]) {
                *d = *s as u8;
            }
        }
    }
}

/// Two box passes of radius `r` per axis over a `w × h` buffer, edges clamped. Rows are
/// filtered along themselves; columns with one running sum per column, walking down the
/// rows, so both passes read memory in order.
fn box_blur(buf: &mut [u16], w: usize, h: usize, r: usize, sums: &mut Vec<u32>) {
    let width = (2 * r + 1) as u32;
    // x / width as (x · mul) >> 24, exact for the sums that occur (< 2^16 · width).
    let mul = (1u32 << 24).div_ceil(width);
    let div = |x: u32| ((x as u64 * mul as u64) >> 24) as u16;
    let mut line = vec![0u16; w.max(h)];
    for _ in 0..2 {
        for row in buf.chunks_exact_mut(w) {
            line[..w].copy_from_slice(row);
            let at = |i: isize| line[i.clamp(0, w as isize - 1) as usize] as u32;
            let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
            for (x, out) in row.iter_mut().enumerate() {
                *out = div(sum + width / 2);
                let x = x as isize;
                sum = sum + at(x + r as isize + 1) - at(x - r as isize);
            }
        }
        // Columns: sums[x] over rows y−r..=y (clamped), slid down one row at a time.
        sums.clear();
        sums.resize(w, 0);
        let row_at = |y: isize| (y.clamp(0, h as isize - 1) as usize) * w;
        let src: Vec<u16> = buf.to_vec();
        for dy in -(r as isize)..=r as isize {
            let o = row_at(dy);
            for (s, p) in sums.iter_mut().zip(&src[o..o + w]) {
                *s += *p as u32;
            }
        }
        for y in 0..h {
            let out = &mut buf[y * w..(y + 1) * w];
            for (o, s) in out.iter_mut().zip(sums.iter()) {
                *o = div(*s + width / 2);
            }
            let (add, sub) = (
                row_at(y as isize + r as isize + 1),
                row_at(y as isize - r as isize),
            );
            for ((s, a), d) in sums
                .iter_mut()
                .zip(&src[add..add + w])
                .zip(&src[sub..sub + w])
            {
                *s = *s + *a as u32 - *d as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture of 8-pixel stripes: sharp everywhere.
    fn stripes(w: u32, h: u32) -> I420 {
        let mut p = I420::filled(w, h, 0);
        for y in 0..h {
            for x in 0..w {
                p.y[(y * w + x) as usize] = if (x / 8) % 2 == 0 { 235 } else { 16 };
            }
        }
        p
    }

    /// How much neighbouring luma differs along a row segment (sharpness).
    fn contrast(p: &I420, y: u32, xs: std::ops::Range<u32>) -> u32 {
        xs.map(|x| {
            (p.y[(y * p.width + x) as usize] as i32 - p.y[(y * p.width + x + 1) as usize] as i32)
                .unsigned_abs()
        })
        .sum()
    }

    #[test]
    fn the_box_blur_keeps_flat_areas_and_averages_edges() {
        let (w, h) = (40, 30);
        let mut flat = vec![200u16; w * h];
        box_blur(&mut flat, w, h, RADIUS, &mut Vec::new());
        assert!(flat.iter().all(|&p| p == 200));
        // A step: the blur crosses it smoothly, monotonically, symmetric around the middle.
        let mut step: Vec<u16> = (0..w * h)
            .map(|i| if i % w < w / 2 { 16 } else { 235 })
            .collect();
        box_blur(&mut step, w, h, RADIUS, &mut Vec::new());
        let row = &step[10 * w..11 * w];
        assert!(row.windows(2).all(|p| p[0] <= p[1]), "{row:?}");
        assert_eq!((row[0], row[w - 1]), (16, 235));
        assert!(
            (120..=131).contains(&((row[w / 2 - 1] + row[w / 2]) / 2)),
            "{row:?}"
        );
    }

    #[test]
    fn margins_blur_and_the_centre_stays_sharp() {
        let mut p = stripes(160, 120);
        let before = p.clone();
        let rect = Rect {
            layer: 0,
            left: 0,
            top: 0,
            right: 160,
            bottom: 120,
        };
        let pad = Padding {
            top: 20,
            left: 30,
            bottom: 20,
            right: 30,
        };
        margins(&mut p, rect, pad);
        let sharp = contrast(&before, 60, 40..120);
        assert_eq!(contrast(&p, 60, 40..120), sharp, "the centre is untouched");
        let left = contrast(&p, 60, 0..28);
        let top = contrast(&p, 5, 40..120);
        assert!(
            left * 4 < contrast(&before, 60, 0..28),
            "left band blurred: {left}"
        );
        assert!(top * 4 < sharp, "top band blurred: {top}");
        // Outside the rect nothing changes.
        let mut q = stripes(160, 120);
        let small = Rect {
            layer: 0,
            left: 40,
            top: 40,
            right: 80,
            bottom: 80,
        };
        margins(&mut q, small, pad);
        assert_eq!(contrast(&q, 10, 0..150), contrast(&before, 10, 0..150));
    }
}
