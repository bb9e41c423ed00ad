//! Blurred margins inside a tile (`BlurInfo`): the bands between the tile's edges and its
//! paddings are replaced by a blurred copy of what was drawn there, the centre stays sharp.
//!
//! The blur is a box filter run twice per axis (close to a Gaussian), radius
//! [`RADIUS`] luma pixels; it reads the whole tile so a band's blur draws on the sharp
//! picture next to it, and clamps at the tile's edges.

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

/// Blurs `region` of a plane into a copy and writes back the pixels outside `inner`.
fn blur_plane(
    plane: &mut [u8],
    stride: u32,
    region: (u32, u32, u32, u32),
    inner: (i64, i64, i64, i64),
    radius: usize,
) {
    let (rx, ry, rw, rh) = (
        region.0 as usize,
        region.1 as usize,
        region.2 as usize,
        region.3 as usize,
    );
    if rw == 0 || rh == 0 || radius == 0 {
        return;
    }
    let mut buf: Vec<u16> = Vec::with_capacity(rw * rh);
    for row in 0..rh {
        let s = (ry + row) * stride as usize + rx;
        buf.extend(plane[s..s + rw].iter().map(|&p| p as u16));
    }
    let mut tmp = vec![0u16; rw.max(rh)];
    for _ in 0..2 {
        for row in 0..rh {
            box_line(&mut buf[row * rw..(row + 1) * rw], 1, rw, radius, &mut tmp);
        }
        for col in 0..rw {
            box_line(&mut buf[col..], rw, rh, radius, &mut tmp);
        }
    }
    for row in 0..rh {
        let y = (ry + row) as i64;
        for col in 0..rw {
            let x = (rx + col) as i64;
            if x >= inner.0 && x < inner.2 && y >= inner.1 && y < inner.3 {
                continue;
            }
            plane[(ry + row) * stride as usize + rx + col] = buf[row * rw + col] as u8;
        }
    }
}

/// A box filter along one line of `n` samples `step` apart, edges clamped.
fn box_line(line: &mut [u16], step: usize, n: usize, r: usize, tmp: &mut [u16]) {
    let at = |i: isize, line: &[u16]| line[(i.clamp(0, n as isize - 1) as usize) * step] as u32;
    let width = (2 * r + 1) as u32;
    let mut sum: u32 = (-(r as isize)..=r as isize).map(|i| at(i, line)).sum();
    for (i, t) in tmp.iter_mut().enumerate().take(n) {
        *t = ((sum + width / 2) / width) as u16;
        let i = i as isize;
        sum = sum + at(i + r as isize + 1, line) - at(i - r as isize, line);
    }
    for (i, t) in tmp.iter().enumerate().take(n) {
        line[i * step] = *t;
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
