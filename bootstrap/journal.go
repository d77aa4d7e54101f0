package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/pvehci/pvehci/internal/hostfs"
)

// journal is a hostfs.FS that remembers, the first time a step touches a
// path, what the path held before: its bytes, mode and owner, or that it
// did not exist. undo puts every touched path back. Keeping the old
// versions in memory rather than as NAME.bak files matters in directories
// where every file is read (interfaces.d, drbd.d).
type journal struct {
	hostfs.FS
	order []string
	prior map[string]*priorFile
}

type priorFile struct {
	existed bool
	data    []byte
	mode    fs.FileMode
	owner   *hostfs.Owner
}

func newJournal(inner hostfs.FS) *journal {
	return &journal{FS: inner, prior: map[string]*priorFile{}}
}

func (j *journal) remember(name string) error {
	if _, ok := j.prior[name]; ok {
		return nil
	}
	p := &priorFile{}
	fi, err := j.FS.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("remembering %s before changing it: %w", name, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file; bootstrap only changes regular files", name)
	default:
		data, err := j.FS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("remembering %s before changing it: %w", name, err)
		}
		p.existed, p.data, p.mode = true, data, fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			p.owner = &hostfs.Owner{UID: int(st.Uid), GID: int(st.Gid)}
		}
	}
	j.prior[name] = p
	j.order = append(j.order, name)
	return nil
}

func (j *journal) WriteFile(name string, data []byte, perm fs.FileMode, opts hostfs.WriteOptions) (bool, error) {
	if err := j.remember(name); err != nil {
		return false, err
	}
	if opts.Backup {
		// The FS writes NAME.bak itself; it is put back too, or the
		// admin's own backup would be lost to ours.
		if err := j.remember(name + ".bak"); err != nil {
			return false, err
		}
	}
	return j.FS.WriteFile(name, data, perm, opts)
}

func (j *journal) Remove(name string) (bool, error) {
	if err := j.remember(name); err != nil {
		return false, err
	}
	return j.FS.Remove(name)
}

func (j *journal) Rename(oldname, newname string) error {
	if err := j.remember(oldname); err != nil {
		return err
	}
	if err := j.remember(newname); err != nil {
		return err
	}
	return j.FS.Rename(oldname, newname)
}

// touched lists the paths the step wrote, removed or renamed.
func (j *journal) touched() []string { return append([]string(nil), j.order...) }

// undo puts every touched path back, newest first, and lists them.
func (j *journal) undo() ([]string, error) {
	var errs []error
	var restored []string
	for i := len(j.order) - 1; i >= 0; i-- {
		name := j.order[i]
		p := j.prior[name]
		var err error
		if p.existed {
			_, err = j.FS.WriteFile(name, p.data, p.mode, hostfs.WriteOptions{Owner: p.owner})
		} else {
			_, err = j.FS.Remove(name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", name, err))
			continue
		}
		restored = append(restored, name)
	}
	return restored, errors.Join(errs...)
}
