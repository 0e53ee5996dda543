//! Output: alerts as EVE JSON lines, to a file and (optionally) to the correlator through
//! a durable on-disk spool.

pub mod eve;
