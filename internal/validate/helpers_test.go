package validate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds each check in the tests; the package's own default is
// longer.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fixture copies testdata/name into a fresh temporary directory, applying
// each old→new replacement, and returns the copy's path. Every old string
// must occur exactly once, so a fixture edit cannot silently turn a
// negative test into a test of the unchanged file.
func fixture(t *testing.T, name string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if len(replace)%2 != 0 {
		t.Fatalf("fixture %s: odd number of replacement strings", name)
	}
	for i := 0; i < len(replace); i += 2 {
		if n := strings.Count(s, replace[i]); n != 1 {
			t.Fatalf("fixture %s: %q occurs %d times, want 1", name, replace[i], n)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkNoHostMounts fails the test if any of the paths the namespace
// scripts mount over is a mount point in the test's own mount namespace,
// which would mean a mount escaped the private namespace.
func checkNoHostMounts(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Logf("cannot read mountinfo: %v", err)
			return
		}
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) < 5 {
				continue
			}
			switch f[4] {
			case "/etc/corosync", "/etc/network/ifupdown2/ifupdown2.conf":
				t.Errorf("mount leaked into the host: %s", l)
			}
			if strings.Contains(f[4], "pvehci-validate-") {
				t.Errorf("mount leaked into the host: %s", l)
			}
		}
	})
}
