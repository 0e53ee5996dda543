//! Wiring: capture → decode → defrag → flow → reassembly → app layer → detect → output.
//! No protocol logic lives here.
//!
//! [`Worker`] processes decoded packets of the flows it owns; [`run_pcap`] drives one
//! worker over a file (Suricata's `single` runmode) or several worker threads fed by the
//! reading thread ([`dispatch`]); [`run_live`] runs a live capture through a capture
//! thread and N workers, dropping (and counting) when a worker falls behind.

pub mod dispatch;
mod live;
mod offline;
mod worker;

pub use live::{FLUSH_EVERY, IDLE_TICK, LiveOptions, LiveSummary, run_live};
pub use offline::{PipelineError, RunOptions, RunSummary, file_stream_id, run_pcap};
pub use worker::{FlowExt, Worker};
