import pytest
import psycopg


@pytest.mark.parametrize("n", range(200))
def test_fresh_database(n, fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO scratch (writer) VALUES (%s)", (str(n),))
        conn.execute("INSERT INTO tasks (project_id, title) VALUES (1, 'bench')")
        assert conn.execute("SELECT count(*) FROM scratch").fetchone()[0] == 1
        assert conn.execute("SELECT task_count FROM projects WHERE id = 1").fetchone()[0] == 3
