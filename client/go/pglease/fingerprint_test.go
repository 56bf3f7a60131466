package pglease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root, name, content string) {
	t.Helper()
	path := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// layout is the files whose fingerprint the other languages' packages were checked against.
func layout(t *testing.T) string {
	root := t.TempDir()
	write(t, root, "migrations/0001_accounts.sql", "CREATE TABLE accounts (id bigserial PRIMARY KEY);\n")
	write(t, root, "migrations/0002_tasks.sql", "CREATE TABLE tasks (id bigserial PRIMARY KEY);\n")
	write(t, root, "migrations/nested/0003_seed.sql", "INSERT INTO accounts DEFAULT VALUES;\n")
	for _, ignored := range []string{".hidden.sql", ".cache/x.sql", "__pycache__/x.sql", "node_modules/x.sql", "compiled.pyc"} {
		write(t, root, "migrations/"+ignored, "ignored")
	}
	return root
}

// sharedVector is fingerprint(["migrations"], base, "sqlx migrate run") of layout's files, as
// the Python, JavaScript and Rust packages compute it.
const sharedVector = "e600a61bb2a35e276f8b8e6704a57ae9121f1d9a8bc59c2034e75bfbea41cf3d"

func TestFingerprintMatchesTheOtherLanguages(t *testing.T) {
	got, err := Fingerprint([]string{"migrations"}, layout(t), "sqlx migrate run")
	if err != nil {
		t.Fatal(err)
	}
	if got != sharedVector {
		t.Fatalf("fingerprint %s, the other languages give %s", got, sharedVector)
	}
}

func TestMigrationFilesAreNamedRelativeToTheBaseAndSorted(t *testing.T) {
	root := layout(t)
	files, err := MigrationFiles([]string{"./migrations/0002_tasks.sql", "migrations"}, root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := "migrations/0001_accounts.sql migrations/0002_tasks.sql migrations/nested/0003_seed.sql"
	if strings.Join(names, " ") != want {
		t.Fatalf("files %v, want %s", names, want)
	}
}

func TestAnyChangeOfNameContentOrCommandChangesTheFingerprint(t *testing.T) {
	root := layout(t)
	fp := func(command string) string {
		got, err := Fingerprint([]string{"migrations"}, root, command)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := fp("")
	if fp("other") == before {
		t.Fatal("the command is not part of the fingerprint")
	}
	write(t, root, "migrations/.more-hidden", "x")
	if fp("") != before {
		t.Fatal("a hidden file changed the fingerprint")
	}
	write(t, root, "migrations/0002_tasks.sql", "CREATE TABLE tasks ();\n")
	edited := fp("")
	if edited == before {
		t.Fatal("an edit did not change the fingerprint")
	}
	if err := os.Rename(filepath.Join(root, "migrations/0002_tasks.sql"), filepath.Join(root, "migrations/0009_tasks.sql")); err != nil {
		t.Fatal(err)
	}
	if fp("") == edited {
		t.Fatal("a rename did not change the fingerprint")
	}
}

func TestAMissingPathIsNamed(t *testing.T) {
	_, err := Fingerprint([]string{"db/migrations"}, t.TempDir(), "")
	if err == nil || !strings.Contains(err.Error(), `"db/migrations"`) {
		t.Fatalf("error %v does not name the path", err)
	}
}
