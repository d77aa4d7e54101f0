package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/lab"
)

func labCommand(e env) *ucli.Command {
	dirFlag := &ucli.StringFlag{Name: "dir", Usage: "the lab's directory", Value: lab.DefaultDir(), Sources: ucli.EnvVars("PVEHCI_LAB_DIR")}
	control := func(c *ucli.Command) (*lab.Control, error) { return lab.Dial(c.String("dir")) }
	simple := func(name, usage, args string, nargs int, path string, body func(args []string) (any, error)) *ucli.Command {
		return &ucli.Command{Name: name, Usage: usage, ArgsUsage: args, Flags: []ucli.Flag{dirFlag},
			Action: func(ctx context.Context, c *ucli.Command) error {
				if nargs >= 0 && c.Args().Len() != nargs || nargs < 0 && c.Args().Len() == 0 {
					return usageError{fmt.Errorf("%s takes %s", name, args)}
				}
				in, err := body(c.Args().Slice())
				if err != nil {
					return usageError{err}
				}
				ctl, err := control(c)
				if err != nil {
					return err
				}
				if err := ctl.Do(ctx, "POST", path, in, nil); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %s: done\n", name, strings.Join(c.Args().Slice(), " "))
				return nil
			}}
	}
	node := func(a []string) (any, error) { return lab.NodeRequest{Node: a[0]}, nil }
	return &ucli.Command{
		Name:  "lab",
		Usage: "run a whole pvehci cluster on this machine over a simulated kernel",
		Description: "`pvehci lab up` starts N nodes (n1, n2, … on 127.0.0.11, 127.0.0.12, …) running the real\n" +
			"daemon, REST API and satellite over a simulated DRBD and LVM kernel, and returns once the\n" +
			"cluster answers. Point the Proxmox plugin, golinstor or curl at LS_CONTROLLERS from DIR/env.",
		Commands: []*ucli.Command{
			{Name: "up", Usage: "start a lab in the background", Flags: []ucli.Flag{dirFlag,
				&ucli.IntFlag{Name: "nodes", Usage: "number of nodes", Value: lab.DefaultNodes},
				&ucli.StringFlag{Name: "addr-base", Usage: "the address before n1's", Value: lab.DefaultAddrBase.String()}},
				Action: func(ctx context.Context, c *ucli.Command) error { return labUp(ctx, e, c) }},
			{Name: "serve", Hidden: true, Usage: "run a lab's supervisor in the foreground (what `lab up` starts)", Flags: []ucli.Flag{dirFlag,
				&ucli.IntFlag{Name: "nodes", Value: lab.DefaultNodes},
				&ucli.StringFlag{Name: "addr-base", Value: lab.DefaultAddrBase.String()}},
				Action: func(ctx context.Context, c *ucli.Command) error { return labServe(ctx, e, c) }},
			{Name: "down", Usage: "stop the lab and remove its directory", Flags: []ucli.Flag{dirFlag},
				Action: func(ctx context.Context, c *ucli.Command) error { return labDown(ctx, e, c.String("dir")) }},
			{Name: "status", Usage: "show the nodes, the leader and the resources", Flags: []ucli.Flag{dirFlag,
				&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(ctx context.Context, c *ucli.Command) error {
					ctl, err := control(c)
					if err != nil {
						return err
					}
					var st lab.Status
					if err := ctl.Do(ctx, "GET", "/status", nil, &st); err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(e.stdout, st)
					}
					printLabStatus(e, st)
					return nil
				}},
			simple("kill", "kill a node's daemon with SIGKILL (its simulated kernel keeps running)", "NODE", 1, "/kill", node),
			simple("start", "start a killed node's daemon again", "NODE", 1, "/start", node),
			simple("partition", "cut the simulated DRBD network between the given nodes and the others", "NODE...", -1, "/partition",
				func(a []string) (any, error) { return lab.PartitionRequest{Nodes: a}, nil }),
			simple("corrupt", "flip a block of a resource's backing volume on one node, behind DRBD's back (for online verify to find)", "NODE RESOURCE", 2, "/corrupt",
				func(a []string) (any, error) { return lab.CorruptRequest{Node: a[0], Resource: a[1]}, nil }),
			simple("heal", "restore every simulated link", "", 0, "/heal", func([]string) (any, error) { return struct{}{}, nil }),
			{Name: "disk", Usage: "faults of a node's disk", Commands: []*ucli.Command{
				simple("fail", "make a node's disk fail as a dead drive: every I/O on it errors, DRBD detaches its replicas there", "NODE", 1, "/disk/fail",
					func(a []string) (any, error) { return lab.NodeRequest{Node: a[0]}, nil }),
			}},
			{Name: "vm", Usage: "simulated Proxmox VMs whose disks are made through the plugin's REST calls", Commands: []*ucli.Command{
				{Name: "create", Usage: "create a VM with one disk on the drbd storage and start it on a node", ArgsUsage: "VMID",
					Flags: []ucli.Flag{dirFlag, &ucli.StringFlag{Name: "node", Usage: "the node to run it on", Value: "n1"},
						&ucli.StringFlag{Name: "size", Usage: "disk size (KiB, or with a unit: 1GiB)", Value: "1GiB"}},
					Action: func(ctx context.Context, c *ucli.Command) error {
						vmid, err := vmidArg(c, 1)
						if err != nil {
							return err
						}
						size, err := parseSizeKiB(c.String("size"))
						if err != nil {
							return usageError{fmt.Errorf("--size: %w", err)}
						}
						return labVM(ctx, e, c, "/vm/create", lab.VMRequest{VMID: vmid, Node: c.String("node"), SizeKiB: size})
					}},
				{Name: "migrate", Usage: "live-migrate a VM to a node, as Proxmox does", ArgsUsage: "VMID NODE", Flags: []ucli.Flag{dirFlag},
					Action: func(ctx context.Context, c *ucli.Command) error {
						vmid, err := vmidArg(c, 2)
						if err != nil {
							return err
						}
						return labVM(ctx, e, c, "/vm/migrate", lab.VMRequest{VMID: vmid, Node: c.Args().Get(1)})
					}},
				vmSnapshotCommand(e, dirFlag, "snapshot", "take a snapshot of a VM as qm snapshot does; the VM then writes on", "/vm/snapshot",
					func(vmid int, snap string, _ lab.VMRollback) string {
						return fmt.Sprintf("snapshot %s taken; VM %d wrote a block after it", snap, vmid)
					}),
				vmSnapshotCommand(e, dirFlag, "rollback", "roll a VM back to its snapshot as qm rollback does (stop, roll back, start)", "/vm/rollback",
					func(vmid int, snap string, out lab.VMRollback) string {
						return fmt.Sprintf("VM %d rolled back to %s and started on %s\nits second block held %q before the rollback and holds %q now",
							vmid, snap, out.VM.Node, strings.TrimSpace(out.Before), strings.TrimSpace(out.After))
					}),
				vmSnapshotCommand(e, dirFlag, "delsnapshot", "delete a VM's snapshot as qm delsnapshot does", "/vm/delsnapshot",
					func(vmid int, snap string, _ lab.VMRollback) string {
						return fmt.Sprintf("snapshot %s of VM %d deleted", snap, vmid)
					}),
				{Name: "delete", Usage: "stop a VM and free its disk", ArgsUsage: "VMID", Flags: []ucli.Flag{dirFlag},
					Action: func(ctx context.Context, c *ucli.Command) error {
						vmid, err := vmidArg(c, 1)
						if err != nil {
							return err
						}
						ctl, err := control(c)
						if err != nil {
							return err
						}
						if err := ctl.Do(ctx, "POST", "/vm/delete", lab.VMRequest{VMID: vmid}, nil); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "VM %d deleted\n", vmid)
						return nil
					}},
			}},
			{Name: "exec", Usage: "run `pvehci ARGS...` as if on a node (its daemon socket and REST API)", ArgsUsage: "NODE -- ARGS...",
				Flags: []ucli.Flag{dirFlag}, SkipFlagParsing: false,
				Action: func(ctx context.Context, c *ucli.Command) error { return labExec(ctx, e, c) }},
		},
	}
}

// vmSnapshotCommand is a `lab vm` command on one VM snapshot (VMID NAME):
// it posts path and prints what done says.
func vmSnapshotCommand(e env, dirFlag ucli.Flag, name, usage, path string, done func(vmid int, snap string, out lab.VMRollback) string) *ucli.Command {
	return &ucli.Command{Name: name, Usage: usage, ArgsUsage: "VMID NAME", Flags: []ucli.Flag{dirFlag},
		Action: func(ctx context.Context, c *ucli.Command) error {
			vmid, err := vmidArg(c, 2)
			if err != nil {
				return err
			}
			ctl, err := lab.Dial(c.String("dir"))
			if err != nil {
				return err
			}
			// Only rollback answers a VMRollback; the others leave it empty.
			var out lab.VMRollback
			if err := ctl.Do(ctx, "POST", path, lab.VMRequest{VMID: vmid, Snapshot: c.Args().Get(1)}, &out); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, done(vmid, c.Args().Get(1), out))
			return nil
		}}
}

func vmidArg(c *ucli.Command, n int) (int, error) {
	if c.Args().Len() != n {
		return 0, usageError{fmt.Errorf("%s takes %s", c.Name, c.ArgsUsage)}
	}
	vmid, err := strconv.Atoi(c.Args().First())
	if err != nil || vmid < 100 || vmid > 999999999 {
		return 0, usageError{fmt.Errorf("VMID %q: Proxmox VM ids are numbers from 100 to 999999999", c.Args().First())}
	}
	return vmid, nil
}

func labVM(ctx context.Context, e env, c *ucli.Command, path string, req lab.VMRequest) error {
	ctl, err := lab.Dial(c.String("dir"))
	if err != nil {
		return err
	}
	var vm lab.VM
	if err := ctl.Do(ctx, "POST", path, req, &vm); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "VM %d runs on %s: disk %s:%s at %s\n", vm.ID, vm.Node, lab.StorageName, vm.Volname, vm.Device)
	return nil
}

func printLabStatus(e env, st lab.Status) {
	fmt.Fprintf(e.stdout, "lab in %s, leader %s\n\n", st.Dir, orDash(st.Leader))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREST API\tDAEMON\tRSS\tROLE")
	for _, n := range st.Nodes {
		alive, rss, role := "down", "-", ""
		if n.Alive {
			alive = fmt.Sprintf("pid %d", n.PID)
			rss = fmt.Sprintf("%.1f MiB", float64(n.RSSKiB)/1024)
		}
		if n.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.APIURL, alive, rss, role)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\nresource definitions: %d %s\n", len(st.Resources), strings.Join(st.Resources, " "))
	if len(st.Replicas) > 0 {
		fmt.Fprintln(e.stdout)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tNODE\tDISK\tSTATE\tUSAGE")
		for _, r := range st.Replicas {
			disk, usage := "diskless", "Unused"
			if r.Diskful {
				disk = "diskful"
			}
			if r.InUse {
				usage = "InUse"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Resource, r.Node, disk, r.Disk, usage)
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// labUp starts `pvehci lab serve` in its own session and waits until the
// lab answers, or the supervisor dies (then its log says why).
func labUp(ctx context.Context, e env, c *ucli.Command) error {
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return err
	}
	if _, err := lab.Dial(dir); err == nil {
		return fmt.Errorf("a lab is running in %s already; stop it with `pvehci lab down --dir %s`", dir, dir)
	}
	if _, err := netip.ParseAddr(c.String("addr-base")); err != nil {
		return usageError{fmt.Errorf("--addr-base: %w", err)}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, lab.LogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "lab", "serve", "--dir", dir, "--nodes", fmt.Sprint(c.Int("nodes")), "--addr-base", c.String("addr-base"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the lab supervisor: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	fmt.Fprintf(e.stderr, "starting %d nodes in %s …\n", c.Int("nodes"), dir)
	for {
		if ctl, err := lab.Dial(dir); err == nil {
			var st lab.Status
			if ctl.Do(ctx, "GET", "/status", nil, &st) == nil {
				env, _ := os.ReadFile(filepath.Join(dir, lab.EnvFile))
				fmt.Fprintf(e.stdout, "lab ready in %.1f s: %d nodes, leader %s\n\n%s\nUse it:\n  . %s\n  pvehci resource list --controllers $LS_CONTROLLERS\n  pvehci lab vm create 100 --node n1\n  pvehci lab status\nStop it: pvehci lab down\n",
					time.Since(start).Seconds(), len(st.Nodes), orDash(st.Leader), env, filepath.Join(dir, lab.EnvFile))
				return nil
			}
		}
		select {
		case <-exited:
			data, _ := os.ReadFile(logPath)
			return fmt.Errorf("the lab did not start:\n%s", strings.TrimSpace(string(data)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func labServe(ctx context.Context, e env, c *ucli.Command) error {
	log, _, err := e.logger(c)
	if err != nil {
		return err
	}
	base, err := netip.ParseAddr(c.String("addr-base"))
	if err != nil {
		return usageError{fmt.Errorf("--addr-base: %w", err)}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l, err := lab.Start(ctx, lab.Config{Dir: c.String("dir"), Nodes: c.Int("nodes"), AddrBase: base, Log: log})
	if err != nil {
		return err
	}
	log.Info("lab ready", "dir", l.Dir(), "controllers", strings.Join(l.Controllers(), ","))
	return l.Serve(ctx)
}

// labDown stops the lab's supervisor (which stops the nodes) and removes
// the directory.
func labDown(ctx context.Context, e env, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, lab.EnvFile)); err != nil {
		if _, lerr := os.Stat(filepath.Join(dir, lab.LogFile)); lerr != nil {
			return fmt.Errorf("%s holds no lab (no %s); nothing to stop", dir, lab.EnvFile)
		}
	}
	if ctl, err := lab.Dial(dir); err == nil {
		if err := ctl.Do(ctx, "POST", "/shutdown", struct{}{}, nil); err != nil && !lab.IsNotRunning(err) {
			return err
		}
		deadline := time.Now().Add(45 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, lab.ControlSocket)); errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the lab in %s did not stop within 45 s; see %s", dir, filepath.Join(dir, lab.LogFile))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the lab directory: %w", err)
	}
	fmt.Fprintf(e.stdout, "lab in %s stopped and removed\n", dir)
	return nil
}

// labExec runs this binary as if on a node: its daemon's socket, and its
// REST API first in the controller list.
func labExec(ctx context.Context, e env, c *ucli.Command) error {
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) < 2 {
		return usageError{errors.New("lab exec takes a node name, then -- and the pvehci arguments")}
	}
	name := args[0]
	rest := args[1:]
	if rest[0] == "--" {
		rest = rest[1:]
	}
	ctl, err := lab.Dial(c.String("dir"))
	if err != nil {
		return err
	}
	if rest[0] == "bootstrap" {
		return labBootstrap(ctx, e, ctl, name, rest[1:])
	}
	var st lab.Status
	if err := ctl.Do(ctx, "GET", "/status", nil, &st); err != nil {
		return err
	}
	var n *lab.NodeStatus
	controllers := []string{}
	for i := range st.Nodes {
		if st.Nodes[i].Name == name {
			n = &st.Nodes[i]
		}
	}
	if n == nil {
		return usageError{fmt.Errorf("the lab has no node %q", name)}
	}
	controllers = append(controllers, n.APIURL)
	for _, o := range st.Nodes {
		if o.Name != name {
			controllers = append(controllers, o.APIURL)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, rest...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, e.stdout, e.stderr
	cmd.Env = append(os.Environ(), "PVEHCI_SOCKET="+n.Socket, "PVEHCI_NODE="+name, "LS_CONTROLLERS="+strings.Join(controllers, ","))
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ucli.Exit("", ee.ExitCode())
		}
		return err
	}
	return nil
}

// labBootstrap runs bootstrap on a lab node. The supervisor runs it, since
// it holds the node's simulated host (its kernel, network and systemd);
// the steps are the ones `pvehci bootstrap` runs on a real node.
func labBootstrap(ctx context.Context, e env, ctl *lab.Control, node string, args []string) error {
	plan := false
	for _, a := range args {
		switch a {
		case "--plan":
			plan = true
		case "--yes":
		default:
			return usageError{fmt.Errorf("lab exec %s -- bootstrap takes --plan or --yes, not %q: the lab's cluster file (DIR/cluster.yaml) and node are fixed", node, a)}
		}
	}
	var res lab.BootstrapResult
	err := ctl.Do(ctx, "POST", "/bootstrap", lab.BootstrapRequest{Node: node, Plan: plan}, &res)
	fmt.Fprint(e.stdout, res.Plan)
	for _, s := range res.Record.Steps {
		fmt.Fprintf(e.stdout, "%s: %s\n", s.Step, s.Result)
	}
	return err
}
