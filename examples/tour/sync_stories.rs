//! Stories of grove::sync (they arrive with the sync work).

/// Runs the sync stories.
pub fn run() {}
