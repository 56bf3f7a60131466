// Reset on a lease that goes on, against the real daemon: the same lease, database and
// connection see the template's state again; a session inside a transaction or running a
// query holds the reset back with 409 sessions_busy; a change of the schema is cloned again
// under the same name.
package reset

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pglease"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

// lease leases a database of the suite's template for the test (pgleasetest.Custom) and opens a
// *sql.DB of exactly one connection to it: that connection keeps its session while the session
// lives. The plain client resets the lease by its ID.
func lease(t *testing.T) (*pglease.Client, *pglease.Lease, *sql.DB) {
	t.Helper()
	leased := pgleasetest.Custom(t, suite.Config())
	client := suite.Client(t)
	info, err := client.Lease(suite.Context(t), leased.LeaseID)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", leased.URL())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	return client, info, db
}

// write changes rows in four tables (one through a trigger) and a sequence.
func write(t *testing.T, db *sql.DB, round int) {
	t.Helper()
	for _, statement := range []string{
		fmt.Sprintf("INSERT INTO accounts (email) VALUES ('reset-%d@example.com')", round),
		fmt.Sprintf("UPDATE projects SET name = 'renamed %d'", round),
		"DELETE FROM tasks WHERE id = 3",
		"SELECT nextval('invoice_numbers')",
		fmt.Sprintf("INSERT INTO scratch (test) VALUES ('round %d')", round),
	} {
		if _, err := db.Exec(statement); err != nil {
			t.Fatalf("%s: %v", statement, err)
		}
	}
	if n := suite.Value[int64](t, db, "SELECT count(*) FROM accounts"); n != 4 {
		t.Fatalf("%d accounts after the write, want 4", n)
	}
}

func TestAResetUndoesTheWritesInPlaceOnTheSameConnection(t *testing.T) {
	t.Parallel()
	client, leased, db := lease(t)
	pid := suite.Value[int32](t, db, "SELECT pg_backend_pid()")
	suite.Claim(t, db)
	// Two tests in a row on one lease: write, reset, find the template's state.
	for round := 1; round <= 2; round++ {
		write(t, db, round)
		reset, err := client.Reset(suite.Context(t), leased.ID)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if reset.Reset != (pglease.ResetOutcome{Result: pglease.ResetInPlace}) {
			t.Fatalf("round %d: the reset answered %+v, not a reset in place", round, reset.Reset)
		}
		if reset.ID != leased.ID || reset.Database != leased.Database || reset.DSN != leased.DSN ||
			!reset.ExpiresAt.Equal(leased.ExpiresAt) {
			t.Fatalf("a reset changed the lease: %v -> %v", leased, &reset.Lease)
		}
		if got := suite.Value[int32](t, db, "SELECT pg_backend_pid()"); got != pid {
			t.Fatalf("round %d: the session changed from pid %d to %d: the idle one did not stay", round, pid, got)
		}
		suite.AssertPristine(t, db)
	}
}

// refused checks that the reset is refused with 409 sessions_busy naming pid in state.
func refused(t *testing.T, client *pglease.Client, id string, pid int32, state string) {
	t.Helper()
	_, err := client.Reset(suite.Context(t), id)
	var api *pglease.APIError
	if !errors.As(err, &api) || api.Status != 409 || api.Code != pglease.CodeSessionsBusy || api.RetryAfter != time.Second {
		t.Fatalf("expected 409 sessions_busy with Retry-After 1, got %v", err)
	}
	if named := fmt.Sprintf("pid %d (%s)", pid, state); !strings.Contains(api.Message, named) {
		t.Fatalf("the refusal does not name %q: %s", named, api.Message)
	}
}

func TestABusySessionHoldsTheResetBackWithSessionsBusy(t *testing.T) {
	t.Parallel()
	client, leased, db := lease(t)
	ctx := suite.Context(t)
	pid := suite.Value[int32](t, db, "SELECT pg_backend_pid()")

	// Inside a transaction, with a write of its own not yet committed.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE accounts SET email = 'mine@example.com' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	refused(t, client, leased.ID, pid, "idle in transaction")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	// Running a statement.
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "SELECT pg_sleep(3)")
		done <- err
	}()
	watcher, err := sql.Open("pgx", leased.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var state sql.NullString
		watcher.QueryRow("SELECT state FROM pg_stat_activity WHERE pid = $1", pid).Scan(&state)
		if state.String == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query of pid %d never showed as active", pid)
		}
	}
	refused(t, client, leased.ID, pid, "active")
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Idle again: the reset goes through, undoes the committed write, and the session stays.
	reset, err := client.Reset(ctx, leased.ID)
	if err != nil || reset.Reset.Result != pglease.ResetInPlace {
		t.Fatalf("an idle session lets the reset through: %v, %v", reset, err)
	}
	if got := suite.Value[string](t, db, "SELECT email || ' ' || pg_backend_pid() FROM accounts WHERE id = 1"); got != fmt.Sprintf("ada@example.com %d", pid) {
		t.Fatalf("after the reset: %s", got)
	}
}

func TestASchemaChangeIsClonedAgainUnderTheSameName(t *testing.T) {
	t.Parallel()
	client, leased, db := lease(t)
	ctx := suite.Context(t)
	conn, err := db.Conn(ctx) // the one connection, held
	if err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for _, statement := range []string{"CREATE TABLE private_table (n int)", "INSERT INTO accounts (email) VALUES ('ddl@example.com')"} {
		if _, err := conn.ExecContext(ctx, statement); err != nil {
			t.Fatalf("%s: %v", statement, err)
		}
	}
	reset, err := client.Reset(ctx, leased.ID)
	if err != nil {
		t.Fatal(err)
	}
	if reset.Reset.Result != pglease.ResetReclone || reset.Reset.Reason == "" {
		t.Fatalf("DDL cannot be undone in place, and a reclone says why: %+v", reset.Reset)
	}
	if reset.ID != leased.ID || reset.Database != leased.Database || reset.DSN != leased.DSN {
		t.Fatalf("a reset changed the lease: %v -> %v", leased, &reset.Lease)
	}
	// The reclone ended the session; the next connection, to the same name, finds it fresh.
	if err := conn.PingContext(ctx); err == nil {
		t.Fatal("the session on the recloned database is still there")
	}
	conn.Close()
	if got := suite.Value[int32](t, db, "SELECT pg_backend_pid()"); got == pid {
		t.Fatalf("pid %d survived a reclone", pid)
	}
	suite.Claim(t, db)
}
