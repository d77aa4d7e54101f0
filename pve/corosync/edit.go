package corosync

import (
	"context"
	"errors"
	"fmt"
	"github.com/pvehci/pvehci/internal/textdiff"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/validate"
)

// The files of the edit procedure.
const (
	// ConfPath is the cluster-wide corosync.conf on pmxcfs. pmxcfs
	// copies it to LocalPath on every node when it is written or
	// renamed onto.
	ConfPath = "/etc/pve/corosync.conf"
	// NewPath is the copy an edit prepares. Proxmox's writer and the
	// documented manual procedure both use this name, so its presence
	// means an edit is under way (or was abandoned).
	NewPath = "/etc/pve/corosync.conf.new"
	// BakPath is the backup the documented procedure keeps.
	BakPath = "/etc/pve/corosync.conf.bak"
	// LocalPath is each node's own copy, the one corosync reads.
	LocalPath = "/etc/corosync/corosync.conf"
)

// pmxcfsPerm is the only mode files on /etc/pve have; pmxcfs refuses
// chmod.
const pmxcfsPerm = 0o640

// ErrEditInProgress matches the error for an existing corosync.conf.new.
var ErrEditInProgress = errors.New("corosync.conf.new exists")

// Checker checks a rendered corosync.conf with the real corosync.
type Checker interface {
	Check(ctx context.Context, data []byte) error
	// String names the check for plan printouts.
	String() string
}

// ToolChecker runs corosync -t as every node of the file (see
// [validate.CorosyncAllNodes]): in throwaway network namespaces holding
// the node's addresses, without touching the host's corosync. It needs
// root and the corosync package.
type ToolChecker struct{}

func (ToolChecker) String() string { return "corosync -t as every node" }

// Check implements [Checker].
func (ToolChecker) Check(ctx context.Context, data []byte) error {
	dir, err := os.MkdirTemp("", "pvehci-corosync-")
	if err != nil {
		return fmt.Errorf("checking corosync.conf with corosync -t: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "corosync.conf")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return fmt.Errorf("checking corosync.conf with corosync -t: %w", err)
	}
	return validate.CorosyncAllNodes(ctx, p)
}

// EditFunc computes the new configuration from the current one; [AddLink]
// wrapped in a closure is one.
type EditFunc func(cur *Config) (next *Config, changed bool, err error)

// Editor edits /etc/pve/corosync.conf the documented safe way (pvecm.adoc
// "Edit corosync.conf"): under the cluster lock, write corosync.conf.new,
// check it, keep corosync.conf.bak, rename the new file over the live one.
type Editor struct {
	// FS is the host's files; hostfs.Root("/") on a node.
	FS hostfs.FS
	// Lock is the cluster-wide lock; [PmxcfsLock] on a node.
	Lock Lock
	// Checker, when set, runs the real corosync over the new file before
	// it goes live; pvehci's own [Validate] always runs.
	Checker Checker
}

// Plan is an edit worked out against the current file but not applied.
type Plan struct {
	// Summary says what the edit does, e.g. "add corosync link 1".
	Summary string
	// Changed is false when the file already is as wanted; applying the
	// plan then does nothing.
	Changed bool
	// OldVersion and NewVersion are the config_version before and after.
	OldVersion, NewVersion uint64

	old, new []byte
	lock     string
	checker  string
}

// Plan reads the current corosync.conf, applies edit and checks the result.
// It refuses while corosync.conf.new exists, because that is someone
// else's edit in progress (Proxmox's and the manual procedure's file), or
// one abandoned half way that an admin must look at.
func (e *Editor) Plan(summary string, edit EditFunc) (*Plan, error) {
	p, err := e.plan(summary, edit)
	if err != nil {
		return nil, fmt.Errorf("planning corosync.conf edit (%s): %w", summary, err)
	}
	return p, nil
}

func (e *Editor) plan(summary string, edit EditFunc) (*Plan, error) {
	if err := e.checkNoEdit(); err != nil {
		return nil, err
	}
	old, err := e.FS.ReadFile(ConfPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist, so this node is not in a cluster; create or join one first (pvecm create / pvecm add)", ConfPath)
	}
	if err != nil {
		return nil, err
	}
	cur, err := Parse(old)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfPath, err)
	}
	next, changed, err := edit(cur)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Summary:    summary,
		Changed:    changed,
		OldVersion: cur.Totem.ConfigVersion,
		NewVersion: cur.Totem.ConfigVersion,
		old:        old,
		lock:       lockName(e.Lock),
		checker:    "pvehci's own checks",
	}
	if e.Checker != nil {
		p.checker += ", then " + e.Checker.String()
	}
	if !changed {
		return p, nil
	}
	if next.Totem.ConfigVersion <= cur.Totem.ConfigVersion {
		return nil, fmt.Errorf("the edit did not raise config_version (still %d); pmxcfs would not copy the file to the other nodes", next.Totem.ConfigVersion)
	}
	if err := Validate(next); err != nil {
		return nil, err
	}
	p.new = Render(next)
	p.NewVersion = next.Totem.ConfigVersion
	return p, nil
}

func lockName(l Lock) string {
	if l == nil {
		return "cluster lock (none configured, so applying will refuse)"
	}
	return l.String()
}

func (e *Editor) checkNoEdit() error {
	_, err := e.FS.Stat(NewPath)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s is there, so someone else is editing corosync.conf or an edit stopped half way; finish it (mv %s %s) or remove it after checking its contents, then run pvehci again", ErrEditInProgress, NewPath, NewPath, ConfPath)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("checking for %s: %w", NewPath, err)
	}
}

// Steps describes what [Editor.Apply] will do, one line per step.
func (p *Plan) Steps() []string {
	if !p.Changed {
		return []string{fmt.Sprintf("nothing to do: %s is already done (config_version %d)", p.Summary, p.OldVersion)}
	}
	return []string{
		"take the " + p.lock + " (waits while pvecm, the GUI or the API edits corosync.conf)",
		"check that " + NewPath + " does not exist (another edit in progress)",
		fmt.Sprintf("check that %s is still the file this plan was made from (config_version %d)", ConfPath, p.OldVersion),
		"copy " + ConfPath + " to " + BakPath,
		fmt.Sprintf("write %s (config_version %d)", NewPath, p.NewVersion),
		"check " + NewPath + ": " + p.checker + "; on failure remove it and stop",
		"rename " + NewPath + " to " + ConfPath + ": pmxcfs writes " + LocalPath + " on every node and corosync reloads it (corosync-cfgtool -R)",
		"release the lock",
	}
}

// Diff is the change as removed ("- ") and added ("+ ") lines.
func (p *Plan) Diff() []string {
	if !p.Changed {
		return nil
	}
	return textdiff.Lines(string(p.old), string(p.new))
}

// New returns the file the plan writes; nil when nothing changes.
func (p *Plan) New() []byte { return append([]byte(nil), p.new...) }

// String is the plan printout: summary, steps and diff.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s:\n", p.Summary, ConfPath)
	for i, s := range p.Steps() {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
	}
	if d := p.Diff(); len(d) > 0 {
		b.WriteString("  changes:\n")
		for _, l := range d {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// Apply carries out p. Under the lock it rechecks that nobody else is
// editing and that the file is still the one the plan was made from; the
// lock is held at most [HoldLimit]. If the new file fails a check it is
// removed again and the live file is untouched. Once the rename is done the
// change is live on the whole cluster; to undo it, plan another edit (the
// old file is in corosync.conf.bak, but it needs a higher config_version to
// be copied to the nodes).
func (e *Editor) Apply(ctx context.Context, p *Plan) error {
	if !p.Changed {
		return nil
	}
	if err := e.apply(ctx, p); err != nil {
		return fmt.Errorf("applying corosync.conf edit (%s): %w", p.Summary, err)
	}
	return nil
}

func (e *Editor) apply(ctx context.Context, p *Plan) (err error) {
	if e.Lock == nil {
		return errors.New("no lock configured; refusing to edit corosync.conf without the cluster lock")
	}
	release, err := e.Lock.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, HoldLimit)
	defer cancel()

	if err := e.checkNoEdit(); err != nil {
		return err
	}
	cur, err := e.FS.ReadFile(ConfPath)
	if err != nil {
		return err
	}
	if string(cur) != string(p.old) {
		v := "unreadable"
		if c, err := Parse(cur); err == nil && c.Totem.ConfigVersion > 0 {
			v = fmt.Sprint(c.Totem.ConfigVersion)
		}
		return fmt.Errorf("%s changed since the plan was made (config_version now %s); run pvehci again to plan against the current file", ConfPath, v)
	}
	if _, err := e.FS.WriteFile(BakPath, p.old, pmxcfsPerm, hostfs.WriteOptions{}); err != nil {
		return err
	}
	if _, err := e.FS.WriteFile(NewPath, p.new, pmxcfsPerm, hostfs.WriteOptions{}); err != nil {
		return e.abandon(err)
	}
	if err := e.check(ctx); err != nil {
		return e.abandon(err)
	}
	if err := ctx.Err(); err != nil {
		return e.abandon(fmt.Errorf("the lock was held too long (limit %s), giving up before the change went live: %w", HoldLimit, err))
	}
	if err := e.FS.Rename(NewPath, ConfPath); err != nil {
		return e.abandon(err)
	}
	return nil
}

// check validates corosync.conf.new as written, not as rendered in
// memory: what goes live is what is on disk.
func (e *Editor) check(ctx context.Context) error {
	data, err := e.FS.ReadFile(NewPath)
	if err != nil {
		return err
	}
	c, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", NewPath, err)
	}
	if err := Validate(c); err != nil {
		return fmt.Errorf("%s: %w", NewPath, err)
	}
	if e.Checker != nil {
		if err := e.Checker.Check(ctx, data); err != nil {
			return fmt.Errorf("%s: %w", NewPath, err)
		}
	}
	return nil
}

// abandon removes corosync.conf.new after a failure, so that the next
// attempt is not refused as an edit in progress.
func (e *Editor) abandon(cause error) error {
	if _, err := e.FS.Remove(NewPath); err != nil {
		return errors.Join(cause, fmt.Errorf("removing %s after the failure: %w; remove it by hand", NewPath, err))
	}
	return cause
}
