// Package validatetest is the test side of package validate: it decides
// what a check's error means for a test.
//
// A missing tool or missing root is the machine's fault, not the code's:
// locally the test is skipped with the apt-get line that fixes it, and with
// CI=true it fails, so that CI cannot pass by checking nothing. Any other
// error fails the test with the full message.
package validatetest

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/validate"
)

// InCI reports whether $CI says the tests run in CI (CI=true, as GitHub
// Actions, GitLab and most others set it).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Check is for a check that must pass: it returns when err is nil, skips
// or fails on an environment error, and fails the test on any other.
func Check(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	Environment(t, err)
	t.Fatalf("%v", err)
}

// Rejected is for a check that must fail: it returns the *RejectedError,
// skips or fails on an environment error, and fails the test when err is
// nil or another error. It also fails the test when the tool's output does
// not contain every one of want, which is what proves that the tool, not
// an accident, rejected the input. When err joins several rejections (the
// AllHosts and AllNodes checks), want is matched against the first.
func Rejected(t testing.TB, err error, want ...string) *validate.RejectedError {
	t.Helper()
	if err == nil {
		t.Fatalf("the check passed, want a rejection mentioning %q", want)
	}
	Environment(t, err)
	var rej *validate.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("want a rejection mentioning %q, got another error: %v", want, err)
	}
	var missed []string
	for _, w := range want {
		if !strings.Contains(rej.Output(), w) {
			missed = append(missed, w)
		}
	}
	if len(missed) > 0 {
		t.Fatalf("rejection does not mention %q:\n%v", missed, err)
	}
	return rej
}

// Environment skips the test (or fails it in CI) when err is, or wraps, a
// *validate.ToolMissingError or *validate.NeedRootError, and returns
// otherwise.
func Environment(t testing.TB, err error) {
	t.Helper()
	var missing *validate.ToolMissingError
	var root *validate.NeedRootError
	switch {
	case errors.As(err, &missing):
		if InCI() {
			t.Fatalf("CI=true and %v", missing)
		}
		t.Skipf("%v; to run this test: %s", missing, missing.AptLine())
	case errors.As(err, &root):
		if InCI() {
			t.Fatalf("CI=true and %v", root)
		}
		t.Skipf("%v; run the tests as root to include it", root)
	}
}
