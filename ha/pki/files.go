package pki

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside the directory given to Save and Load.
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

// File modes: certificates are public, keys are for the owner only.
const (
	certMode fs.FileMode = 0o644
	keyMode  fs.FileMode = 0o600
	dirMode  fs.FileMode = 0o700
)

// maxPEMFile bounds what Load reads from one file.
const maxPEMFile = 1 << 20

// Save writes the CA to dir as ca.crt (0644) and ca.key (0600), creating dir
// (0700) if needed. Each file is replaced atomically; the key is written
// first.
func (ca *CA) Save(dir string) error {
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		return err
	}
	return saveFiles(dir, []fileData{
		{CAKeyFile, keyPEM, keyMode},
		{CACertFile, certPEM, certMode},
	})
}

// LoadCA reads a CA written by [CA.Save]. It refuses a key file that group
// or others can access.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := readFile(filepath.Join(dir, CACertFile), false)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(filepath.Join(dir, CAKeyFile), true)
	if err != nil {
		return nil, err
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: loading the CA from %s: %w", dir, err)
	}
	return ca, nil
}

// Save writes the node material to dir as node.crt (0644), node.key (0600)
// and ca.crt (0644), creating dir (0700) if needed. Each file is replaced
// atomically; the key is written first.
func (n *NodeCert) Save(dir string) error {
	certPEM, keyPEM, caPEM, err := n.MarshalPEM()
	if err != nil {
		return err
	}
	return saveFiles(dir, []fileData{
		{NodeKeyFile, keyPEM, keyMode},
		{NodeCertFile, certPEM, certMode},
		{CACertFile, caPEM, certMode},
	})
}

// LoadNodeCert reads node material written by [NodeCert.Save]. It refuses a
// key file that group or others can access. It does not refuse an expired
// certificate; check [NodeCert.NotAfter].
func LoadNodeCert(dir string) (*NodeCert, error) {
	certPEM, err := readFile(filepath.Join(dir, NodeCertFile), false)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(filepath.Join(dir, NodeKeyFile), true)
	if err != nil {
		return nil, err
	}
	caPEM, err := readFile(filepath.Join(dir, CACertFile), false)
	if err != nil {
		return nil, err
	}
	n, err := parseNodeCert(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: loading the node certificate from %s: %w", dir, err)
	}
	return n, nil
}

type fileData struct {
	name string
	data []byte
	mode fs.FileMode
}

func saveFiles(dir string, files []fileData) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: creating %s: %w", dir, err)
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data: it writes a temporary file in the
// same directory with the final mode, syncs it, renames it over path and
// syncs the directory, so that after a crash path holds either the old or
// the new content, never a mix, and a key is never readable by others even
// for a moment. On failure the temporary file is removed. Errors name the
// file, never the data.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
			err = fmt.Errorf("pki: writing %s: %w", path, err)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	closed = true
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// readFile reads a PEM file. For a key it refuses a file that group or
// others can access, checking the mode of the opened file, not the path.
func readFile(path string, isKey bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pki: %s does not exist; has this node been bootstrapped (`pvehci bootstrap`) or joined (`pvehci cluster join TOKEN`)?", path)
		}
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pki: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if isKey && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pki: refusing to load private key %s: its mode is %04o, so group or others can access it; run `chmod 600 %s` (and consider whether the key has been copied)", path, st.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("pki: %s is larger than %d bytes; it is not a certificate or key written by pvehci", path, maxPEMFile)
	}
	return data, nil
}
