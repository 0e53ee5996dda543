//! Output: EVE records out of the sensor, to files and, durably, to a correlator
//! (`spool` keeps alerts on disk until `forward` has delivered them).

pub mod eve;
pub mod forward;
pub mod spool;
