"""The README's recipes, one test each: psycopg 3, psycopg2, SQLAlchemy 2, Django."""

import sqlalchemy


def test_psycopg3(conn):
    conn.execute("INSERT INTO scratch (writer) VALUES ('psycopg')")
    assert conn.execute("SELECT writer FROM scratch").fetchall() == [("psycopg",)]


def test_psycopg2(conn2):
    with conn2, conn2.cursor() as cursor:
        cursor.execute("INSERT INTO projects (account_id, name) VALUES (3, 'editor') RETURNING id")
        assert cursor.fetchone()[0] == 3
        cursor.execute("SELECT count(*) FROM projects")
        assert cursor.fetchone()[0] == 3


def test_sqlalchemy_engine(engine):
    metadata = sqlalchemy.MetaData()
    accounts = sqlalchemy.Table("accounts", metadata, autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(accounts.insert().values(email="orm@example.com"))
        emails = connection.execute(sqlalchemy.select(accounts.c.email).order_by(accounts.c.id)).scalars().all()
    assert emails == ["ada@example.com", "grace@example.com", "linus@example.com", "orm@example.com"]


def test_django_orm(django_db, pglease_db):
    from django.db import models

    class Account(models.Model):
        email = models.TextField(unique=True)

        class Meta:
            app_label = "e2e"
            db_table = "accounts"
            managed = False

    Account.objects.create(email="django@example.com")
    assert Account.objects.count() == 4
    assert list(Account.objects.order_by("-id").values_list("id", "email")[:1]) == [
        (4, "django@example.com")]
    with django_db.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == pglease_db.database


def test_dsn_names_this_tests_database(pglease_dsn, pglease_db, conn):
    assert pglease_dsn == pglease_db.dsn
    assert conn.execute("SELECT current_database()").fetchone()[0] == pglease_db.database
