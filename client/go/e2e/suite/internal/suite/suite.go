// Package suite is what the e2e packages share: the template, what "fresh from the template"
// means for its schema, and a record of which database each test got, for the driver
// (e2e/run) to check that no two tests shared one.
package suite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/pglease/pglease/client/go/pglease"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

// Template is the suite's template, built from migrations/.
const Template = "app"

// MigrationsDir is the suite's migrations/, wherever the test runs.
func MigrationsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "migrations")
}

// Config is the suite's pgleasetest configuration.
func Config() pgleasetest.Config {
	return pgleasetest.Config{Template: Template, Migrator: pgleasetest.SQLDir(MigrationsDir())}
}

// Client is a plain client of the daemon the driver started ($PGLEASE_URL).
func Client(t testing.TB) *pglease.Client {
	t.Helper()
	client, err := pglease.NewClient(pglease.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func strings1(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Value is the single value of query.
func Value[T any](t testing.TB, db *sql.DB, query string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func same(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// AssertPristine checks that the database is exactly as migrations/ leaves it.
func AssertPristine(t testing.TB, db *sql.DB) {
	t.Helper()
	same(t, "tables", strings1(t, db, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
		[]string{"accounts", "projects", "scratch", "tasks"})
	same(t, "accounts", strings1(t, db, "SELECT email FROM accounts ORDER BY id"),
		[]string{"ada@example.com", "grace@example.com", "linus@example.com"})
	same(t, "projects", strings1(t, db, "SELECT name || ':' || task_count FROM projects ORDER BY id"),
		[]string{"compiler:2", "kernel:1"})
	same(t, "rows of other tests", Value[int64](t, db, "SELECT count(*) FROM scratch"), int64(0))
	same(t, "accounts_id_seq", Value[string](t, db, "SELECT last_value || ',' || is_called FROM accounts_id_seq"), "3,true")
	same(t, "invoice_numbers", Value[string](t, db, "SELECT last_value || ',' || is_called FROM invoice_numbers"), "1000,false")
}

// Claim marks the database as this test's, lets other tests run meanwhile, and checks that no
// other test's mark appeared: a test sharing its database with another would see it. It
// records the database for the driver and returns its name.
func Claim(t testing.TB, db *sql.DB) string {
	t.Helper()
	started := time.Now()
	AssertPristine(t, db)
	database := Value[string](t, db, "SELECT current_database()::text")
	if _, err := db.Exec("INSERT INTO scratch (test) VALUES ($1)", t.Name()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	same(t, "marks in "+database, strings1(t, db, "SELECT test FROM scratch"), []string{t.Name()})
	Record(t, database, started)
	return database
}

// Record writes `test database pid started_ms ended_ms` to $PGLEASE_E2E_RECORD/, when set.
func Record(t testing.TB, database string, started time.Time) {
	dir := os.Getenv("PGLEASE_E2E_RECORD")
	if dir == "" {
		return
	}
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	line := fmt.Sprintf("%s %s %d %d %d\n", name, database, os.Getpid(), started.UnixMilli(), time.Now().UnixMilli())
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", name, os.Getpid())), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Context is a context for one call of a test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
