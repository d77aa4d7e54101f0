package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/hostnet"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
)

// healthStatusTimeout bounds the local API call: a wedged daemon must make
// the controller checks unknown, not hang the admin's terminal.
const healthStatusTimeout = 5 * time.Second

func healthCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "health",
		Usage: "show what is wrong in the cluster, worst first, with the command that fixes each problem",
		Description: "Checks corosync (quorum, knet links), the controller cluster (membership, leader,\n" +
			"certificates) through the local daemon, DRBD (split brain, disks, connections,\n" +
			"out-of-sync blocks) and the LVM thin pools. A problem that only follows from\n" +
			"another one is shown as skipped, so the first lines are the ones to fix.\n" +
			"With the leader's view (asked through the local daemon) the DRBD and pool checks judge\n" +
			"every node from its satellite's reports, and the cluster checks look at satellites that\n" +
			"stopped reporting, replica counts below the place count, failed or paused schedules,\n" +
			"failed relocations and VMs running on diskless replicas. If the local daemon or the\n" +
			"leader does not answer, CLUSTER_VIEW says so and only this node is judged.\n\n" +
			"The exit code follows the Nagios plugin convention, for monitoring systems:\n" +
			"0 all OK, 1 warning, 2 critical, 3 unknown (a check could not tell). A known\n" +
			"critical problem outranks an unknown.\n\n" +
			"Check codes: " + strings.Join(healthCodes(), ", ") + ".",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&ucli.StringSliceFlag{Name: "check", Usage: "run only the check `CODE` (and what it depends on); repeat for several"},
			&ucli.StringFlag{Name: "node", Usage: "show only what is about `NODE` (and this node's own checks)"},
			&ucli.DurationFlag{Name: "watch", Usage: "run again every `INTERVAL` until interrupted (e.g. 5s)"},
			socketFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("health takes no arguments; to run one check: pvehci health --check CODE")}
			}
			cmds := health.Commands{Runner: run.Exec{}}
			src := health.Sources{
				Corosync:   cmds,
				DRBD:       cmds,
				LVM:        cmds,
				Controller: localController{client(c)},
				Cluster:    localController{client(c)},
				Network:    hostnet.Reader{},
			}
			opts := healthOptions{
				json:   c.Bool("json"),
				checks: c.StringSlice("check"),
				colour: isTerminalWriter(e.stdout),
				node:   c.String("node"),
			}
			if every := c.Duration("watch"); every > 0 {
				return watchHealth(ctx, e, src, opts, every)
			}
			code, err := runHealth(ctx, e, src, opts)
			if err != nil {
				return err
			}
			if code != 0 {
				// An empty message: the report already said everything.
				return ucli.Exit("", code)
			}
			return nil
		},
	}
}

type healthOptions struct {
	json   bool
	checks []string
	colour bool
	node   string
}

// watchHealth repeats the report until ctx ends (Ctrl-C), redrawing the
// screen on a terminal.
func watchHealth(ctx context.Context, e env, src health.Sources, opts healthOptions, every time.Duration) error {
	if every < time.Second {
		return usageError{fmt.Errorf("--watch %s is too short; use 1s or more", every)}
	}
	for {
		if opts.colour {
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
		}
		fmt.Fprintf(e.stdout, "%s, every %s (Ctrl-C to stop)\n", time.Now().Format(time.DateTime), every)
		if _, err := runHealth(ctx, e, src, opts); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// runHealth runs the checks on src and prints the report; it returns the
// report's Nagios exit code. It is apart from the command so that tests
// can feed canned sources.
func runHealth(ctx context.Context, e env, src health.Sources, opts healthOptions) (int, error) {
	reg := health.Default()
	var only []health.Code
	for _, s := range opts.checks {
		code := health.Code(strings.ToUpper(strings.TrimSpace(s)))
		if _, ok := reg.Lookup(code); !ok {
			return 0, usageError{fmt.Errorf("--check %s: no such check; use one of %s", s, strings.Join(healthCodes(), ", "))}
		}
		only = append(only, code)
	}
	rep, err := reg.Run(ctx, src, only...)
	if err != nil {
		return 0, err
	}
	if opts.node != "" {
		rep = rep.ForNode(opts.node)
	}
	if opts.json {
		b, err := rep.JSON()
		if err != nil {
			return 0, err
		}
		if _, err := e.stdout.Write(b); err != nil {
			return 0, err
		}
	} else if err := rep.WriteText(e.stdout, opts.colour); err != nil {
		return 0, err
	}
	return rep.ExitCode, nil
}

func healthCodes() []string {
	var out []string
	for _, c := range health.Checks() {
		out = append(out, string(c.Code))
	}
	return out
}

// localController reads the cluster status from the local daemon.
type localController struct{ c *localapi.Client }

func (l localController) Status(ctx context.Context) (ha.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, healthStatusTimeout)
	defer cancel()
	var st ha.ClusterStatus
	err := l.c.Do(ctx, "GET", "/v1/status", nil, &st)
	return st, err
}

// View implements health.Cluster: the leader's view through the local
// daemon.
func (l localController) View(ctx context.Context) (health.ClusterView, error) {
	ctx, cancel := context.WithTimeout(ctx, healthStatusTimeout)
	defer cancel()
	var v health.ClusterView
	err := l.c.Do(ctx, "GET", "/v1/cluster-view", nil, &v)
	return v, err
}

// isTerminalWriter reports whether w is a terminal, so colour goes only to
// a person and never into a pipe, a file or /dev/null.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
