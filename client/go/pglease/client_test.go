package pglease

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fake answers with handler and records what it was asked.
func fake(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	client, err := NewClient(Config{URL: server.URL + "/", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

const leaseJSON = `{"id":"0123456789abcdef0123456789abcdef","template":"app","fingerprint":"f","database":"db1",
"dsn":"postgresql://u:p@127.0.0.1:5/db1","host":"127.0.0.1","port":5,"user":"u","password":"p","owner":"me",
"labels":{},"acquired_at":"2026-11-22T03:14:26.123Z","expires_at":"2026-11-22T03:24:26.123Z","backend":"embedded"}`

func TestNotReadyIsAskedAgainUntilTheDaemonAnswers(t *testing.T) {
	var calls atomic.Int32
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "1")
			answer(w, 503, `{"error":{"code":"not_ready","message":"starting"}}`)
			return
		}
		answer(w, 201, leaseJSON)
	})
	lease, err := client.Acquire(context.Background(), "app", AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || lease.Database != "db1" || lease.ExpiresAt.Minute() != 24 {
		t.Fatalf("calls %d, lease %+v", calls.Load(), lease)
	}
}

func TestOtherRefusalsAreTypedAndNotAskedAgain(t *testing.T) {
	var calls atomic.Int32
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3")
		answer(w, 503, `{"error":{"code":"pool_exhausted","message":"pool of app at max_total 2"}}`)
	})
	_, err := client.Acquire(context.Background(), "app", AcquireOptions{})
	var api *APIError
	if !errors.As(err, &api) || api.Code != CodePoolExhausted || api.Status != 503 || api.RetryAfter != 3*time.Second {
		t.Fatalf("error %#v", err)
	}
	if calls.Load() != 1 || !strings.Contains(err.Error(), "max_total 2") {
		t.Fatalf("calls %d, error %v", calls.Load(), err)
	}
}

func TestAcquireSendsOnlyWhatWasGiven(t *testing.T) {
	var bodies []map[string]any
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		bodies = append(bodies, body)
		answer(w, 201, leaseJSON)
	})
	ctx := context.Background()
	client.Acquire(ctx, "app", AcquireOptions{})
	client.Acquire(ctx, "app", AcquireOptions{TTL: 90 * time.Second, Owner: "me", Fingerprint: "abc", Labels: map[string]string{"k": "v"}})
	if len(bodies[0]) != 0 {
		t.Fatalf("an empty acquire sent %v", bodies[0])
	}
	if bodies[1]["ttl_seconds"] != 90.0 || bodies[1]["fingerprint"] != "abc" || bodies[1]["owner"] != "me" {
		t.Fatalf("acquire sent %v", bodies[1])
	}
}

func TestReleaseModesAndResetOfADaemonThatCannot(t *testing.T) {
	var targets []string
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		targets = append(targets, r.Method+" "+r.URL.RequestURI())
		if strings.HasSuffix(r.URL.Path, "/reset") {
			answer(w, 404, `{"error":{"code":"not_found","message":"no such path"}}`)
			return
		}
		w.WriteHeader(204)
	})
	ctx := context.Background()
	client.Release(ctx, "ab", ReleaseOptions{})
	client.Release(ctx, "ab", ReleaseOptions{Mode: Keep, KeepFor: time.Minute})
	if _, err := client.Reset(ctx, "ab"); !errors.Is(err, ErrResetUnsupported) {
		t.Fatalf("reset: %v", err)
	}
	want := "DELETE /v1/leases/ab?mode=recycle|DELETE /v1/leases/ab?keep_seconds=60&mode=keep|POST /v1/leases/ab/reset"
	if strings.Join(targets, "|") != want {
		t.Fatalf("asked %v", targets)
	}
}

func TestAResetSaysHowAndABusyOneIsTypedAndNotAskedAgain(t *testing.T) {
	var calls atomic.Int32
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			answer(w, 200, strings.TrimSuffix(leaseJSON, "}")+`,"reset":{"result":"reclone","reason":"catalog: a table was created"}}`)
			return
		}
		w.Header().Set("Retry-After", "1")
		answer(w, 409, `{"error":{"code":"sessions_busy","message":"sessions on db1 are in a transaction or running a statement: pid 42 (active)"}}`)
	})
	ctx := context.Background()
	reset, err := client.Reset(ctx, "0123456789abcdef0123456789abcdef")
	if err != nil || reset.Database != "db1" || reset.Reset != (ResetOutcome{Result: ResetReclone, Reason: "catalog: a table was created"}) {
		t.Fatalf("reset %+v, %v", reset, err)
	}
	_, err = client.Reset(ctx, "0123456789abcdef0123456789abcdef")
	var api *APIError
	if !errors.As(err, &api) || api.Status != 409 || api.Code != CodeSessionsBusy || api.RetryAfter != time.Second ||
		!strings.Contains(api.Message, "pid 42 (active)") {
		t.Fatalf("error %#v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls: a busy reset was asked again", calls.Load())
	}
}

func TestAnAbsentDaemonIsUnreachable(t *testing.T) {
	server := httptest.NewServer(http.NotFoundHandler())
	url := server.URL
	server.Close()
	client, _ := NewClient(Config{URL: url, Timeout: 2 * time.Second})
	_, err := client.Templates(context.Background())
	var unreachable *UnreachableError
	if !errors.As(err, &unreachable) {
		t.Fatalf("error %v", err)
	}
}

func TestBadURLsAreRefusedNamingThem(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:7432", "https://x", "http://", "http://u@h:1"} {
		if _, err := NewClient(Config{URL: bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestAFailedMigrationAbortsItsBuild(t *testing.T) {
	var aborted atomic.Bool
	client := fake(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut:
			answer(w, 201, `{"state":"build","template":{"name":"app","fingerprint":"","state":"building","error":"","source":"client","pool":{}},
"build":{"id":"0123456789abcdef0123456789abcdef","template":"app","fingerprint":"v1","database":"b","dsn":"postgresql://x","host":"h","port":1,"user":"u","password":"p","expires_at":"2026-11-22T03:24:26.123Z"}}`)
		case strings.HasSuffix(r.URL.Path, "/abort"):
			aborted.Store(true)
			w.WriteHeader(204)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	_, err := client.BuildTemplate(context.Background(), "app", "v1", BuildOptions{}, func(context.Context, *Build) error {
		return errors.New("syntax error at or near \"CREAT\"")
	})
	var migration *MigrationError
	if !errors.As(err, &migration) || !strings.Contains(err.Error(), "CREAT") || !aborted.Load() {
		t.Fatalf("error %v, aborted %v", err, aborted.Load())
	}
}
