package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/internal/textdiff"
)

// action is one planned change and the way to make it. Steps work out their
// actions from the host each time, so that Plan and Apply can never
// disagree about what the step does: Apply carries out exactly the actions
// that the same host state plans.
type action struct {
	Change
	do func(ctx context.Context, h *Host) error
}

// actionStep is a Step made of a planner and a verification.
type actionStep struct {
	name   string
	plan   func(ctx context.Context, h *Host) ([]action, error)
	verify func(ctx context.Context, h *Host) error
}

func (s *actionStep) Name() string { return s.name }

func (s *actionStep) Plan(ctx context.Context, h *Host) ([]Change, error) {
	acts, err := s.plan(ctx, h)
	if err != nil {
		return nil, err
	}
	out := make([]Change, len(acts))
	for i, a := range acts {
		out[i] = a.Change
	}
	return out, nil
}

func (s *actionStep) Apply(ctx context.Context, h *Host) error {
	acts, err := s.plan(ctx, h)
	if err != nil {
		return err
	}
	for _, a := range acts {
		if h.Log != nil {
			h.Log.Info("bootstrap", "step", s.name, "kind", a.Kind, "target", a.Target, "summary", a.Summary)
		}
		if err := a.do(ctx, h); err != nil {
			if a.Kind == ChangeCommand {
				return err // a run.Error names the command and carries its output
			}
			return fmt.Errorf("%s %s: %w", a.Kind, a.Target, err)
		}
	}
	return nil
}

func (s *actionStep) Verify(ctx context.Context, h *Host) error {
	if s.verify == nil {
		return nil
	}
	return s.verify(ctx, h)
}

// commandAction runs one program.
func commandAction(summary string, c run.Cmd) action {
	return action{
		Change: Change{Kind: ChangeCommand, Target: c.String(), Summary: summary},
		do: func(ctx context.Context, h *Host) error {
			_, err := h.Run.Run(ctx, c)
			return err
		},
	}
}

// output runs a read-only program and returns its standard output.
func output(ctx context.Context, h *Host, name string, args ...string) ([]byte, error) {
	res, err := h.Run.Run(ctx, run.Command(name, args...))
	if err != nil {
		return res.Stdout, err
	}
	return res.Stdout, nil
}

// fileAction plans a file so that it holds data with mode; it returns no
// action when it already does.
func fileAction(fsys hostfs.FS, name string, data []byte, mode fs.FileMode) ([]action, error) {
	cur, curMode, err := readFile(fsys, name)
	if err != nil {
		return nil, err
	}
	var c Change
	switch {
	case cur == nil:
		c = Change{Kind: ChangeFile, Target: name, Summary: "create", Diff: textdiff.Lines("", string(data))}
	case !bytes.Equal(cur, data):
		c = Change{Kind: ChangeFile, Target: name, Summary: "update", Diff: textdiff.Lines(string(cur), string(data))}
	case curMode != mode:
		c = Change{Kind: ChangeFile, Target: name, Summary: fmt.Sprintf("mode %04o -> %04o", curMode, mode)}
	default:
		return nil, nil
	}
	return []action{{Change: c, do: func(_ context.Context, h *Host) error {
		if err := h.FS.MkdirAll(path.Dir(name), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", name, err)
		}
		_, err := h.FS.WriteFile(name, data, mode, hostfs.WriteOptions{})
		return err
	}}}, nil
}

// exists reports whether a path exists on the host.
func exists(fsys hostfs.FS, name string) (bool, error) {
	_, err := fsys.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", name, err)
	}
	return true, nil
}
