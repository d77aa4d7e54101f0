package hostfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
)

// FS is the host file system as pvehci uses it. Paths are absolute; see the
// package doc for the rules every method follows.
type FS interface {
	// ReadFile returns the contents of a regular file.
	ReadFile(name string) ([]byte, error)
	// Stat describes name without following it (like os.Lstat);
	// errors.Is(err, fs.ErrNotExist) tells a missing file.
	Stat(name string) (fs.FileInfo, error)
	// WriteFile replaces name atomically with data and mode perm (which
	// must hold only permission bits) and reports whether anything
	// changed. The parent directory must exist.
	WriteFile(name string, data []byte, perm fs.FileMode, opts WriteOptions) (changed bool, err error)
	// Restore renames name.bak over name; it fails with ErrNoBackup when
	// there is no name.bak.
	Restore(name string) error
	// Rename renames oldname to newname atomically, replacing newname.
	Rename(oldname, newname string) error
	// Remove removes a file (not a directory) and reports whether it
	// existed; a missing file is not an error.
	Remove(name string) (removed bool, err error)
	// MkdirAll creates name and any missing parents with mode perm. Only
	// directories it creates get perm; existing ones are left alone.
	MkdirAll(name string, perm fs.FileMode) error
}

// WriteOptions adjusts [FS.WriteFile].
type WriteOptions struct {
	// Backup keeps the previous version as NAME.bak for [FS.Restore].
	Backup bool
	// Owner, when set, is the file's owner; otherwise a replaced file
	// keeps its owner and a new one belongs to the writing process.
	Owner *Owner
}

// Owner is a numeric user and group.
type Owner struct {
	UID, GID int
}

var (
	// ErrSymlink matches the error for a path that has a symlink where
	// hostfs refuses one.
	ErrSymlink = errors.New("hostfs: symlink refused")
	// ErrNoBackup is the error of Restore when there is no NAME.bak.
	ErrNoBackup = errors.New("hostfs: no backup")
	// ErrBadPath matches the error for a path that is not absolute,
	// contains "..", or names the root where a file is needed.
	ErrBadPath = errors.New("hostfs: bad path")
)

type symlinkError struct{ path string }

func (e *symlinkError) Error() string        { return e.path + " is a symlink; refusing to follow it" }
func (e *symlinkError) Is(target error) bool { return target == ErrSymlink }

type badPathError struct{ path, why string }

func (e *badPathError) Error() string        { return fmt.Sprintf("bad path %q: %s", e.path, e.why) }
func (e *badPathError) Is(target error) bool { return target == ErrBadPath }

// Host is the [FS] rooted at a directory.
type Host struct {
	dir string

	// beforeRename, if set, runs just before a temporary file is renamed
	// over its target; tests use it to make a write fail late.
	beforeRename func(target string) error
}

var _ FS = (*Host)(nil)

// Root returns the FS that maps every absolute path p to dir+p. Root("/") is
// the real host. dir should be absolute; it is opened anew by each call, and
// it may be reached through symlinks.
func Root(dir string) *Host {
	return &Host{dir: dir}
}

// ReadFile implements [FS].
func (h *Host) ReadFile(name string) ([]byte, error) {
	data, err := h.readFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

func (h *Host) readFile(name string) ([]byte, error) {
	p, err := parse(name, false)
	if err != nil {
		return nil, err
	}
	dir, err := h.openDir(p.dir)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(dir)
	data, _, err := readAt(dir, p, p.base)
	return data, err
}

// Stat implements [FS].
func (h *Host) Stat(name string) (fs.FileInfo, error) {
	p, err := parse(name, true)
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", name, err)
	}
	var st syscall.Stat_t
	if p.base == "" { // the root itself
		fd, err := h.openDir(nil)
		if err != nil {
			return nil, fmt.Errorf("checking %s: %w", name, err)
		}
		defer syscall.Close(fd)
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("checking %s: %w", name, err)
		}
		return newFileInfo("/", &st), nil
	}
	dir, err := h.openDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", name, err)
	}
	defer syscall.Close(dir)
	if err := lstatAt(dir, p.base, &st); err != nil {
		return nil, fmt.Errorf("checking %s: %w", name, &fs.PathError{Op: "lstat", Path: name, Err: err})
	}
	return newFileInfo(p.base, &st), nil
}

// WriteFile implements [FS].
func (h *Host) WriteFile(name string, data []byte, perm fs.FileMode, opts WriteOptions) (bool, error) {
	changed, err := h.writeFile(name, data, perm, opts)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", name, err)
	}
	return changed, nil
}

func (h *Host) writeFile(name string, data []byte, perm fs.FileMode, opts WriteOptions) (bool, error) {
	if perm&^fs.ModePerm != 0 {
		return false, fmt.Errorf("mode %v has more than permission bits", perm)
	}
	p, err := parse(name, false)
	if err != nil {
		return false, err
	}
	dir, err := h.openDir(p.dir)
	if err != nil {
		return false, err
	}
	defer syscall.Close(dir)

	old, oldSt, err := readAt(dir, p, p.base)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	owner := opts.Owner
	if exists {
		if owner == nil {
			owner = &Owner{UID: int(oldSt.Uid), GID: int(oldSt.Gid)}
		}
		sameOwner := int(oldSt.Uid) == owner.UID && int(oldSt.Gid) == owner.GID
		if bytes.Equal(old, data) && oldSt.Mode&0o7777 == uint32(perm) && sameOwner {
			return false, nil
		}
	}

	if opts.Backup {
		bak := p.base + ".bak"
		if exists {
			oldMode := fs.FileMode(oldSt.Mode & 0o777)
			oldOwner := &Owner{UID: int(oldSt.Uid), GID: int(oldSt.Gid)}
			if err := h.replace(dir, p, bak, old, oldMode, oldOwner); err != nil {
				return false, fmt.Errorf("keeping backup %s: %w", p.join(bak), err)
			}
		} else if err := unlinkFile(dir, p, bak); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("removing stale backup %s: %w", p.join(bak), err)
		}
	}
	if err := h.replace(dir, p, p.base, data, perm, owner); err != nil {
		return false, err
	}
	return true, nil
}

// replace atomically replaces the file base in dir (a descriptor for p.dir)
// with data, mode perm and owner (nil: leave as created).
func (h *Host) replace(dir int, p path, base string, data []byte, perm fs.FileMode, owner *Owner) (err error) {
	var st syscall.Stat_t
	if err := lstatAt(dir, base, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return &symlinkError{p.join(base)}
	}
	tmp := tempName(base)
	fd, err := openat(dir, tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: p.join(tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), p.join(tmp))
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			syscall.Unlinkat(dir, tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := syscall.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: p.join(tmp), Err: err}
	}
	if owner != nil && (int(st.Uid) != owner.UID || int(st.Gid) != owner.GID) {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return err
		}
	}
	// After a chown (which may clear set-id bits), so set the mode last.
	if st.Mode&0o7777 != uint32(perm) {
		if err := f.Chmod(perm); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if h.beforeRename != nil {
		if err := h.beforeRename(p.join(base)); err != nil {
			return err
		}
	}
	if err := renameat(dir, tmp, dir, base); err != nil {
		return &os.LinkError{Op: "rename", Old: p.join(tmp), New: p.join(base), Err: err}
	}
	return fsyncDir(dir, p)
}

// Restore implements [FS].
func (h *Host) Restore(name string) error {
	if err := h.restore(name); err != nil {
		return fmt.Errorf("restoring %s: %w", name, err)
	}
	return nil
}

func (h *Host) restore(name string) error {
	p, err := parse(name, false)
	if err != nil {
		return err
	}
	dir, err := h.openDir(p.dir)
	if err != nil {
		return err
	}
	defer syscall.Close(dir)
	bak := p.base + ".bak"
	var st syscall.Stat_t
	switch err := lstatAt(dir, bak, &st); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist", ErrNoBackup, p.join(bak))
	case err != nil:
		return &fs.PathError{Op: "lstat", Path: p.join(bak), Err: err}
	case st.Mode&syscall.S_IFMT == syscall.S_IFLNK:
		return &symlinkError{p.join(bak)}
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return fmt.Errorf("%s is not a regular file", p.join(bak))
	}
	if err := lstatAt(dir, p.base, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return &symlinkError{p.join(p.base)}
	}
	if err := renameat(dir, bak, dir, p.base); err != nil {
		return &os.LinkError{Op: "rename", Old: p.join(bak), New: name, Err: err}
	}
	return fsyncDir(dir, p)
}

// Rename implements [FS].
func (h *Host) Rename(oldname, newname string) error {
	if err := h.rename(oldname, newname); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", oldname, newname, err)
	}
	return nil
}

func (h *Host) rename(oldname, newname string) error {
	op, err := parse(oldname, false)
	if err != nil {
		return err
	}
	np, err := parse(newname, false)
	if err != nil {
		return err
	}
	odir, err := h.openDir(op.dir)
	if err != nil {
		return err
	}
	defer syscall.Close(odir)
	ndir, err := h.openDir(np.dir)
	if err != nil {
		return err
	}
	defer syscall.Close(ndir)
	var st syscall.Stat_t
	if err := lstatAt(odir, op.base, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: oldname, Err: err}
	} else if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return &symlinkError{oldname}
	}
	if err := lstatAt(ndir, np.base, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return &symlinkError{newname}
	}
	if err := renameat(odir, op.base, ndir, np.base); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if err := fsyncDir(ndir, np); err != nil {
		return err
	}
	return fsyncDir(odir, op)
}

// Remove implements [FS].
func (h *Host) Remove(name string) (bool, error) {
	removed, err := h.remove(name)
	if err != nil {
		return false, fmt.Errorf("removing %s: %w", name, err)
	}
	return removed, nil
}

func (h *Host) remove(name string) (bool, error) {
	p, err := parse(name, false)
	if err != nil {
		return false, err
	}
	dir, err := h.openDir(p.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer syscall.Close(dir)
	switch err := unlinkFile(dir, p, p.base); {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, fsyncDir(dir, p)
}

// MkdirAll implements [FS].
func (h *Host) MkdirAll(name string, perm fs.FileMode) error {
	if err := h.mkdirAll(name, perm); err != nil {
		return fmt.Errorf("creating directory %s: %w", name, err)
	}
	return nil
}

func (h *Host) mkdirAll(name string, perm fs.FileMode) error {
	if perm&^fs.ModePerm != 0 {
		return fmt.Errorf("mode %v has more than permission bits", perm)
	}
	p, err := parse(name, true)
	if err != nil {
		return err
	}
	comps := p.dir
	if p.base != "" {
		comps = append(comps, p.base)
	}
	fd, err := h.openDir(nil)
	if err != nil {
		return err
	}
	defer func() { syscall.Close(fd) }()
	for i, c := range comps {
		at := path{dir: comps[:i]}
		sub := at.join(c)
		next, err := openat(fd, c, dirFlags, 0)
		if errors.Is(err, syscall.ENOENT) {
			if err := mkdirat(fd, c, uint32(perm)); err != nil && !errors.Is(err, syscall.EEXIST) {
				return &fs.PathError{Op: "mkdir", Path: sub, Err: err}
			}
			next, err = openat(fd, c, dirFlags, 0)
			if err == nil {
				if err := fixDirMode(next, perm); err != nil {
					syscall.Close(next)
					return &fs.PathError{Op: "chmod", Path: sub, Err: err}
				}
				if err := fsyncDir(fd, at); err != nil {
					syscall.Close(next)
					return err
				}
			}
		}
		if err != nil {
			return dirError(fd, c, sub, err)
		}
		syscall.Close(fd)
		fd = next
	}
	return nil
}

func fixDirMode(fd int, perm fs.FileMode) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&0o7777 != uint32(perm) {
		return syscall.Fchmod(fd, uint32(perm))
	}
	return nil
}

// path is a parsed absolute path: the directories below the root and the
// final name (empty for the root itself).
type path struct {
	dir  []string
	base string
}

// join renders the path of name inside p's directory, as a host path.
func (p path) join(name string) string {
	return "/" + strings.Join(append(p.dir[:len(p.dir):len(p.dir)], name), "/")
}

// parse checks name and splits it. rootOK allows "/" itself.
func parse(name string, rootOK bool) (path, error) {
	if !strings.HasPrefix(name, "/") {
		return path{}, &badPathError{name, "not absolute"}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return path{}, &badPathError{name, "contains a NUL byte"}
	}
	var comps []string
	for c := range strings.SplitSeq(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return path{}, &badPathError{name, `contains ".."`}
		default:
			comps = append(comps, c)
		}
	}
	if len(comps) == 0 {
		if rootOK {
			return path{}, nil
		}
		return path{}, &badPathError{name, "names the root, not a file"}
	}
	return path{dir: comps[:len(comps)-1], base: comps[len(comps)-1]}, nil
}

const dirFlags = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// openDir opens the directory comps below the root, one component at a
// time with O_NOFOLLOW, and returns its descriptor.
func (h *Host) openDir(comps []string) (int, error) {
	if !strings.HasPrefix(h.dir, "/") {
		return -1, fmt.Errorf("hostfs: root %q is not an absolute path", h.dir)
	}
	fd, err := syscall.Open(h.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening root %s: %w", h.dir, err)
	}
	for i, c := range comps {
		next, err := openat(fd, c, dirFlags, 0)
		if err != nil {
			err = dirError(fd, c, path{dir: comps[:i]}.join(c), err)
		}
		syscall.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// dirError explains a failure to open the directory name in dir, at host
// path p. With O_DIRECTORY|O_NOFOLLOW Linux reports a symlink as ENOTDIR
// (ELOOP without O_DIRECTORY), so look at what is there.
func dirError(dir int, name, p string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		var st syscall.Stat_t
		if lstatAt(dir, name, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return &symlinkError{p}
		}
		return fmt.Errorf("%s is not a directory", p)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

// readAt reads the regular file base in dir, refusing a symlink, and
// returns its data and stat.
func readAt(dir int, p path, base string) ([]byte, *syscall.Stat_t, error) {
	name := p.join(base)
	// O_NONBLOCK so that a FIFO planted here cannot block the open.
	fd, err := openat(dir, base, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, &symlinkError{name}
	}
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, &st, nil
}

// unlinkFile removes the file base in dir, refusing a symlink.
func unlinkFile(dir int, p path, base string) error {
	var st syscall.Stat_t
	if err := lstatAt(dir, base, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: p.join(base), Err: err}
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return &symlinkError{p.join(base)}
	}
	if err := ignoringEINTR(func() error { return syscall.Unlinkat(dir, base) }); err != nil {
		return &fs.PathError{Op: "unlink", Path: p.join(base), Err: err}
	}
	return nil
}

func fsyncDir(dir int, p path) error {
	if err := ignoringEINTR(func() error { return syscall.Fsync(dir) }); err != nil {
		return &fs.PathError{Op: "fsync", Path: "/" + strings.Join(p.dir, "/"), Err: err}
	}
	return nil
}

// tempName returns a fresh name for a temporary file next to base; it
// starts with a dot and does not end in base's extension. It is kept under
// NAME_MAX (255 bytes).
func tempName(base string) string {
	var r [6]byte
	for i := range r {
		r[i] = byte(rand.Uint32())
	}
	if len(base) > 200 {
		base = base[:200]
	}
	return "." + base + ".tmp" + hex.EncodeToString(r[:])
}

func openat(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := syscall.Openat(dir, name, flags, mode)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// oPath is O_PATH, which package syscall lacks on some architectures; the
// value is the same on every Linux architecture Go supports.
const oPath = 0x200000

// lstatAt is fstatat(dir, name, AT_SYMLINK_NOFOLLOW), which package syscall
// does not export on every architecture: it opens name itself with
// O_PATH|O_NOFOLLOW (a symlink is opened, not followed) and fstats that.
func lstatAt(dir int, name string, st *syscall.Stat_t) error {
	fd, err := openat(dir, name, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Fstat(fd, st)
}

func mkdirat(dir int, name string, mode uint32) error {
	return ignoringEINTR(func() error { return syscall.Mkdirat(dir, name, mode) })
}

func renameat(olddir int, oldname string, newdir int, newname string) error {
	return ignoringEINTR(func() error { return syscall.Renameat(olddir, oldname, newdir, newname) })
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != syscall.EINTR {
			return err
		}
	}
}
