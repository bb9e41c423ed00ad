//! A stretch of digital silence is encoded once, then its packet is repeated; and a
//! repeated silent packet is decoded twice, then answered with zeros (AAC-LC).
//!
//! Why: an audio room whose speakers are muted, absent or between turns on a noise gate
//! mixes exact zeros, and an AAC encoder spends about as much on a silent frame as on
//! speech; the encode is the largest share of an audio room's CPU. An AAC-LC frame has no
//! bit-reservoir pointer into earlier frames, so a frame that encodes silence after
//! silence decodes to the same zeros wherever it is repeated.
//!
//! The rule ([`SilenceRun`]): the encoder's packet for a frame covers that frame's two
//! predecessors with the frame itself as look-ahead. Once it has been fed [`SETTLE`]
//! silent frames in a row, its packets are pure silence; when two of them in a row are
//! byte-identical, that packet is the stretch's silent packet, and later silent frames
//! reuse it without calling the encoder. The first frame with sound goes to the encoder
//! again. What the encoder remembers then is silent frames, as the skipped ones were, so
//! its next packets carry what they would have carried had it seen every frame. The
//! encoder does not count the skipped frames; the caller shifts its timestamps by them.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;

/// Audio frames the process's AAC-LC encoders were spared (a silent packet repeated
/// instead), for the engine's metrics.
pub static FRAMES_NOT_ENCODED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Audio packets the process's AAC-LC decoders were spared (a repeated silent packet
/// answered with zeros), for the engine's metrics.
pub static PACKETS_NOT_DECODED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Silent frames the encoder must have been fed before its packets are pure silence: the
/// two frames a packet's window spans and the look-ahead frame.
pub const SETTLE: u32 = 3;

/// What to do with the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Feed it to the encoder, and report its packets with [`SilenceRun::encoded`].
    Encode,
    /// Don't: send [`SilenceRun::packet`] in its place.
    Reuse,
}

/// The silence state of one encoder (see the module doc).
#[derive(Debug, Default)]
pub struct SilenceRun {
    /// Silent frames fed to the encoder in a row.
    fed: u32,
    /// The last packet the encoder made once `fed` reached [`SETTLE`].
    candidate: Option<Vec<u8>>,
    /// The stretch's silent packet, once two candidates in a row were equal.
    packet: Option<Vec<u8>>,
}

impl SilenceRun {
    /// Decides for the next frame; `silent` is whether every sample of it is zero.
    pub fn next(&mut self, silent: bool) -> Step {
        if !silent {
            *self = SilenceRun::default();
            return Step::Encode;
        }
        if self.packet.is_some() {
            return Step::Reuse;
        }
        self.fed = self.fed.saturating_add(1);
        Step::Encode
    }

    /// A packet the encoder made right after the frame last given [`Step::Encode`].
    pub fn encoded(&mut self, packet: &[u8]) {
        if self.fed < SETTLE || self.packet.is_some() {
            return;
        }
        if self.candidate.as_deref() == Some(packet) {
            self.packet = self.candidate.take();
        } else {
            self.candidate = Some(packet.to_vec());
        }
    }

    /// The silent packet to send for a frame given [`Step::Reuse`].
    pub fn packet(&self) -> Option<&[u8]> {
        self.packet.as_deref()
    }
}

/// The decoder's side, for AAC-LC inputs: a muted speaker's encoder sends the same silent
/// packet again and again, and decoding it costs as much as speech. An AAC-LC decoder's
/// state after a packet is that packet's second half (its overlap) and window shape;
/// neither depends on what came before. So once a packet decoded to digital silence
/// right after the same bytes did, it decodes to silence again each time it repeats, and
/// leaves the decoder as it was: a repeat can be answered without the decoder.
#[derive(Debug, Default)]
pub struct SilentRepeat {
    /// The last packet decoded, while it decoded to silence.
    last: Vec<u8>,
    /// Its frame: rate and samples.
    frame: Option<(u32, usize)>,
    /// How many times in a row `last` decoded to silence.
    silent: u32,
}

impl SilentRepeat {
    /// The frame (rate, samples) of silence `packet` decodes to, when that is known
    /// without decoding it.
    pub fn known(&self, packet: &[u8]) -> Option<(u32, usize)> {
        self.frame
            .filter(|_| self.silent >= 2 && self.last == packet)
    }

    /// What the decoder made of `packet`: `Some((rate, samples, silent))` for one frame,
    /// `None` for anything else (no frame, several, an error).
    pub fn decoded(&mut self, packet: &[u8], frame: Option<(u32, usize, bool)>) {
        match frame {
            Some((rate, n, true)) if self.frame == Some((rate, n)) && self.last == packet => {
                self.silent = self.silent.saturating_add(1);
            }
            Some((rate, n, true)) => {
                self.last.clear();
                self.last.extend_from_slice(packet);
                self.frame = Some((rate, n));
                self.silent = 1;
            }
            _ => {
                self.last.clear();
                self.frame = None;
                self.silent = 0;
            }
        }
    }
}

/// Whether a frame is digital silence (both channels exactly zero; `-0.0` counts).
pub fn is_silent(samples: &[crate::audio::Stereo]) -> bool {
    samples.iter().all(|s| s[0] == 0.0 && s[1] == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_starts_only_after_settling_and_two_equal_packets() {
        let mut run = SilenceRun::default();
        // Sound, then silence: the first SETTLE silent frames' packets still carry the
        // sound's tail, whatever they look like.
        assert_eq!(run.next(false), Step::Encode);
        run.encoded(b"tone");
        for i in 0..SETTLE - 1 {
            assert_eq!(run.next(true), Step::Encode);
            run.encoded(&[i as u8]);
        }
        assert_eq!(run.next(true), Step::Encode);
        run.encoded(b"zero-a");
        // A differing packet is not trusted yet.
        assert_eq!(run.next(true), Step::Encode);
        run.encoded(b"zero-b");
        assert_eq!(run.next(true), Step::Encode);
        run.encoded(b"zero-b");
        assert_eq!(run.packet(), Some(&b"zero-b"[..]));
        for _ in 0..100 {
            assert_eq!(run.next(true), Step::Reuse);
        }
        // Sound goes back to the encoder and forgets the packet.
        assert_eq!(run.next(false), Step::Encode);
        assert_eq!(run.packet(), None);
        run.encoded(b"zero-b");
        assert_eq!(run.next(true), Step::Encode);
    }

    #[test]
    fn packets_before_the_encoder_settled_never_become_the_silent_packet() {
        let mut run = SilenceRun::default();
        for _ in 0..SETTLE - 1 {
            assert_eq!(run.next(true), Step::Encode);
            run.encoded(b"same");
        }
        assert_eq!(run.packet(), None);
        // One sound frame in between starts the count again.
        assert_eq!(run.next(false), Step::Encode);
        for _ in 0..SETTLE - 1 {
            run.next(true);
            run.encoded(b"same");
        }
        assert_eq!(run.packet(), None);
        run.next(true);
        run.encoded(b"same");
        run.next(true);
        run.encoded(b"same");
        assert_eq!(run.packet(), Some(&b"same"[..]));
    }

    #[test]
    fn a_repeat_is_known_silent_only_after_the_same_bytes_decoded_silent_twice() {
        let mut rep = SilentRepeat::default();
        rep.decoded(b"p", Some((44_100, 1024, true)));
        // Once is not enough: the decoder's overlap from the packet before may have
        // cancelled what this one added.
        assert_eq!(rep.known(b"p"), None);
        rep.decoded(b"p", Some((44_100, 1024, true)));
        assert_eq!(rep.known(b"p"), Some((44_100, 1024)));
        assert_eq!(rep.known(b"q"), None);
        // Other bytes, sound, or no single frame: start again.
        rep.decoded(b"q", Some((44_100, 1024, true)));
        assert_eq!(rep.known(b"q"), None);
        assert_eq!(rep.known(b"p"), None);
        rep.decoded(b"q", Some((44_100, 1024, true)));
        assert_eq!(rep.known(b"q"), Some((44_100, 1024)));
        rep.decoded(b"q", Some((44_100, 1024, false)));
        assert_eq!(rep.known(b"q"), None);
        rep.decoded(b"q", Some((44_100, 1024, true)));
        rep.decoded(b"q", None);
        rep.decoded(b"q", Some((44_100, 1024, true)));
        assert_eq!(rep.known(b"q"), None);
        // The same bytes at another frame size are not a repeat.
        rep.decoded(b"q", Some((48_000, 1024, true)));
        assert_eq!(rep.known(b"q"), None);
    }

    #[test]
    fn silence_is_exact_zeros() {
        assert!(is_silent(&[[0.0, -0.0]; 8]));
        assert!(is_silent(&[]));
        assert!(!is_silent(&[[0.0, 0.0], [0.0, 1e-30]]));
    }
}
