package pki

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, "alpha", "n1")
	tests := []struct {
		name  string
		save  func(dir string) error
		load  func(dir string) (string, error) // returns a fingerprint
		want  string
		files map[string]fs.FileMode
	}{
		{
			name: "CA",
			save: c.ca.Save,
			load: func(dir string) (string, error) {
				ca, err := LoadCA(dir)
				if err != nil {
					return "", err
				}
				return ca.Fingerprint(), nil
			},
			want:  c.ca.Fingerprint(),
			files: map[string]fs.FileMode{CACertFile: 0o644, CAKeyFile: 0o600},
		},
		{
			name: "node",
			save: c.nodes["n1"].Save,
			load: func(dir string) (string, error) {
				n, err := LoadNodeCert(dir)
				if err != nil {
					return "", err
				}
				return n.Fingerprint(), nil
			},
			want:  c.nodes["n1"].Fingerprint(),
			files: map[string]fs.FileMode{NodeCertFile: 0o644, NodeKeyFile: 0o600, CACertFile: 0o644},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "pki")
			// Twice: the second replaces the first in place.
			for range 2 {
				if err := tt.save(dir); err != nil {
					t.Fatal(err)
				}
			}
			if m := mode(t, dir); m != 0o700 {
				t.Errorf("directory mode %04o, want 0700", m)
			}
			var want []string
			for name, m := range tt.files {
				want = append(want, name)
				if got := mode(t, filepath.Join(dir, name)); got != m {
					t.Errorf("%s: mode %04o, want %04o", name, got, m)
				}
			}
			slices.Sort(want)
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Errorf("directory holds %v, want exactly %v (no temporary files)", got, want)
			}
			fp, err := tt.load(dir)
			if err != nil || fp != tt.want {
				t.Fatalf("load: %s, %v; want %s", fp, err, tt.want)
			}

			for name, m := range tt.files {
				if m != 0o600 {
					continue
				}
				key := filepath.Join(dir, name)
				for _, bad := range []fs.FileMode{0o644, 0o640, 0o604, 0o660} {
					if err := os.Chmod(key, bad); err != nil {
						t.Fatal(err)
					}
					_, err := tt.load(dir)
					wantErr(t, "load with key mode "+bad.String(), err, nil, "refusing to load private key "+key, "chmod 600 "+key)
				}
				if err := os.Chmod(key, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := tt.load(dir); err != nil {
					t.Errorf("load after chmod 600: %v", err)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha")
	b := newTestCluster(t, "beta")

	dir := t.TempDir()
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not exist; has this node been bootstrapped") {
		t.Errorf("LoadCA of an empty directory: %v", err)
	}
	// Certificate of one CA, key of another: an interrupted or mixed copy.
	if err := a.ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	_, bKey, _ := b.ca.MarshalPEM()
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), bKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("LoadCA of a mixed pair: %v", err)
	}
	// A damaged key: the error does not quote it.
	damaged := []byte("-----BEGIN PRIVATE KEY-----\nTUlTU0lOR0tFWURBVEFzZWNyZXQ=\n-----END PRIVATE KEY-----\n")
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCA(dir)
	if err == nil || strings.Contains(err.Error(), "TUlTU0lOR0tFWURBVEFzZWNyZXQ") || !strings.Contains(err.Error(), "not valid PKCS #8") {
		t.Errorf("LoadCA of a damaged key: %v", err)
	}
}

// A failed write leaves the old file and no temporary file behind.
func TestWriteFileAtomicCleansUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A directory where the file should go makes the rename fail.
	if err := os.Mkdir(filepath.Join(dir, NodeKeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	c := newTestCluster(t, "alpha", "n1")
	err := c.nodes["n1"].Save(dir)
	if err == nil || !strings.Contains(err.Error(), "writing "+filepath.Join(dir, NodeKeyFile)) {
		t.Fatalf("Save over a directory: %v", err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{NodeKeyFile}) {
		t.Errorf("directory holds %v after a failed save, want only the obstacle", got)
	}

	path := filepath.Join(dir, "f")
	if err := writeFileAtomic(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil { // no new files
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 { // root ignores the directory mode
		if err := writeFileAtomic(path, []byte("new"), 0o644); err == nil {
			t.Error("write into a read-only directory succeeded")
		}
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Errorf("file holds %q after a failed write, want the old content", b)
		}
	}
}
