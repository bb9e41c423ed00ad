//! The font faces labels are drawn with, and the loaded fonts.
//!
//! The vendor names four faces (`FontType` 0 Source Han Sans Regular, 1 Alibaba PuHuiTi,
//! 2 PangMen ZhengDao Title, 3 ZCOOL KuaiLe). Source Han Sans ships in Debian as Noto Sans
//! CJK (the same font under Google's name); the other three are not packaged, so each maps
//! to the closest Noto CJK cut (a heavier sans, a bold serif title face, a serif). Every
//! face has Latin and CJK glyphs; the operator can point any face at another file.
//!
//! A CJK collection is 20–27 MB: each file is read once per process and shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ab_glyph::FontVec;

/// One face: a font file and, for a collection (`.ttc`), which font in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Face {
    pub path: PathBuf,
    pub index: u32,
}

/// Noto CJK collections hold JP, KR, SC, TC, HK variants; SC draws Chinese the way the
/// vendor's Source Han Sans SC does.
const SC: u32 = 2;
const NOTO: &str = "/usr/share/fonts/opentype/noto";

/// The default face for each `FontType` (Debian's `fonts-noto-cjk`).
pub fn default_faces() -> Vec<Face> {
    [
        "NotoSansCJK-Regular.ttc",
        "NotoSansCJK-Bold.ttc",
        "NotoSerifCJK-Bold.ttc",
        "NotoSerifCJK-Regular.ttc",
    ]
    .iter()
    .map(|f| Face {
        path: Path::new(NOTO).join(f),
        index: SC,
    })
    .collect()
}

/// A face written as `PATH` or `PATH#INDEX` (configuration).
pub fn parse_face(spec: &str) -> Face {
    match spec.rsplit_once('#') {
        Some((p, i)) if i.parse::<u32>().is_ok() => Face {
            path: PathBuf::from(p),
            index: i.parse().unwrap_or(0),
        },
        _ => Face {
            path: PathBuf::from(spec),
            index: 0,
        },
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FontError {
    #[error(
        "font file {path} cannot be read ({reason}); install fonts-noto-cjk or configure [mix] fonts"
    )]
    Unreadable { path: String, reason: String },
    #[error("font file {path} is not a usable font (collection index {index})")]
    Invalid { path: String, index: u32 },
}

type Loaded = Mutex<HashMap<Face, Arc<FontVec>>>;

fn loaded() -> &'static Loaded {
    static FONTS: OnceLock<Loaded> = OnceLock::new();
    FONTS.get_or_init(Default::default)
}

/// The font of `face`, read on first use.
pub fn load(face: &Face) -> Result<Arc<FontVec>, FontError> {
    if let Some(f) = loaded().lock().unwrap_or_else(|e| e.into_inner()).get(face) {
        return Ok(f.clone());
    }
    let path = face.path.display().to_string();
    let bytes = std::fs::read(&face.path).map_err(|e| FontError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let font =
        FontVec::try_from_vec_and_index(bytes, face.index).map_err(|_| FontError::Invalid {
            path,
            index: face.index,
        })?;
    let font = Arc::new(font);
    loaded()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(face.clone(), font.clone());
    Ok(font)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_parse_with_and_without_an_index() {
        assert_eq!(
            parse_face("/f/a.ttc#3"),
            Face {
                path: "/f/a.ttc".into(),
                index: 3
            }
        );
        assert_eq!(parse_face("/f/b.ttf").index, 0);
        assert_eq!(
            default_faces().len(),
            tributary_core::mix::FONT_FACES as usize
        );
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = load(&parse_face("/nonexistent/font.ttf")).unwrap_err();
        assert!(e.to_string().contains("fonts-noto-cjk"), "{e}");
    }
}
