//! TODO: stage not yet written.
