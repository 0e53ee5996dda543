//! The Tocsin correlator: ingest, dedup, store, tickets, API.
