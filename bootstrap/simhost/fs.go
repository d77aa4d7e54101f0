package simhost

import (
	"io/fs"
	"strings"

	"github.com/pvehci/pvehci/internal/hostfs"
)

// pveFS is a node's files with /etc/pve served from the node's current
// pmxcfs directory: its own before it joins a Proxmox cluster, the
// cluster's shared one after, as pmxcfs does.
type pveFS struct {
	root hostfs.FS
	pve  func() hostfs.FS
}

const pveMount = "/etc/pve"

func (f *pveFS) route(name string) (hostfs.FS, string) {
	if name == pveMount || strings.HasPrefix(name, pveMount+"/") {
		rest := strings.TrimPrefix(name, pveMount)
		if rest == "" {
			rest = "/"
		}
		return f.pve(), rest
	}
	return f.root, name
}

func (f *pveFS) ReadFile(name string) ([]byte, error) {
	fsys, p := f.route(name)
	return fsys.ReadFile(p)
}

func (f *pveFS) Stat(name string) (fs.FileInfo, error) {
	fsys, p := f.route(name)
	return fsys.Stat(p)
}

func (f *pveFS) WriteFile(name string, data []byte, perm fs.FileMode, opts hostfs.WriteOptions) (bool, error) {
	fsys, p := f.route(name)
	return fsys.WriteFile(p, data, perm, opts)
}

func (f *pveFS) Restore(name string) error {
	fsys, p := f.route(name)
	return fsys.Restore(p)
}

func (f *pveFS) Rename(oldname, newname string) error {
	fsys, op := f.route(oldname)
	_, np := f.route(newname)
	return fsys.Rename(op, np)
}

func (f *pveFS) Remove(name string) (bool, error) {
	fsys, p := f.route(name)
	return fsys.Remove(p)
}

func (f *pveFS) MkdirAll(name string, perm fs.FileMode) error {
	fsys, p := f.route(name)
	return fsys.MkdirAll(p, perm)
}
