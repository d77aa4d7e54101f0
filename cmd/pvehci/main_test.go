package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBinaryStampsBuildInfo builds the real binary the way the Makefile does
// and checks that the linker flags reach `pvehci version`.
func TestBinaryStampsBuildInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "pvehci")
	const pkg = "github.com/pvehci/pvehci/internal/buildinfo"
	ldflags := "-X " + pkg + ".version=v9.8.7-test -X " + pkg + ".commit=abc123 -X " + pkg + ".buildTime=2026-01-02T03:04:05Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("pvehci version: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := map[string]string{"version": "v9.8.7-test", "commit": "abc123", "build_time": "2026-01-02T03:04:05Z"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if code := exitCode(exec.Command(bin, "no-such-command")); code != 2 {
		t.Errorf("unknown command exit code = %d, want 2", code)
	}
}

func exitCode(c *exec.Cmd) int {
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
