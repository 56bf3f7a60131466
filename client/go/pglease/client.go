// Package pglease is a client of pgleased's HTTP API (proto/openapi.yaml): lease a fresh
// PostgreSQL database cloned from a template, renew, reset and release it, and build
// client-initialized templates. Package pgleasetest builds test helpers on it.
package pglease

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultURL is pgleased's address when PGLEASE_URL is not set.
const DefaultURL = "http://127.0.0.1:7432"

// serverDefaultWait is the wait the server applies when a call names none.
const serverDefaultWait = 30 * time.Second

// Config says where pgleased is; zero fields take their defaults.
type Config struct {
	// URL of pgleased; default $PGLEASE_URL, else DefaultURL.
	URL string
	// Token of the daemon; default $PGLEASE_TOKEN.
	Token string
	// Timeout bounds every call (plus the wait an acquire or ensure asks the server for), and
	// how long calls are made again while pgleased starts (503 not_ready). Default 30 s.
	Timeout time.Duration
	// HTTPClient sends the requests; default a client of its own with kept-alive connections.
	HTTPClient *http.Client
}

// Client talks to one pgleased. Safe for concurrent use.
type Client struct {
	base    string
	token   string
	timeout time.Duration
	http    *http.Client
}

// NewClient makes a client of the daemon conf names.
func NewClient(conf Config) (*Client, error) {
	raw := conf.URL
	if raw == "" {
		raw = os.Getenv("PGLEASE_URL")
	}
	if raw == "" {
		raw = DefaultURL
	}
	parsed, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || parsed.Scheme != "http" || parsed.Host == "" || parsed.User != nil || parsed.RawQuery != "" {
		return nil, fmt.Errorf("pglease: the pgleased URL must look like http://host:port, not %q", raw)
	}
	token := conf.Token
	if token == "" {
		token = os.Getenv("PGLEASE_TOKEN")
	}
	timeout := conf.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	httpClient := conf.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // pgleased is local or on the CI network, never behind $HTTP_PROXY
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     50 * time.Second, // before the server's 60 s
		}}
	}
	return &Client{base: strings.TrimRight(parsed.String(), "/"), token: token, timeout: timeout, http: httpClient}, nil
}

// URL is pgleased's address.
func (c *Client) URL() string { return c.base }

// call is one request to pgleased.
type call struct {
	method string
	path   string
	body   any
	// extraWait is how long the server may hold the request on purpose.
	extraWait     time.Duration
	retryNotReady bool
}

// do sends the call, asking again on 503 not_ready until the timeout, and decodes a JSON
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, req call, out any) error {
	giveUpAt := time.Now().Add(c.timeout)
	for {
		err := c.once(ctx, req, out)
		var api *APIError
		if !req.retryNotReady || !errors.As(err, &api) || api.Status != http.StatusServiceUnavailable || api.Code != CodeNotReady {
			return err
		}
		pause := api.RetryAfter
		if pause <= 0 {
			pause = time.Second
		}
		pause = min(max(pause, 200*time.Millisecond), 5*time.Second)
		if time.Now().Add(pause).After(giveUpAt) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

func (c *Client) once(ctx context.Context, req call, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+req.extraWait)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		encoded, err := json.Marshal(req.body)
		if err != nil {
			return err
		}
		body = bytes.NewReader(encoded)
	}
	request, err := http.NewRequestWithContext(ctx, req.method, c.base+req.path, body)
	if err != nil {
		return err
	}
	request.Header.Set("Accept", "application/json")
	request.Header.Set("User-Agent", "pglease-go")
	if req.body != nil {
		request.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		request.Header.Set("Authorization", "Bearer "+c.token)
	}
	response, err := c.http.Do(request)
	if err != nil {
		return &UnreachableError{URL: c.base, Err: err}
	}
	defer response.Body.Close()
	data, err := io.ReadAll(io.LimitReader(response.Body, 16<<20))
	if err != nil {
		return &UnreachableError{URL: c.base, Err: err}
	}
	if response.StatusCode >= 400 {
		return decodeError(response, data, req)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("pglease: %s %s answered JSON this client cannot read: %w", req.method, req.path, err)
	}
	return nil
}

func decodeError(response *http.Response, data []byte, req call) error {
	api := &APIError{
		Status:  response.StatusCode,
		Code:    fmt.Sprintf("http_%d", response.StatusCode),
		Message: fmt.Sprintf("pgleased answered %d to %s %s", response.StatusCode, req.method, req.path),
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		if body.Error.Code != "" {
			api.Code = body.Error.Code
		}
		if body.Error.Message != "" {
			api.Message = body.Error.Message
		}
	}
	if seconds, err := strconv.Atoi(response.Header.Get("Retry-After")); err == nil {
		api.RetryAfter = time.Duration(seconds) * time.Second
	}
	return api
}

func segment(s string) string { return url.PathEscape(s) }

// Acquire leases a clone of template.
func (c *Client) Acquire(ctx context.Context, template string, opts AcquireOptions) (*Lease, error) {
	body := map[string]any{}
	if opts.TTL > 0 {
		body["ttl_seconds"] = seconds(opts.TTL, 1)
	}
	if opts.Wait > 0 {
		body["wait_seconds"] = seconds(opts.Wait, 0)
	}
	if opts.Owner != "" {
		body["owner"] = opts.Owner
	}
	if len(opts.Labels) > 0 {
		body["labels"] = opts.Labels
	}
	if opts.Fingerprint != "" {
		body["fingerprint"] = opts.Fingerprint
	}
	wait := opts.Wait
	if wait <= 0 {
		wait = serverDefaultWait
	}
	var lease Lease
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/templates/" + segment(template) + "/leases",
		body: body, extraWait: wait, retryNotReady: true}, &lease)
	if err != nil {
		return nil, err
	}
	return &lease, nil
}

// Renew moves the lease's expiry to now + ttl (zero: the template's TTL).
func (c *Client) Renew(ctx context.Context, id string, ttl time.Duration) (*Lease, error) {
	body := map[string]any{}
	if ttl > 0 {
		body["ttl_seconds"] = seconds(ttl, 1)
	}
	var lease Lease
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/leases/" + segment(id) + "/renew", body: body, retryNotReady: true}, &lease); err != nil {
		return nil, err
	}
	return &lease, nil
}

// Reset makes the leased database fresh again, keeping the lease: same id, database, DSN and
// expiry. Undone in place (Reset.Result ResetInPlace), sessions idle outside a transaction stay
// connected and see the template's state; when pgleased cannot prove that exact (DDL, ...) it
// clones the database again under the same name and ends its sessions (ResetReclone, with
// Reset.Reason). Refused with an APIError 409 CodeSessionsBusy (RetryAfter 1 s, the message
// naming the pids) while a session on it is inside a transaction or running a statement;
// ErrResetUnsupported from a pgleased without POST /v1/leases/{id}/reset.
func (c *Client) Reset(ctx context.Context, id string) (*ResetLease, error) {
	var reset ResetLease
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/leases/" + segment(id) + "/reset", body: map[string]any{}, retryNotReady: true}, &reset)
	if HasCode(err, CodeNotFound) || HasCode(err, CodeMethodNotAllowed) {
		return nil, ErrResetUnsupported
	}
	if err != nil {
		return nil, err
	}
	if reset.Reset.Result == "" {
		return nil, fmt.Errorf("pglease: POST /v1/leases/%s/reset answered no reset result", id)
	}
	return &reset, nil
}

// Release ends the lease.
func (c *Client) Release(ctx context.Context, id string, opts ReleaseOptions) error {
	mode := opts.Mode
	if mode == "" {
		mode = Recycle
	}
	query := url.Values{"mode": {string(mode)}}
	if mode == Keep && opts.KeepFor > 0 {
		query.Set("keep_seconds", strconv.FormatInt(seconds(opts.KeepFor, 1), 10))
	}
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/leases/" + segment(id) + "?" + query.Encode(), retryNotReady: true}, nil)
}

// Lease is the live lease with this id; an APIError with CodeUnknownLease once it ended.
func (c *Client) Lease(ctx context.Context, id string) (*Lease, error) {
	var lease Lease
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/leases/" + segment(id), retryNotReady: true}, &lease); err != nil {
		return nil, err
	}
	return &lease, nil
}

// Leases lists every live lease, without ids and passwords.
func (c *Client) Leases(ctx context.Context) ([]LeaseSummary, error) {
	var list struct {
		Leases []LeaseSummary `json:"leases"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/leases", retryNotReady: true}, &list)
	return list.Leases, err
}

// Template is a template's state, fingerprint and pool.
func (c *Client) Template(ctx context.Context, name string) (*Template, error) {
	var template Template
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/templates/" + segment(name), retryNotReady: true}, &template); err != nil {
		return nil, err
	}
	return &template, nil
}

// Templates lists every template.
func (c *Client) Templates(ctx context.Context) ([]Template, error) {
	var list struct {
		Templates []Template `json:"templates"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/templates", retryNotReady: true}, &list)
	return list.Templates, err
}

// EnsureTemplate asks for client-initialized template name at fingerprint: ready, or this
// caller must build it. An APIError with CodeTemplateBuilding when another caller builds it for
// longer than the wait. BuildTemplate does the whole dance.
func (c *Client) EnsureTemplate(ctx context.Context, name, fingerprint string, opts EnsureOptions) (*Ensured, error) {
	body := map[string]any{"fingerprint": fingerprint}
	if opts.Wait > 0 {
		body["wait_seconds"] = min(seconds(opts.Wait, 0), 600)
	}
	if opts.BuildTTL > 0 {
		body["build_ttl_seconds"] = min(seconds(opts.BuildTTL, 1), 3600)
	}
	wait := opts.Wait
	if wait <= 0 {
		wait = serverDefaultWait
	}
	var ensured Ensured
	err := c.do(ctx, call{method: http.MethodPut, path: "/v1/templates/" + segment(name), body: body, extraWait: wait, retryNotReady: true}, &ensured)
	if err != nil {
		return nil, err
	}
	if ensured.State == "build" && ensured.Build == nil {
		return nil, fmt.Errorf("pglease: PUT /v1/templates/%s answered state build without a build", name)
	}
	return &ensured, nil
}

// FinalizeBuild declares the build's migrations done; the template is ready at fingerprint.
func (c *Client) FinalizeBuild(ctx context.Context, name, fingerprint, buildID string) (*Template, error) {
	var template Template
	path := "/v1/templates/" + segment(name) + "/builds/" + segment(fingerprint) + "/finalize"
	if err := c.do(ctx, call{method: http.MethodPost, path: path, body: map[string]any{"build_id": buildID}, retryNotReady: true}, &template); err != nil {
		return nil, err
	}
	return &template, nil
}

// AbortBuild gives the build up; the next caller asking for fingerprint builds it.
func (c *Client) AbortBuild(ctx context.Context, name, fingerprint, buildID string) error {
	path := "/v1/templates/" + segment(name) + "/builds/" + segment(fingerprint) + "/abort"
	return c.do(ctx, call{method: http.MethodPost, path: path, body: map[string]any{"build_id": buildID}, retryNotReady: true}, nil)
}

// Ready reports whether /readyz answers 200; an error only when nothing answers.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	err := c.do(ctx, call{method: http.MethodGet, path: "/readyz"}, nil)
	var api *APIError
	if errors.As(err, &api) && api.Status == http.StatusServiceUnavailable {
		return false, nil
	}
	return err == nil, err
}
