//! A label's text drawn once into a picture with alpha, to be blended on its tile every
//! tick (a label is re-rendered only when the task is updated with a different one).
//!
//! Lines break at `\n`; glyphs are placed by the font's advances and kerning, anti-aliased
//! by coverage. An outline (`border_rgb`) is the coverage grown by a radius of
//! `size / 12` (at least 1 px), drawn under the text.

use ab_glyph::{Font as _, FontVec, PxScale, ScaleFont, point};

use tributary_core::mix::Font;

use crate::frame::{I420, I420A};

/// The text in `font` at `style`, as a picture with alpha of at most `max_w × max_h` (the
/// part of its tile from its top-left corner on: what lies beyond would be clipped
/// anyway, and the caller's text must not size our buffers); `None` for text that draws
/// nothing (only spaces, or no room).
pub fn render(text: &str, style: &Font, font: &FontVec, max_w: u32, max_h: u32) -> Option<I420A> {
    if max_w < 2 || max_h < 2 {
        return None;
    }
    // FontSize is the em size; ab_glyph's scale is the ascent-to-descent height.
    let em = font.units_per_em().unwrap_or(1000.0);
    let scale = PxScale::from(style.size as f32 * font.height_unscaled() / em);
    let scaled = font.as_scaled(scale);
    let border = style
        .border_rgb
        .map(|_| (style.size / 12).max(1) as i32)
        .unwrap_or(0);
    let line_h = (scaled.ascent() - scaled.descent() + scaled.line_gap()).ceil();
    let lines: Vec<&str> = text.split('\n').collect();
    let width = lines
        .iter()
        .map(|l| line_width(l, &scaled))
        .fold(0.0f32, f32::max)
        .ceil() as i64
        + 2 * border as i64;
    let height = (line_h * lines.len() as f32).ceil() as i64 + 2 * border as i64;
    let (w, h) = (
        ((width.clamp(1, max_w as i64) as u32 + 1) & !1).min(max_w & !1),
        ((height.clamp(1, max_h as i64) as u32 + 1) & !1).min(max_h & !1),
    );
    let mut coverage = vec![0f32; (w * h) as usize];
    let mut any = false;
    for (n, line) in lines.iter().enumerate() {
        let baseline = border as f32 + scaled.ascent() + n as f32 * line_h;
        let mut x = border as f32;
        let mut prev = None;
        for c in line.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            x += scaled.h_advance(id);
            prev = Some(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue;
            };
            let b = outlined.px_bounds();
            outlined.draw(|gx, gy, c| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    let i = (py as u32 * w + px as u32) as usize;
                    coverage[i] = (coverage[i] + c).min(1.0);
                    any = true;
                }
            });
        }
    }
    if !any {
        return None;
    }
    let outline = (border > 0).then(|| grow(&coverage, w, h, border));
    let opacity = style.opacity.min(100) as f32 / 100.0;
    let rgb = |c: u32| [(c >> 16) as u8, (c >> 8) as u8, c as u8];
    let (fg, bg) = (rgb(style.rgb), rgb(style.border_rgb.unwrap_or(0)));
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
        let text_a = coverage[i];
        let line_a = outline.as_ref().map_or(0.0, |o| o[i]);
        // The text over its outline: the colour leans to the text where it covers.
        let a = text_a + line_a * (1.0 - text_a);
        if a <= 0.0 {
            // Invisible, but 4:2:0 chroma averages it with its neighbours: give it the
            // colour next to it so glyph edges keep their hue.
            px[..3].copy_from_slice(if outline.is_some() { &bg } else { &fg });
            continue;
        }
        let k = text_a / a;
        for ch in 0..3 {
            px[ch] = (fg[ch] as f32 * k + bg[ch] as f32 * (1.0 - k)).round() as u8;
        }
        px[3] = (a * opacity * 255.0).round() as u8;
    }
    Some(I420::from_rgba(w, h, &rgba))
}

fn line_width(line: &str, scaled: &ab_glyph::PxScaleFont<&FontVec>) -> f32 {
    let mut x = 0.0;
    let mut prev = None;
    for c in line.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    x
}

/// Coverage grown by `r` pixels (the maximum over a square window, done per axis).
fn grow(cov: &[f32], w: u32, h: u32, r: i32) -> Vec<f32> {
    let rows = max_pass(cov, w as i32, h as i32, r, true);
    max_pass(&rows, w as i32, h as i32, r, false)
}

/// The maximum over `2r + 1` samples along rows (or columns), edges clipped.
fn max_pass(src: &[f32], w: i32, h: i32, r: i32, along_rows: bool) -> Vec<f32> {
    let mut out = vec![0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            let (c, n) = if along_rows { (x, w) } else { (y, h) };
            let mut m = 0f32;
            for k in (c - r).max(0)..=(c + r).min(n - 1) {
                let i = if along_rows { y * w + k } else { k * w + x };
                m = m.max(src[i as usize]);
            }
            out[(y * w + x) as usize] = m;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fonts;

    fn style(rgb: u32, border: Option<u32>) -> Font {
        Font {
            face: 0,
            size: 32,
            rgb,
            opacity: 100,
            border_rgb: border,
        }
    }

    fn font() -> std::sync::Arc<FontVec> {
        fonts::load(&fonts::default_faces()[0]).expect("fonts-noto-cjk (scripts/setup.sh)")
    }

    /// Pixels drawn (alpha > 128) and, of those, how many have the colour.
    fn count(img: &I420A, rgb: u32) -> (usize, usize) {
        let p = &img.picture;
        let (mut drawn, mut coloured) = (0, 0);
        for y in 0..p.height {
            for x in 0..p.width {
                if img.alpha[(y * p.width + x) as usize] > 200 {
                    drawn += 1;
                    let (r, g, b) = p.rgb(x, y);
                    let want = ((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8);
                    if [(r, want.0), (g, want.1), (b, want.2)]
                        .iter()
                        .all(|(a, b)| (*a as i32 - *b as i32).abs() < 40)
                    {
                        coloured += 1;
                    }
                }
            }
        }
        (drawn, coloured)
    }

    #[test]
    fn latin_and_cjk_text_draw_in_the_colour_asked() {
        let f = font();
        let latin = render("Hello", &style(0xff0000, None), &f, 640, 480).unwrap();
        let cjk = render("你好世界", &style(0xff0000, None), &f, 640, 480).unwrap();
        for img in [&latin, &cjk] {
            let (drawn, red) = count(img, 0xff0000);
            assert!(drawn > 50, "glyphs were drawn: {drawn}");
            assert!(red * 10 >= drawn * 9, "{red} of {drawn} are red");
        }
        // Four ideographs at 32 px are about 4 × 32 wide; Latin is narrower per letter.
        assert!(
            (120..=140).contains(&cjk.picture.width),
            "{}",
            cjk.picture.width
        );
        assert!(render("   ", &style(0xff0000, None), &f, 640, 480).is_none());
        // Long text is cut at the room it has.
        let long = "字".repeat(100) + &"\n字".repeat(50);
        let cut = render(&long, &style(0xff0000, None), &f, 100, 60).unwrap();
        assert_eq!((cut.picture.width, cut.picture.height), (100, 60));
        assert!(render("a", &style(0xff0000, None), &f, 1, 60).is_none());
    }

    #[test]
    fn an_outline_surrounds_the_text_and_transparency_lowers_alpha() {
        let f = font();
        let plain = render("Ab", &style(0xffffff, None), &f, 640, 480).unwrap();
        let lined = render("Ab", &style(0xffffff, Some(0x0000ff)), &f, 640, 480).unwrap();
        let (_, blue) = count(&lined, 0x0000ff);
        assert!(blue > 20, "outline pixels: {blue}");
        let (plain_drawn, _) = count(&plain, 0xffffff);
        let (lined_drawn, _) = count(&lined, 0xffffff);
        assert!(lined_drawn > plain_drawn);
        let mut half = style(0xffffff, None);
        half.opacity = 50;
        let faint = render("Ab", &half, &f, 640, 480).unwrap();
        let max = faint.alpha.iter().copied().max().unwrap_or(0);
        assert!((120..=135).contains(&max), "max alpha {max}");
    }
}
