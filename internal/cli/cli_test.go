package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"pvehci"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMainExitCodesAndMessages(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{name: "no args shows help", args: nil, wantCode: ExitOK, wantStdout: []string{"USAGE:", "version"}},
		{name: "help flag", args: []string{"--help"}, wantCode: ExitOK, wantStdout: []string{"completion"}},
		{name: "version text", args: []string{"version"}, wantCode: ExitOK,
			wantStdout: []string{"pvehci ", "commit:", "built:", "go:       " + runtime.Version()}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: ExitUsage,
			wantStderr: []string{`"frobnicate" is not a pvehci command`, "pvehci --help"}},
		{name: "unknown flag on subcommand", args: []string{"version", "--frobnicate"}, wantCode: ExitUsage,
			wantStderr: []string{"flag provided but not defined", "pvehci --help"}},
		{name: "bad output format", args: []string{"version", "-o", "yaml"}, wantCode: ExitUsage,
			wantStderr: []string{`--output "yaml"`, "use text or json"}},
		{name: "bash completion", args: []string{"completion", "bash"}, wantCode: ExitOK,
			wantStdout: []string{"complete ", "pvehci"}},
		{name: "zsh completion", args: []string{"completion", "zsh"}, wantCode: ExitOK,
			wantStdout: []string{"compdef", "pvehci"}},
		{name: "fish completion", args: []string{"completion", "fish"}, wantCode: ExitOK,
			wantStdout: []string{"complete -c pvehci"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "version", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("version --output json is not JSON: %v\n%s", err, stdout)
	}
	for _, key := range []string{"version", "commit", "go_version", "build_time", "platform"} {
		if got[key] == "" {
			t.Errorf("field %q is empty in %s", key, stdout)
		}
	}
	if got["go_version"] != runtime.Version() {
		t.Errorf("go_version = %q, want %q", got["go_version"], runtime.Version())
	}
}

func TestHiddenDocsCommandIsNotListed(t *testing.T) {
	_, stdout, _ := runCLI(t, "--help")
	if strings.Contains(stdout, "docs") {
		t.Errorf("the docs command is for the build and must stay hidden from --help:\n%s", stdout)
	}
}

// The committed reference must be exactly what the binary generates, so a
// new command or flag cannot land without its documentation.
func TestCLIReferenceIsCurrent(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "docs", "--dir", dir)
	if code != ExitOK {
		t.Fatalf("docs exit %d: %s", code, stderr)
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	want, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	have, _ := filepath.Glob(filepath.Join(committed, "pvehci*.md"))
	if len(want) == 0 {
		t.Fatal("docs generated no pages")
	}
	if len(have) != len(want) {
		t.Errorf("docs/cli has %d pages, the binary generates %d; run `make docs`", len(have), len(want))
	}
	for _, p := range want {
		gen, _ := os.ReadFile(p)
		cur, err := os.ReadFile(filepath.Join(committed, filepath.Base(p)))
		if err != nil {
			t.Errorf("docs/cli/%s is missing; run `make docs`", filepath.Base(p))
			continue
		}
		if !bytes.Equal(gen, cur) {
			t.Errorf("docs/cli/%s is out of date; run `make docs`", filepath.Base(p))
		}
	}
}

func TestDocsRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "pvehci_gone.md")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "docs", "--dir", dir); code != ExitOK {
		t.Fatalf("docs exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale page %s survived regeneration", stale)
	}
	page, err := os.ReadFile(filepath.Join(dir, "pvehci_version.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# pvehci version", "`--output`, `-o`", "DO NOT EDIT"} {
		if !bytes.Contains(page, []byte(w)) {
			t.Errorf("pvehci_version.md lacks %q:\n%s", w, page)
		}
	}
}
