package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary pvehciBinary built, so that test runs leave
// nothing behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
