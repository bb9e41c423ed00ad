//! AAC-LC and HE-AAC (AAC-LC core at half rate + SBR) through Fraunhofer's libfdk-aac,
//! built from source by `fdk-aac-sys`.
//!
//! Why libfdk-aac for both profiles: Debian's FFmpeg has no HE-AAC encoder, and for
//! AAC-LC it costs less CPU than FFmpeg's native encoder with its fast coder (about 3–4.6
//! against 4.9–5.8 ms per second of 48 kb/s stereo on the project machine, `examples/
//! aac_cost.rs`) while being the better-regarded encoder at low bitrates. The encode is
//! the largest share of an audio room's CPU. The afterburner (a closer analysis-by-
//! synthesis search) stays off for AAC-LC: it doubles the cost. HE-AAC keeps it: SBR
//! dominates its cost, and it was tuned with it on.
//!
//! HE-AAC's SBR is signalled explicitly in the AudioSpecificConfig (object type 5, the
//! extension sampling rate written out), so players and ffprobe see HE-AAC rather than a
//! 22.05 kHz AAC-LC stream whose SBR they might miss. Its frames hold 2048 samples;
//! AAC-LC's 1024.

use fdk_aac_sys as sys;

use crate::audio::Stereo;
use crate::codec::CodecError;

/// Which AAC the encoder makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Lc,
    He,
}

/// An open libfdk-aac encoder (closed on drop), fed one frame at a time.
pub struct FdkEncoder {
    handle: sys::HANDLE_AACENCODER,
    channels: usize,
    frame: usize,
    delay: usize,
    config: Vec<u8>,
    pcm: Vec<i16>,
    out: Vec<u8>,
}

// SAFETY: the handle is owned by one encoder thread at a time and libfdk-aac keeps no
// thread-local state.
unsafe impl Send for FdkEncoder {}

fn check(e: sys::AACENC_ERROR, what: &'static str) -> Result<(), CodecError> {
    if e == sys::AACENC_ERROR_AACENC_OK {
        Ok(())
    } else {
        Err(CodecError::Library {
            what,
            reason: format!("libfdk-aac error {e:#x}"),
        })
    }
}

impl FdkEncoder {
    /// `channels` is clamped to 1–2 and `bitrate_bps` to what the profile carries at
    /// 44.1/48 kHz (AAC-LC 8–160 kb/s per channel; HE-AAC 8–48 kb/s mono, 16–64 kb/s
    /// stereo). `rate` must be one the profile takes (see `core::mix::AudioCodec`).
    pub fn open(
        profile: Profile,
        channels: u8,
        bitrate_bps: u32,
        rate: u32,
    ) -> Result<Self, CodecError> {
        let channels = channels.clamp(1, 2) as usize;
        let bitrate = match (profile, channels) {
            (Profile::Lc, _) => {
                bitrate_bps.clamp(8_000 * channels as u32, 160_000 * channels as u32)
            }
            (Profile::He, 1) => bitrate_bps.clamp(8_000, 48_000),
            (Profile::He, _) => bitrate_bps.clamp(16_000, 64_000),
        };
        let (aot, signalling, afterburner) = match profile {
            Profile::Lc => (sys::AUDIO_OBJECT_TYPE_AOT_AAC_LC, 0, 0),
            // 2: explicit hierarchical SBR signalling.
            Profile::He => (sys::AUDIO_OBJECT_TYPE_AOT_SBR, 2, 1),
        };
        let mut handle: sys::HANDLE_AACENCODER = std::ptr::null_mut();
        // SAFETY: FFI calls on a handle this function owns; every pointer is valid for
        // the call.
        unsafe {
            check(
                sys::aacEncOpen(&mut handle, 0, channels as u32),
                "opening libfdk-aac",
            )?;
            // Owned from here: closed on drop, whatever fails below.
            let mut enc = FdkEncoder {
                handle,
                channels,
                frame: 0,
                delay: 0,
                config: Vec::new(),
                pcm: Vec::new(),
                out: Vec::new(),
            };
            let set = |p: sys::AACENC_PARAM, v: u32| {
                check(
                    sys::aacEncoder_SetParam(handle, p, v),
                    "configuring libfdk-aac",
                )
            };
            set(sys::AACENC_PARAM_AACENC_AOT, aot as u32)?;
            set(sys::AACENC_PARAM_AACENC_SAMPLERATE, rate)?;
            set(sys::AACENC_PARAM_AACENC_CHANNELMODE, channels as u32)?;
            set(sys::AACENC_PARAM_AACENC_BITRATE, bitrate)?;
            // Raw access units; the AudioSpecificConfig goes in the FLV sequence header.
            set(sys::AACENC_PARAM_AACENC_TRANSMUX, 0)?;
            set(sys::AACENC_PARAM_AACENC_SIGNALING_MODE, signalling)?;
            set(sys::AACENC_PARAM_AACENC_AFTERBURNER, afterburner)?;
            check(
                sys::aacEncEncode(
                    handle,
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null_mut(),
                ),
                "initialising libfdk-aac",
            )?;
            let mut info: sys::AACENC_InfoStruct = std::mem::zeroed();
            check(
                sys::aacEncInfo(handle, &mut info),
                "reading libfdk-aac info",
            )?;
            enc.frame = (info.frameLength as usize).max(1);
            enc.delay = info.nDelay as usize;
            let n = (info.confSize as usize).min(info.confBuf.len());
            enc.config = info.confBuf[..n].to_vec();
            enc.out = vec![0u8; (info.maxOutBufBytes as usize).max(8192)];
            enc.pcm = Vec::with_capacity(enc.frame * channels);
            Ok(enc)
        }
    }

    /// The `AudioSpecificConfig` for the FLV sequence header.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// Samples per channel in a frame (one access unit).
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// Samples between a sample going in and the same sample coming out of a decoder.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Encodes one frame of [`FdkEncoder::frame_len`] samples; returns the access unit
    /// it completed, if one did (the first calls fill the encoder's look-ahead).
    pub fn encode(&mut self, frame: &[Stereo]) -> Result<Option<&[u8]>, CodecError> {
        let conv = |v: f32| (v.clamp(-1.0, 1.0) * i16::MAX as f32) as i16;
        self.pcm.clear();
        for s in frame {
            if self.channels == 1 {
                self.pcm.push(conv((s[0] + s[1]) * 0.5));
            } else {
                self.pcm.push(conv(s[0]));
                self.pcm.push(conv(s[1]));
            }
        }
        let mut input = OneBuffer::new(
            self.pcm.as_mut_ptr().cast(),
            sys::AACENC_BufferIdentifier_IN_AUDIO_DATA,
            self.pcm.len() * 2,
            2,
        );
        let mut output = OneBuffer::new(
            self.out.as_mut_ptr().cast(),
            sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA,
            self.out.len(),
            1,
        );
        let (in_desc, out_desc) = (input.desc(), output.desc());
        let in_args = sys::AACENC_InArgs {
            numInSamples: self.pcm.len() as i32,
            numAncBytes: 0,
        };
        // SAFETY: plain data, filled by the call below.
        let mut out_args: sys::AACENC_OutArgs = unsafe { std::mem::zeroed() };
        // SAFETY: the buffer descriptors point at live buffers of the sizes given.
        check(
            unsafe { sys::aacEncEncode(self.handle, &in_desc, &out_desc, &in_args, &mut out_args) },
            "encoding AAC",
        )?;
        // A frame's worth of input always fits the encoder's buffer, which it empties
        // into one access unit each time it holds a frame.
        if out_args.numInSamples.max(0) as usize != self.pcm.len() {
            return Err(CodecError::Library {
                what: "encoding AAC",
                reason: format!(
                    "libfdk-aac took {} of {} samples",
                    out_args.numInSamples,
                    self.pcm.len()
                ),
            });
        }
        let n = (out_args.numOutBytes.max(0) as usize).min(self.out.len());
        Ok((n > 0).then(|| &self.out[..n]))
    }
}

/// One buffer as libfdk-aac's descriptors take it: each field is passed by pointer, so
/// they live here, beside the call, for as long as the descriptor is used.
struct OneBuffer {
    ptr: *mut std::ffi::c_void,
    id: i32,
    size: i32,
    element: i32,
}

impl OneBuffer {
    fn new(ptr: *mut std::ffi::c_void, id: u32, bytes: usize, element: i32) -> Self {
        OneBuffer {
            ptr,
            id: id as i32,
            size: bytes as i32,
            element,
        }
    }

    /// A descriptor pointing at this buffer's fields (valid while `self` is not moved).
    fn desc(&mut self) -> sys::AACENC_BufDesc {
        sys::AACENC_BufDesc {
            numBufs: 1,
            bufs: &mut self.ptr,
            bufferIdentifiers: &mut self.id,
            bufSizes: &mut self.size,
            bufElSizes: &mut self.element,
        }
    }
}

impl Drop for FdkEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from aacEncOpen and is closed once.
        unsafe {
            sys::aacEncClose(&mut self.handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::RATE;

    #[test]
    fn the_he_config_signals_sbr_and_frames_come_out() {
        let mut e = FdkEncoder::open(Profile::He, 2, 48_000, RATE).unwrap();
        let asc = e.config().to_vec();
        // audioObjectType 5 (SBR) in the first 5 bits, explicit signalling.
        assert_eq!(asc[0] >> 3, 5, "{asc:02x?}");
        assert_eq!(e.frame_len(), 2048);
        let tone: Vec<Stereo> = (0..RATE as usize)
            .map(|i| {
                let v = 0.3 * (i as f32 * 0.05).sin();
                [v, v]
            })
            .collect();
        let (mut frames, mut bytes) = (0, 0);
        for f in tone.chunks_exact(2048) {
            if let Some(au) = e.encode(f).unwrap() {
                frames += 1;
                bytes += au.len();
            }
        }
        // 21 frames in, less the encoder's look-ahead.
        assert!((15..=21).contains(&frames), "{frames}");
        // 48 kb/s for about a second.
        assert!((3_000..=9_000).contains(&bytes), "{bytes}");
    }

    #[test]
    fn the_lc_config_is_aac_lc_at_the_rate() {
        let e = FdkEncoder::open(Profile::Lc, 1, 48_000, 48_000).unwrap();
        let asc = e.config();
        // audioObjectType 2, sampling frequency index 3 (48 kHz), one channel.
        assert_eq!(asc[0] >> 3, 2, "{asc:02x?}");
        assert_eq!(((asc[0] & 7) << 1) | (asc[1] >> 7), 3, "{asc:02x?}");
        assert_eq!((asc[1] >> 3) & 0x0f, 1, "{asc:02x?}");
        assert_eq!(e.frame_len(), 1024);
    }
}
