package corosync

import (
	"github.com/pvehci/pvehci/internal/golden"
	"github.com/pvehci/pvehci/internal/textdiff"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTestdata returns testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// golden compares got with testdata/name. With UPDATE_GOLDEN=1 in the
// environment it rewrites the file instead, for a deliberate change that
// the diff in review then shows.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// diffText is diffLines as one text, "-" for want and "+" for got.
func diffText(want, got string) string {
	var s string
	for _, l := range textdiff.Lines(want, got) {
		s += l + "\n"
	}
	return s
}

func mustParse(t *testing.T, data []byte) *Config {
	t.Helper()
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture returns testdata/name with each old→new replacement applied.
// Every old string must occur exactly once, so that a fixture edit cannot
// silently turn a negative test into a test of the unchanged file.
func fixture(t *testing.T, name string, replace ...string) []byte {
	t.Helper()
	s := string(readTestdata(t, name))
	if len(replace)%2 != 0 {
		t.Fatalf("fixture %s: odd number of replacement strings", name)
	}
	for i := 0; i < len(replace); i += 2 {
		if n := strings.Count(s, replace[i]); n != 1 {
			t.Fatalf("fixture %s: %q occurs %d times, want 1", name, replace[i], n)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return []byte(s)
}
