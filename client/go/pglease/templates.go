package pglease

import (
	"context"
	"time"
)

// TemplateVersion is a ready version of a client-initialized template.
type TemplateVersion struct {
	Name        string
	Fingerprint string
	// Built is true in the one caller that ran the migrations.
	Built    bool
	Template Template
}

// BuildOptions bounds BuildTemplate: how long to wait in all while another caller builds
// (default 600 s), and this caller's build lease (default 600 s).
type BuildOptions struct {
	Timeout  time.Duration
	BuildTTL time.Duration
}

// BuildTemplate ensures client-initialized template name at fingerprint. Exactly one caller,
// over every process and language, is told to build: it runs migrate on the empty build
// database and finalizes, or aborts when migrate fails or panics (a *MigrationError). Every
// other caller waits, up to opts.Timeout, until the version is ready.
func (c *Client) BuildTemplate(ctx context.Context, name, fingerprint string, opts BuildOptions,
	migrate func(context.Context, *Build) error) (*TemplateVersion, error) {
	timeout, buildTTL := opts.Timeout, opts.BuildTTL
	if timeout <= 0 {
		timeout = 600 * time.Second
	}
	if buildTTL <= 0 {
		buildTTL = 600 * time.Second
	}
	giveUpAt := time.Now().Add(timeout)
	for {
		wait := min(max(time.Until(giveUpAt), time.Second), 600*time.Second)
		ensured, err := c.EnsureTemplate(ctx, name, fingerprint, EnsureOptions{Wait: wait, BuildTTL: buildTTL})
		if HasCode(err, CodeTemplateBuilding) && time.Now().Before(giveUpAt) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ensured.State != "build" {
			return &TemplateVersion{Name: name, Fingerprint: fingerprint, Template: ensured.Template}, nil
		}
		if err := c.runBuild(ctx, name, fingerprint, ensured.Build, migrate); err != nil {
			return nil, err
		}
		template, err := c.FinalizeBuild(ctx, name, fingerprint, ensured.Build.ID)
		if err != nil {
			return nil, err
		}
		return &TemplateVersion{Name: name, Fingerprint: fingerprint, Built: true, Template: *template}, nil
	}
}

// runBuild runs migrate, aborting the build when it fails or panics so that the next caller
// builds at once instead of after the build lease.
func (c *Client) runBuild(ctx context.Context, name, fingerprint string, build *Build,
	migrate func(context.Context, *Build) error) (err error) {
	finished := false
	defer func() {
		if !finished {
			// The build lease expires on its own; the migration's error matters more than this one.
			_ = c.AbortBuild(context.WithoutCancel(ctx), name, fingerprint, build.ID)
		}
	}()
	if err := migrate(ctx, build); err != nil {
		return &MigrationError{Template: name, Err: err}
	}
	finished = true
	return nil
}
