package pgleasetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pglease/pglease/client/go/pglease"
)

// SQLDir is a Migrator that applies the .sql files of dir (and its subdirectories, hidden ones
// left out) in the lexical order of their paths, each in a transaction of its own. Its Hash is
// pglease.Fingerprint([]string{base(dir)}, parent(dir), ""), the value the Python, JavaScript
// and Rust packages compute for the same files, so it does not depend on which package's
// directory the test runs in.
func SQLDir(dir string) Migrator {
	return sqlDir{dir: dir}
}

type sqlDir struct {
	dir string
}

func (m sqlDir) parts() (base, name string, err error) {
	abs, err := filepath.Abs(m.dir)
	if err != nil {
		return "", "", err
	}
	return filepath.Dir(abs), filepath.Base(abs), nil
}

func (m sqlDir) Hash() (string, error) {
	base, name, err := m.parts()
	if err != nil {
		return "", err
	}
	return pglease.Fingerprint([]string{name}, base, "")
}

func (m sqlDir) Migrate(ctx context.Context, db *sql.DB, _ Config) error {
	base, name, err := m.parts()
	if err != nil {
		return err
	}
	files, err := pglease.MigrationFiles([]string{name}, base)
	if err != nil {
		return err
	}
	applied := 0
	for _, file := range files {
		if !strings.HasSuffix(file.Name, ".sql") {
			continue
		}
		content, err := os.ReadFile(file.Path)
		if err != nil {
			return err
		}
		if err := inTransaction(ctx, db, string(content)); err != nil {
			return fmt.Errorf("%s: %w", file.Name, err)
		}
		applied++
	}
	if applied == 0 {
		return fmt.Errorf("no .sql files in %s", m.dir)
	}
	return nil
}

func inTransaction(ctx context.Context, db *sql.DB, script string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, script); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
