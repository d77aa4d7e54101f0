package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/bootstrap/hostos"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/network/ifupdown"
	"github.com/pvehci/pvehci/pve/corosync"
)

func bootstrapCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "bootstrap",
		Usage: "bring this Proxmox VE node up as a pvehci node, as the cluster file describes",
		Description: "Reads the cluster file (the same on every node), finds this node in it by host name,\n" +
			"prints every change it would make (file diffs, commands, services), asks, then applies the\n" +
			"steps in order: preflight, packages, network, corosync, storage, drbd, service, register,\n" +
			"proxmox-storage. Each step is verified; a failing step puts back the files it changed and\n" +
			"stops with the reason. Running it again on a converged node changes nothing.\n" +
			"Run it on the first node of the cluster file first; it leaves join tokens for the others.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Usage: "the cluster file", Value: cluster.DefaultPath},
			&ucli.StringFlag{Name: "node", Usage: "this node's name in the cluster file (default: the host name)"},
			&ucli.BoolFlag{Name: "plan", Usage: "print what would change and stop"},
			&ucli.BoolFlag{Name: "yes", Usage: "apply without asking"},
			&ucli.BoolFlag{Name: "try", Usage: "keep the network change only if confirmed within --timeout (a wrong bond must not cut you off)"},
			&ucli.DurationFlag{Name: "timeout", Usage: "how long --try waits for the confirmation", Value: 2 * time.Minute},
			&ucli.StringSliceFlag{Name: "wipe", Usage: "erase the old partition table and signatures of this disk (repeat per disk)"},
			&ucli.BoolFlag{Name: "offline", Usage: "install nothing; only check that the packages are there"},
			&ucli.StringFlag{Name: "binary", Usage: "where pvehci is installed on this node (the service runs it)", Value: bootstrap.DefaultBinary},
			&ucli.StringFlag{Name: "token", Usage: "a join token from `pvehci cluster token NODE` (default: the one the first node left in /etc/pve/priv/pvehci)"},
			outputFlag(),
			socketFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := noArgs(c); err != nil {
				return err
			}
			format, err := checkOutput(c)
			if err != nil {
				return err
			}
			if c.Bool("plan") && (c.Bool("yes") || c.Bool("try")) {
				return usageError{errors.New("--plan changes nothing; it does not go with --yes or --try")}
			}
			log, _, err := e.logger(c)
			if err != nil {
				return err
			}
			fsys := hostfs.Root("/")
			cl, err := cluster.Load(fsys, c.String("config"))
			if err != nil {
				return err
			}
			name := c.String("node")
			if name == "" {
				if name, err = os.Hostname(); err != nil {
					return fmt.Errorf("reading the host name: %w; pass --node", err)
				}
				name, _, _ = strings.Cut(name, ".")
			}
			node, err := cl.Node(name)
			if err != nil {
				return usageError{err}
			}
			sd, err := hostos.NewDBusSystemd(ctx)
			if err != nil {
				return fmt.Errorf("connecting to systemd: %w", err)
			}
			defer sd.Close()
			host := &bootstrap.Host{
				FS: fsys, Run: run.Exec{}, Clock: clock.Real{}, Log: log,
				Net: hostos.Netlink{}, RDMA: hostos.Sysfs{}, Systemd: sd,
				NetworkLock: ifupdown.Flock{Root: "/"}, CorosyncLock: corosync.PmxcfsLock{Root: "/"},
				CorosyncChecker: corosync.ToolChecker{},
			}
			opts := bootstrap.Options{Cluster: cl, Node: node, Wipe: c.StringSlice("wipe"), Offline: c.Bool("offline"),
				Token: c.String("token"), Daemon: bootstrap.NewLocalDaemon(c.String("socket"))}
			opts.Binary = c.String("binary")
			eng := &bootstrap.Engine{Host: host, Steps: bootstrap.Steps(opts)}
			if c.Bool("try") {
				eng.Try = &bootstrap.Try{Step: bootstrap.NetworkStepName, Confirm: confirmWithin(e, c.Duration("timeout"))}
			}
			return runBootstrap(ctx, e, eng, format, c.Bool("plan"), c.Bool("yes"))
		},
	}
}

// runBootstrap plans, shows, asks and applies.
func runBootstrap(ctx context.Context, e env, eng *bootstrap.Engine, format string, planOnly, yes bool) error {
	start := time.Now()
	plan, err := eng.Plan(ctx)
	if err != nil {
		return err
	}
	if format == "json" && planOnly {
		return writeJSON(e.stdout, plan)
	}
	fmt.Fprint(e.stdout, plan.String())
	if planOnly || plan.Empty() {
		if plan.Empty() {
			// A converged node is still verified: nothing changes, but
			// a broken service or a lost address shows up here.
			if _, err := eng.Apply(ctx, plan, nil); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stderr, "planned in %s\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	if !yes {
		if !isTerminal(os.Stdin) {
			return usageError{errors.New("there is no terminal to ask on; review the plan with --plan, then add --yes")}
		}
		fmt.Fprint(e.stderr, "Apply these changes? [y/N] ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return errors.New("not confirmed; nothing changed")
		}
	}
	i := 0
	rec, err := eng.Apply(ctx, plan, func(ev bootstrap.Event) {
		i++
		fmt.Fprintf(e.stdout, "[%d/%d] %s: %s\n", i, len(eng.Steps), ev.Step, ev.Result)
	})
	if err != nil {
		return fmt.Errorf("bootstrap stopped: %w (what was done is in %s)", err, bootstrap.RecordPath)
	}
	fmt.Fprintf(e.stdout, "done in %s; recorded in %s\n", rec.Finished.Sub(rec.Started).Round(time.Second), bootstrap.RecordPath)
	return nil
}

// confirmWithin asks on the terminal whether the operator is still
// connected after the network change, and gives up after d.
func confirmWithin(e env, d time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fmt.Fprintf(e.stderr, "The network changed. If you can read this, type yes within %s to keep it; otherwise it is put back. ", d)
		answer := make(chan string, 1)
		go func() {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				line = ""
			}
			answer <- strings.ToLower(strings.TrimSpace(line))
		}()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case a := <-answer:
			if a == "y" || a == "yes" {
				return nil
			}
			return fmt.Errorf("answered %q", a)
		case <-t.C:
			return fmt.Errorf("no answer within %s", d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
