//! 400 tests, each on a database leased from pgleased (`#[pglease::test]`).
include!(concat!(env!("OUT_DIR"), "/leased_cases.rs"));
