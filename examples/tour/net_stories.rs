//! Stories of grove::net (they arrive with the net work).

/// Runs the net stories.
pub fn run() {}
