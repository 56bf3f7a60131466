package pgleasetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pglease/pglease/client/go/pglease"
)

func TestURLEscapesWhatItCarries(t *testing.T) {
	c := Config{Host: "::1", Port: 5432, User: "pglease_worker", Password: "p@ss/word", Database: "pglease_app_1"}
	if got, want := c.URL(), "postgresql://pglease_worker:p%40ss%2Fword@[::1]:5432/pglease_app_1"; got != want {
		t.Fatalf("URL %s, want %s", got, want)
	}
}

func TestSQLDirHashesTheDirectoryWhereverTheTestRuns(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "migrations"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "migrations", "001.sql"), []byte("CREATE TABLE t ();"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := pglease.Fingerprint([]string{"migrations"}, root, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(root, "migrations"), filepath.Join(root, "migrations") + "/"} {
		got, err := SQLDir(dir).Hash()
		if err != nil || got != want {
			t.Fatalf("SQLDir(%q).Hash() = %s, %v; want %s", dir, got, err, want)
		}
	}
	previous, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(previous) })
	if got, _ := SQLDir("migrations").Hash(); got != want {
		t.Fatalf("relative to the working directory: %s, want %s", got, want)
	}
}
