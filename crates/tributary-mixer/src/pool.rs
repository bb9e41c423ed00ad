//! Picture buffers reused instead of allocated per frame.
//!
//! A decoded tile or a composed canvas is shared as an `Arc<I420>`: the timeline, the mix
//! thread, the encoders (and FFmpeg, which holds the canvas while it encodes, see
//! `codec::VideoEncoder::encode`) may each hold it for a while. The pool keeps its own
//! handle on the last few pictures it gave out and hands one back out once every other
//! holder has let go of it (`Arc::get_mut` succeeds), so a steady stream of frames of one
//! size runs on a handful of buffers: no allocation, no zeroing, no page faults per frame.
//! Whoever takes a picture overwrites all of it; its old pixels are never read.

use std::sync::Arc;

use crate::frame::I420;

/// Up to `cap` pictures kept for reuse.
pub struct PicturePool {
    kept: Vec<Arc<I420>>,
    cap: usize,
    /// Where the next new picture replaces a kept one when every kept one is still held
    /// (round robin: the oldest).
    next: usize,
}

impl PicturePool {
    /// `cap`: how many pictures may be out at once and still come back (the frames a
    /// timeline buffers, plus the one being encoded). Beyond it, pictures are allocated
    /// as before and the pool forgets the oldest.
    pub fn new(cap: usize) -> Self {
        PicturePool {
            kept: Vec::new(),
            cap: cap.max(1),
            next: 0,
        }
    }

    /// A `width × height` picture no one else holds, filled by `draw` (which must write
    /// every pixel), then shared. An error from `draw` is passed on; the buffer stays in
    /// the pool.
    pub fn fill<E>(
        &mut self,
        width: u32,
        height: u32,
        draw: impl FnOnce(&mut I420) -> Result<(), E>,
    ) -> Result<Arc<I420>, E> {
        let free = self
            .kept
            .iter_mut()
            .position(|p| Arc::get_mut(p).is_some_and(|p| (p.width, p.height) == (width, height)));
        let at = match free {
            Some(i) => i,
            None => {
                let fresh = Arc::new(blank(width, height));
                if self.kept.len() < self.cap {
                    self.kept.push(fresh);
                    self.kept.len() - 1
                } else {
                    let i = self.next % self.cap;
                    self.next = self.next.wrapping_add(1);
                    self.kept[i] = fresh;
                    i
                }
            }
        };
        // The slot was just found unshared (or just made): get_mut cannot fail here, but
        // a fresh picture is the answer if it ever did.
        let slot = &mut self.kept[at];
        match Arc::get_mut(slot) {
            Some(pic) => draw(pic)?,
            None => {
                let mut pic = blank(width, height);
                draw(&mut pic)?;
                *slot = Arc::new(pic);
            }
        }
        Ok(slot.clone())
    }

    /// How many buffers the pool holds (for tests).
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

fn blank(width: u32, height: u32) -> I420 {
    I420::alloc(width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paint(v: u8) -> impl FnOnce(&mut I420) -> Result<(), ()> {
        move |p| {
            p.y.fill(v);
            p.u.fill(v);
            p.v.fill(v);
            Ok(())
        }
    }

    #[test]
    fn a_released_picture_is_reused_and_a_held_one_never_is() {
        let mut pool = PicturePool::new(4);
        let a = pool.fill(8, 6, paint(1)).unwrap();
        let a_ptr = a.y.as_ptr();
        // Still held: the next picture must be another buffer, and `a` keeps its pixels.
        let b = pool.fill(8, 6, paint(2)).unwrap();
        assert_ne!(b.y.as_ptr(), a_ptr);
        assert_eq!(a.y[0], 1);
        drop(a);
        // Released: its buffer comes back, repainted.
        let c = pool.fill(8, 6, paint(3)).unwrap();
        assert_eq!(c.y.as_ptr(), a_ptr);
        assert_eq!((c.y[0], c.u[0], c.v[0]), (3, 3, 3));
        assert_eq!(b.y[0], 2);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn sizes_are_kept_apart_and_the_pool_stays_bounded() {
        let mut pool = PicturePool::new(2);
        let small = pool.fill(4, 4, paint(1)).unwrap();
        drop(small);
        // A free buffer of the wrong size is not handed out for another size.
        let big = pool.fill(6, 4, paint(2)).unwrap();
        assert_eq!((big.width, big.height, big.u.len()), (6, 4, 6));
        // Every kept picture held: new ones are made, the pool does not grow past cap.
        let held: Vec<_> = (0..5).map(|i| pool.fill(6, 4, paint(i)).unwrap()).collect();
        assert_eq!(pool.len(), 2);
        for (i, p) in held.iter().enumerate() {
            assert_eq!(p.y[0], i as u8, "a held picture was overwritten");
        }
        assert_eq!(big.y[0], 2);
    }

    #[test]
    fn a_failed_draw_hands_nothing_out() {
        let mut pool = PicturePool::new(2);
        let r: Result<Arc<I420>, &str> = pool.fill(4, 4, |_| Err("no"));
        assert_eq!(r.unwrap_err(), "no");
        let ok = pool.fill(4, 4, paint(7)).unwrap();
        assert_eq!(ok.y[0], 7);
        assert_eq!(pool.len(), 1);
    }
}
