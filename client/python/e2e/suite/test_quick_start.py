import psycopg


def test_signup(pglease_dsn):  # a database fresh from the template, for this test alone
    with psycopg.connect(pglease_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (email) VALUES ('new@example.com')")
