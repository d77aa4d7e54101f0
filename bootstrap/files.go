package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/textdiff"
)

// File is one file a step owns: its full contents and mode.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// FilesStep is a step that owns a set of files: it plans their diffs,
// writes the ones that differ (creating parent directories), and verifies
// that each now holds exactly what it should. Check, when set, validates the
// files after they are written (for example with the real tool); a failing
// check fails the step, and the engine puts the files back.
type FilesStep struct {
	StepName string
	Files    []File
	Check    func(ctx context.Context, h *Host) error
}

// Name implements Step.
func (s *FilesStep) Name() string { return s.StepName }

// Plan implements Step.
func (s *FilesStep) Plan(_ context.Context, h *Host) ([]Change, error) {
	var out []Change
	for _, f := range s.Files {
		cur, mode, err := readFile(h.FS, f.Path)
		if err != nil {
			return nil, err
		}
		switch {
		case cur == nil:
			out = append(out, Change{Kind: ChangeFile, Target: f.Path, Summary: "create", Diff: textdiff.Lines("", string(f.Data))})
		case !bytes.Equal(cur, f.Data):
			out = append(out, Change{Kind: ChangeFile, Target: f.Path, Summary: "update", Diff: textdiff.Lines(string(cur), string(f.Data))})
		case mode != f.Mode:
			out = append(out, Change{Kind: ChangeFile, Target: f.Path, Summary: fmt.Sprintf("mode %04o -> %04o", mode, f.Mode)})
		}
	}
	return out, nil
}

// Apply implements Step.
func (s *FilesStep) Apply(_ context.Context, h *Host) error {
	for _, f := range s.Files {
		if err := h.FS.MkdirAll(path.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", f.Path, err)
		}
		if _, err := h.FS.WriteFile(f.Path, f.Data, f.Mode, hostfs.WriteOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// Verify implements Step.
func (s *FilesStep) Verify(ctx context.Context, h *Host) error {
	for _, f := range s.Files {
		cur, mode, err := readFile(h.FS, f.Path)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, f.Data) || mode != f.Mode {
			return fmt.Errorf("%s does not hold what was written (changed by someone else meanwhile?)", f.Path)
		}
	}
	if s.Check != nil {
		return s.Check(ctx, h)
	}
	return nil
}

// readFile returns nil for a missing file.
func readFile(fsys hostfs.FS, name string) ([]byte, fs.FileMode, error) {
	fi, err := fsys.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", name, err)
	}
	data, err := fsys.ReadFile(name)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, fi.Mode().Perm(), nil
}
