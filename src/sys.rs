//! Empty: `syscall!` moved to `hub::sys` (imported explicitly by the modules allowed unsafe
//! code). This file stays only until `lib.rs` drops its `#[macro_use] mod sys;` line.
