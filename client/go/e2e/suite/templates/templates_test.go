// Client-initialized templates: one caller builds, the others wait; a failed build lets the
// next caller build; a migrator's hash names the version.
package templates

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pglease"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

// unique is a template name of this test's own (at most 27 characters).
func unique(prefix string) string {
	return fmt.Sprintf("%s_%x_%x", prefix, os.Getpid(), time.Now().UnixNano()&0xffffffff)
}

func execute(ctx context.Context, dsn, statement string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, statement)
	return err
}

func TestExactlyOneOfManyConcurrentCallersBuilds(t *testing.T) {
	t.Parallel()
	name, client := unique("race"), suite.Client(t)
	var builds atomic.Int32
	var wg sync.WaitGroup
	versions := make([]*pglease.TemplateVersion, 6)
	errs := make([]error, len(versions))
	for i := range versions {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			versions[i], errs[i] = client.BuildTemplate(context.Background(), name, "race-v1", pglease.BuildOptions{},
				func(ctx context.Context, build *pglease.Build) error {
					builds.Add(1)
					time.Sleep(500 * time.Millisecond) // the others arrive meanwhile
					return execute(ctx, build.DSN, "CREATE TABLE built_once (n int)")
				})
		}(i)
	}
	wg.Wait()
	built := 0
	for i, v := range versions {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if v.Built {
			built++
		}
	}
	if builds.Load() != 1 || built != 1 {
		t.Fatalf("%d migrations ran, %d callers say they built", builds.Load(), built)
	}
	lease, err := client.Acquire(suite.Context(t), name, pglease.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Release(suite.Context(t), lease.ID, pglease.ReleaseOptions{})
	if err := execute(suite.Context(t), lease.DSN, "INSERT INTO built_once VALUES (1)"); err != nil {
		t.Fatalf("the clone lacks the built schema: %v", err)
	}
}

func TestAFailedBuildIsAbortedAndTheNextCallerBuilds(t *testing.T) {
	t.Parallel()
	name, client := unique("fail"), suite.Client(t)
	_, err := client.BuildTemplate(suite.Context(t), name, "v1", pglease.BuildOptions{}, func(ctx context.Context, build *pglease.Build) error {
		return execute(ctx, build.DSN, "CREATE TABLE broken (n no_such_type)")
	})
	var migration *pglease.MigrationError
	if !errors.As(err, &migration) || !strings.Contains(err.Error(), "no_such_type") {
		t.Fatalf("the migration's error was not reported: %v", err)
	}
	version, err := client.BuildTemplate(suite.Context(t), name, "v1", pglease.BuildOptions{Timeout: 5 * time.Second},
		func(ctx context.Context, build *pglease.Build) error {
			return execute(ctx, build.DSN, "CREATE TABLE fixed (n int)")
		})
	if err != nil || !version.Built {
		t.Fatalf("after an abort the next caller builds at once: %v %+v", err, version)
	}
}

// dirMigrator is SQLDir over a directory of this test's, counting its builds.
type dirMigrator struct {
	pgleasetest.Migrator
	builds *atomic.Int32
}

func (m dirMigrator) Migrate(ctx context.Context, db *sql.DB, conf pgleasetest.Config) error {
	m.builds.Add(1)
	if conf.Database == "" || conf.LeaseID != "" {
		return fmt.Errorf("Migrate got %+v, not the build database", conf)
	}
	return m.Migrator.Migrate(ctx, db, conf)
}

func TestANewMigrationIsANewVersionBuiltOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "migrations")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "001_one.sql"), []byte("CREATE TABLE one (n int); INSERT INTO one VALUES (1);"), 0o644)
	var builds atomic.Int32
	conf := pgleasetest.Config{Template: unique("dir"), Migrator: dirMigrator{pgleasetest.SQLDir(dir), &builds}}
	for range 3 {
		if n := suite.Value[int64](t, pgleasetest.New(t, conf), "SELECT count(*) FROM one"); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	}
	if builds.Load() != 1 {
		t.Fatalf("built %d times, want once", builds.Load())
	}
	os.WriteFile(filepath.Join(dir, "002_two.sql"), []byte("INSERT INTO one VALUES (2);"), 0o644)
	if n := suite.Value[int64](t, pgleasetest.New(t, conf), "SELECT count(*) FROM one"); n != 2 {
		t.Fatalf("the new version has %d rows, want 2", n)
	}
	if builds.Load() != 2 {
		t.Fatalf("built %d times, want twice", builds.Load())
	}
}

func TestTheSuitesHashNamesItsMigrationsRelativeToTheirDirectory(t *testing.T) {
	t.Parallel()
	got, err := pgleasetest.SQLDir(suite.MigrationsDir()).Hash()
	if err != nil {
		t.Fatal(err)
	}
	want, err := pglease.Fingerprint([]string{"migrations"}, filepath.Join(suite.MigrationsDir(), ".."), "")
	if err != nil || got != want {
		t.Fatalf("hash %s, want %s (%v)", got, want, err)
	}
}

func TestTwoBranchesOfOneTemplateEachLeaseTheirOwnVersion(t *testing.T) {
	t.Parallel()
	name := unique("branch")
	branch := func(table string, builds *atomic.Int32) pgleasetest.Config {
		dir := filepath.Join(t.TempDir(), "migrations")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "001.sql"), []byte("CREATE TABLE "+table+" (n int);"), 0o644)
		return pgleasetest.Config{Template: name, Migrator: dirMigrator{pgleasetest.SQLDir(dir), builds}}
	}
	var buildsA, buildsB atomic.Int32
	a, b := branch("branch_a", &buildsA), branch("branch_b", &buildsB)
	tables := func(conf pgleasetest.Config) string {
		return suite.Value[string](t, pgleasetest.New(t, conf),
			"SELECT string_agg(relname, ',') FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
	}
	// b is built after a: it is the template's newest version, and a lives on beside it.
	for _, step := range []struct {
		conf pgleasetest.Config
		want string
	}{{a, "branch_a"}, {b, "branch_b"}, {a, "branch_a"}, {b, "branch_b"}, {a, "branch_a"}} {
		if got := tables(step.conf); got != step.want {
			t.Fatalf("a test of the branch with %s got a database with %s", step.want, got)
		}
	}
	if buildsA.Load() != 1 || buildsB.Load() != 1 {
		t.Fatalf("built %d and %d times, want each once", buildsA.Load(), buildsB.Load())
	}
}
