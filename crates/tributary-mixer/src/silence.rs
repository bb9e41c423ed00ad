//! A stretch of digital silence is encoded once, then its packet is repeated (AAC-LC).
//!
//! Why: an audio room whose speakers are muted, absent or between turns on a noise gate
//! mixes exact zeros, and FFmpeg's AAC encoder spends as much on a silent frame as on
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
    fn silence_is_exact_zeros() {
        assert!(is_silent(&[[0.0, -0.0]; 8]));
        assert!(is_silent(&[]));
        assert!(!is_silent(&[[0.0, 0.0], [0.0, 1e-30]]));
    }
}
