//! The same 400 tests, each making its own database from a template with admin connections, as
//! a hand-rolled fixture does (pglease_e2e_budget::own).
include!(concat!(env!("OUT_DIR"), "/own_database_cases.rs"));
