package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/localapi"
)

func clusterCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "cluster",
		Usage: "create, join, inspect and repair the controller cluster",
		Commands: []*ucli.Command{
			{
				Name:      "init",
				Usage:     "create a new cluster with this node as its first member",
				ArgsUsage: "NAME",
				Flags:     []ucli.Flag{socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the cluster's name")
					if err != nil {
						return err
					}
					var st ha.ClusterStatus
					if err := client(c).Do(ctx, "POST", "/v1/cluster/init", daemon.InitRequest{Name: name}, &st); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "cluster %s created; %s is its first member.\nAdd nodes with `pvehci cluster token NODE` here and `pvehci cluster join TOKEN` there.\n", name, st.Node)
					return nil
				},
			},
			{
				Name:      "token",
				Usage:     "print a single-use join token for a node",
				ArgsUsage: "NODE",
				Flags: []ucli.Flag{
					&ucli.DurationFlag{Name: "ttl", Usage: "how long the token is valid", Value: time.Hour},
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					node, err := oneArg(c, "the name of the node that will join")
					if err != nil {
						return err
					}
					var resp daemon.TokenResponse
					if err := client(c).Do(ctx, "POST", "/v1/cluster/token", daemon.TokenRequest{Node: node, TTL: c.Duration("ttl")}, &resp); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, resp.Token)
					fmt.Fprintf(e.stderr, "On %s, within %s: pvehci cluster join <token>\n", node, c.Duration("ttl"))
					return nil
				},
			},
			{
				Name:      "join",
				Usage:     "join this node to a cluster with a token from a member",
				ArgsUsage: "TOKEN",
				Flags:     []ucli.Flag{socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					tok, err := oneArg(c, "the join token printed by `pvehci cluster token`")
					if err != nil {
						return err
					}
					var st ha.ClusterStatus
					if err := client(c).Do(ctx, "POST", "/v1/cluster/join", daemon.JoinRequest{Token: tok}, &st); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%s joined cluster %s.\n", st.Node, st.ClusterName)
					return nil
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a node from the cluster",
				ArgsUsage: "NODE",
				Flags:     []ucli.Flag{socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					node, err := oneArg(c, "the node to remove")
					if err != nil {
						return err
					}
					if err := client(c).Do(ctx, "POST", "/v1/cluster/remove", daemon.RemoveRequest{Node: node}, nil); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%s removed from the cluster.\n", node)
					return nil
				},
			},
			{
				Name:  "status",
				Usage: "show the members, the leader and this node's view of the cluster",
				Flags: []ucli.Flag{outputFlag(), socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					var st ha.ClusterStatus
					if err := client(c).Do(ctx, "GET", "/v1/status", nil, &st); err != nil {
						return err
					}
					return printClusterStatus(e.stdout, c.String("output"), st)
				},
			},
			{
				Name:      "backup",
				Usage:     "write a consistent copy of the cluster state to a file",
				ArgsUsage: "FILE",
				Flags:     []ucli.Flag{socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					file, err := oneArg(c, "the file to write the backup to")
					if err != nil {
						return err
					}
					var b daemon.BackupData
					if err := client(c).Do(ctx, "GET", "/v1/cluster/backup", nil, &b); err != nil {
						return err
					}
					abs, err := filepath.Abs(file)
					if err != nil {
						return err
					}
					if _, err := hostfs.Root("/").WriteFile(abs, b.Backup, 0o600, hostfs.WriteOptions{}); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "state backed up to %s (%d bytes)\n", abs, len(b.Backup))
					return nil
				},
			},
			{
				Name:      "restore",
				Usage:     "replace the cluster state with a backup (destructive)",
				ArgsUsage: "FILE",
				Description: "Replaces every resource, pool, group and schedule the cluster knows with the\n" +
					"backup's. The cluster's members stay as they are. Changes made since the backup\n" +
					"are lost, so it asks for confirmation (or --yes).",
				Flags: []ucli.Flag{
					yesFlag(),
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					file, err := oneArg(c, "the backup file")
					if err != nil {
						return err
					}
					data, err := os.ReadFile(file)
					if err != nil {
						return fmt.Errorf("reading the backup: %w", err)
					}
					if !c.Bool("yes") {
						if err := confirmDestructive(e, fmt.Sprintf("Replace the whole cluster state with %s? Changes made since it was taken are lost.", file)); err != nil {
							return err
						}
					}
					if err := client(c).Do(ctx, "POST", "/v1/cluster/restore", daemon.BackupData{Backup: data}, nil); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "cluster state restored from %s\n", file)
					return nil
				},
			},
			{
				Name:  "recover",
				Usage: "after the permanent loss of a majority: make the surviving members a cluster again (offline)",
				Description: "Use only when a majority of the controller members is gone for good and cannot\n" +
					"be brought back. Stop pvehci on every survivor, run this on each with the same\n" +
					"--member list, then start them. Changes the lost members committed that no\n" +
					"survivor received are lost; that is why it needs --force. Afterwards remove\n" +
					"the lost nodes with `pvehci cluster remove` and re-join replacements.",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "force", Usage: "confirm that a majority is permanently lost"},
					&ucli.StringSliceFlag{Name: "member", Usage: "a surviving member as NAME=IP:PORT (repeat; at least this node)"},
					&ucli.StringFlag{Name: "node", Usage: "this node's name (default: the host name)"},
					&ucli.StringFlag{Name: "data-dir", Usage: "the daemon's data directory", Value: daemon.DefaultDataDir},
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if !c.Bool("force") {
						return usageError{errors.New("recover rewrites the cluster membership and can lose committed changes; read `pvehci cluster recover --help`, then add --force")}
					}
					if err := client(c).Do(ctx, "GET", "/v1/status", nil, nil); err == nil {
						return errors.New("the pvehci daemon is running on this node; stop it first (systemctl stop pvehci)")
					}
					node := c.String("node")
					if node == "" {
						var err error
						if node, err = os.Hostname(); err != nil {
							return err
						}
					}
					var servers []ha.Server
					for _, m := range c.StringSlice("member") {
						name, addr, ok := strings.Cut(m, "=")
						if !ok || name == "" || addr == "" {
							return usageError{fmt.Errorf("--member %q: write NAME=IP:PORT, e.g. %s=10.0.0.1:%d", m, node, ha.DefaultPeerPort)}
						}
						servers = append(servers, ha.Server{ID: name, Address: addr, Voter: true})
					}
					found := false
					for _, s := range servers {
						found = found || s.ID == node
					}
					if !found {
						return usageError{fmt.Errorf("--member must name this node (%s) among the survivors", node)}
					}
					if err := ha.Recover(ha.RecoverConfig{NodeName: node, DataDir: c.String("data-dir"), Servers: servers}); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "raft configuration rewritten to %d member(s); start pvehci on every survivor, then remove the lost nodes with `pvehci cluster remove`.\n", len(servers))
					return nil
				},
			},
		},
	}
}

func client(c *ucli.Command) *localapi.Client { return localapi.NewClient(c.String("socket")) }

func oneArg(c *ucli.Command, what string) (string, error) {
	if c.Args().Len() != 1 {
		return "", usageError{fmt.Errorf("%s needs exactly one argument: %s", c.FullName(), what)}
	}
	return c.Args().First(), nil
}

func printClusterStatus(w io.Writer, format string, st ha.ClusterStatus) error {
	switch format {
	case "json":
		return writeJSON(w, st)
	case "text":
	default:
		return usageError{fmt.Errorf("--output %q is not a format pvehci writes; use text or json", format)}
	}
	if !st.Member {
		fmt.Fprintf(w, "%s is not a member of a cluster. Run `pvehci cluster init NAME` on the first node or `pvehci cluster join TOKEN` here.\n", st.Node)
		return nil
	}
	r := st.Raft
	leader := r.LeaderID
	if leader == "" {
		leader = "none (no quorum?)"
	}
	fmt.Fprintf(w, "Cluster:   %s\nThis node: %s (%s)\nLeader:    %s\nTerm:      %d   applied index %d   commit index %d\n",
		st.ClusterName, st.Node, strings.ToLower(r.State), leader, r.Term, r.AppliedIndex, r.CommitIndex)
	if r.LeaderID != "" && r.LeaderID != st.Node {
		fmt.Fprintf(w, "Last contact with the leader: %s ago\n", r.LastContact.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "Node certificate expires %s; cluster CA expires %s\n\n", st.CertExpiry.Format("2006-01-02"), st.CAExpiry.Format("2006-01-02"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tPEER ADDRESS\tROLE\tRAFT\t")
	for _, m := range st.Members {
		role := "non-voter"
		if m.Voter {
			role = "voter"
		}
		if m.Leader {
			role = "leader"
		}
		inRaft := "yes"
		if !m.InRaft {
			inRaft = "joining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", m.Name, m.PeerAddress, role, inRaft)
	}
	return tw.Flush()
}
