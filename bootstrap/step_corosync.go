package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/pve/corosync"
)

// wantLink1 reports whether corosync gets a second link on the IPoIB
// network: only when every node has an IPoIB port, because corosync
// refuses nodes with different numbers of links.
func wantLink1(c *cluster.Cluster) bool {
	nodes, err := c.Resolved()
	if err != nil || len(nodes) == 0 {
		return false
	}
	for _, n := range nodes {
		if n.IPoIB == nil {
			return false
		}
	}
	return true
}

func corosyncStep(o Options) Step {
	link1 := wantLink1(o.Cluster)
	self := o.Node
	links := []string{"--link0", self.Management.Addr().String()}
	if link1 {
		links = append(links, "--link1", self.IPoIB.Iface.Address.Addr().String())
	}
	return &actionStep{
		name: "corosync",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			data, err := h.FS.ReadFile(corosync.ConfPath)
			if errors.Is(err, fs.ErrNotExist) {
				if self.Name == o.Cluster.First() {
					return []action{commandAction("create Proxmox cluster "+o.Cluster.Cluster,
						withTimeout(run.Command("pvecm", append([]string{"create", o.Cluster.Cluster}, links...)...), 5*time.Minute))}, nil
				}
				first, err := o.Cluster.Node(o.Cluster.First())
				if err != nil {
					return nil, err
				}
				// --use_ssh: the join then authenticates with root's ssh
				// (a key, or the password ssh asks for on the terminal)
				// instead of pvecm's own password prompt.
				add := run.Command("pvecm", append(append([]string{"add", first.Management.Addr().String()}, links...), "--use_ssh")...)
				return []action{commandAction("join Proxmox cluster "+o.Cluster.Cluster+" through "+first.Name, withTimeout(add, 5*time.Minute))}, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", corosync.ConfPath, err)
			}
			cur, err := corosync.Parse(data)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", corosync.ConfPath, err)
			}
			if name := cur.Totem.ClusterName; name != o.Cluster.Cluster {
				return nil, fmt.Errorf("this node is in Proxmox cluster %q, but the cluster file says %q; fix cluster: in the cluster file", name, o.Cluster.Cluster)
			}
			if cur.Node(self.Name) == nil {
				return nil, fmt.Errorf("%s has no node %s; is this host's name (hostname) the one Proxmox knows it by?", corosync.ConfPath, self.Name)
			}
			if !link1 {
				return nil, nil
			}
			addrs := map[string]string{}
			for _, n := range cur.Nodelist.Nodes {
				cn, err := o.Cluster.Node(n.Name)
				if err != nil {
					return nil, fmt.Errorf("node %s of the Proxmox cluster is not in the cluster file; add it there (corosync needs link 1 on every node): %w", n.Name, err)
				}
				addrs[n.Name] = cn.IPoIB.Iface.Address.Addr().String()
			}
			ed := &corosync.Editor{FS: h.FS, Lock: h.CorosyncLock, Checker: h.CorosyncChecker}
			p, err := ed.Plan("add corosync link 1 on the IPoIB network for every node", func(c *corosync.Config) (*corosync.Config, bool, error) {
				return corosync.AddLink(c, 1, addrs, corosync.NoPriority())
			})
			if err != nil {
				return nil, fmt.Errorf("planning the corosync.conf edit: %w", err)
			}
			if !p.Changed {
				return nil, nil
			}
			ha, err := planHADisarm(ctx, h)
			if err != nil {
				return nil, err
			}
			var acts []action
			if ha.disarm {
				acts = append(acts, commandAction("release HA's watchdogs while corosync changes, so that no node fences itself over a blip (HA resources exist)", haDisarm))
			}
			acts = append(acts, action{
				Change: Change{Kind: ChangeFile, Target: corosync.ConfPath, Summary: fmt.Sprintf("%s (config_version %d -> %d; .new, check, rename under the corosync lock)%s", p.Summary, p.OldVersion, p.NewVersion, ha.note), Diff: p.Diff()},
				do: func(ctx context.Context, h *Host) (err error) {
					if ha.disarm {
						// Armed again whatever happens; the plan's next
						// action does it when the edit goes through.
						defer func() {
							if err != nil {
								_, aerr := h.Run.Run(ctx, haArm)
								err = errors.Join(err, aerr)
							}
						}()
					}
					// corosync only accepts the new link on every node
					// at once, so each node's IPoIB address must answer
					// before the edit goes live.
					for name, addr := range addrs {
						if _, err := h.Run.Run(ctx, run.Command("ping", "-c", "1", "-W", "2", addr)); err != nil {
							return fmt.Errorf("%s's IPoIB address %s does not answer; bootstrap %s's network first (corosync.conf is unchanged)", name, addr, name)
						}
					}
					ed := &corosync.Editor{FS: h.FS, Lock: h.CorosyncLock, Checker: h.CorosyncChecker}
					return ed.Apply(ctx, p)
				},
			})
			if ha.disarm {
				acts = append(acts, commandAction("arm HA again", haArm))
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			if _, err := h.Run.Run(ctx, run.Command("pvecm", "status")); err != nil {
				if run.ExitCode(err) == 2 {
					return errors.New("the Proxmox cluster is not quorate (pvecm status); bring the other nodes up, or check corosync with journalctl -b -u corosync")
				}
				return fmt.Errorf("pvecm status: %w", err)
			}
			data, err := h.FS.ReadFile(corosync.ConfPath)
			if err != nil {
				return fmt.Errorf("reading %s: %w", corosync.ConfPath, err)
			}
			c, err := corosync.Parse(data)
			if err != nil {
				return fmt.Errorf("reading %s: %w", corosync.ConfPath, err)
			}
			out, err := output(ctx, h, "corosync-cmapctl", "-g", "totem.config_version")
			if err != nil {
				return fmt.Errorf("reading corosync's running config_version: %w", err)
			}
			running, err := parseCmapU64(out)
			if err != nil {
				return err
			}
			if running != c.Totem.ConfigVersion {
				return fmt.Errorf("corosync runs config_version %d but %s has %d; reload it (corosync-cfgtool -R) and check journalctl -b -u corosync", running, corosync.ConfPath, c.Totem.ConfigVersion)
			}
			if link1 && c.Interface(1) == nil {
				return fmt.Errorf("%s has no link 1", corosync.ConfPath)
			}
			return nil
		},
	}
}

var cmapValueRE = regexp.MustCompile(`=\s*(\d+)\s*$`)

// parseCmapU64 reads "totem.config_version (u64) = 3".
func parseCmapU64(out []byte) (uint64, error) {
	m := cmapValueRE.FindSubmatch([]byte(strings.TrimSpace(string(out))))
	if m == nil {
		return 0, fmt.Errorf("corosync-cmapctl said %q, not KEY (TYPE) = NUMBER", strings.TrimSpace(string(out)))
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

func withTimeout(c run.Cmd, d time.Duration) run.Cmd {
	c.Timeout = d
	return c
}

// HA disarm (pve-ha-manager 5.1.3 and later, ha-manager.adoc "disarm"):
// a corosync change can blip quorum, and a node whose HA guests lose quorum
// for about 60 s fences itself.
var (
	haDisarm = run.Command("ha-manager", "crm-command", "disarm-ha", "freeze")
	haArm    = run.Command("ha-manager", "crm-command", "arm-ha")
)

const haResourcesPath = "/etc/pve/ha/resources.cfg"

type haPlan struct {
	disarm bool
	note   string // for the plan when HA cannot be disarmed
}

// planHADisarm decides whether the corosync edit is wrapped in an HA
// disarm: when HA resources exist and ha-manager can.
func planHADisarm(ctx context.Context, h *Host) (haPlan, error) {
	data, err := h.FS.ReadFile(haResourcesPath)
	if errors.Is(err, fs.ErrNotExist) {
		return haPlan{}, nil
	}
	if err != nil {
		return haPlan{}, fmt.Errorf("reading %s: %w", haResourcesPath, err)
	}
	resources := 0
	for _, s := range parseStorageCfg(data) { // the same section format
		if s.ID != "" {
			resources++
		}
	}
	if resources == 0 {
		return haPlan{}, nil
	}
	out, err := output(ctx, h, "dpkg-query", "--show", "--showformat=${Version}", "pve-ha-manager")
	if err != nil {
		return haPlan{}, fmt.Errorf("asking dpkg for pve-ha-manager's version: %w", err)
	}
	v := strings.TrimSpace(string(out))
	if versionAtLeast(v, 5, 1, 3) {
		return haPlan{disarm: true}, nil
	}
	return haPlan{note: fmt.Sprintf("; %d HA resource(s), and pve-ha-manager %s cannot disarm HA (5.1.3 can): the edit keeps quorum, but a link lost meanwhile makes nodes with HA guests fence", resources, v)}, nil
}

// versionAtLeast compares the numeric start of a Debian version
// ("5.1.3", "4.0.6+b1", "5.2.0~rc1") with want.
func versionAtLeast(v string, want ...int) bool {
	v, _, _ = strings.Cut(v, "-")
	v, _, _ = strings.Cut(v, "+")
	v, pre, _ := strings.Cut(v, "~")
	if v == "" {
		return false
	}
	parts := strings.Split(v, ".")
	for i, w := range want {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(parts[i])
		}
		if n != w {
			return n > w
		}
	}
	// "~" sorts before the release: 5.1.3~rc1 is older than 5.1.3.
	return pre == "" || len(parts) > len(want)
}
