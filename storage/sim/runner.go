package sim

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
)

// Exit codes of lvm2 (tools/errors.h): ECMD_FAILED is 5, EINVALID_CMD_LINE
// is 3.
const (
	lvmFailed      = 5
	lvmInvalidArgs = 3
)

// Runner returns the host's run.Runner: it answers the command lines of the
// package doc and reports any other program as not found, as run.Exec does
// for a program missing from PATH.
func (h *Host) Runner() run.Runner { return hostRunner{h} }

type hostRunner struct{ h *Host }

// output collects what a simulated command prints and its exit code.
type output struct {
	stdout, stderr strings.Builder
	code           int
}

// info prints an lvm message line to stdout; lvm indents its log lines by
// two spaces.
func (o *output) info(format string, a ...any) {
	fmt.Fprintf(&o.stdout, "  "+format+"\n", a...)
}

// warn prints an lvm message line to stderr without failing.
func (o *output) warn(format string, a ...any) {
	fmt.Fprintf(&o.stderr, "  "+format+"\n", a...)
}

// fail prints an lvm error line to stderr and sets the exit code (the
// first failure's code wins, as lvm returns the worst of its per-object
// results, and both failures here are "worse" than success).
func (o *output) fail(code int, format string, a ...any) {
	o.warn(format, a...)
	if o.code == 0 {
		o.code = code
	}
}

// usage reports a command-line error from parseArgs.
func (o *output) usage(err error) { o.usageMsg(err.Error()) }

// usageMsg reports a command-line error (exit 3); msg may span lines.
func (o *output) usageMsg(msg string) {
	fmt.Fprintf(&o.stderr, "%s\n", indentLines(msg))
	o.code = lvmInvalidArgs
}

func indentLines(s string) string {
	if strings.HasPrefix(s, "  ") || strings.Contains(strings.SplitN(s, "\n", 2)[0], ": ") {
		return s // getopt's own "prog: …" lines are not indented
	}
	return "  " + s
}

// notModelled refuses a command line that the real tool may accept but
// the simulation does not cover, so that nothing succeeds silently.
func (o *output) notModelled(prog, what string) {
	fmt.Fprintf(&o.stderr, "%s: %s is not modelled by pvehci's storage simulation\n", prog, what)
	o.code = lvmInvalidArgs
}

func (r hostRunner) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	if err := ctx.Err(); err != nil {
		return run.Result{ExitCode: -1}, &run.Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	var o output
	prog := path.Base(c.Name)
	switch prog {
	case "lvs", "vgs", "pvs":
		r.h.report(&o, prog, c.Args)
	case "lvcreate":
		r.h.lvcreate(&o, c.Args)
	case "lvremove":
		r.h.lvremove(&o, c)
	case "lvextend":
		r.h.lvextend(&o, c.Args)
	case "lvrename":
		r.h.lvrename(&o, c.Args)
	case "lvchange":
		r.h.lvchange(&o, c.Args)
	case "pvcreate":
		r.h.pvcreate(&o, c.Args)
	case "vgcreate", "vgextend":
		r.h.vgcreateExtend(&o, prog, c.Args)
	case "lsblk":
		r.h.lsblk(&o, c.Args)
	case "wipefs":
		r.h.wipefs(&o, c.Args)
	case "drbdadm":
		r.h.drbdadm(&o, c)
	case "drbdsetup":
		r.h.drbdsetup(&o, c)
	case "drbdmeta":
		r.h.drbdmeta(&o, c)
	default:
		return run.Result{ExitCode: -1}, &run.Error{Argv: c.Argv(), ExitCode: -1,
			Err: &exec.Error{Name: c.Name, Err: exec.ErrNotFound}}
	}
	res := run.Result{Stdout: []byte(o.stdout.String()), Stderr: []byte(o.stderr.String()), ExitCode: o.code}
	if o.code != 0 {
		return res, &run.Error{Argv: c.Argv(), ExitCode: o.code, Stdout: res.Stdout, Stderr: res.Stderr}
	}
	return res, nil
}
