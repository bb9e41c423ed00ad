//! HE-AAC (AAC-LC core at half rate + SBR) at the output's rate through Fraunhofer's libfdk-aac,
//! built from source by `fdk-aac-sys`: Debian's FFmpeg has no HE-AAC encoder.
//!
//! SBR is signalled explicitly in the AudioSpecificConfig (object type 5, the extension
//! sampling rate written out), so players and ffprobe see HE-AAC rather than a 22.05 kHz
//! AAC-LC stream whose SBR they might miss. Frames hold 2048 samples.

use fdk_aac_sys as sys;

use crate::audio::Stereo;
use crate::codec::{CodecError, Encoded};

/// An open libfdk-aac encoder (closed on drop).
pub struct HeAacEncoder {
    handle: sys::HANDLE_AACENCODER,
    channels: usize,
    frame: usize,
    config: Vec<u8>,
    pending: Vec<i16>,
    out: Vec<u8>,
    rate: u32,
    /// Samples handed in so far (per channel): the next frame's pts.
    sent: i64,
}

// SAFETY: the handle is owned by one encoder thread at a time and libfdk-aac keeps no
// thread-local state.
unsafe impl Send for HeAacEncoder {}

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

impl HeAacEncoder {
    /// `bitrate_bps` is clamped to what HE-AAC carries at 44.1/48 kHz (16–64 kb/s
    /// stereo, 8–48 kb/s mono); `rate` is 16–48 kHz.
    pub fn new(channels: u8, bitrate_bps: u32, rate: u32) -> Result<Self, CodecError> {
        let channels = channels.clamp(1, 2) as usize;
        let bitrate = if channels == 1 {
            bitrate_bps.clamp(8_000, 48_000)
        } else {
            bitrate_bps.clamp(16_000, 64_000)
        };
        let mut handle: sys::HANDLE_AACENCODER = std::ptr::null_mut();
        // SAFETY: FFI calls on a handle this function owns; every pointer is valid for
        // the call.
        unsafe {
            check(
                sys::aacEncOpen(&mut handle, 0, channels as u32),
                "opening libfdk-aac",
            )?;
            let mut enc = HeAacEncoder {
                handle,
                channels,
                frame: 0,
                config: Vec::new(),
                pending: Vec::new(),
                out: Vec::new(),
                rate,
                sent: 0,
            };
            let set = |p: sys::AACENC_PARAM, v: u32| {
                check(
                    sys::aacEncoder_SetParam(handle, p, v),
                    "configuring libfdk-aac",
                )
            };
            set(
                sys::AACENC_PARAM_AACENC_AOT,
                sys::AUDIO_OBJECT_TYPE_AOT_SBR as u32,
            )?;
            set(sys::AACENC_PARAM_AACENC_SAMPLERATE, rate)?;
            set(sys::AACENC_PARAM_AACENC_CHANNELMODE, channels as u32)?;
            set(sys::AACENC_PARAM_AACENC_BITRATE, bitrate)?;
            // Raw access units; the AudioSpecificConfig goes in the FLV sequence header.
            set(sys::AACENC_PARAM_AACENC_TRANSMUX, 0)?;
            // 2: explicit hierarchical SBR signalling.
            set(sys::AACENC_PARAM_AACENC_SIGNALING_MODE, 2)?;
            set(sys::AACENC_PARAM_AACENC_AFTERBURNER, 1)?;
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
            let n = (info.confSize as usize).min(info.confBuf.len());
            enc.config = info.confBuf[..n].to_vec();
            enc.out = vec![0u8; (info.maxOutBufBytes as usize).max(8192)];
            Ok(enc)
        }
    }

    /// The `AudioSpecificConfig` for the FLV sequence header.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// Queues samples; returns every access unit that completed, pts in ms.
    pub fn encode(&mut self, samples: &[Stereo]) -> Result<Vec<Encoded>, CodecError> {
        for s in samples {
            let conv = |v: f32| (v.clamp(-1.0, 1.0) * i16::MAX as f32) as i16;
            if self.channels == 1 {
                self.pending.push(conv((s[0] + s[1]) * 0.5));
            } else {
                self.pending.push(conv(s[0]));
                self.pending.push(conv(s[1]));
            }
        }
        let mut out = Vec::new();
        let chunk = self.frame * self.channels;
        while self.pending.len() >= chunk {
            let mut in_ptr = self.pending.as_mut_ptr() as *mut std::ffi::c_void;
            let mut in_id = sys::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32;
            let mut in_size = (chunk * 2) as i32;
            let mut in_el = 2i32;
            let in_desc = sys::AACENC_BufDesc {
                numBufs: 1,
                bufs: &mut in_ptr,
                bufferIdentifiers: &mut in_id,
                bufSizes: &mut in_size,
                bufElSizes: &mut in_el,
            };
            let mut out_ptr = self.out.as_mut_ptr() as *mut std::ffi::c_void;
            let mut out_id = sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32;
            let mut out_size = self.out.len() as i32;
            let mut out_el = 1i32;
            let out_desc = sys::AACENC_BufDesc {
                numBufs: 1,
                bufs: &mut out_ptr,
                bufferIdentifiers: &mut out_id,
                bufSizes: &mut out_size,
                bufElSizes: &mut out_el,
            };
            let in_args = sys::AACENC_InArgs {
                numInSamples: chunk as i32,
                numAncBytes: 0,
            };
            // SAFETY: the buffer descriptors point at live buffers of the sizes given.
            let mut out_args: sys::AACENC_OutArgs = unsafe { std::mem::zeroed() };
            check(
                unsafe {
                    sys::aacEncEncode(self.handle, &in_desc, &out_desc, &in_args, &mut out_args)
                },
                "encoding HE-AAC",
            )?;
            let consumed = (out_args.numInSamples.max(0) as usize).min(self.pending.len());
            if consumed == 0 {
                break;
            }
            self.pending.drain(..consumed);
            self.sent += (consumed / self.channels) as i64;
            let n = (out_args.numOutBytes.max(0) as usize).min(self.out.len());
            if n > 0 {
                let pts = (self.sent - self.frame as i64).max(0) * 1000 / self.rate as i64;
                out.push(Encoded {
                    data: self.out[..n].to_vec(),
                    pts_ms: pts,
                    dts_ms: pts,
                    key: true,
                });
            }
        }
        Ok(out)
    }
}

impl Drop for HeAacEncoder {
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
    fn the_config_signals_sbr_and_frames_come_out() {
        let mut e = HeAacEncoder::new(2, 48_000, RATE).unwrap();
        let asc = e.config().to_vec();
        // audioObjectType 5 (SBR) in the first 5 bits, explicit signalling.
        assert_eq!(asc[0] >> 3, 5, "{asc:02x?}");
        let tone: Vec<Stereo> = (0..RATE as usize)
            .map(|i| {
                let v = 0.3 * (i as f32 * 0.05).sin();
                [v, v]
            })
            .collect();
        let frames = e.encode(&tone).unwrap();
        // 2048 samples a frame, minus the encoder's delay: about 21 in a second.
        assert!((15..=22).contains(&frames.len()), "{}", frames.len());
        let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
        // 48 kb/s for about a second.
        assert!((3_000..=9_000).contains(&bytes), "{bytes}");
    }
}
