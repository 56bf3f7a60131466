//! The body every budget test runs, and the hand-rolled fixture it is compared with.

use std::time::Duration;

use sqlx::PgPool;

pub mod own;

/// A data-layer test of a service: three queries at once, a transaction of writes, some work of
/// its own, and a check that the database holds no other test's writes.
pub async fn exercise(pool: &PgPool, case: u32) {
    let case = i32::try_from(case).unwrap();
    let (customers, orders, revenue) = tokio::join!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM customers").fetch_one(pool),
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders").fetch_one(pool),
        sqlx::query_scalar::<_, i64>("SELECT sum(total_cents)::bigint FROM orders").fetch_one(pool),
    );
    assert_eq!((customers.unwrap(), orders.unwrap(), revenue.unwrap()), (50, 500, 12_525_000));
    let mut transaction = pool.begin().await.unwrap();
    for n in 0..10 {
        sqlx::query("INSERT INTO orders (customer_id, case_number, total_cents) VALUES ($1, $2, $3)")
            .bind(1 + i64::from(n))
            .bind(case)
            .bind(i64::from(n) * 250)
            .execute(&mut *transaction)
            .await
            .unwrap();
    }
    transaction.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mine, others) = tokio::join!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE case_number = $1").bind(case).fetch_one(pool),
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE case_number NOT IN (0, $1)")
            .bind(case)
            .fetch_one(pool),
    );
    assert_eq!((mine.unwrap(), others.unwrap()), (10, 0), "case {case} sees another test's orders");
}
