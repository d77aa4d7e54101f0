// Package golden compares rendered output with files in a package's
// testdata, for the golden tests of every config pvehci renders. With
// UPDATE_GOLDEN=1 in the environment it rewrites the files instead, so that
// a deliberate change shows up as a diff in review.
package golden

import (
	"os"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/textdiff"
)

// Check compares got with the file at path, failing the test with a line
// diff when they differ.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (UPDATE_GOLDEN=1 rewrites it):\n%s", path,
			strings.Join(textdiff.Lines(string(want), string(got)), "\n"))
	}
}
