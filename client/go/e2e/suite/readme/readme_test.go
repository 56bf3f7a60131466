// The quick start of client/go/README.md, as it is there (e2e/run checks that it still is).
package readme

import (
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

func TestAddingATaskCountsIt(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, pgleasetest.Config{Template: "app", Migrator: pgleasetest.SQLDir("../migrations")})
	if _, err := db.Exec("INSERT INTO tasks (project_id, title) VALUES (2, 'drivers')"); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := db.QueryRow("SELECT task_count FROM projects WHERE id = 2").Scan(&count); err != nil || count != 2 {
		t.Fatalf("task_count %d (%v), want 2: the template's task and this test's, no other test's", count, err)
	}
}
