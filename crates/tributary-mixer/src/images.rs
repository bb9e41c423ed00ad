//! Images a task draws (background, watermark): `http(s)://` URLs fetched with a size
//! cap, or `preset-id://NAME` looked up in the configured images folder. JPEG and PNG.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;

use tributary_core::url_policy::{Purpose, UrlPolicy, redact};

use crate::frame::{I420, I420A};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    /// The reference itself is unusable (scheme, name).
    #[error("{0}")]
    Reference(String),
    /// It could not be fetched, is too big, or is not a JPEG/PNG.
    #[error("{0}")]
    Load(String),
}

/// Largest image side accepted (pixels).
const MAX_SIDE: u32 = 8192;

/// A decoded image, RGBA.
#[derive(Debug, Clone)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Rgba {
    /// Scaled to `w × h` and converted for the composer.
    pub fn to_overlay(&self, w: u32, h: u32) -> I420A {
        let full = I420::from_rgba(self.width, self.height, &self.pixels);
        if (w, h) == (self.width, self.height) {
            full
        } else {
            full.resize_nearest(w, h)
        }
    }
}

/// Decoded images kept for reuse, so a task's updates and restarts do not fetch and
/// decode the same picture again, and so decoding (a 5 MB PNG can decode to 256 MiB) is
/// bounded: at most [`ImageCache::MAX_LOADING`] loads run at once, the cache holds at most
/// `max_bytes` of decoded pixels (least recently used go first), and an `http(s)` entry
/// is fetched again after `ttl` (a `preset-id://` entry when its file changes).
pub struct ImageCache {
    inner: Mutex<CacheInner>,
    max_bytes: usize,
    ttl: Duration,
    loading: (Mutex<usize>, Condvar),
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, CacheEntry>,
    bytes: usize,
    clock: u64,
}

struct CacheEntry {
    image: Arc<Rgba>,
    at: Instant,
    /// A preset's file stamp (modified time, length) when it was read.
    stamp: Option<(Option<SystemTime>, u64)>,
    used: u64,
}

impl Rgba {
    /// Bytes of pixels held.
    pub fn bytes(&self) -> usize {
        self.pixels.len()
    }
}

fn preset_stamp(uri: &str, dir: Option<&Path>) -> Option<(Option<SystemTime>, u64)> {
    let name = uri.strip_prefix("preset-id://")?;
    let meta = std::fs::metadata(preset_path(name, dir).ok()?).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

impl ImageCache {
    /// Loads (fetch + decode) at once at most.
    pub const MAX_LOADING: usize = 2;

    pub fn new(max_bytes: usize, ttl: Duration) -> ImageCache {
        ImageCache {
            inner: Mutex::new(CacheInner::default()),
            max_bytes,
            ttl,
            loading: (Mutex::new(0), Condvar::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decoded bytes held by the cache now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The image of `uri`, from the cache or loaded now (see [`load`]).
    pub fn get(
        &self,
        uri: &str,
        dir: Option<&Path>,
        max_file_bytes: usize,
        policy: &UrlPolicy,
    ) -> Result<Arc<Rgba>, ImageError> {
        let stamp = if uri.starts_with("preset-id://") {
            preset_stamp(uri, dir)
        } else {
            None
        };
        {
            let mut c = self.lock();
            c.clock += 1;
            let now = c.clock;
            if let Some(e) = c.map.get_mut(uri) {
                let fresh = match (&e.stamp, &stamp) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => e.at.elapsed() < self.ttl,
                    _ => false,
                };
                if fresh {
                    e.used = now;
                    return Ok(e.image.clone());
                }
            }
        }
        let image = {
            let _slot = self.loading_slot();
            Arc::new(load(uri, dir, max_file_bytes, policy)?)
        };
        let mut c = self.lock();
        if let Some(old) = c.map.remove(uri) {
            c.bytes -= old.image.bytes();
        }
        // Pictures larger than half the cache are used but not kept.
        if image.bytes() <= self.max_bytes / 2 {
            c.clock += 1;
            let used = c.clock;
            c.bytes += image.bytes();
            c.map.insert(
                uri.to_string(),
                CacheEntry {
                    image: image.clone(),
                    at: Instant::now(),
                    stamp,
                    used,
                },
            );
            while c.bytes > self.max_bytes {
                let Some(oldest) = c
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(e) = c.map.remove(&oldest) {
                    c.bytes -= e.image.bytes();
                }
            }
        }
        Ok(image)
    }

    /// Waits for one of the load slots; given back on drop.
    fn loading_slot(&self) -> LoadSlot<'_> {
        let (m, cv) = &self.loading;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= Self::MAX_LOADING {
            n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        LoadSlot(self)
    }
}

struct LoadSlot<'a>(&'a ImageCache);

impl Drop for LoadSlot<'_> {
    fn drop(&mut self) {
        let (m, cv) = &self.0.loading;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        cv.notify_one();
    }
}

/// Checks a reference without fetching it: a preset's name, or an http(s) URL's syntax
/// and (for an IP-literal host) address under the URL policy.
pub fn check_reference(
    uri: &str,
    dir: Option<&Path>,
    policy: &UrlPolicy,
) -> Result<(), ImageError> {
    if let Some(name) = uri.strip_prefix("preset-id://") {
        preset_path(name, dir).map(|_| ())
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        policy
            .parse(uri, Purpose::Image)
            .map(|_| ())
            .map_err(|e| ImageError::Reference(format!("image {} {e}", redact(uri))))
    } else {
        Err(ImageError::Reference(format!(
            "image {} must be an http(s):// URL or preset-id://NAME",
            redact(uri)
        )))
    }
}

fn preset_path(name: &str, dir: Option<&Path>) -> Result<PathBuf, ImageError> {
    let Some(dir) = dir else {
        return Err(ImageError::Reference(format!(
            "preset-id://{name}: no images folder is configured on this server"
        )));
    };
    let rel = Path::new(name);
    if name.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ImageError::Reference(format!(
            "preset-id://{name} is not a plain file name"
        )));
    }
    Ok(dir.join(rel))
}

/// Fetches and decodes an image. Blocking: call it from a thread that may wait.
pub fn load(
    uri: &str,
    dir: Option<&Path>,
    max_bytes: usize,
    policy: &UrlPolicy,
) -> Result<Rgba, ImageError> {
    check_reference(uri, dir, policy)?;
    let bytes = if let Some(name) = uri.strip_prefix("preset-id://") {
        let path = preset_path(name, dir)?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| ImageError::Load(format!("preset-id://{name}: {e}")))?;
        if meta.len() as usize > max_bytes {
            return Err(ImageError::Load(format!(
                "preset-id://{name} is {} bytes; at most {max_bytes} are allowed",
                meta.len()
            )));
        }
        std::fs::read(&path).map_err(|e| ImageError::Load(format!("preset-id://{name}: {e}")))?
    } else {
        fetch(uri, max_bytes, policy)?
    };
    decode(&bytes).map_err(|e| ImageError::Load(format!("image {}: {e}", redact(uri))))
}

/// Decodes JPEG or PNG bytes.
pub fn decode(bytes: &[u8]) -> Result<Rgba, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a JPEG or PNG".to_string())?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(format!("{format:?} is not supported; use JPEG or PNG"));
    }
    // Pictures are at most canvas-sized; refuse decompression bombs before allocating.
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    let rgba = img.to_rgba8();
    Ok(Rgba {
        width: rgba.width(),
        height: rgba.height(),
        pixels: rgba.into_raw(),
    })
}

fn fetch(raw: &str, max_bytes: usize, policy: &UrlPolicy) -> Result<Vec<u8>, ImageError> {
    let target = raw.to_string();
    let url = redact(raw);
    let policy = policy.clone();
    // A thread of its own with a small runtime: callers may be on an async worker, where
    // blocking on the shared runtime is not allowed.
    let worker = std::thread::spawn(move || -> Result<Vec<u8>, ImageError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ImageError::Load(e.to_string()))?;
        rt.block_on(async move {
            let client = crate::net::client(&policy, Purpose::Image, Some(Duration::from_secs(10)))
                .map_err(|e| ImageError::Load(e.to_string()))?;
            let mut resp =
                client.get(&target).send().await.map_err(|e| {
                    ImageError::Load(format!("fetching {url}: {}", e.without_url()))
                })?;
            if !resp.status().is_success() {
                return Err(ImageError::Load(format!(
                    "fetching {url}: HTTP {}",
                    resp.status()
                )));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| ImageError::Load(format!("fetching {url}: {}", e.without_url())))?
            {
                body.extend_from_slice(&chunk);
                if body.len() > max_bytes {
                    return Err(ImageError::Load(format!(
                        "{url} is larger than {max_bytes} bytes"
                    )));
                }
            }
            Ok(body)
        })
    });
    worker
        .join()
        .unwrap_or_else(|_| Err(ImageError::Load("image fetch failed".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_and_presets_stay_in_their_folder() {
        let dir = tempfile_dir();
        let p = UrlPolicy::default();
        assert!(check_reference("ftp://x/y.png", Some(&dir), &p).is_err());
        assert!(check_reference("file:///etc/passwd", Some(&dir), &p).is_err());
        assert!(check_reference("http://169.254.169.254/a.png", Some(&dir), &p).is_err());
        assert!(check_reference("preset-id://../etc/passwd", Some(&dir), &p).is_err());
        assert!(check_reference("preset-id://a.png", None, &p).is_err());
        assert!(check_reference("preset-id://a.png", Some(&dir), &p).is_ok());
        assert!(check_reference("https://example.com/a.png", None, &p).is_ok());

        // A real PNG written and read back.
        let mut png = Vec::new();
        let img = image::RgbaImage::from_pixel(4, 2, image::Rgba([255, 0, 0, 128]));
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        std::fs::write(dir.join("a.png"), &png).unwrap();
        let loaded = load("preset-id://a.png", Some(&dir), 1 << 20, &p).unwrap();
        assert_eq!((loaded.width, loaded.height), (4, 2));
        assert_eq!(&loaded.pixels[..4], &[255, 0, 0, 128]);
        assert!(matches!(
            load("preset-id://a.png", Some(&dir), 10, &p),
            Err(ImageError::Load(_))
        ));
        assert!(matches!(
            load("preset-id://missing.png", Some(&dir), 1 << 20, &p),
            Err(ImageError::Load(_))
        ));
        std::fs::write(dir.join("b.png"), b"not an image").unwrap();
        assert!(matches!(
            load("preset-id://b.png", Some(&dir), 1 << 20, &p),
            Err(ImageError::Load(_))
        ));
    }

    #[test]
    fn the_cache_reuses_reloads_on_change_and_stays_within_its_bytes() {
        let dir = tempfile_dir().join("cache");
        let _ = std::fs::create_dir_all(&dir);
        let p = UrlPolicy::default();
        let png = |w: u32, rgba: [u8; 4]| {
            let mut out = Vec::new();
            image::RgbaImage::from_pixel(w, w, image::Rgba(rgba))
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        std::fs::write(dir.join("a.png"), png(16, [255, 0, 0, 255])).unwrap();
        std::fs::write(dir.join("b.png"), png(16, [0, 255, 0, 255])).unwrap();
        // Room for two 16×16 images (1 KiB each) and a bit.
        let cache = ImageCache::new(2500, Duration::from_secs(60));
        let a1 = cache
            .get("preset-id://a.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        let a2 = cache
            .get("preset-id://a.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        assert!(Arc::ptr_eq(&a1, &a2), "the second get is the cached image");
        assert_eq!(cache.bytes(), 1024);
        // A changed file is read again.
        std::fs::write(dir.join("a.png"), png(8, [0, 0, 255, 255])).unwrap();
        let a3 = cache
            .get("preset-id://a.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        assert_eq!(a3.width, 8);
        assert_eq!(cache.bytes(), 256);
        // Over the budget, the least recently used goes (a, then b).
        std::fs::write(dir.join("c.png"), png(16, [9, 9, 9, 255])).unwrap();
        std::fs::write(dir.join("d.png"), png(16, [7, 7, 7, 255])).unwrap();
        let b1 = cache
            .get("preset-id://b.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        cache
            .get("preset-id://c.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        cache
            .get("preset-id://d.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        assert_eq!(cache.bytes(), 2048);
        let b2 = cache
            .get("preset-id://b.png", Some(&dir), 1 << 20, &p)
            .unwrap();
        assert!(!Arc::ptr_eq(&b1, &b2), "b was evicted and read again");
        assert!(cache.bytes() <= 2500, "{}", cache.bytes());
        // Failures are not cached and say why.
        assert!(
            cache
                .get("preset-id://missing.png", Some(&dir), 1 << 20, &p)
                .is_err()
        );
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tributary-images-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    }
}
