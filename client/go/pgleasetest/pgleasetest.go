// Package pgleasetest gives every Go test a fresh PostgreSQL database of its own, leased from
// pgleased, in the shape of pgtestdb: New(t, conf) returns a *sql.DB, Custom(t, conf) the
// connection details. The template is built once, by whichever test process asks first, from
// conf.Migrator (the client-initialized flow: the migrator's Hash names the template version);
// every test gets a clone of it, released when the test ends, or kept for inspection when the
// test failed (its DSN is logged). A test that panics is recycled: Go reports it as not failed
// to its cleanups. A test process killed outright leaves its lease to the TTL.
//
//	func TestSignup(t *testing.T) {
//		t.Parallel()
//		db := pgleasetest.New(t, pgleasetest.Config{Template: "app", Migrator: pgleasetest.SQLDir("../migrations")})
//		...
//	}
//
// The database/sql driver is the caller's: import one, e.g. _ "github.com/jackc/pgx/v5/stdlib"
// for DriverName "pgx" (the default).
package pgleasetest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pglease/pglease/client/go/pglease"
)

// Migrator builds a template: Hash names its version (the same hash, the same schema), Migrate
// brings the empty database db to it.
type Migrator interface {
	Hash() (string, error)
	Migrate(ctx context.Context, db *sql.DB, conf Config) error
}

// Config says which database to lease, and, as Custom returns it, which one was leased.
type Config struct {
	// Template names the template; required.
	Template string
	// Migrator builds the template on first use; nil for a template configured on pgleased.
	Migrator Migrator
	// Server is pgleased's address; default $PGLEASE_URL, else http://127.0.0.1:7432. The token,
	// if the daemon has one, comes from $PGLEASE_TOKEN.
	Server string
	// DriverName is the database/sql driver New and the migrator connect with; default "pgx".
	DriverName string
	// TTL is how long the lease lasts; default the template's.
	TTL time.Duration
	// Wait is how long to wait for a clone when the pool is empty; default 2 minutes.
	Wait time.Duration
	// KeepFailed is how long pgleased keeps the database of a failed test for inspection; zero:
	// the template's keep_seconds; negative: recycle it like any other.
	KeepFailed time.Duration

	// The leased (or, in Migrate, the build) database: filled in by Custom.
	Host     string
	Port     int
	User     string
	Password string
	Database string
	LeaseID  string
}

// URL is the leased database's connection URI, postgresql://user:password@host:port/database.
func (c Config) URL() string {
	u := url.URL{
		Scheme: "postgresql",
		User:   url.UserPassword(c.User, c.Password),
		Host:   net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:   "/" + c.Database,
	}
	return u.String()
}

func (c Config) driver() string {
	if c.DriverName == "" {
		return "pgx"
	}
	return c.DriverName
}

// New leases a fresh database for the test and returns a *sql.DB of it, closed and released
// when the test ends.
func New(t testing.TB, conf Config) *sql.DB {
	t.Helper()
	leased := Custom(t, conf)
	db, err := sql.Open(leased.driver(), leased.URL())
	if err != nil {
		t.Fatalf("pgleasetest: sql.Open(%q): %v (forgotten driver import?)", leased.driver(), err)
	}
	// Cleanups run last-in first-out: the connections close before the lease ends.
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("pgleasetest: cannot connect to %s: %v", leased.Database, err)
	}
	return db
}

// Custom leases a fresh database for the test and returns its connection details, for
// connecting with something other than database/sql (pgxpool, say). The lease ends with the
// test; a failed test's database is kept (see Config.KeepFailed) and its DSN logged.
func Custom(t testing.TB, conf Config) *Config {
	t.Helper()
	if conf.Template == "" {
		t.Fatal("pgleasetest: Config.Template is required")
	}
	client, err := clientFor(conf.Server)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := ""
	if conf.Migrator != nil {
		if fingerprint, err = ensureTemplate(client, conf); err != nil {
			t.Fatal(err)
		}
	}
	wait := conf.Wait
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	// A lease of exactly the version this test ensured: another job's newer migrations of the
	// same template name, on the same pgleased, do not reach it.
	options := pglease.AcquireOptions{TTL: conf.TTL, Wait: wait, Owner: truncate(t.Name(), 200),
		Labels: map[string]string{"runner": "go-test"}, Fingerprint: fingerprint}
	lease, err := client.Acquire(context.Background(), conf.Template, options)
	if err != nil {
		t.Fatalf("pgleasetest: no database of template %s for %s: %v", conf.Template, t.Name(), err)
	}
	t.Cleanup(func() { release(t, client, lease, conf.KeepFailed) })
	leased := conf
	leased.Host, leased.Port, leased.User, leased.Password = lease.Host, lease.Port, lease.User, lease.Password
	leased.Database, leased.LeaseID = lease.Database, lease.ID
	return &leased
}

func release(t testing.TB, client *pglease.Client, lease *pglease.Lease, keepFailed time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if t.Failed() && keepFailed >= 0 {
		err := client.Release(ctx, lease.ID, pglease.ReleaseOptions{Mode: pglease.Keep, KeepFor: keepFailed})
		if err == nil {
			t.Logf("pglease: kept database %s of the failed test: %s", lease.Database, lease.DSN)
			return
		}
		t.Logf("pglease: could not keep database %s: %v", lease.Database, err)
	}
	if err := client.Release(ctx, lease.ID, pglease.ReleaseOptions{}); err != nil && !pglease.HasCode(err, pglease.CodeUnknownLease) {
		t.Errorf("pglease: could not release the lease on %s (it expires at %s): %v", lease.Database,
			lease.ExpiresAt.Format(time.RFC3339), err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

var clients sync.Map // server address -> *pglease.Client

func clientFor(server string) (*pglease.Client, error) {
	if found, ok := clients.Load(server); ok {
		return found.(*pglease.Client), nil
	}
	client, err := pglease.NewClient(pglease.Config{URL: server})
	if err != nil {
		return nil, err
	}
	found, _ := clients.LoadOrStore(server, client)
	return found.(*pglease.Client), nil
}

// ensured remembers, per process, each template version made ready (or the error that stopped
// it), so that the tests of one package ask pgleased once.
var ensured sync.Map // key -> *ensureOnce

type ensureOnce struct {
	once        sync.Once
	fingerprint string
	err         error
}

var clientFingerprint = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func ensureTemplate(client *pglease.Client, conf Config) (string, error) {
	hash, err := conf.Migrator.Hash()
	if err != nil {
		return "", fmt.Errorf("pgleasetest: the migrator's hash: %w", err)
	}
	if !clientFingerprint.MatchString(hash) {
		sum := sha256.Sum256([]byte(hash))
		hash = hex.EncodeToString(sum[:])
	}
	key := client.URL() + " " + conf.Template + " " + hash
	entry, _ := ensured.LoadOrStore(key, &ensureOnce{fingerprint: hash})
	once := entry.(*ensureOnce)
	once.once.Do(func() {
		_, once.err = client.BuildTemplate(context.Background(), conf.Template, hash, pglease.BuildOptions{},
			func(ctx context.Context, build *pglease.Build) error {
				target := conf
				target.Host, target.Port, target.User, target.Password = build.Host, build.Port, build.User, build.Password
				target.Database, target.LeaseID = build.Database, ""
				db, err := sql.Open(conf.driver(), target.URL())
				if err != nil {
					return fmt.Errorf("sql.Open(%q): %w (forgotten driver import?)", conf.driver(), err)
				}
				defer db.Close()
				return conf.Migrator.Migrate(ctx, db, target)
			})
		if once.err != nil {
			once.err = fmt.Errorf("pgleasetest: template %s (%s) is not ready: %w", conf.Template, client.URL(), once.err)
		}
	})
	return once.fingerprint, once.err
}
