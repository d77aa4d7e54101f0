package validatetest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// fakeTB records what the helpers do instead of stopping the test. Skipf
// and Fatalf end the helper the way the real ones do, by unwinding (here a
// panic that outcome recovers).
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

type stop struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}

// outcome runs fn with a fake TB and reports "pass", "skip: …" or
// "fail: …".
func outcome(fn func(tb testing.TB)) (res string) {
	f := &fakeTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
		switch {
		case f.skipped != "":
			res = "skip: " + f.skipped
		case f.fatal != "":
			res = "fail: " + f.fatal
		default:
			res = "pass"
		}
	}()
	fn(f)
	return "pass"
}

func TestCheck(t *testing.T) {
	missing := fmt.Errorf("checking: %w", &validate.ToolMissingError{Tool: "drbdadm", Package: "drbd-utils"})
	noRoot := &validate.NeedRootError{Check: "corosync -t", UID: 1000}
	rejected := &validate.RejectedError{Check: "drbdadm dump", Files: []string{"r0.res"}, Command: "drbdadm dump all", ExitCode: 10, Lines: []string{"'node-id' keyword missing."}}
	tests := []struct {
		name string
		ci   string
		err  error
		want string // prefix of the outcome
	}{
		{"nil", "", nil, "pass"},
		{"missing tool locally", "", missing, "skip: drbdadm is not installed (install it with: apt-get install --no-install-recommends drbd-utils); to run this test: apt-get install --no-install-recommends drbd-utils"},
		{"missing tool in CI", "true", missing, "fail: CI=true and drbdadm is not installed"},
		{"no root locally", "false", noRoot, "skip: corosync -t needs root"},
		{"no root in CI", "1", noRoot, "fail: CI=true and corosync -t needs root"},
		{"rejection", "", rejected, "fail: drbdadm dump rejected r0.res: exit 10: 'node-id' keyword missing."},
		{"other error", "true", errors.New("boom"), "fail: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			got := outcome(func(tb testing.TB) { validatetest.Check(tb, tt.err) })
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("outcome = %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	rejected := &validate.RejectedError{Check: "drbdadm dump", Files: []string{"r0.res"}, ExitCode: 10, Lines: []string{"Parse error: while parsing value ('D')", "for protocol. Value is not valid."}}
	tests := []struct {
		name string
		err  error
		want []string
		out  string
	}{
		{"matches across lines", rejected, []string{"('D')\nfor protocol"}, "pass"},
		{"missing text", rejected, []string{"quorum"}, `fail: rejection does not mention ["quorum"]`},
		{"passed", nil, []string{"x"}, "fail: the check passed"},
		{"other error", errors.New("boom"), nil, "fail: want a rejection"},
		{"missing tool", &validate.ToolMissingError{Tool: "ifup", Package: "ifupdown2"}, nil, "skip: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", "")
			got := outcome(func(tb testing.TB) { validatetest.Rejected(tb, tt.err, tt.want...) })
			if !strings.HasPrefix(got, tt.out) {
				t.Errorf("outcome = %q, want prefix %q", got, tt.out)
			}
		})
	}
}
