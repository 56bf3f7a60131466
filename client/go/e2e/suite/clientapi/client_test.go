// The plain client against the real daemon.
package clientapi

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pglease"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

// ready makes sure the suite's template is built (by this package's first test, or another
// package's process).
func ready(t *testing.T) *pglease.Client {
	t.Helper()
	pgleasetest.Custom(t, suite.Config())
	return suite.Client(t)
}

func TestAcquireRenewRelease(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	lease, err := client.Acquire(ctx, suite.Template, pglease.AcquireOptions{TTL: time.Minute, Owner: "go-client", Labels: map[string]string{"suite": "e2e"}})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Owner != "go-client" || lease.Labels["suite"] != "e2e" || !strings.HasPrefix(lease.DSN, "postgresql://") {
		t.Fatalf("lease %+v", lease)
	}
	if until := time.Until(lease.ExpiresAt); until < 50*time.Second || until > 70*time.Second {
		t.Fatalf("a lease of one minute expires in %s", until)
	}
	renewed, err := client.Renew(ctx, lease.ID, 10*time.Minute)
	if err != nil || !renewed.ExpiresAt.After(lease.ExpiresAt.Add(8*time.Minute)) {
		t.Fatalf("renew: %v, expires %s (was %s)", err, renewed.ExpiresAt, lease.ExpiresAt)
	}
	listed, err := client.Leases(ctx)
	found := false
	for _, l := range listed {
		found = found || l.Database == lease.Database
	}
	if err != nil || !found {
		t.Fatalf("GET /v1/leases does not list %s: %v", lease.Database, err)
	}
	if err := client.Release(ctx, lease.ID, pglease.ReleaseOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Lease(ctx, lease.ID); !pglease.HasCode(err, pglease.CodeUnknownLease) {
		t.Fatalf("a released lease is still there: %v", err)
	}
	if err := client.Release(ctx, lease.ID, pglease.ReleaseOptions{}); !pglease.HasCode(err, pglease.CodeUnknownLease) {
		t.Fatalf("releasing twice: %v", err)
	}
}

func TestReuseAndKeepEndTheLeaseToo(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	for _, opts := range []pglease.ReleaseOptions{{Mode: pglease.Reuse}, {Mode: pglease.Keep, KeepFor: 5 * time.Second}} {
		lease, err := client.Acquire(ctx, suite.Template, pglease.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Release(ctx, lease.ID, opts); err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if _, err := client.Lease(ctx, lease.ID); !pglease.HasCode(err, pglease.CodeUnknownLease) {
			t.Fatalf("%+v: the lease is still there: %v", opts, err)
		}
	}
}

func TestResetKeepsTheLeaseOrSaysTheDaemonCannot(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	lease, err := client.Acquire(ctx, suite.Template, pglease.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Release(ctx, lease.ID, pglease.ReleaseOptions{})
	reset, err := client.Reset(ctx, lease.ID)
	switch {
	case errors.Is(err, pglease.ErrResetUnsupported):
	case err != nil:
		t.Fatalf("reset answered neither the lease nor 'unsupported': %v", err)
	case reset.ID != lease.ID || reset.Database != lease.Database:
		t.Fatalf("reset changed the lease: %+v -> %+v", lease, reset)
	}
	if _, err := client.Lease(ctx, lease.ID); err != nil {
		t.Fatalf("a reset ended the lease: %v", err)
	}
}

func TestAFingerprintIsSentOnlyWhenGiven(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	template, err := client.Template(ctx, suite.Template)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := client.Acquire(ctx, suite.Template, pglease.AcquireOptions{Fingerprint: template.Fingerprint})
	switch {
	case err == nil:
		client.Release(ctx, lease.ID, pglease.ReleaseOptions{})
	case !pglease.HasCode(err, pglease.CodeInvalidArgument) || !strings.Contains(err.Error(), "fingerprint"):
		t.Fatalf("acquire with a fingerprint: %v", err)
	}
	lease, err = client.Acquire(ctx, suite.Template, pglease.AcquireOptions{})
	if err != nil {
		t.Fatalf("without one, nothing is sent: %v", err)
	}
	client.Release(ctx, lease.ID, pglease.ReleaseOptions{})
}

func TestRefusalsAreTypedWithTheServersCode(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	_, err := client.Acquire(ctx, "no_such_template", pglease.AcquireOptions{})
	var api *pglease.APIError
	if !errors.As(err, &api) || api.Status != 404 || api.Code != pglease.CodeUnknownTemplate {
		t.Fatalf("unknown template: %v", err)
	}
	_, err = client.Acquire(ctx, suite.Template, pglease.AcquireOptions{TTL: 10_000_000 * time.Second})
	if !pglease.HasCode(err, pglease.CodeInvalidArgument) || !strings.Contains(err.Error(), "ttl_seconds") {
		t.Fatalf("a TTL out of range: %v", err)
	}
}

func TestAnAbsentDaemonIsUnreachable(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()
	client, err := pglease.NewClient(pglease.Config{URL: "http://" + address, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var unreachable *pglease.UnreachableError
	if _, err := client.Templates(suite.Context(t)); !errors.As(err, &unreachable) {
		t.Fatalf("error %v", err)
	}
}

func TestTheTemplateIsListedWithItsPool(t *testing.T) {
	t.Parallel()
	client, ctx := ready(t), suite.Context(t)
	template, err := client.Template(ctx, suite.Template)
	if err != nil {
		t.Fatal(err)
	}
	if template.State != "ready" || template.Source != "client" || len(template.Fingerprint) != 64 || template.Pool.MaxTotal < 1 ||
		template.Pool.Recycle != "reset" {
		t.Fatalf("template %+v", template)
	}
	if ok, err := client.Ready(ctx); !ok || err != nil {
		t.Fatalf("ready: %v %v", ok, err)
	}
}
