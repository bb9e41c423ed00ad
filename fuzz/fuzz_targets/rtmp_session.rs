//! Bytes from an RTMP peer after the handshake: chunk reader, protocol control, AMF0
//! commands and metadata. The first byte picks how the input is split into reads, so
//! partial-chunk paths are exercised too.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tributary_live::chunk::Limits;
use tributary_live::session::ServerSession;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let step = (split as usize % 64) + 1;
    let mut s = ServerSession::new(Limits {
        max_message: 1 << 20,
        max_streams: 16,
        max_buffered: 2 << 20,
    });
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        if s.feed(&mut buf, &mut events).is_err() {
            return;
        }
        // A publish is accepted whenever asked, so media paths run as well.
        for e in events.drain(..) {
            if let tributary_live::session::SessionEvent::Publish { name } = e {
                s.accept_publish(&name);
            }
        }
        let _ = s.take_output();
    }
});
