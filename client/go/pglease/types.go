package pglease

import (
	"fmt"
	"time"
)

// Lease is a lease as pgleased describes it: everything a worker needs to use its database.
type Lease struct {
	ID          string            `json:"id"`
	Template    string            `json:"template"`
	Fingerprint string            `json:"fingerprint"`
	Database    string            `json:"database"`
	DSN         string            `json:"dsn"`
	Host        string            `json:"host"`
	Port        int               `json:"port"`
	User        string            `json:"user"`
	Password    string            `json:"password"`
	Owner       string            `json:"owner"`
	Labels      map[string]string `json:"labels"`
	AcquiredAt  time.Time         `json:"acquired_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	Backend     string            `json:"backend"`
}

// String leaves the password out.
func (l *Lease) String() string {
	return fmt.Sprintf("lease %s of %s (database %s, expires %s)", l.ID, l.Template, l.Database,
		l.ExpiresAt.Format(time.RFC3339))
}

// How a reset made the leased database fresh (ResetOutcome.Result).
const (
	// ResetInPlace: only what the lease wrote was undone; sessions idle outside a transaction
	// stayed connected and now see the template's state.
	ResetInPlace = "reset"
	// ResetReclone: the database was dropped and cloned again under the same name (DDL, a
	// prepared transaction, or a template that recycles by reclone); its sessions were ended.
	ResetReclone = "reclone"
)

// ResetOutcome says what POST /v1/leases/{id}/reset did.
type ResetOutcome struct {
	// Result is ResetInPlace or ResetReclone.
	Result string `json:"result"`
	// Reason says why it was cloned again; empty after a reset in place.
	Reason string `json:"reason"`
}

// ResetLease is the answer to Reset: the same lease (id, database, DSN and expiry unchanged),
// and how its database was made fresh.
type ResetLease struct {
	Lease
	Reset ResetOutcome `json:"reset"`
}

// String says how the reset went, and leaves the password out.
func (r *ResetLease) String() string {
	if r.Reset.Reason == "" {
		return fmt.Sprintf("%s: %s", r.Lease.String(), r.Reset.Result)
	}
	return fmt.Sprintf("%s: %s (%s)", r.Lease.String(), r.Reset.Result, r.Reset.Reason)
}

// LeaseSummary is a live lease as GET /v1/leases lists it: without its id, DSN and password.
type LeaseSummary struct {
	Template    string            `json:"template"`
	Fingerprint string            `json:"fingerprint"`
	Database    string            `json:"database"`
	Host        string            `json:"host"`
	Port        int               `json:"port"`
	User        string            `json:"user"`
	Owner       string            `json:"owner"`
	Labels      map[string]string `json:"labels"`
	AcquiredAt  time.Time         `json:"acquired_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	Backend     string            `json:"backend"`
}

// Pool is the clones of a template's versions, by state, and the pool's settings.
type Pool struct {
	Idle     int `json:"idle"`
	Leased   int `json:"leased"`
	Creating int `json:"creating"`
	Dropping int `json:"dropping"`
	Kept     int `json:"kept"`
	// Resetting counts released or expired clones being reset in place to the template's state.
	Resetting int `json:"resetting"`
	Waiters   int `json:"waiters"`
	MinIdle   int `json:"min_idle"`
	MaxTotal  int `json:"max_total"`
	// Recycle is how a released clone is made fresh: "reset" (in place, falling back to a
	// reclone when that cannot be proved exact) or "reclone" (dropped and cloned again).
	Recycle string `json:"recycle"`
}

// Template is a template: its state (building, ready, failed), ready fingerprint and pool.
type Template struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
	Error       string `json:"error"`
	Source      string `json:"source"`
	Pool        Pool   `json:"pool"`
}

// Build is an empty template database for the caller to migrate, held by a build lease.
type Build struct {
	ID          string    `json:"id"`
	Template    string    `json:"template"`
	Fingerprint string    `json:"fingerprint"`
	Database    string    `json:"database"`
	DSN         string    `json:"dsn"`
	Host        string    `json:"host"`
	Port        int       `json:"port"`
	User        string    `json:"user"`
	Password    string    `json:"password"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Ensured is the answer to EnsureTemplate: State "ready", or "build" with Build set when this
// caller must migrate Build.DSN and then finalize or abort.
type Ensured struct {
	State    string   `json:"state"`
	Template Template `json:"template"`
	Build    *Build   `json:"build"`
}

// AcquireOptions says what an acquire asks for; zero values take the template's settings.
type AcquireOptions struct {
	// TTL is the lease's duration (whole seconds, at least 1).
	TTL time.Duration
	// Wait is how long the server may wait for a clone; zero: the template's wait_seconds.
	Wait time.Duration
	// Owner names who holds the lease (at most 200 characters).
	Owner  string
	Labels map[string]string
	// Fingerprint asks for exactly that template version (as given to EnsureTemplate, or as a
	// lease reports it). Sent only when set; pgleased answers 404 unknown_version when it knows
	// no such version, 503 template_building while it is built.
	Fingerprint string
}

// ReleaseMode says what becomes of a clone when its lease ends.
type ReleaseMode string

const (
	// Recycle brings the clone back to the template's state for the next lease: reset in place,
	// or dropped and cloned again (the template's recycle setting).
	Recycle ReleaseMode = "recycle"
	// Reuse returns the clone to the pool as it is, its sessions ended: the worker wrote nothing.
	Reuse ReleaseMode = "reuse"
	// Keep keeps the clone for inspection for a while, then drops it.
	Keep ReleaseMode = "keep"
)

// ReleaseOptions says how a lease ends; the zero value recycles.
type ReleaseOptions struct {
	Mode ReleaseMode
	// KeepFor is how long to keep the clone with Mode Keep; zero: the template's keep_seconds.
	KeepFor time.Duration
}

// EnsureOptions bounds one ensure: how long to wait for another caller's build (at most 600 s;
// zero: the server's 30 s), and this caller's build lease (zero: the server's 600 s).
type EnsureOptions struct {
	Wait     time.Duration
	BuildTTL time.Duration
}

func seconds(d time.Duration, minimum int64) int64 {
	s := int64(d.Round(time.Second) / time.Second)
	if s < minimum {
		return minimum
	}
	return s
}
