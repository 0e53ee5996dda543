//! Fuzz the agency directory parser (`tocsin agency load`): arbitrary text must never panic.
//! A rejected file names lines inside the file; an accepted one is a tree: one root, every
//! other agency's parent present, levels one below the parent's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_correlator::agency::file::parse_directory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_directory("fuzz.toml", text, std::path::Path::new("/nonexistent")) {
        Err(e) => {
            let lines = text.lines().count().max(1);
            for p in &e.problems {
                assert!(p.line <= lines + 1, "line {} of {lines}", p.line);
            }
        }
        Ok(agencies) => {
            assert_eq!(agencies.iter().filter(|a| a.parent.is_none()).count(), 1);
            for a in &agencies {
                if let Some(p) = &a.parent {
                    let parent = agencies.iter().find(|x| &x.code == p).expect("parent present");
                    assert_eq!(a.level, parent.level + 1);
                }
            }
        }
    }
});
