//! The nextest setup script of this suite (.config/nextest.toml).

fn main() -> std::process::ExitCode {
    pglease::nextest::setup(&[pglease::sqlx_template!("app")])
}
