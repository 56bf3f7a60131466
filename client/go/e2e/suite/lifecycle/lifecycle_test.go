// However a test ends, its lease ends: a failed test's database is kept for inspection (or
// recycled when asked), a panicking test's lease is released, a test process killed with
// SIGKILL leaves its lease to the TTL. Each case runs a helper test of this binary in a process of its own and looks at the
// lease from outside.
package lifecycle

import (
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pglease"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

// helper is set for the helpers' processes only.
const helper = "PGLEASE_E2E_HELPER"

// leaseForHelper leases as the helper's config says, notes the lease where the parent finds it,
// and writes the helper's name into the database.
func leaseForHelper(t *testing.T) *sql.DB {
	if os.Getenv(helper) == "" {
		t.Skip("a helper, run by the test named after it")
	}
	conf := suite.Config()
	if ttl := os.Getenv("PGLEASE_E2E_TTL"); ttl != "" {
		conf.TTL, _ = time.ParseDuration(ttl)
	}
	if os.Getenv("PGLEASE_E2E_RECYCLE_FAILED") != "" {
		conf.KeepFailed = -1
	}
	leased := pgleasetest.Custom(t, conf)
	db, err := sql.Open("pgx", leased.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("INSERT INTO scratch (test) VALUES ($1)", t.Name()); err != nil {
		t.Fatal(err)
	}
	note := leased.LeaseID + "\n" + leased.Database + "\n" + leased.URL() + "\n"
	if err := os.WriteFile(os.Getenv("PGLEASE_E2E_NOTE"), []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestHelperFails(t *testing.T) {
	leaseForHelper(t)
	t.Error("this test fails on purpose")
}

func TestHelperPanics(t *testing.T) {
	leaseForHelper(t)
	panic("this test panics on purpose")
}

func TestHelperIsKilled(t *testing.T) {
	leaseForHelper(t)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
	t.Fatal("SIGKILL did not end the process")
}

type helperRun struct {
	err                    error
	output                 string
	leaseID, database, url string
}

func runHelper(t *testing.T, name string, env ...string) helperRun {
	t.Helper()
	note := filepath.Join(t.TempDir(), "note")
	command := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	command.Env = append(os.Environ(), helper+"=1", "PGLEASE_E2E_NOTE="+note, "PGLEASE_E2E_RECORD=")
	command.Env = append(command.Env, env...)
	output, err := command.CombinedOutput()
	noted, readErr := os.ReadFile(note)
	if readErr != nil {
		t.Fatalf("%s noted no lease (%v):\n%s", name, readErr, output)
	}
	lines := strings.Split(string(noted), "\n")
	return helperRun{err: err, output: string(output), leaseID: lines[0], database: lines[1], url: lines[2]}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return 0
}

func assertLeaseEnded(t *testing.T, id string) {
	t.Helper()
	if _, err := suite.Client(t).Lease(suite.Context(t), id); !pglease.HasCode(err, pglease.CodeUnknownLease) {
		t.Fatalf("the helper's lease did not end with it: %v", err)
	}
}

func scratchOf(t *testing.T, url string) []string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var marks []string
	rows, err := db.Query("SELECT test FROM scratch")
	if err != nil {
		t.Fatalf("the kept database takes no queries: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mark string
		rows.Scan(&mark)
		marks = append(marks, mark)
	}
	return marks
}

func TestAFailingTestKeepsItsDatabaseAndLogsItsDSN(t *testing.T) {
	t.Parallel()
	run := runHelper(t, "TestHelperFails")
	if exitCode(run.err) != 1 || !strings.Contains(run.output, "this test fails on purpose") {
		t.Fatalf("the helper did not fail as planned (%v):\n%s", run.err, run.output)
	}
	said := "pglease: kept database " + run.database + " of the failed test: postgresql://"
	if !strings.Contains(run.output, said) {
		t.Fatalf("the helper did not log %q:\n%s", said, run.output)
	}
	assertLeaseEnded(t, run.leaseID)
	if marks := scratchOf(t, run.url); len(marks) != 1 || marks[0] != "TestHelperFails" {
		t.Fatalf("the kept database holds %v, not the failed test's row", marks)
	}
}

// Go tells a test's cleanups that it did not fail while it panics (t.Failed() is false), so the
// database of a panicking test is recycled rather than kept; what matters is that its lease ends.
func TestAPanickingTestReleasesItsLease(t *testing.T) {
	t.Parallel()
	run := runHelper(t, "TestHelperPanics")
	if exitCode(run.err) != 2 || !strings.Contains(run.output, "this test panics on purpose") {
		t.Fatalf("the helper did not panic as planned (%v):\n%s", run.err, run.output)
	}
	// With a TTL of minutes, a lease gone at once was released, not expired.
	assertLeaseEnded(t, run.leaseID)
}

// Recycled, the failed test's database comes back to the template's state: reset in place
// under its own name (or, when that cannot be proved exact, dropped and cloned again).
func TestAFailedTestsDatabaseIsRecycledWhenAsked(t *testing.T) {
	t.Parallel()
	run := runHelper(t, "TestHelperFails", "PGLEASE_E2E_RECYCLE_FAILED=1")
	if exitCode(run.err) != 1 || strings.Contains(run.output, "pglease: kept database") {
		t.Fatalf("the helper kept its database though told not to (%v):\n%s", run.err, run.output)
	}
	assertLeaseEnded(t, run.leaseID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, _ := sql.Open("pgx", run.url)
		var left int64
		err := db.QueryRow("SELECT count(*) FROM scratch WHERE test = 'TestHelperFails'").Scan(&left)
		db.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			return // invalid_catalog_name: the clone was dropped
		}
		if err == nil && left == 0 {
			return // reset in place: the helper's row is gone
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recycled database %s still holds the failed test's row (%d, %v)", run.database, left, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestAKilledTestLeavesALeaseThatExpires(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Second
	started := time.Now()
	run := runHelper(t, "TestHelperIsKilled", "PGLEASE_E2E_TTL="+ttl.String())
	var exit *exec.ExitError
	if !errors.As(run.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the helper was not killed: %v\n%s", run.err, run.output)
	}
	client := suite.Client(t)
	if _, err := client.Lease(suite.Context(t), run.leaseID); err != nil {
		t.Fatalf("nobody released the killed test's lease, yet it is gone: %v", err)
	}
	for {
		_, err := client.Lease(suite.Context(t), run.leaseID)
		if pglease.HasCode(err, pglease.CodeUnknownLease) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(started) > ttl+3*time.Second {
			t.Fatalf("the lease outlived its TTL of %s", ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lasted := time.Since(started); lasted < ttl-time.Second {
		t.Fatalf("the lease ended after %s, before its TTL of %s", lasted, ttl)
	}
}
