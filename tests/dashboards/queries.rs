//! Panel queries on seeded data (see mod.rs).
