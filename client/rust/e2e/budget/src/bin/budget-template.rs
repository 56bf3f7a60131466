//! Creates the own-database fixture's template database on $BUDGET_ADMIN_URL.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    pglease_e2e_budget::own::create_template().await
}
