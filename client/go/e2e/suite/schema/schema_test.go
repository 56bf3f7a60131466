// Every test gets a whole copy of the template: tables, rows, sequences, triggers and foreign
// keys, owned by the role it connects as.
package schema

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

func TestTheDatabaseIsTheTemplateAsMigrated(t *testing.T) {
	t.Parallel()
	suite.Claim(t, pgleasetest.New(t, suite.Config()))
}

func TestTheTriggerCountsTasks(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	if _, err := db.Exec("INSERT INTO tasks (project_id, title) VALUES (2, 'drivers'), (2, 'memory')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM tasks WHERE title = 'parser'"); err != nil {
		t.Fatal(err)
	}
	if got := suite.Value[string](t, db, "SELECT string_agg(task_count::text, ',' ORDER BY id) FROM projects"); got != "1,3" {
		t.Fatalf("task counts %s, want 1,3", got)
	}
}

func TestForeignKeysRefuseOrphans(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	_, err := db.Exec("INSERT INTO projects (account_id, name) VALUES (99, 'orphan')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Fatalf("an orphan project was not refused with 23503: %v", err)
	}
}

func TestSequencesContinueFromTheTemplate(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	if id := suite.Value[int64](t, db, "INSERT INTO accounts (email) VALUES ('new@example.com') RETURNING id"); id != 4 {
		t.Fatalf("the next account id is %d, want 4", id)
	}
	if n := suite.Value[int64](t, db, "SELECT nextval('invoice_numbers')"); n != 1000 {
		t.Fatalf("the next invoice number is %d, want 1000", n)
	}
}

func TestTheLeaseRoleOwnsEverythingAndMayChangeIt(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	if n := suite.Value[int64](t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user"); n != 0 {
		t.Fatalf("%d tables belong to another role", n)
	}
	for _, ddl := range []string{"ALTER TABLE tasks ADD COLUMN due date", "CREATE TABLE notes (body text)", "TRUNCATE tasks"} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	if suite.Value[bool](t, db, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") {
		t.Fatal("workers must never get a superuser")
	}
}

func TestARolledBackTransactionLeavesNothing(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("DELETE FROM tasks"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := suite.Value[int64](t, db, "SELECT count(*) FROM tasks"); n != 3 {
		t.Fatalf("%d tasks after the rollback, want 3", n)
	}
}

func TestCustomGivesTheConnectionDetails(t *testing.T) {
	t.Parallel()
	conf := pgleasetest.Custom(t, suite.Config())
	if conf.Database == "" || conf.LeaseID == "" || conf.Port == 0 {
		t.Fatalf("Custom returned %+v", conf)
	}
	lease, err := suite.Client(t).Lease(suite.Context(t), conf.LeaseID)
	if err != nil {
		t.Fatalf("the lease is live while the test runs: %v", err)
	}
	if lease.Database != conf.Database || lease.Owner != t.Name() || lease.Labels["runner"] != "go-test" {
		t.Fatalf("lease %+v for %+v", lease, conf)
	}
	db := pgleasetest.New(t, suite.Config())
	other := suite.Claim(t, db)
	if other == conf.Database {
		t.Fatal("two leases of one test share a database")
	}
}
