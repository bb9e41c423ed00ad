//! Embeds the console's player (mpegts.js, from npm; `scripts/setup.sh` runs `npm ci` in
//! `console/`) into the binary. Without it the build still succeeds: the console then
//! says that previews were not built in, instead of failing to load a script.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let player = dir.join("console/node_modules/mpegts.js/dist/mpegts.js");
    println!("cargo:rerun-if-changed={}", player.display());
    println!("cargo:rerun-if-changed=console/package-lock.json");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("mpegts.js");
    let bytes = match std::fs::read(&player) {
        Ok(b) => b,
        Err(_) => {
            println!(
                "cargo:warning=console: {} is missing (run scripts/setup.sh): the console's previews are not built in",
                player.display()
            );
            b"/* mpegts.js was not installed when this binary was built */\n".to_vec()
        }
    };
    if let Err(e) = std::fs::write(&out, bytes) {
        panic!("writing {}: {e}", out.display());
    }
}
