//! Writes the 400 test cases of each fixture into OUT_DIR.

use std::fmt::Write as _;

const CASES: u32 = 400;

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let (mut leased, mut own) = (String::new(), String::new());
    for case in 1..=CASES {
        writeln!(
            leased,
            "#[pglease::test(template = \"budget\")]\nasync fn case_{case:03}(pool: sqlx::PgPool) {{ pglease_e2e_budget::exercise(&pool, {case}).await }}"
        )
        .unwrap();
        writeln!(
            own,
            "#[tokio::test]\nasync fn case_{case:03}() {{\n    let db = pglease_e2e_budget::own::OwnDatabase::create({case}).await;\n    pglease_e2e_budget::exercise(&db.pool, {case}).await;\n    db.drop().await;\n}}"
        )
        .unwrap();
    }
    std::fs::write(out.join("leased_cases.rs"), leased).unwrap();
    std::fs::write(out.join("own_database_cases.rs"), own).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
