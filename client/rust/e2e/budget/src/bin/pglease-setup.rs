//! The nextest setup script of the budget tests (.config/nextest.toml).

fn main() -> std::process::ExitCode {
    pglease::nextest::setup(&[pglease::sqlx_template!("budget")])
}
