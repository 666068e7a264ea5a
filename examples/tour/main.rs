//! The grove tour: every story of the project, one after another, with short narration.
//!
//! Run: `cargo run --release --example tour` (add `RUST_LOG=grove=debug` to watch the hub; add
//! `--features monkey` for the second half of the monkey-patching story).

mod core_stories;
mod monkey_stories;
mod net_stories;
mod sync_stories;

fn main() {
    env_logger::init();
    println!("== grove tour ==");
    core_stories::run();
    sync_stories::run();
    net_stories::run();
    monkey_stories::run();
    println!("\n== end of the tour ==");
}
