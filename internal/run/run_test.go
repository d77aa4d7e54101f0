package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"drbdadm", "drbdadm"},
		{"/etc/drbd.d/r0.res", "/etc/drbd.d/r0.res"},
		{"--ip=10.0.0.1/24,x@y:z+%", "--ip=10.0.0.1/24,x@y:z+%"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"a;b", "'a;b'"},
		{"~", "'~'"},
		{"line1\nline2", `$'line1\nline2'`},
		{"tab\tand 'q' \\", `$'tab\tand \'q\' \\'`},
		{"bad\xffutf8", `$'bad\xffutf8'`},
		{"bell\x07", `$'bell\x07'`},
		{"grüße", "'grüße'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got, want := ShellLine("pvesh", "set", "/x", "--comment", "a b"), "pvesh set /x --comment 'a b'"; got != want {
		t.Errorf("ShellLine = %s, want %s", got, want)
	}
}

func TestCmdString(t *testing.T) {
	tests := []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"plain", Command("drbdadm", "up", "r0"), "drbdadm up r0"},
		{"env", Cmd{Name: "drbdadm", Args: []string{"-d", "up", "r0"}, Env: []string{"__DRBD_NODE__=pve1", "X=a b"}},
			"__DRBD_NODE__=pve1 X='a b' drbdadm -d up r0"},
		{"odd env entry", Cmd{Name: "true", Env: []string{"not an assignment"}}, "'not an assignment' true"},
		{"dir timeout stdin", Cmd{Name: "cat", Dir: "/etc/drbd.d", Timeout: 1500 * time.Millisecond, Stdin: []byte("a\nb\n")},
			`cd /etc/drbd.d && timeout 1.5s cat <<< $'a\nb'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"blank lines only", "\n \n\t\n", ""},
		{"last lines kept", "1\n2\n\n3\n4\n5\n\n", "2; 3; 4; 5"},
		{"no trailing newline", "a\nb", "a; b"},
		{"control chars", "a\x1b[31mred\r\n", "a?[31mred"},
		{"bounded", long, "…" + long[:tailBytes]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tail([]byte(tt.in)); got != tt.want {
				t.Errorf("tail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExecErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cmd      Cmd
		wantCode int // from ExitCode(err)
		wantMsg  string
		wantIs   error
	}{
		{
			name:     "exit code and stderr tail",
			cmd:      Command("sh", "-c", `echo noise; for i in 1 2 3 4 5 6; do echo "line $i" >&2; done; exit 10`),
			wantCode: 10,
			wantMsg:  `sh -c 'echo noise; for i in 1 2 3 4 5 6; do echo "line $i" >&2; done; exit 10': exit code 10: stderr: line 3; line 4; line 5; line 6`,
		},
		{
			name:     "stdout tail when stderr is empty",
			cmd:      Command("sh", "-c", "echo 'r0: Failure: (114)'; exit 1"),
			wantCode: 1,
			wantMsg:  `sh -c 'echo '\''r0: Failure: (114)'\''; exit 1': exit code 1: stdout: r0: Failure: (114)`,
		},
		{
			name:     "signal",
			cmd:      Command("sh", "-c", "kill -TERM $$"),
			wantCode: -1,
			wantMsg:  "sh -c 'kill -TERM $$': killed by signal 15 (terminated)",
		},
		{
			name:     "not found",
			cmd:      Command("pvehci-no-such-program", "x"),
			wantCode: -1,
			wantMsg:  "pvehci-no-such-program x: not found in PATH",
			wantIs:   exec.ErrNotFound,
		},
		{
			name:     "timeout",
			cmd:      Cmd{Name: "sleep", Args: []string{"30"}, Timeout: 50 * time.Millisecond},
			wantCode: -1,
			wantMsg:  "sleep 30: timed out after 50ms",
			wantIs:   context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Exec{}.Run(t.Context(), tt.cmd)
			if err == nil {
				t.Fatalf("Run succeeded, want error; result %+v", res)
			}
			var rerr *Error
			if !errors.As(err, &rerr) {
				t.Fatalf("error %T is not *run.Error: %v", err, err)
			}
			if got := err.Error(); got != tt.wantMsg {
				t.Errorf("message\n got  %s\n want %s", got, tt.wantMsg)
			}
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("ExitCode = %d, want %d", got, tt.wantCode)
			}
			if wrapped := fmt.Errorf("bringing up r0: %w", err); ExitCode(wrapped) != tt.wantCode {
				t.Errorf("ExitCode(wrapped) = %d, want %d", ExitCode(wrapped), tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
			if tt.wantCode > 0 && res.ExitCode != tt.wantCode {
				t.Errorf("Result.ExitCode = %d, want %d", res.ExitCode, tt.wantCode)
			}
		})
	}
}

func TestExecIO(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PVEHCI_RUN_TEST_INHERITED", "yes")
	tests := []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"stdin", Cmd{Name: "cat", Stdin: []byte("resource r0 {\n}\n")}, "resource r0 {\n}\n"},
		{"no stdin reads /dev/null", Command("cat"), ""},
		{"env added", Cmd{Name: "sh", Args: []string{"-c", "echo $__DRBD_NODE__"}, Env: []string{"__DRBD_NODE__=pve1"}}, "pve1\n"},
		{"env inherited", Command("sh", "-c", "echo $PVEHCI_RUN_TEST_INHERITED"), "yes\n"},
		{"LC_ALL=C by default", Command("sh", "-c", "echo $LC_ALL"), "C\n"},
		{"Env overrides LC_ALL", Cmd{Name: "sh", Args: []string{"-c", "echo $LC_ALL"}, Env: []string{"LC_ALL=C.UTF-8"}}, "C.UTF-8\n"},
		{"dir", Cmd{Name: "pwd", Dir: dir}, dir + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Exec{}.Run(t.Context(), tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != tt.want {
				t.Errorf("stdout = %q, want %q", res.Stdout, tt.want)
			}
			if res.ExitCode != 0 || res.Duration <= 0 {
				t.Errorf("ExitCode = %d, Duration = %v", res.ExitCode, res.Duration)
			}
		})
	}
}

// TestExecTimeoutKillsGroup runs a shell whose background child holds stdout
// open. Killing only the shell would leave Run waiting for the child (up to
// waitDelay); killing the group returns at once and leaves nothing behind.
func TestExecTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	start := time.Now()
	res, err := Exec{}.Run(t.Context(), Cmd{
		Name:    "sh",
		Args:    []string{"-c", "echo $$; sleep 30 & sleep 30"},
		Timeout: timeout,
	})
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if elapsed > waitDelay/2 {
		t.Errorf("Run took %v; the background child kept it waiting", elapsed)
	}
	pgid, perr := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if perr != nil {
		t.Fatalf("stdout %q: %v", res.Stdout, perr)
	}
	// The kill is synchronous, but give the kernel a moment to finish exits.
	deadline := time.Now().Add(2 * time.Second)
	for {
		alive := liveGroupMembers(t, pgid)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has live members: %v", pgid, alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveGroupMembers returns "pid (comm) state" for every non-zombie process
// in process group pgid, from /proc.
func liveGroupMembers(t *testing.T, pgid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var alive []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')') // comm may contain spaces
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid pgrp …
		if len(f) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid && f[0] != "Z" {
			alive = append(alive, s[:i+1]+" "+f[0])
		}
	}
	return alive
}

func TestExecCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Exec{}.Run(ctx, Command("sh", "-c", "sleep 30 & sleep 30"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got, want := err.Error(), "sh -c 'sleep 30 & sleep 30': context canceled"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if d := time.Since(start); d > waitDelay/2 {
		t.Errorf("Run took %v after cancel", d)
	}
}

func TestExecOutputLimit(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res, err := Exec{MaxOutput: 4096}.Run(t.Context(), Command("yes", "drbd"))
	if !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("err = %v, want ErrOutputLimit", err)
	}
	if len(res.Stdout) != 4096 {
		t.Errorf("kept %d bytes of stdout, want 4096", len(res.Stdout))
	}
	if !strings.HasPrefix(err.Error(), "yes drbd: output limit exceeded: stdout: ") {
		t.Errorf("message %q", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v", d)
	}
}

// recorder is a Reporter that keeps what it was told.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestFakeTranscript(t *testing.T) {
	f := NewFake(t)
	f.On("drbdadm", "sh-nop").Return(Response{})
	f.OnPrefix("drbdsetup", "status").Stdout(`[{"name":"r0"}]`)
	f.On("drbdadm", "-d", "up", "r0").Times(1).Fail(10, "r0: Failure: (114) Lower device is already claimed\n")
	f.On("drbdadm", "-d", "up", "r0").Stdout("ok\n")
	f.OnFunc("write via tee", func(c Cmd) bool { return c.Name == "tee" }).Do(
		func(_ context.Context, c Cmd) (Result, error) {
			return Result{Stdout: c.Stdin}, nil
		})
	f.OnFunc("timeout", func(c Cmd) bool { return c.Name == "corosync-cfgtool" }).Return(Response{Err: context.DeadlineExceeded})

	ctx := t.Context()
	steps := []struct {
		cmd      Cmd
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{cmd: Command("drbdadm", "sh-nop")},
		{cmd: Command("drbdsetup", "status", "--json", "r0"), wantOut: `[{"name":"r0"}]`},
		{
			cmd:      Cmd{Name: "drbdadm", Args: []string{"-d", "up", "r0"}, Env: []string{"__DRBD_NODE__=pve1"}},
			wantCode: 10,
			wantErr:  "drbdadm -d up r0: exit code 10: stderr: r0: Failure: (114) Lower device is already claimed",
		},
		{cmd: Cmd{Name: "drbdadm", Args: []string{"-d", "up", "r0"}, Env: []string{"__DRBD_NODE__=pve1"}}, wantOut: "ok\n"},
		{cmd: Cmd{Name: "tee", Args: []string{"/etc/x"}, Stdin: []byte("hello world\n")}, wantOut: "hello world\n"},
		{
			cmd:      Cmd{Name: "corosync-cfgtool", Args: []string{"-s"}, Timeout: 5 * time.Second},
			wantCode: -1,
			wantErr:  "corosync-cfgtool -s: timed out after 5s",
		},
	}
	for _, s := range steps {
		res, err := f.Run(ctx, s.cmd)
		if s.wantErr == "" && err != nil {
			t.Errorf("%s: %v", s.cmd, err)
		}
		if s.wantErr != "" && (err == nil || err.Error() != s.wantErr) {
			t.Errorf("%s: err = %v, want %s", s.cmd, err, s.wantErr)
		}
		if string(res.Stdout) != s.wantOut || ExitCode(err) != s.wantCode {
			t.Errorf("%s: stdout %q code %d, want %q code %d", s.cmd, res.Stdout, ExitCode(err), s.wantOut, s.wantCode)
		}
	}

	const want = `drbdadm sh-nop
drbdsetup status --json r0
__DRBD_NODE__=pve1 drbdadm -d up r0
__DRBD_NODE__=pve1 drbdadm -d up r0
tee /etc/x <<< 'hello world'
timeout 5s corosync-cfgtool -s
`
	if got := f.String(); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
	if got := len(f.Transcript()); got != len(steps) {
		t.Errorf("Transcript has %d lines, want %d", got, len(steps))
	}
	if calls := f.Calls(); string(calls[4].Stdin) != "hello world\n" {
		t.Errorf("Calls()[4].Stdin = %q", calls[4].Stdin)
	}
	if u := f.Unmet(); len(u) != 0 {
		t.Errorf("Unmet = %q", u)
	}
}

func TestFakeUnexpected(t *testing.T) {
	rec := &recorder{}
	f := NewFake(rec)
	f.On("drbdadm", "up", "r0").Times(2)
	if _, err := f.Run(t.Context(), Command("drbdadm", "up", "r0")); err != nil {
		t.Fatal(err)
	}
	_, err := f.Run(t.Context(), Command("drbdadm", "down", "r0"))
	if !errors.Is(err, ErrUnexpected) {
		t.Fatalf("err = %v, want ErrUnexpected", err)
	}
	if got, want := err.Error(), "drbdadm down r0: run.Fake: unexpected command"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if want := []string{"run.Fake: unexpected command: drbdadm down r0"}; fmt.Sprint(rec.errs) != fmt.Sprint(want) {
		t.Errorf("reported %q, want %q", rec.errs, want)
	}
	if got, want := f.String(), "drbdadm up r0\ndrbdadm down r0\n"; got != want {
		t.Errorf("transcript %q, want %q", got, want)
	}
	if got, want := f.Unmet(), []string{"drbdadm up r0"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Unmet = %q, want %q", got, want)
	}

	// A cancelled context: not run, not recorded.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.Run(ctx, Command("drbdadm", "up", "r0")); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(f.Calls()); n != 2 {
		t.Errorf("%d calls recorded, want 2", n)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake(t)
	f.OnPrefix("drbdsetup").Stdout("ok")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := f.Run(t.Context(), Command("drbdsetup", "status", strconv.Itoa(i))); err != nil {
				t.Error(err)
			}
			_ = f.String()
		})
	}
	wg.Wait()
	if n := len(f.Transcript()); n != 20 {
		t.Errorf("%d lines, want 20", n)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("other"), -1},
		{&Error{ExitCode: 3}, 3},
		{fmt.Errorf("wrapped: %w", &Error{ExitCode: 20}), 20},
		{&Error{ExitCode: -1, Err: context.Canceled}, -1},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
