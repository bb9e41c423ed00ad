//! Decoded pictures as the mixer handles them: planar I420 (BT.601, limited range), rows
//! packed without padding. Every codec path converts to and from this one layout, so the
//! composer never branches on pixel formats.

/// A planar 4:2:0 picture. Chroma planes are `ceil(w/2) × ceil(h/2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

/// A picture with a per-pixel alpha plane (full resolution), for overlays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420A {
    pub picture: I420,
    pub alpha: Vec<u8>,
}

/// `(Y, U, V)` of an RGB colour, BT.601 limited range (what x264 and players assume for SD
/// and HD content tagged "unspecified").
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp(y), clamp(u), clamp(v))
}

/// The inverse of [`rgb_to_yuv`], for tests and probes.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> (u8, u8, u8) {
    let c = y as i32 - 16;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let r = (298 * c + 409 * e + 128) >> 8;
    let g = (298 * c - 100 * d - 208 * e + 128) >> 8;
    let b = (298 * c + 516 * d + 128) >> 8;
    (clamp(r), clamp(g), clamp(b))
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// Spare bytes allocated past the end of each plane of [`I420::alloc`]: libswscale's SIMD
/// row writers (and x264's row readers) may touch up to a vector's width past a row's
/// last pixel, which on the last row is past the plane. The spare capacity absorbs it.
pub const PLANE_SLACK: usize = 64;

impl I420 {
    /// A black-to-be picture (zeroed) whose planes have [`PLANE_SLACK`] spare capacity, so
    /// FFmpeg may write into and read from it directly (`codec`).
    pub fn alloc(width: u32, height: u32) -> I420 {
        let (cw, ch) = chroma_size(width, height);
        let plane = |n: usize| {
            let mut v = Vec::with_capacity(n + PLANE_SLACK);
            v.resize(n, 0);
            v
        };
        I420 {
            width,
            height,
            y: plane((width * height) as usize),
            u: plane((cw * ch) as usize),
            v: plane((cw * ch) as usize),
        }
    }

    /// Whether FFmpeg may use these planes directly: each holds exactly its samples and
    /// has [`PLANE_SLACK`] spare capacity (see [`I420::alloc`]).
    pub fn has_slack(&self) -> bool {
        let (cw, ch) = chroma_size(self.width, self.height);
        let ok = |v: &Vec<u8>, n: usize| v.len() == n && v.capacity() >= n + PLANE_SLACK;
        ok(&self.y, (self.width * self.height) as usize)
            && ok(&self.u, (cw * ch) as usize)
            && ok(&self.v, (cw * ch) as usize)
    }

    /// A picture filled with one colour.
    pub fn filled(width: u32, height: u32, rgb: u32) -> I420 {
        let (y, u, v) = rgb_to_yuv((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8);
        let (cw, ch) = chroma_size(width, height);
        I420 {
            width,
            height,
            y: vec![y; (width * height) as usize],
            u: vec![u; (cw * ch) as usize],
            v: vec![v; (cw * ch) as usize],
        }
    }

    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// The `(Y, U, V)` sample at a pixel (chroma of its 2×2 block).
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let cw = self.chroma_width();
        let c = ((y / 2) * cw + x / 2) as usize;
        (self.y[(y * self.width + x) as usize], self.u[c], self.v[c])
    }

    /// The RGB colour at a pixel.
    pub fn rgb(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let (yy, u, v) = self.pixel(x, y);
        yuv_to_rgb(yy, u, v)
    }

    /// Converts packed RGBA to I420 plus an alpha plane. Chroma is the average of each
    /// 2×2 block.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> I420A {
        let (cw, ch) = chroma_size(width, height);
        let mut p = I420 {
            width,
            height,
            y: vec![0; (width * height) as usize],
            u: vec![0; (cw * ch) as usize],
            v: vec![0; (cw * ch) as usize],
        };
        let mut alpha = vec![0; (width * height) as usize];
        let mut usum = vec![0u32; (cw * ch) as usize];
        let mut vsum = vec![0u32; (cw * ch) as usize];
        let mut n = vec![0u32; (cw * ch) as usize];
        for yy in 0..height {
            for xx in 0..width {
                let i = (yy * width + xx) as usize;
                let px = &rgba[i * 4..i * 4 + 4];
                let (y, u, v) = rgb_to_yuv(px[0], px[1], px[2]);
                p.y[i] = y;
                alpha[i] = px[3];
                let c = ((yy / 2) * cw + xx / 2) as usize;
                usum[c] += u as u32;
                vsum[c] += v as u32;
                n[c] += 1;
            }
        }
        for c in 0..n.len() {
            let k = n[c].max(1);
            p.u[c] = (usum[c] / k) as u8;
            p.v[c] = (vsum[c] / k) as u8;
        }
        I420A { picture: p, alpha }
    }

    /// Nearest-neighbour resize: cheap and exact for solid colours, used for images and
    /// tests. Live video is scaled by libswscale in `codec`.
    pub fn resize_nearest(&self, width: u32, height: u32) -> I420 {
        let (cw, ch) = chroma_size(width, height);
        let (scw, sch) = chroma_size(self.width, self.height);
        let mut out = I420 {
            width,
            height,
            y: vec![0; (width * height) as usize],
            u: vec![0; (cw * ch) as usize],
            v: vec![0; (cw * ch) as usize],
        };
        resample(&self.y, self.width, self.height, &mut out.y, width, height);
        resample(&self.u, scw, sch, &mut out.u, cw, ch);
        resample(&self.v, scw, sch, &mut out.v, cw, ch);
        out
    }
}

impl I420A {
    pub fn resize_nearest(&self, width: u32, height: u32) -> I420A {
        let mut alpha = vec![0; (width * height) as usize];
        resample(
            &self.alpha,
            self.picture.width,
            self.picture.height,
            &mut alpha,
            width,
            height,
        );
        I420A {
            picture: self.picture.resize_nearest(width, height),
            alpha,
        }
    }
}

fn resample(src: &[u8], sw: u32, sh: u32, dst: &mut [u8], dw: u32, dh: u32) {
    if sw == 0 || sh == 0 {
        return;
    }
    for y in 0..dh {
        let sy = ((y as u64 * sh as u64) / dh.max(1) as u64) as u32;
        let srow = (sy.min(sh - 1) * sw) as usize;
        let drow = (y * dw) as usize;
        for x in 0..dw {
            let sx = ((x as u64 * sw as u64) / dw.max(1) as u64) as u32;
            dst[drow + x as usize] = src[srow + sx.min(sw - 1) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_round_trip_within_rounding() {
        for rgb in [
            (255, 0, 0),
            (0, 255, 0),
            (0, 0, 255),
            (255, 255, 255),
            (0, 0, 0),
            (135, 206, 250),
        ] {
            let (y, u, v) = rgb_to_yuv(rgb.0, rgb.1, rgb.2);
            let back = yuv_to_rgb(y, u, v);
            for (a, b) in [(rgb.0, back.0), (rgb.1, back.1), (rgb.2, back.2)] {
                assert!((a as i32 - b as i32).abs() <= 3, "{rgb:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn resize_keeps_solid_colours_and_sizes() {
        let p = I420::filled(7, 5, 0x3366cc);
        let r = p.resize_nearest(20, 10);
        assert_eq!((r.width, r.height), (20, 10));
        assert_eq!(r.pixel(19, 9), p.pixel(0, 0));
        assert_eq!(r.u.len(), 50);
    }
}
