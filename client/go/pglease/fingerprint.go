package pglease

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// skippedDirs are never walked into, besides hidden ones.
var skippedDirs = map[string]bool{"__pycache__": true, ".git": true, "node_modules": true, ".venv": true, ".pytest_cache": true}

// MigrationFile is one file a fingerprint covers.
type MigrationFile struct {
	// Name is the file's path relative to the base, /-separated.
	Name string
	Path string
}

// MigrationFiles lists the files paths name, relative to base, sorted by that name: files as
// they are, directories walked (hidden entries, caches and .pyc files left out; symbolic links
// to directories not followed).
func MigrationFiles(paths []string, base string) ([]MigrationFile, error) {
	absBase, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []MigrationFile
	add := func(path string) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(absBase, abs)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !seen[name] {
			seen[name] = true
			files = append(files, MigrationFile{Name: name, Path: abs})
		}
		return nil
	}
	for _, entry := range paths {
		path := entry
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, entry)
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("pglease: migration file or directory %q not found (relative to %s): %w", entry, base, err)
		}
		if !info.IsDir() {
			if err := add(path); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(path, func(walked string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if walked == path {
				return nil
			}
			name := d.Name()
			isDir := d.IsDir()
			if d.Type()&fs.ModeSymlink != 0 {
				// A link counts as what it points to; a link to a directory is not walked into.
				if target, err := os.Stat(walked); err == nil && target.IsDir() {
					return nil
				}
			}
			if isDir {
				if strings.HasPrefix(name, ".") || skippedDirs[name] {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".pyc") {
				return nil
			}
			return add(walked)
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// Fingerprint is 64 hex digits: the SHA-256 of command and of each file's name (relative to
// base) and contents, so that a change to either builds a new template version. The Python,
// JavaScript and Rust packages compute the same value for the same files.
func Fingerprint(paths []string, base, command string) (string, error) {
	files, err := MigrationFiles(paths, base)
	if err != nil {
		return "", err
	}
	digest := sha256.New()
	digest.Write([]byte("pglease-fingerprint-v1\x00command\x00" + command + "\x00"))
	for _, file := range files {
		content, err := os.ReadFile(file.Path)
		if err != nil {
			return "", err
		}
		digest.Write([]byte("file\x00" + file.Name + "\x00" + strconv.Itoa(len(content)) + "\x00"))
		digest.Write(content)
	}
	return hex.EncodeToString(digest.Sum(nil)), nil
}
