package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds each check (all the tool runs of one call). Every
// tool answers in well under a second; the bound only stops a wedged tool
// from hanging a test binary until go test's own 10-minute timeout.
const DefaultTimeout = 30 * time.Second

// setupFailed is the exit code of the namespace scripts when preparing the
// namespace fails, so that a failed mount is not reported as the tool
// rejecting the file. The tools checked here exit with 1, 8 or 10.
const setupFailed = 211

// packages names the Debian package of every program the checks run.
var packages = map[string]string{
	"drbdadm":         "drbd-utils",
	"corosync":        "corosync",
	"ifup":            "ifupdown2",
	"ifquery":         "ifupdown2",
	"systemd-analyze": "systemd",
	"ip":              "iproute2",
	"unshare":         "util-linux",
	"mount":           "mount",
	"sh":              "dash",
}

// sbinDirs are searched after PATH: drbdadm, corosync, ifup and ip live in
// sbin, which a non-root user's PATH (and so go test's) often lacks.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// lookTools resolves programs to paths, or returns a *ToolMissingError for
// the first one that is missing.
func lookTools(names ...string) ([]string, error) {
	paths := make([]string, len(names))
	for i, name := range names {
		p, err := lookTool(name)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	return paths, nil
}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg := packages[name]
	if pkg == "" {
		pkg = name
	}
	return "", &ToolMissingError{Tool: name, Package: pkg}
}

// requireRoot returns a *NeedRootError unless the process can create
// namespaces the simple way.
func requireRoot(check string) error {
	if uid := os.Geteuid(); uid != 0 {
		return &NeedRootError{Check: check, UID: uid}
	}
	return nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, DefaultTimeout)
}

// command is one program run. env holds the variables that change what the
// tool does; they are part of the printed command line.
type command struct {
	argv []string
	env  []string
}

func (c command) String() string {
	words := make([]string, 0, len(c.env)+len(c.argv))
	for _, e := range c.env {
		words = append(words, quote(e))
	}
	for _, a := range c.argv {
		words = append(words, quote(a))
	}
	return strings.Join(words, " ")
}

type output struct {
	stdout, stderr string
	code           int
}

// run runs c and returns its output and exit code. A non-zero exit is not an
// error here; the callers decide what a rejection looks like. The error is
// for a program that could not run or that ran out of time.
func run(ctx context.Context, c command) (output, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = environ(c.env)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// ifup is a Python program that starts others; kill the whole group
	// on timeout so nothing keeps a namespace (or our pipes) alive.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out := output{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if cerr := ctx.Err(); cerr != nil {
		if s := strings.TrimSpace(out.stderr); s != "" {
			return out, fmt.Errorf("running %s: %w (stderr: %s)", c, cerr, s)
		}
		return out, fmt.Errorf("running %s: %w", c, cerr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return out, fmt.Errorf("running %s: %w", c, err)
	}
	if out.code == setupFailed {
		return out, fmt.Errorf("preparing the namespace for %s: %s", c, strings.TrimSpace(out.stderr))
	}
	return out, nil
}

// environ is the caller's environment with the variables that would change
// the tools' behaviour removed, LC_ALL=C so that messages are the English
// ones the tests match, sbin on PATH, and then extra.
func environ(extra []string) []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH":
			path = v
			continue
		case k == "LC_ALL" || k == "LANG" || k == "LANGUAGE":
			continue
		case strings.HasPrefix(k, "SYSTEMD_"), strings.HasPrefix(k, "DRBD_"), k == "__DRBD_NODE__":
			continue
		}
		env = append(env, kv)
	}
	dirs := filepath.SplitList(path)
	for _, d := range slices.Concat(sbinDirs, []string{"/usr/bin", "/bin"}) {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	env = append(env, "PATH="+strings.Join(dirs, string(os.PathListSeparator)), "LC_ALL=C")
	return append(env, extra...)
}

// quote shell-quotes s when it needs it, for printing command lines that
// can be pasted into a root shell to reproduce a failure.
func quote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// lines splits output into trimmed, non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// absFiles makes the inputs absolute (the tools run with other working
// directories and configs elsewhere include them) and checks that they
// exist, so that a typo in a test is not reported as the tool's complaint.
func absFiles(files []string) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("no input files")
	}
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", f, err)
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("reading input: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("input %s is not a regular file", f)
		}
		abs[i] = a
	}
	return abs, nil
}

// nsCommand builds a command that runs script with sh in fresh network and
// mount namespaces; args become $1… of the script. The mount namespace is
// made private so that nothing the script mounts reaches the host.
func nsCommand(unshare, sh, script string, args ...string) []string {
	argv := []string{unshare, "--net", "--mount", "--propagation", "private", sh, "-c", script, "validate"}
	return append(argv, args...)
}

// nsScript joins the steps of a namespace script into one line (it is
// printed in error messages) behind a preamble: a failing setup step calls
// fail, which says which step it was and exits with setupFailed. The
// programs are found through the PATH that environ sets.
func nsScript(steps ...string) string {
	pre := `fail() { echo "$*" >&2; exit ` + strconv.Itoa(setupFailed) + `; }`
	return strings.Join(append([]string{pre}, steps...), "; ")
}
