//! The only module that touches FFmpeg: H.264/H.265/AAC/MP3/Opus decoders, libswscale,
//! the libx264/libx265, libmp3lame and libopus encoders (AAC is encoded by libfdk-aac,
//! `fdk_aac`). Everything crosses this boundary as plain Rust data
//! (`I420`, stereo `f32`, byte vectors), so the rest of the mixer stays pure.
//!
//! Audio sample-format conversion is done in Rust rather than libswresample (the inputs
//! are a handful of known layouts, and the channel-layout API differs between the FFmpeg
//! versions `ffmpeg-next` supports); rate conversion is `resample` (band-limited).

use std::sync::{Arc, Once};

use ff::format::{Pixel, Sample, sample};
use ffmpeg_next as ff;
use thiserror::Error;

use tributary_core::mix::VideoCodec;

use crate::audio::Stereo;
use crate::fdk_aac::{FdkEncoder, Profile};
use crate::frame::I420;
use crate::silence::{SilenceRun, SilentRepeat, Step, is_silent};

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("FFmpeg has no {0}")]
    Missing(&'static str),
    #[error("{what}: {source}")]
    Ffmpeg {
        what: &'static str,
        #[source]
        source: ff::Error,
    },
    #[error("out of memory")]
    NoMemory,
    /// A codec library other than FFmpeg (libfdk-aac).
    #[error("{what}: {reason}")]
    Library { what: &'static str, reason: String },
}

fn ff_err(what: &'static str) -> impl FnOnce(ff::Error) -> CodecError {
    move |source| CodecError::Ffmpeg { what, source }
}

/// Initialises FFmpeg once and keeps its logging to errors.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
        // FFmpeg prints straight to stderr, bypassing our redaction (an RTMP server's error
        // can echo a stream key): only fatal lines. Failures come back as errors, which
        // are logged through `tracing` with URLs redacted.
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

fn set_extradata(ctx: &mut ff::codec::context::Context, data: &[u8]) -> Result<(), CodecError> {
    if data.is_empty() {
        return Ok(());
    }
    let pad = ff::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    // SAFETY: the buffer is allocated by FFmpeg's allocator with the padding its
    // bitstream readers need; the context owns and frees it.
    unsafe {
        let p = ff::ffi::av_mallocz(data.len() + pad) as *mut u8;
        if p.is_null() {
            return Err(CodecError::NoMemory);
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len());
        let raw = ctx.as_mut_ptr();
        (*raw).extradata = p;
        (*raw).extradata_size = data.len() as i32;
    }
    Ok(())
}

fn extradata(ctx: &ff::codec::context::Context) -> Vec<u8> {
    // SAFETY: reading the context's own buffer within its recorded size.
    unsafe {
        let raw = ctx.as_ptr();
        if (*raw).extradata.is_null() || (*raw).extradata_size <= 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts((*raw).extradata, (*raw).extradata_size as usize).to_vec()
    }
}

/// A decoded picture, still in FFmpeg's format; [`VideoDecoder::scale`] turns it into I420.
pub struct Picture(ff::frame::Video);

impl Picture {
    pub fn width(&self) -> u32 {
        self.0.width()
    }
    pub fn height(&self) -> u32 {
        self.0.height()
    }

    /// The region `(x, y, w, h)` of this picture, clamped to it, without copying pixels
    /// (FFmpeg moves the plane pointers). `None` if the region is empty after clamping.
    pub fn cropped(&self, x: u32, y: u32, w: u32, h: u32) -> Option<Picture> {
        let (pw, ph) = (self.width(), self.height());
        let (x, y) = (x.min(pw), y.min(ph));
        let (w, h) = (w.min(pw - x), h.min(ph - y));
        if w < 2 || h < 2 {
            return None;
        }
        // A new reference to the same buffers, not a copy of the pixels.
        let mut f = ff::frame::Video::empty();
        // SAFETY: av_frame_ref fills an empty frame with references to the source's
        // buffers; the crop fields are plain integers on that frame, and
        // av_frame_apply_cropping only adjusts pointers and sizes within the buffers.
        unsafe {
            if ff::ffi::av_frame_ref(f.as_mut_ptr(), self.0.as_ptr()) < 0 {
                return None;
            }
            let raw = f.as_mut_ptr();
            (*raw).crop_left = x as usize;
            (*raw).crop_top = y as usize;
            (*raw).crop_right = (pw - x - w) as usize;
            (*raw).crop_bottom = (ph - y - h) as usize;
            if ff::ffi::av_frame_apply_cropping(raw, ff::ffi::AV_FRAME_CROP_UNALIGNED as i32) < 0 {
                return None;
            }
        }
        Some(Picture(f))
    }
}

pub struct VideoDecoder {
    dec: ff::decoder::Video,
    scaler: PictureScaler,
}

type ScaleKey = (Pixel, u32, u32, u32, u32);

/// Scales decoded pictures to I420 of a given size, keeping the swscale context made for
/// the last format and sizes (one per reader of a decoder: each task that draws an input
/// at its own size keeps its own, so they do not remake each other's).
#[derive(Default)]
pub struct PictureScaler {
    scaler: Option<(ScaleKey, ff::software::scaling::Context)>,
}

// SAFETY: a swscale context is used by one thread at a time (the decode thread that owns
// the reader) and carries no thread affinity.
unsafe impl Send for PictureScaler {}

impl VideoDecoder {
    /// An H.264 decoder for the stream whose `AVCDecoderConfigurationRecord` is `avcc`.
    pub fn h264(avcc: &[u8]) -> Result<Self, CodecError> {
        Self::open(ff::codec::Id::H264, avcc, "H.264 decoder")
    }

    /// A VP8 decoder (FFmpeg's own; VP8 frames carry their configuration).
    pub fn vp8() -> Result<Self, CodecError> {
        Self::open(ff::codec::Id::VP8, &[], "VP8 decoder")
    }

    /// An H.265 decoder for the stream whose `HEVCDecoderConfigurationRecord` is `hvcc`
    /// (frames are then length-prefixed, as Enhanced RTMP carries them).
    pub fn h265(hvcc: &[u8]) -> Result<Self, CodecError> {
        Self::open(ff::codec::Id::HEVC, hvcc, "H.265 decoder")
    }

    fn open(id: ff::codec::Id, config: &[u8], name: &'static str) -> Result<Self, CodecError> {
        init();
        let codec = ff::decoder::find(id).ok_or(CodecError::Missing(name))?;
        let mut ctx = ff::codec::context::Context::new_with_codec(codec);
        set_extradata(&mut ctx, config)?;
        // One thread: each input already has its own decode thread, and frame threads
        // would add a frame of latency per thread.
        ctx.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Slice,
            count: 1,
            ..Default::default()
        });
        let dec = ctx
            .decoder()
            .video()
            .map_err(ff_err("opening a video decoder"))?;
        Ok(VideoDecoder {
            dec,
            scaler: PictureScaler::default(),
        })
    }

    /// Decodes one access unit (AVCC, length-prefixed) with presentation time `pts_ms`.
    pub fn decode(
        &mut self,
        data: &[u8],
        pts_ms: i64,
        dts_ms: i64,
    ) -> Result<Vec<(i64, Picture)>, CodecError> {
        let mut pkt = ff::Packet::copy(data);
        pkt.set_pts(Some(pts_ms));
        pkt.set_dts(Some(dts_ms));
        self.dec
            .send_packet(&pkt)
            .map_err(ff_err("decoding video"))?;
        let mut out = Vec::new();
        loop {
            let mut frame = ff::frame::Video::empty();
            match self.dec.receive_frame(&mut frame) {
                Ok(()) => {
                    let t = frame.timestamp().or(frame.pts()).unwrap_or(pts_ms);
                    out.push((t, Picture(frame)));
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Scales (and converts) a picture to a new I420 of `width × height`.
    pub fn scale(&mut self, pic: &Picture, width: u32, height: u32) -> Result<I420, CodecError> {
        let mut out = I420::alloc(width, height);
        self.scale_into(pic, &mut out)?;
        Ok(out)
    }

    /// Scales (and converts) a picture into `out`, at `out`'s size, overwriting all of it.
    pub fn scale_into(&mut self, pic: &Picture, out: &mut I420) -> Result<(), CodecError> {
        self.scaler.scale_into(pic, out)
    }
}

impl PictureScaler {
    /// Scales (and converts) a picture into `out`, at `out`'s size, overwriting all of it:
    /// straight into its planes, no intermediate frame.
    pub fn scale_into(&mut self, pic: &Picture, out: &mut I420) -> Result<(), CodecError> {
        let f = &pic.0;
        let (width, height) = (out.width, out.height);
        if f.format() == Pixel::YUV420P && (f.width(), f.height()) == (width, height) {
            // Already the size and layout wanted: a copy, no scaler pass.
            copy_planes(f, out);
            return Ok(());
        }
        let key = (f.format(), f.width(), f.height(), width, height);
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let ctx = ff::software::scaling::Context::get(
                f.format(),
                f.width(),
                f.height(),
                Pixel::YUV420P,
                width,
                height,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(ff_err("creating a scaler"))?;
            self.scaler = Some((key, ctx));
        }
        let Some((_, scaler)) = self.scaler.as_mut() else {
            return Err(CodecError::Missing("scaler"));
        };
        // SAFETY: plain reads of the decoded frame's plane pointers and strides (FFmpeg
        // allocated and padded them); the scaler was made for its format and size.
        let (src, strides) = unsafe {
            let raw = f.as_ptr();
            ((*raw).data, (*raw).linesize)
        };
        scale_planes(scaler, &src, &strides, f.height(), out)
    }
}

/// Runs `scaler` (made for `out`'s size) from the given source planes into `out`'s planes.
/// The source must be valid for `src_height` rows at its strides, padded as FFmpeg pads
/// its frames.
fn scale_planes(
    scaler: &mut ff::software::scaling::Context,
    src: &[*mut u8; 8],
    strides: &[i32; 8],
    src_height: u32,
    out: &mut I420,
) -> Result<(), CodecError> {
    if !out.has_slack() {
        // Not allocated by `I420::alloc`: no spare capacity for the scaler's overshoot.
        return Err(CodecError::Missing("a padded picture to scale into"));
    }
    let cw = out.chroma_width() as i32;
    let dst = [
        out.y.as_mut_ptr(),
        out.u.as_mut_ptr(),
        out.v.as_mut_ptr(),
        std::ptr::null_mut(),
    ];
    let dst_strides = [out.width as i32, cw, cw, 0];
    let src_ptrs: [*const u8; 8] = src.map(|p| p as *const u8);
    // SAFETY: the destination planes hold exactly `out`'s rows at these strides, with
    // PLANE_SLACK spare bytes for the scaler's last-row overshoot (checked above); the
    // scaler's output size is `out`'s (the callers key it so); the source is the
    // caller's contract above.
    let rows = unsafe {
        ff::ffi::sws_scale(
            scaler.as_mut_ptr(),
            src_ptrs.as_ptr(),
            strides.as_ptr(),
            0,
            src_height as i32,
            dst.as_ptr(),
            dst_strides.as_ptr(),
        )
    };
    if rows <= 0 {
        return Err(CodecError::Missing("rows out of the scaler"));
    }
    Ok(())
}

/// Copies a YUV420P frame of `out`'s size into `out`, row by row (the frame's rows are
/// padded to its strides; ours are packed).
fn copy_planes(f: &ff::frame::Video, out: &mut I420) {
    let (w, h) = (out.width as usize, out.height as usize);
    let (cw, ch) = crate::frame::chroma_size(out.width, out.height);
    for (i, plane, pw, ph) in [
        (0, &mut out.y, w, h),
        (1, &mut out.u, cw as usize, ch as usize),
        (2, &mut out.v, cw as usize, ch as usize),
    ] {
        let stride = f.stride(i);
        let data = f.data(i);
        for row in 0..ph {
            plane[row * pw..(row + 1) * pw].copy_from_slice(&data[row * stride..row * stride + pw]);
        }
    }
}

/// libswscale from one I420 size to another (extra outputs scaled from the canvas).
#[derive(Default)]
pub struct Rescaler {
    ctx: Option<(ScaleKey, ff::software::scaling::Context)>,
    src: Option<ff::frame::Video>,
}

// SAFETY: a Rescaler is owned by one encoder at a time and never used from two threads
// at once; libswscale contexts carry no thread affinity.
unsafe impl Send for Rescaler {}

impl Rescaler {
    /// Scales `pic` into `out` (at `out`'s size), overwriting all of it.
    pub fn scale_into(&mut self, pic: &I420, out: &mut I420) -> Result<(), CodecError> {
        init();
        let key = (Pixel::YUV420P, pic.width, pic.height, out.width, out.height);
        if self.ctx.as_ref().is_none_or(|(k, _)| *k != key) {
            let ctx = ff::software::scaling::Context::get(
                Pixel::YUV420P,
                pic.width,
                pic.height,
                Pixel::YUV420P,
                out.width,
                out.height,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(ff_err("creating a scaler"))?;
            self.ctx = Some((key, ctx));
            self.src = Some(ff::frame::Video::new(Pixel::YUV420P, pic.width, pic.height));
        }
        let (Some((_, ctx)), Some(src)) = (self.ctx.as_mut(), self.src.as_mut()) else {
            return Err(CodecError::Missing("scaler"));
        };
        // The source goes through an FFmpeg frame (padded and aligned) because the
        // scaler's vector reads may run past a row's end.
        fill(src, pic);
        // SAFETY: plain reads of a frame FFmpeg allocated for this format and size.
        let (planes, strides) = unsafe {
            let raw = src.as_ptr();
            ((*raw).data, (*raw).linesize)
        };
        scale_planes(ctx, &planes, &strides, pic.height, out)
    }
}

/// An FFmpeg frame whose planes are `pic`'s, each plane's buffer holding a clone of the
/// `Arc` that FFmpeg releases when it drops its last reference. `None` when the planes
/// lack the spare capacity FFmpeg's readers may touch, or on allocation failure.
fn borrow_frame(pic: &Arc<I420>) -> Option<ff::frame::Video> {
    if !pic.has_slack() {
        return None;
    }
    let mut frame = ff::frame::Video::empty();
    frame.set_format(Pixel::YUV420P);
    frame.set_width(pic.width);
    frame.set_height(pic.height);
    let cw = pic.chroma_width() as i32;
    for (i, (plane, stride)) in [(&pic.y, pic.width as i32), (&pic.u, cw), (&pic.v, cw)]
        .into_iter()
        .enumerate()
    {
        let keep = Box::into_raw(Box::new(Arc::clone(pic))).cast::<std::ffi::c_void>();
        // SAFETY: the buffer describes memory owned by the `Arc` that `keep` holds, which
        // lives until `release_picture` runs (when FFmpeg frees the buffer); it is marked
        // read-only, so FFmpeg copies rather than writes. On failure `keep` is reclaimed
        // here; buffers already attached are released when `frame` drops.
        unsafe {
            let buf = ff::ffi::av_buffer_create(
                plane.as_ptr().cast_mut(),
                plane.len(),
                Some(release_picture),
                keep,
                ff::ffi::AV_BUFFER_FLAG_READONLY,
            );
            if buf.is_null() {
                drop(Box::from_raw(keep.cast::<Arc<I420>>()));
                return None;
            }
            let raw = frame.as_mut_ptr();
            (*raw).buf[i] = buf;
            (*raw).data[i] = plane.as_ptr().cast_mut();
            (*raw).linesize[i] = stride;
        }
    }
    Some(frame)
}

/// FFmpeg's free callback for [`borrow_frame`]'s buffers: drops the `Arc` clone.
unsafe extern "C" fn release_picture(opaque: *mut std::ffi::c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the `Box<Arc<I420>>` leaked in `borrow_frame`, freed once here.
    drop(unsafe { Box::from_raw(opaque.cast::<Arc<I420>>()) });
}

/// Copies an I420 into an FFmpeg frame of the same size (respecting its strides).
fn fill(frame: &mut ff::frame::Video, pic: &I420) {
    let (cw, ch) = crate::frame::chroma_size(pic.width, pic.height);
    for (i, (src, w, h)) in [
        (&pic.y, pic.width, pic.height),
        (&pic.u, cw, ch),
        (&pic.v, cw, ch),
    ]
    .into_iter()
    .enumerate()
    {
        let stride = frame.stride(i);
        let dst = frame.data_mut(i);
        for row in 0..h as usize {
            let s = row * w as usize;
            dst[row * stride..row * stride + w as usize].copy_from_slice(&src[s..s + w as usize]);
        }
    }
}

/// Decoded audio: stereo samples at the decoder's rate.
pub struct AudioDecoder {
    dec: ff::decoder::Audio,
    /// Reused for every decoded frame (the decoder unreferences it before filling).
    frame: ff::frame::Audio,
    /// AAC-LC only: repeated silent packets are not decoded (see [`crate::silence`]).
    repeat: Option<SilentRepeat>,
    /// Packets answered with silence without the decoder.
    repeats_answered: u64,
    /// The samples handed out, reused from packet to packet: this runs for every packet
    /// of every input, and an audio room has four inputs.
    samples: Vec<Stereo>,
}

impl AudioDecoder {
    /// AAC with its `AudioSpecificConfig`.
    pub fn aac(asc: &[u8]) -> Result<Self, CodecError> {
        let mut d = Self::open(ff::codec::Id::AAC, asc, "AAC decoder")?;
        // Object type 2 (AAC-LC) in the config's first 5 bits. HE-AAC's SBR keeps state
        // across frames, so its repeats are always decoded.
        if asc.first().is_some_and(|b| b >> 3 == 2) {
            d.repeat = Some(SilentRepeat::default());
        }
        Ok(d)
    }

    pub fn mp3() -> Result<Self, CodecError> {
        Self::open(ff::codec::Id::MP3, &[], "MP3 decoder")
    }

    /// Opus with its identification header (`OpusHead`), as Enhanced RTMP's sequence
    /// start carries it (empty: FFmpeg assumes stereo 48 kHz).
    pub fn opus(head: &[u8]) -> Result<Self, CodecError> {
        Self::open(ff::codec::Id::OPUS, head, "Opus decoder")
    }

    fn open(id: ff::codec::Id, extra: &[u8], name: &'static str) -> Result<Self, CodecError> {
        init();
        let codec = ff::decoder::find(id).ok_or(CodecError::Missing(name))?;
        let mut ctx = ff::codec::context::Context::new_with_codec(codec);
        set_extradata(&mut ctx, extra)?;
        let dec = ctx
            .decoder()
            .audio()
            .map_err(ff_err("opening an audio decoder"))?;
        Ok(AudioDecoder {
            dec,
            frame: ff::frame::Audio::empty(),
            repeat: None,
            repeats_answered: 0,
            samples: Vec::new(),
        })
    }

    /// Decodes one packet and hands each decoded frame to `each` as `(rate, stereo
    /// samples)`, from a buffer the next packet reuses.
    pub fn decode_each(
        &mut self,
        data: &[u8],
        mut each: impl FnMut(u32, &[Stereo]),
    ) -> Result<(), CodecError> {
        if let Some((rate, n)) = self.repeat.as_ref().and_then(|r| r.known(data)) {
            self.repeats_answered += 1;
            crate::silence::PACKETS_NOT_DECODED.inc();
            self.samples.clear();
            self.samples.resize(n, [0.0; 2]);
            each(rate, &self.samples);
            return Ok(());
        }
        let pkt = ff::Packet::copy(data);
        let sent = self.dec.send_packet(&pkt).map_err(ff_err("decoding audio"));
        if sent.is_err()
            && let Some(r) = self.repeat.as_mut()
        {
            r.decoded(data, None);
        }
        sent?;
        // For the silence rule: the packet's one frame (rate, length, silent), if it
        // decoded to exactly one.
        let (mut frames, mut one) = (0, None);
        while self.dec.receive_frame(&mut self.frame).is_ok() {
            if to_stereo(&self.frame, &mut self.samples) {
                let rate = self.frame.rate();
                frames += 1;
                if self.repeat.is_some() {
                    one = Some((rate, self.samples.len(), is_silent(&self.samples)));
                }
                each(rate, &self.samples);
            }
        }
        if let Some(r) = self.repeat.as_mut() {
            r.decoded(data, if frames == 1 { one } else { None });
        }
        Ok(())
    }

    /// [`AudioDecoder::decode_each`], each frame's samples copied out (tests and tools).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<(u32, Vec<Stereo>)>, CodecError> {
        let mut out = Vec::new();
        self.decode_each(data, |rate, s| out.push((rate, s.to_vec())))?;
        Ok(out)
    }
}

/// Interleaved stereo `f32` into `out` (replacing what it held) from the sample formats
/// decoders produce; mono is duplicated, more than two channels keep the first two.
/// `false` for a format it does not read.
fn to_stereo(f: &ff::frame::Audio, out: &mut Vec<Stereo>) -> bool {
    let (n, ch, planar) = (f.samples(), (f.channels() as usize).max(1), f.is_planar());
    out.clear();
    match f.format() {
        Sample::F32(_) => gather(f, n, ch, planar, f32::from_ne_bytes, out),
        Sample::I16(_) => gather(
            f,
            n,
            ch,
            planar,
            |b| i16::from_ne_bytes(b) as f32 / 32768.0,
            out,
        ),
        Sample::I32(_) => gather(
            f,
            n,
            ch,
            planar,
            |b| i32::from_ne_bytes(b) as f32 / 2_147_483_648.0,
            out,
        ),
        _ => return false,
    }
    true
}

/// The first two channels of `n` samples of `SIZE` bytes each. Monomorphized per sample
/// format, so the conversion inlines into one loop (a call through a function pointer
/// per sample cost 4 % of an audio room's CPU).
fn gather<const SIZE: usize>(
    f: &ff::frame::Audio,
    n: usize,
    ch: usize,
    planar: bool,
    conv: impl Fn([u8; SIZE]) -> f32,
    out: &mut Vec<Stereo>,
) {
    let at = |b: &[u8]| conv(<[u8; SIZE]>::try_from(b).unwrap_or([0; SIZE]));
    let left = f.data(0);
    out.reserve(n);
    if planar {
        let right = if ch > 1 { f.data(1) } else { left };
        let pairs = left.chunks_exact(SIZE).zip(right.chunks_exact(SIZE));
        out.extend(pairs.take(n).map(|(l, r)| [at(l), at(r)]));
    } else {
        let r = if ch > 1 { SIZE } else { 0 };
        let frames = left.chunks_exact(SIZE * ch).take(n);
        out.extend(frames.map(|s| [at(&s[..SIZE]), at(&s[r..r + SIZE])]));
    }
}

/// An encoded packet, ready for FLV: AVCC for video, raw AAC for audio.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub data: Vec<u8>,
    pub pts_ms: i64,
    pub dts_ms: i64,
    pub key: bool,
}

impl Encoded {
    /// An audio packet's FLV timestamp on a stream whose first sample is at `base_ms`;
    /// `None` for the encoder's priming stamped before the stream's start (clamped to 0,
    /// such packets repeated one timestamp, which players and muxers reject).
    pub fn audio_ts(&self, base_ms: i64) -> Option<u32> {
        let ts = base_ms + self.pts_ms;
        (ts >= 0).then_some(ts as u32)
    }
}

/// Outputs up to this many pixels a second (1280×720 at 30 fps) encode on one thread.
///
/// Why 720p30 and not less: x264 `veryfast` encodes a 720p30 mix in about a third of a
/// core, so one thread keeps real time with room to spare. With `zerolatency` x264's own
/// threads are sliced threads, which wake every thread for every frame and split it into
/// slices: on J1 (4 inputs → 720p30, 2 cores) they cost 0.52–0.55 core-s per media-s
/// against 0.46 on one thread, for about 10 ms more latency per frame (BENCHMARKS.md,
/// 2026-12-03). Larger outputs keep x264's threads: one core would be too close to a
/// frame's time.
const ONE_THREAD_PIXELS: u64 = 1280 * 720 * 30;

/// libx264 (or libx265) with the task's preset and `zerolatency`, CBR-ish (VBV of one
/// second), a key frame every `gop_s` seconds.
pub struct VideoEncoder {
    enc: ff::encoder::video::Encoder,
    frame: ff::frame::Video,
    config: Vec<u8>,
    bitrate: u32,
    codec: VideoCodec,
}

impl VideoEncoder {
    pub fn new(
        width: u32,
        height: u32,
        fps: u32,
        bitrate_bps: u32,
        preset: &str,
        gop_s: u32,
        codec: VideoCodec,
    ) -> Result<Self, CodecError> {
        init();
        let name = match codec {
            VideoCodec::H264 => "libx264",
            VideoCodec::H265 { .. } => "libx265",
            VideoCodec::Vp8 => "libvpx",
        };
        let found = ff::encoder::find_by_name(name).ok_or(CodecError::Missing(name))?;
        let mut ctx = ff::codec::context::Context::new_with_codec(found);
        ctx.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        let mut enc = ctx
            .encoder()
            .video()
            .map_err(ff_err("creating the video encoder"))?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base((1, 1000));
        enc.set_frame_rate(Some((fps as i32, 1)));
        enc.set_gop(gop_s.max(1) * fps);
        enc.set_max_b_frames(0);
        enc.set_bit_rate(bitrate_bps as usize);
        enc.set_max_bit_rate(bitrate_bps as usize);
        // SAFETY: plain field on the not-yet-opened context.
        unsafe {
            (*enc.as_mut_ptr()).rc_buffer_size = bitrate_bps as i32;
        }
        let mut opts = ff::Dictionary::new();
        if codec == VideoCodec::Vp8 {
            // Real-time: the fastest speed, no look-ahead (a frame out per frame in).
            opts.set("deadline", "realtime");
            opts.set("cpu-used", "8");
            opts.set("lag-in-frames", "0");
        } else {
            opts.set("preset", preset);
            opts.set("tune", "zerolatency");
            if u64::from(width) * u64::from(height) * u64::from(fps) <= ONE_THREAD_PIXELS {
                // Such an output keeps up on one thread; x264's own threads (sliced, with
                // zerolatency) would only add synchronisation, and with a dozen mixes on a
                // box, many more threads than cores.
                opts.set("threads", "1");
            }
        }
        if let VideoCodec::H265 { low_bitrate_hd } = codec {
            // x265 logs to stderr on its own; only errors. LowBitrateHD: adaptive
            // quantisation mode 3 (auto-variance, biased to dark scenes), which moves bits
            // to the flat and dark areas where low bitrates show blocks first.
            let aq = if low_bitrate_hd { ":aq-mode=3" } else { "" };
            opts.set("x265-params", &format!("log-level=error{aq}"));
        }
        let enc = enc
            .open_as_with(found, opts)
            .map_err(ff_err("opening the video encoder"))?;
        let headers = extradata(&enc);
        let config = match codec {
            VideoCodec::H264 => crate::annexb::avc_config(&headers)
                .ok_or(CodecError::Missing("H.264 parameter sets from libx264"))?,
            VideoCodec::H265 { .. } => crate::hevc::hvcc_config(&headers)
                .ok_or(CodecError::Missing("H.265 parameter sets from libx265"))?,
            VideoCodec::Vp8 => tributary_live::media::vp8_config_record(),
        };
        Ok(VideoEncoder {
            enc,
            frame: ff::frame::Video::new(Pixel::YUV420P, width, height),
            config,
            bitrate: bitrate_bps,
            codec,
        })
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The `AVCDecoderConfigurationRecord` (`HEVCDecoderConfigurationRecord`) for the FLV
    /// sequence header.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// Whether [`VideoEncoder::set_bitrate`] takes effect without reopening: libx264's
    /// wrapper reconfigures; libx265's (FFmpeg 5.1) reads the rate only when opened.
    pub fn retunes_bitrate(&self) -> bool {
        self.codec == VideoCodec::H264
    }

    /// Changes the target bitrate; libx264 reconfigures itself at the next frame.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) {
        if bitrate_bps == self.bitrate {
            return;
        }
        self.bitrate = bitrate_bps;
        // SAFETY: FFmpeg's libx264 wrapper reads these before each frame and calls
        // x264_encoder_reconfig when they changed.
        unsafe {
            let raw = self.enc.as_mut_ptr();
            (*raw).bit_rate = bitrate_bps as i64;
            (*raw).rc_max_rate = bitrate_bps as i64;
            (*raw).rc_buffer_size = bitrate_bps as i32;
        }
    }

    /// Encodes a picture; `key` forces a key frame (an IDR: the GOP is closed).
    ///
    /// The encoder reads the picture where it is: the frame it is given references the
    /// picture's planes and holds the `Arc` until FFmpeg lets go of the frame, so there is
    /// no copy and the picture cannot be reused (see `pool`) while it is being read.
    pub fn encode(
        &mut self,
        pic: &Arc<I420>,
        pts_ms: i64,
        key: bool,
    ) -> Result<Vec<Encoded>, CodecError> {
        if (pic.width, pic.height) != (self.frame.width(), self.frame.height()) {
            return Err(CodecError::Missing("a picture of the encoder's size"));
        }
        let mut borrowed = borrow_frame(pic);
        let frame = match borrowed.as_mut() {
            Some(f) => f,
            None => {
                // Not padded for FFmpeg (or out of memory): into our own frame.
                fill(&mut self.frame, pic);
                &mut self.frame
            }
        };
        frame.set_pts(Some(pts_ms));
        frame.set_kind(if key {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        });
        self.enc
            .send_frame(frame)
            .map_err(ff_err("encoding video"))?;
        drop(borrowed);
        let mut out = Vec::new();
        let mut pkt = ff::Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            if let Some(d) = pkt.data() {
                let data = match self.codec {
                    VideoCodec::H264 => crate::annexb::to_avcc(d),
                    VideoCodec::H265 { .. } => crate::hevc::to_length_prefixed(d),
                    VideoCodec::Vp8 => d.to_vec(),
                };
                out.push(Encoded {
                    data,
                    pts_ms: pkt.pts().unwrap_or(pts_ms),
                    dts_ms: pkt.dts().unwrap_or(pts_ms),
                    key: pkt.is_key(),
                });
            }
        }
        Ok(out)
    }
}

/// An audio output's encoder: AAC-LC and HE-AAC through libfdk-aac ([`crate::fdk_aac`]),
/// MP3 (libmp3lame) and Opus (libopus) through FFmpeg, at the output's rate (the mix's
/// samples are converted to it before they get here). AAC-LC frames go through the
/// silence short-cut ([`crate::silence`]).
pub struct AudioEncoder {
    backend: Backend,
    channels: usize,
    frame_size: usize,
    rate: u32,
    pending: Vec<Stereo>,
    /// Samples sent so far: the next frame's pts.
    sent: i64,
    config: Vec<u8>,
    /// AAC-LC only: silent stretches repeat one packet (see [`crate::silence`]).
    silence: Option<SilenceRun>,
    /// Samples of the frames the encoder skipped: its pts fall behind ours by this much.
    skipped: i64,
    /// The pts (samples) of the last packet out.
    last_pts: Option<i64>,
}

enum Backend {
    /// libmp3lame, libopus or FFmpeg's AAC; libopus takes interleaved samples
    /// (`packed`), the others planar.
    Ffmpeg {
        enc: ff::encoder::audio::Encoder,
        packed: bool,
    },
    /// libfdk-aac; `units` counts its access units, which stamp their own pts.
    Fdk { enc: FdkEncoder, units: i64 },
}

impl AudioEncoder {
    /// AAC-LC (libfdk-aac).
    pub fn new(channels: u8, bitrate_bps: u32, rate: u32) -> Result<Self, CodecError> {
        Self::fdk(Profile::Lc, channels, bitrate_bps, rate)
    }

    /// HE-AAC (libfdk-aac: Debian's FFmpeg has no HE-AAC encoder).
    pub fn he_aac(channels: u8, bitrate_bps: u32, rate: u32) -> Result<Self, CodecError> {
        Self::fdk(Profile::He, channels, bitrate_bps, rate)
    }

    fn fdk(
        profile: Profile,
        channels: u8,
        bitrate_bps: u32,
        rate: u32,
    ) -> Result<Self, CodecError> {
        let enc = FdkEncoder::open(profile, channels, bitrate_bps, rate)?;
        Ok(AudioEncoder {
            channels: channels.clamp(1, 2) as usize,
            frame_size: enc.frame_len(),
            rate,
            pending: Vec::new(),
            sent: 0,
            config: enc.config().to_vec(),
            // HE-AAC's silent frames cycle through several packets as SBR headers recur:
            // no one packet stands for them.
            silence: (profile == Profile::Lc).then(SilenceRun::default),
            skipped: 0,
            last_pts: None,
            backend: Backend::Fdk { enc, units: 0 },
        })
    }

    /// AAC-LC through FFmpeg's native encoder with its fast coder: what the ffmpeg CLI
    /// uses, kept to measure libfdk-aac against (`examples/aac_cost.rs`).
    pub fn ffmpeg_aac(channels: u8, bitrate_bps: u32, rate: u32) -> Result<Self, CodecError> {
        init();
        let codec =
            ff::encoder::find(ff::codec::Id::AAC).ok_or(CodecError::Missing("AAC encoder"))?;
        Self::open(codec, channels, bitrate_bps, rate, false)
    }

    /// MP3 (libmp3lame; no sequence header: [`AudioEncoder::config`] is empty).
    pub fn mp3(channels: u8, bitrate_bps: u32, rate: u32) -> Result<Self, CodecError> {
        init();
        let codec = ff::encoder::find_by_name("libmp3lame")
            .ok_or(CodecError::Missing("libmp3lame encoder"))?;
        Self::open(codec, channels, bitrate_bps, rate, false)
    }

    /// Opus at 48 kHz in 20 ms frames (libopus); [`AudioEncoder::config`] is its
    /// `OpusHead`, which carries the encoder's pre-skip.
    pub fn opus(channels: u8, bitrate_bps: u32) -> Result<Self, CodecError> {
        init();
        let codec =
            ff::encoder::find_by_name("libopus").ok_or(CodecError::Missing("libopus encoder"))?;
        Self::open(codec, channels, bitrate_bps, 48_000, true)
    }

    fn open(
        codec: ff::Codec,
        channels: u8,
        bitrate_bps: u32,
        rate: u32,
        packed: bool,
    ) -> Result<Self, CodecError> {
        let mut ctx = ff::codec::context::Context::new_with_codec(codec);
        ctx.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        let mut enc = ctx
            .encoder()
            .audio()
            .map_err(ff_err("creating the audio encoder"))?;
        let channels = channels.clamp(1, 2) as usize;
        let layout = if packed {
            sample::Type::Packed
        } else {
            sample::Type::Planar
        };
        enc.set_rate(rate as i32);
        enc.set_format(Sample::F32(layout));
        enc.set_channel_layout(ff::ChannelLayout::default(channels as i32));
        enc.set_bit_rate(bitrate_bps as usize);
        enc.set_time_base((1, rate as i32));
        let mut opts = ff::Dictionary::new();
        if codec.id() == ff::codec::Id::AAC {
            // The fast coder, not the default two-loop search, as live recipes use.
            opts.set("aac_coder", "fast");
        }
        let enc = enc
            .open_as_with(codec, opts)
            .map_err(ff_err("opening the audio encoder"))?;
        let frame_size = (enc.frame_size() as usize).max(1);
        let config = extradata(&enc);
        Ok(AudioEncoder {
            backend: Backend::Ffmpeg { enc, packed },
            channels,
            frame_size,
            rate,
            pending: Vec::new(),
            sent: 0,
            config,
            // MP3 frames point into earlier frames' bits and Opus frames predict from
            // earlier frames: only AAC-LC frames can be repeated.
            silence: (codec.id() == ff::codec::Id::AAC).then(SilenceRun::default),
            skipped: 0,
            last_pts: None,
        })
    }

    /// The `AudioSpecificConfig` for the FLV sequence header.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// Queues samples; returns every packet that completed, with pts in ms.
    pub fn encode(&mut self, samples: &[Stereo]) -> Result<Vec<Encoded>, CodecError> {
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let fs = self.frame_size;
        let mut at = 0;
        while self.pending.len() - at >= fs {
            let chunk = at..at + fs;
            at += fs;
            let step = match self.silence.as_mut() {
                Some(run) => run.next(is_silent(&self.pending[chunk.clone()])),
                None => Step::Encode,
            };
            if step == Step::Reuse
                && let Some(packet) = self.silence.as_ref().and_then(SilenceRun::packet)
            {
                // One packet per frame: this frame's takes the place the encoder's
                // would have had, right after the last one out.
                let pts = self.last_pts.map_or(self.sent, |p| p + fs as i64);
                out.push(audio_packet(packet, pts, self.rate));
                self.last_pts = Some(pts);
                self.sent += fs as i64;
                self.skipped += fs as i64;
                crate::silence::FRAMES_NOT_ENCODED.inc();
                continue;
            }
            if let Err(e) = self.encode_frame(chunk, &mut out) {
                self.pending.drain(..at);
                return Err(e);
            }
        }
        self.pending.drain(..at);
        Ok(out)
    }

    /// Encodes `pending[chunk]`, one frame; its pts count only the frames the encoder
    /// was given.
    fn encode_frame(
        &mut self,
        chunk: std::ops::Range<usize>,
        out: &mut Vec<Encoded>,
    ) -> Result<(), CodecError> {
        let frame_pts = self.sent - self.skipped;
        self.sent += chunk.len() as i64;
        match &mut self.backend {
            Backend::Fdk { enc, units } => {
                let delay = enc.delay() as i64;
                if let Some(d) = enc.encode(&self.pending[chunk])? {
                    if let Some(run) = self.silence.as_mut() {
                        run.encoded(d);
                    }
                    // Access unit k decodes to the samples that went in `delay` earlier
                    // (the first ones decode to the encoder's priming).
                    let pts = *units * self.frame_size as i64 - delay + self.skipped;
                    *units += 1;
                    self.last_pts = Some(pts);
                    out.push(audio_packet(d, pts, self.rate));
                }
            }
            Backend::Ffmpeg { enc, packed } => {
                let mut frame =
                    ffmpeg_frame(&self.pending[chunk], self.channels, *packed, self.rate);
                frame.set_pts(Some(frame_pts));
                enc.send_frame(&frame).map_err(ff_err("encoding audio"))?;
                let mut pkt = ff::Packet::empty();
                while enc.receive_packet(&mut pkt).is_ok() {
                    if let Some(d) = pkt.data() {
                        if let Some(run) = self.silence.as_mut() {
                            run.encoded(d);
                        }
                        let pts = pkt.pts().map_or(self.sent, |p| p + self.skipped);
                        self.last_pts = Some(pts);
                        out.push(audio_packet(d, pts, self.rate));
                    }
                }
            }
        }
        Ok(())
    }

    /// Frames the encoder was not given because a silent packet stood in (the process's
    /// total is [`crate::silence::FRAMES_NOT_ENCODED`]).
    pub fn frames_reused(&self) -> i64 {
        self.skipped / self.frame_size as i64
    }
}

/// An audio packet whose first sample plays at `pts` samples of `rate`.
fn audio_packet(data: &[u8], pts: i64, rate: u32) -> Encoded {
    let ms = pts * 1000 / rate as i64;
    Encoded {
        data: data.to_vec(),
        pts_ms: ms,
        dts_ms: ms,
        key: true,
    }
}

/// An FFmpeg frame of `chunk` in the encoder's layout and channels.
fn ffmpeg_frame(chunk: &[Stereo], channels: usize, packed: bool, rate: u32) -> ff::frame::Audio {
    let layout = if packed {
        sample::Type::Packed
    } else {
        sample::Type::Planar
    };
    let mut frame = ff::frame::Audio::new(
        Sample::F32(layout),
        chunk.len(),
        ff::ChannelLayout::default(channels as i32),
    );
    frame.set_rate(rate);
    if packed {
        let plane = frame.data_mut(0);
        let mut at = 0;
        for s in chunk {
            let pair = [s[0], s[1]];
            let mono = [(s[0] + s[1]) * 0.5];
            let values: &[f32] = if channels == 1 { &mono } else { &pair };
            for v in values {
                if let Some(dst) = plane.get_mut(at..at + 4) {
                    dst.copy_from_slice(&v.to_ne_bytes());
                }
                at += 4;
            }
        }
        return frame;
    }
    for c in 0..channels {
        let plane = frame.data_mut(c);
        for (i, s) in chunk.iter().enumerate() {
            let v = if channels == 1 {
                (s[0] + s[1]) * 0.5
            } else {
                s[c]
            };
            if let Some(dst) = plane.get_mut(i * 4..i * 4 + 4) {
                dst.copy_from_slice(&v.to_ne_bytes());
            }
        }
    }
    frame
}

/// A packet read by [`Demuxer`], in the FLV form the hub uses (AVCC video, raw AAC).
pub struct Demuxed {
    pub video: bool,
    pub pts_ms: i64,
    pub dts_ms: i64,
    pub data: Vec<u8>,
}

/// What a pulled URL carries, for opening decoders.
pub struct StreamInfo {
    /// `AVCDecoderConfigurationRecord` of an H.264 track.
    pub avcc: Option<Vec<u8>>,
    /// `Some(asc)` for AAC, `Some(empty)` for MP3.
    pub audio: Option<(bool, Vec<u8>)>,
}

/// FFmpeg's demuxer on an RTMP or HTTP-FLV URL (inputs given as `StreamUrl`).
pub struct Demuxer {
    ctx: ff::format::context::Input,
    video: Option<(usize, ff::Rational)>,
    audio: Option<(usize, ff::Rational)>,
}

impl Demuxer {
    /// Opens an RTMP `url` whose host is an address the URL policy checked; `tc_url` is
    /// the URL as the tenant wrote it (servers route virtual hosts by it). Network reads
    /// give up after `timeout`, and a set `stop` interrupts a hung open or read. FFmpeg
    /// may open nothing but RTMP over TCP and demux nothing but FLV, whatever the server
    /// sends back.
    pub fn open_rtmp(
        url: &str,
        tc_url: &str,
        timeout: std::time::Duration,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<(Self, StreamInfo), CodecError> {
        init();
        let mut opts = ff::Dictionary::new();
        let us = timeout.as_micros().to_string();
        // Not "timeout": for RTMP that option means "listen".
        opts.set("rw_timeout", &us);
        opts.set("rtmp_tcurl", tc_url);
        opts.set("protocol_whitelist", "rtmp,tcp");
        opts.set("format_whitelist", "flv,live_flv");
        opts.set("probesize", "1000000");
        let interrupt = move || stop.load(std::sync::atomic::Ordering::Relaxed);
        let ctx = ff::format::input_with_interrupt_and_dictionary(&url, interrupt, opts)
            .map_err(ff_err("opening the input URL"))?;
        let mut info = StreamInfo {
            avcc: None,
            audio: None,
        };
        let (mut video, mut audio) = (None, None);
        for st in ctx.streams() {
            let par = st.parameters();
            // SAFETY: reading the stream's own codec parameters.
            let extra = unsafe {
                let p = par.as_ptr();
                if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize)
                        .to_vec()
                }
            };
            match par.id() {
                ff::codec::Id::H264 if video.is_none() && !extra.is_empty() => {
                    video = Some((st.index(), st.time_base()));
                    info.avcc = Some(extra);
                }
                ff::codec::Id::AAC if audio.is_none() => {
                    audio = Some((st.index(), st.time_base()));
                    info.audio = Some((true, extra));
                }
                ff::codec::Id::MP3 if audio.is_none() => {
                    audio = Some((st.index(), st.time_base()));
                    info.audio = Some((false, Vec::new()));
                }
                _ => {}
            }
        }
        Ok((Demuxer { ctx, video, audio }, info))
    }

    /// The next audio or video packet; `None` at the end or on a read error.
    pub fn read(&mut self) -> Option<Demuxed> {
        loop {
            let mut pkt = ff::Packet::empty();
            if pkt.read(&mut self.ctx).is_err() {
                return None;
            }
            let idx = pkt.stream();
            let (video, tb) = match (self.video, self.audio) {
                (Some((v, tb)), _) if v == idx => (true, tb),
                (_, Some((a, tb))) if a == idx => (false, tb),
                _ => continue,
            };
            let ms = |t: Option<i64>| {
                t.map(|t| t * 1000 * tb.numerator() as i64 / tb.denominator().max(1) as i64)
            };
            let dts = ms(pkt.dts()).or(ms(pkt.pts())).unwrap_or(0);
            let pts = ms(pkt.pts()).unwrap_or(dts);
            let data = pkt.data().map(<[u8]>::to_vec).unwrap_or_default();
            return Some(Demuxed {
                video,
                pts_ms: pts,
                dts_ms: dts,
                data,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::RATE;

    #[test]
    fn h264_round_trip_keeps_colours() {
        let mut enc =
            VideoEncoder::new(160, 120, 15, 300_000, "ultrafast", 2, VideoCodec::H264).unwrap();
        assert_eq!(enc.config()[0], 1, "an avcC record");
        let mut dec = VideoDecoder::h264(enc.config()).unwrap();
        // Padded for FFmpeg: the encoder reads it in place.
        let pic = padded(160, 120, 0xff0000);
        let mut decoded = Vec::new();
        for i in 0..10 {
            for p in enc.encode(&pic, i * 66, false).unwrap() {
                decoded.extend(dec.decode(&p.data, p.pts_ms, p.dts_ms).unwrap());
            }
        }
        assert!(!decoded.is_empty(), "zerolatency gives frames back at once");
        let (_, first) = &decoded[0];
        let out = dec.scale(first, 80, 60).unwrap();
        assert_eq!((out.width, out.height), (80, 60));
        let (r, g, b) = out.rgb(40, 30);
        assert!(r > 230 && g < 30 && b < 30, "{r} {g} {b}");
    }

    fn padded(w: u32, h: u32, rgb: u32) -> Arc<I420> {
        let solid = I420::filled(w, h, rgb);
        let mut p = I420::alloc(w, h);
        p.y.copy_from_slice(&solid.y);
        p.u.copy_from_slice(&solid.u);
        p.v.copy_from_slice(&solid.v);
        assert!(p.has_slack() && !solid.has_slack());
        Arc::new(p)
    }

    #[test]
    fn the_encoder_reads_a_picture_in_place_and_lets_go_of_it() {
        let pic = padded(96, 64, 0x00ff00);
        let mut enc =
            VideoEncoder::new(96, 64, 15, 200_000, "ultrafast", 2, VideoCodec::H264).unwrap();
        let mut dec = VideoDecoder::h264(enc.config()).unwrap();
        let mut pool = crate::pool::PicturePool::new(2);
        let mut decoded = Vec::new();
        for i in 0..6 {
            for p in enc.encode(&pic, i * 66, false).unwrap() {
                decoded.extend(dec.decode(&p.data, p.pts_ms, p.dts_ms).unwrap());
            }
            // FFmpeg holds the picture only while it reads it (x264 copies it into its
            // own frames): it is ours again, not leaked, after each call.
            assert_eq!(Arc::strong_count(&pic), 1, "frame {i}");
        }
        let (_, first) = &decoded[0];
        // Decoded pictures scale straight into pooled buffers of the size asked for.
        let out = pool.fill(48, 32, |o| dec.scale_into(first, o)).unwrap();
        let (r, g, b) = out.rgb(24, 16);
        assert!(g > 200 && r < 40 && b < 40, "{r} {g} {b}");
        // Same size and format: copied, not scaled.
        let same = pool.fill(96, 64, |o| dec.scale_into(first, o)).unwrap();
        assert_eq!(same.pixel(90, 60), out.pixel(1, 1));
        // A picture without spare capacity is refused, not overrun.
        let mut plain = I420::filled(48, 32, 0);
        assert!(dec.scale_into(first, &mut plain).is_err());
        // And the canvas rescaler (another output's size) fills a pooled buffer too.
        let mut rescaler = Rescaler::default();
        let small = pool.fill(24, 16, |o| rescaler.scale_into(&pic, o)).unwrap();
        let (r, g, b) = small.rgb(12, 8);
        assert!(g > 200 && r < 40 && b < 40, "{r} {g} {b}");
    }

    #[test]
    fn a_cropped_picture_is_the_region_asked_for() {
        // Left half red, right half blue.
        let mut pic = I420::filled(160, 120, 0xff0000);
        let blue = I420::filled(80, 120, 0x0000ff);
        crate::compose::draw(
            &mut pic,
            &blue,
            tributary_core::mix::Rect {
                layer: 0,
                left: 80,
                top: 0,
                right: 160,
                bottom: 120,
            },
        );
        // A plain (packed, unpadded) picture: copied into the encoder's own frame.
        let pic = Arc::new(pic);
        let mut enc =
            VideoEncoder::new(160, 120, 15, 400_000, "ultrafast", 2, VideoCodec::H264).unwrap();
        let mut dec = VideoDecoder::h264(enc.config()).unwrap();
        let mut decoded = Vec::new();
        for i in 0..5 {
            for p in enc.encode(&pic, i * 66, false).unwrap() {
                decoded.extend(dec.decode(&p.data, p.pts_ms, p.dts_ms).unwrap());
            }
        }
        let (_, first) = &decoded[0];
        let right = first.cropped(96, 8, 48, 100).unwrap();
        assert_eq!((right.width(), right.height()), (48, 100));
        let out = dec.scale(&right, 48, 100).unwrap();
        let (r, _, b) = out.rgb(24, 50);
        assert!(b > 200 && r < 50, "{r} {b}");
        // Clamped to the picture; empty regions give nothing.
        assert_eq!(first.cropped(150, 0, 100, 100).map(|p| p.width()), Some(10));
        assert!(first.cropped(160, 0, 10, 10).is_none());
    }

    #[test]
    fn a_key_frame_can_be_forced_mid_gop() {
        let pic = Arc::new(I420::filled(64, 48, 0x0000ff));
        let mut enc =
            VideoEncoder::new(64, 48, 10, 100_000, "ultrafast", 10, VideoCodec::H264).unwrap();
        let mut keys = Vec::new();
        for i in 0..12i64 {
            for p in enc.encode(&pic, i * 100, i == 6).unwrap() {
                keys.push(p.key);
            }
        }
        // The first frame and the forced one; the GOP (10 s) would give no other.
        assert_eq!(keys.iter().filter(|k| **k).count(), 2, "{keys:?}");
        assert!(keys[6], "{keys:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        // A decoder opened with a nonsense configuration either refuses or decodes
        // nothing; random access units give errors or no pictures.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        if let Ok(mut dec) = VideoDecoder::h264(&noise(40)) {
            for i in 0..50 {
                let _ = dec.decode(&noise(1 + i * 37), i as i64 * 40, i as i64 * 40);
            }
        }
        let enc = VideoEncoder::new(64, 48, 10, 100_000, "ultrafast", 2, VideoCodec::H264).unwrap();
        let mut dec = VideoDecoder::h264(enc.config()).unwrap();
        for i in 0..50 {
            let mut au = (200u32 + i).to_be_bytes().to_vec();
            au.extend(noise(200 + i as usize));
            let _ = dec.decode(&au, i as i64 * 40, i as i64 * 40);
        }
        let decoders = [AudioDecoder::aac(&noise(2)), AudioDecoder::mp3()];
        for mut a in decoders.into_iter().flatten() {
            for i in 0..50 {
                let _ = a.decode(&noise(10 + i * 13));
            }
        }
    }

    /// Sound, a stretch of zeros, sound again: the encoder that repeats a silent packet
    /// gives the same packets' timing and, decoded, the same audio as one that encodes
    /// every frame, and it skipped the stretch's frames.
    #[test]
    fn aac_silence_reuses_one_packet_and_decodes_like_encoding_every_frame() {
        let n = RATE as usize;
        let signal: Vec<Stereo> = (0..3 * n)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                // A rising tone: a frame shifted in time would not line up.
                let v = 0.4 * (2.0 * std::f32::consts::PI * (300.0 + 400.0 * t) * t).sin();
                if (n..2 * n).contains(&i) {
                    [0.0, 0.0]
                } else {
                    [v, -v * 0.5]
                }
            })
            .collect();
        // libfdk-aac (what outputs use) and FFmpeg's encoder: both take the short-cut.
        for open in [AudioEncoder::new, AudioEncoder::ffmpeg_aac] {
            check_silence_reuse(&signal, n, open);
        }
    }

    fn check_silence_reuse(
        signal: &[Stereo],
        n: usize,
        open: fn(u8, u32, u32) -> Result<AudioEncoder, CodecError>,
    ) {
        let run = |reuse: bool| {
            let mut enc = open(2, 64_000, RATE).unwrap();
            if !reuse {
                enc.silence = None;
            }
            let mut dec = AudioDecoder::aac(enc.config()).unwrap();
            let (mut pts, mut pcm) = (Vec::new(), Vec::new());
            // In ticks of 20 ms, as the mixer hands them.
            for tick in signal.chunks(882) {
                for p in enc.encode(tick).unwrap() {
                    pts.push(p.pts_ms);
                    for (_, s) in dec.decode(&p.data).unwrap() {
                        pcm.extend(s);
                    }
                }
            }
            (pts, pcm, enc.frames_reused())
        };
        let (pts_every, pcm_every, none) = run(false);
        let (pts_reuse, pcm_reuse, reused) = run(true);
        assert_eq!(none, 0);
        // 43 frames of zeros, less the settling ones.
        assert!(reused >= 35, "reused {reused} frames");
        assert_eq!(pts_reuse, pts_every);
        assert!(pts_every.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(pcm_reuse.len(), pcm_every.len());
        // The middle of the stretch decodes to exact zeros.
        let mid = &pcm_reuse[n + n / 4..2 * n - n / 4];
        assert!(mid.iter().all(|s| s[0] == 0.0 && s[1] == 0.0));
        // Both decode alike, sound after the silence included (a frame late or early
        // would be far off for a rising tone).
        let (mut err, mut sig) = (0.0f64, 0.0f64);
        for (a, b) in pcm_reuse.iter().zip(&pcm_every) {
            for c in 0..2 {
                err += ((a[c] - b[c]) as f64).powi(2);
                sig += (b[c] as f64).powi(2);
            }
        }
        let after: f64 = pcm_reuse[2 * n + n / 4..]
            .iter()
            .map(|s| (s[0] as f64).powi(2))
            .sum();
        assert!(
            after > 1000.0,
            "the sound after the silence is there ({after})"
        );
        let snr_db = 10.0 * (sig / err.max(1e-12)).log10();
        assert!(snr_db > 30.0, "reused vs every frame: {snr_db:.1} dB");
    }

    /// A muted speaker's repeated silent packets are answered with silence, and the
    /// sound after them decodes exactly as when every packet goes through the decoder.
    #[test]
    fn aac_repeated_silent_packets_decode_like_decoding_every_one() {
        let n = RATE as usize;
        let signal: Vec<Stereo> = (0..3 * n)
            .map(|i| {
                let v = 0.3 * (2.0 * std::f32::consts::PI * 523.0 * i as f32 / RATE as f32).sin();
                if (n..2 * n).contains(&i) {
                    [0.0, 0.0]
                } else {
                    [v, v]
                }
            })
            .collect();
        let mut enc = AudioEncoder::new(1, 48_000, RATE).unwrap();
        let packets: Vec<Vec<u8>> = signal
            .chunks(1024)
            .flat_map(|c| enc.encode(c).unwrap())
            .map(|p| p.data)
            .collect();
        let decode = |skip: bool| {
            let mut dec = AudioDecoder::aac(enc.config()).unwrap();
            if !skip {
                dec.repeat = None;
            }
            let pcm: Vec<Vec<(u32, Vec<Stereo>)>> =
                packets.iter().map(|p| dec.decode(p).unwrap()).collect();
            (pcm, dec.repeats_answered)
        };
        let (every, none) = decode(false);
        let (skipping, answered) = decode(true);
        assert_eq!(none, 0);
        assert!(
            answered >= 35,
            "answered {answered} of the ~43 silent packets"
        );
        assert_eq!(skipping, every);
        let after: f32 = every[2 * n / 1024 + 2..]
            .iter()
            .flat_map(|f| f.iter().flat_map(|(_, s)| s.iter().map(|s| s[0].abs())))
            .fold(0.0, f32::max);
        assert!(after > 0.2, "the tone after the silence ({after})");
        // HE-AAC's config (object type 5) keeps decoding every packet.
        let he = AudioDecoder::aac(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
        assert!(he.repeat.is_none());
    }

    /// Each AAC encoder stamps its packets so that, decoded and laid out by their pts, a
    /// burst comes out when it went in: the encoder's delay is taken out of the pts, so
    /// the audio stays in sync with the video beside it.
    #[test]
    fn aac_packets_decode_at_the_time_their_samples_went_in() {
        let at = RATE as usize / 2;
        let burst: Vec<Stereo> = (0..RATE as usize)
            .map(|i| {
                let k = i as f32 - at as f32;
                let v = if (0.0..441.0).contains(&k) {
                    let w = (std::f32::consts::PI * k / 441.0).sin().powi(2);
                    0.6 * w * (2.0 * std::f32::consts::PI * 1000.0 * k / RATE as f32).sin()
                } else {
                    0.0
                };
                [v, v]
            })
            .collect();
        type Open = fn() -> Result<AudioEncoder, CodecError>;
        let encoders: [(&str, Open); 3] = [
            ("fdk AAC-LC", || AudioEncoder::new(2, 64_000, RATE)),
            ("fdk HE-AAC", || AudioEncoder::he_aac(2, 48_000, RATE)),
            ("FFmpeg AAC-LC", || {
                AudioEncoder::ffmpeg_aac(2, 64_000, RATE)
            }),
        ];
        for (name, open) in encoders {
            let mut enc = open().unwrap();
            let mut dec = AudioDecoder::aac(enc.config()).unwrap();
            // The decoded burst's loudest sample, on the pts timeline.
            let mut loudest = (0.0f32, 0i64);
            for tick in burst.chunks(882) {
                for p in enc.encode(tick).unwrap() {
                    let start = p.pts_ms * RATE as i64 / 1000;
                    for (rate, s) in dec.decode(&p.data).unwrap() {
                        assert_eq!(rate, RATE, "{name}");
                        for (i, v) in s.iter().enumerate() {
                            if v[0].abs() > loudest.0 {
                                loudest = (v[0].abs(), start + i as i64);
                            }
                        }
                    }
                }
            }
            let went_in = at as i64 + 220;
            let off_ms = (loudest.1 - went_in) as f64 * 1000.0 / RATE as f64;
            eprintln!("{name}: peak {:.2} off by {off_ms:.1} ms", loudest.0);
            assert!(loudest.0 > 0.3, "{name}: the burst decodes ({})", loudest.0);
            assert!(
                off_ms.abs() <= 3.0,
                "{name}: the burst is {off_ms:.1} ms off"
            );
        }
    }

    #[test]
    fn aac_round_trip_keeps_a_tone() {
        let mut enc = AudioEncoder::new(2, 64_000, RATE).unwrap();
        assert!(enc.config().len() >= 2, "an AudioSpecificConfig");
        let mut dec = AudioDecoder::aac(enc.config()).unwrap();
        let tone: Vec<Stereo> = (0..RATE as usize / 2)
            .map(|i| {
                let v = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / RATE as f32).sin();
                [v, v]
            })
            .collect();
        let mut got = Vec::new();
        for p in enc.encode(&tone).unwrap() {
            for (rate, s) in dec.decode(&p.data).unwrap() {
                assert_eq!(rate, RATE);
                got.extend(s);
            }
        }
        assert!(got.len() > RATE as usize / 4);
        let peak = got.iter().map(|s| s[0].abs()).fold(0.0, f32::max);
        assert!(peak > 0.3 && peak < 0.7, "peak {peak}");
    }
}
