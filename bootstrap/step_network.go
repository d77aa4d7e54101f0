package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/internal/textdiff"
	"github.com/pvehci/pvehci/network/ifupdown"
)

// linkFilePath is the systemd .link file that pins an IPoIB port's name.
// Proxmox's own pinning tool skips InfiniBand ports (research/proxmox.md
// §3.5), and a port renamed by a new naming scheme would lose its address.
func linkFilePath(name string) string { return "/etc/systemd/network/10-pvehci-" + name + ".link" }

// linkFile matches on the PCI path and the link type rather than the
// hardware address: an IPoIB address embeds a queue pair number that
// changes between boots.
func linkFile(ib *cluster.IPoIB, port IBPort) []byte {
	return fmt.Appendf(nil, "# Written by pvehci bootstrap: a stable name for InfiniBand port %s/%d (GUID %s).\n"+
		"[Match]\nPath=pci-%s\nType=infiniband\n\n[Link]\nName=%s\n", port.Device, port.Port, port.GUID, port.PCI, ib.Iface.Name)
}

// NetworkStepName names the step that --try guards.
const NetworkStepName = "network"

func networkStep(o Options) Step {
	return &networkStepImpl{actionStep{
		name: NetworkStepName,
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			var acts []action
			netw := o.Node.Network()
			if ib := o.Node.IPoIB; ib != nil {
				port, err := findIBPort(ctx, h, ib)
				if err != nil {
					return nil, err
				}
				lf, err := fileAction(h.FS, linkFilePath(ib.Iface.Name), linkFile(ib, port), 0o644)
				if err != nil {
					return nil, err
				}
				acts = append(acts, lf...)
				if cur := port.NetDev; cur != "" && cur != ib.Iface.Name {
					// Until the next boot applies the .link file, rename
					// the port by hand, and take any stanza it had under
					// its old name out of the main file.
					netw.Remove = append(netw.Remove, cur)
					acts = append(acts,
						commandAction("take "+cur+" down for its rename", run.Command("ip", "link", "set", "dev", cur, "down")),
						commandAction("rename "+cur+" to "+ib.Iface.Name, run.Command("ip", "link", "set", "dev", cur, "name", ib.Iface.Name)))
				}
			}
			p, err := ifupdown.PlanNetwork(h.FS, netw)
			if err != nil {
				return nil, fmt.Errorf("planning /etc/network/interfaces: %w", err)
			}
			if p.Changed() {
				for _, f := range p.Files {
					if !f.Changed() {
						continue
					}
					summary := "update (under Proxmox's network lock; the old file kept as .bak)"
					if f.Old == nil {
						summary = "create"
					}
					if !f.Backup {
						summary = strings.Replace(summary, "; the old file kept as .bak", "", 1)
					}
					acts = append(acts, action{Change: Change{Kind: ChangeFile, Target: f.Path, Summary: summary, Diff: textdiff.Lines(string(f.Old), string(f.New))}})
				}
				// The files go in together under the lock; one action
				// carries them (the others only describe).
				acts[len(acts)-1].do = func(ctx context.Context, h *Host) error {
					return ifupdown.Apply(ctx, h.FS, h.NetworkLock, p)
				}
				for i := range acts {
					if acts[i].do == nil {
						acts[i].do = func(context.Context, *Host) error { return nil }
					}
				}
			}
			if len(acts) > 0 || verifyNetwork(ctx, h, o) != nil {
				acts = append(acts, commandAction("apply the network files", run.Command("ifreload", "-a")))
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error { return settleNetwork(ctx, h, o) },
	}}
}

// networkStepImpl is the network step; it can also be reverted after the
// journal put its files back, for --try.
type networkStepImpl struct{ actionStep }

// Revert makes the running network follow the restored files again.
func (s *networkStepImpl) Revert(ctx context.Context, h *Host) error {
	_, err := h.Run.Run(ctx, run.Command("ifreload", "-a"))
	return err
}

// linkSettle bounds the wait for links that ifreload configured to come
// up: a bridge follows its ports after a moment (0.5 s on the VM tier), an
// LACP bond after its partner agrees (1-3 s).
const linkSettle = 30 * time.Second

// settleNetwork verifies the network, waiting while the only problems are
// links not up yet; anything else fails at once.
func settleNetwork(ctx context.Context, h *Host, o Options) error {
	deadline := time.Now().Add(linkSettle)
	for {
		err := verifyNetwork(ctx, h, o)
		var down *linksDownError
		if err == nil || !errors.As(err, &down) || !down.onlyDown || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// linksDownError is a network that is not as configured.
type linksDownError struct {
	problems []string
	// onlyDown is true when every problem is a link that is not up yet.
	onlyDown bool
}

func (e *linksDownError) Error() string {
	return "the network is not as configured (ifquery -a -c shows the differences): " + strings.Join(e.problems, "; ")
}

// verifyNetwork checks through netlink what ifreload should have done.
func verifyNetwork(ctx context.Context, h *Host, o Options) error {
	var problems []string
	onlyDown := true
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
		if !strings.Contains(format, " is down") {
			onlyDown = false
		}
	}
	link := func(name string) (Link, bool) {
		l, err := h.Net.Link(ctx, name)
		if errors.Is(err, ErrNoLink) {
			add("%s does not exist", name)
			return l, false
		}
		if err != nil {
			add("reading %s: %v", name, err)
			return l, false
		}
		return l, true
	}
	if b := o.Node.Bond; b != nil {
		if l, ok := link(b.Name); ok {
			if l.Kind != "bond" {
				add("%s is a %s, not a bond", b.Name, l.Kind)
			}
			if !l.Up {
				add("%s is down", b.Name)
			}
		}
		for _, s := range b.Slaves {
			if l, ok := link(s); ok {
				if l.Master != b.Name {
					add("%s is not a slave of %s", s, b.Name)
				} else if !l.Up {
					add("%s (slave of %s) is down: no carrier? check the cable and the switch port", s, b.Name)
				}
			}
		}
	}
	br := o.Node.Bridge
	if l, ok := link(br.Name); ok {
		if !l.Up {
			add("%s is down", br.Name)
		}
		if !slices.Contains(l.Addrs, o.Node.Management) {
			add("%s does not have the management address %s", br.Name, o.Node.Management)
		}
	}
	if ib := o.Node.IPoIB; ib != nil {
		if l, ok := link(ib.Iface.Name); ok {
			if !slices.Contains(l.Addrs, ib.Iface.Address) {
				add("%s does not have the storage address %s", ib.Iface.Name, ib.Iface.Address)
			}
			if !l.Up {
				add("%s is down", ib.Iface.Name)
			}
		}
		if port, err := findIBPort(ctx, h, ib); err != nil {
			add("%v", err)
		} else if port.State != "ACTIVE" {
			add("InfiniBand port %s/%d is %s, not ACTIVE: is a subnet manager running (opensm on one node, or on the switch)?", port.Device, port.Port, port.State)
		}
	}
	if len(problems) > 0 {
		return &linksDownError{problems: problems, onlyDown: onlyDown}
	}
	return nil
}
