package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/bootstrap/cluster"
)

// preflightStep changes nothing: it refuses, before anything is touched, a
// host that bootstrap cannot bring up, and says for each problem what to do.
func preflightStep(o Options) Step {
	check := func(ctx context.Context, h *Host) error {
		var problems []string
		add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

		if v, err := readPVEVersion(ctx, h); err != nil {
			add("%v", err)
		} else if v.Major != 8 && v.Major != 9 {
			add("Proxmox VE %s is not supported; pvehci runs on Proxmox VE 8 and 9", v.Full)
		}

		if ok, err := exists(h.FS, o.Binary); err != nil || !ok {
			add("pvehci is not installed at %s, where the service will run it; copy the binary there or pass --binary", o.Binary)
		}
		for _, w := range o.Wipe {
			if !slices.Contains(o.Node.Disks, w) {
				add("--wipe %s names a disk that is not in this node's disks in the cluster file (%s)", w, strings.Join(o.Node.Disks, ", "))
			}
		}
		if len(o.Node.Disks) > 0 {
			pvs, err := readPVs(ctx, h)
			if err != nil {
				add("%v", err)
			}
			for _, d := range o.Node.Disks {
				st, err := inspectDisk(ctx, h, d, pvs)
				if err != nil {
					add("%v", err)
					continue
				}
				if p := diskProblem(st, o.Node.VolumeGroup, o.Wipe); p != "" {
					add("%s", p)
				}
			}
		}

		if b := o.Node.Bond; b != nil {
			for _, s := range b.Slaves {
				l, err := h.Net.Link(ctx, s)
				switch {
				case errors.Is(err, ErrNoLink):
					add("NIC %s (bond %s) does not exist on this host; check the bond slaves of node %s in the cluster file (ip -br link lists the NICs)", s, b.Name, o.Node.Name)
				case err != nil:
					add("reading NIC %s: %v", s, err)
				case l.Master != "" && l.Master != b.Name && l.Master != o.Node.Bridge.Name:
					// A NIC in the installer's vmbr0 is expected: the
					// bond takes its place under the bridge.
					add("NIC %s is already part of %s; take it out of %s in /etc/network/interfaces first", s, l.Master, l.Master)
				}
			}
		}
		if ib := o.Node.IPoIB; ib != nil {
			if _, err := findIBPort(ctx, h, ib); err != nil {
				add("%v", err)
			}
		}

		if out, err := output(ctx, h, "timedatectl", "show", "--property=NTPSynchronized", "--value"); err != nil {
			add("asking systemd whether the clock is synchronised: %v", err)
		} else if strings.TrimSpace(string(out)) != "yes" {
			add("the clock is not synchronised (timedatectl: NTPSynchronized=%s); certificates and logs need it: enable chrony (systemctl enable --now chrony) and check its servers", strings.TrimSpace(string(out)))
		}

		if err := checkPorts(ctx, h); err != nil {
			add("%v", err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("this host is not ready:\n  - %s", strings.Join(problems, "\n  - "))
		}
		return nil
	}
	return &actionStep{
		name: "preflight",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			return nil, check(ctx, h)
		},
	}
}

// checkPorts refuses ports pvehci needs that another program listens on.
// LINSTOR's controller is the likely one: it uses 3370 and 3371 too.
func checkPorts(ctx context.Context, h *Host) error {
	st, err := h.Systemd.State(ctx, UnitName)
	if err != nil {
		return fmt.Errorf("asking systemd about %s: %w", UnitName, err)
	}
	if st.ActiveState == "active" {
		return nil // the ports are ours
	}
	out, err := output(ctx, h, "ss", "--no-header", "--listening", "--tcp", "--numeric")
	if err != nil {
		return fmt.Errorf("listing listening ports: %w", err)
	}
	var busy []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		local := f[3]
		i := strings.LastIndexByte(local, ':')
		if i < 0 {
			continue
		}
		port, err := strconv.Atoi(local[i+1:])
		if err != nil {
			continue
		}
		if port == RESTPort || port == HTTPSPort || port == PeerPort {
			busy = append(busy, local)
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("ports pvehci needs are in use (%s); find the program with `ss -ltnp`: LINSTOR's controller uses 3370 and 3371 (systemctl disable --now linstor-controller)", strings.Join(busy, ", "))
	}
	return nil
}

// findIBPort finds the InfiniBand port the cluster file names.
func findIBPort(ctx context.Context, h *Host, ib *cluster.IPoIB) (IBPort, error) {
	ports, err := h.RDMA.Ports(ctx)
	if err != nil {
		return IBPort{}, fmt.Errorf("listing InfiniBand ports: %w", err)
	}
	var seen []string
	for _, p := range ports {
		if ibMatches(ib, p) {
			if p.LinkLayer != "InfiniBand" {
				return p, fmt.Errorf("port %s/%d (%s) runs %s, not InfiniBand; IPoIB needs an InfiniBand port (set the port type with mlxconfig)", p.Device, p.Port, ibName(ib), p.LinkLayer)
			}
			return p, nil
		}
		seen = append(seen, fmt.Sprintf("%s/%d guid %s pci %s", p.Device, p.Port, p.GUID, p.PCI))
	}
	if len(seen) == 0 {
		return IBPort{}, fmt.Errorf("InfiniBand port %s not found: this host has no RDMA device (is the HCA's driver, e.g. mlx5_ib, loaded?)", ibName(ib))
	}
	return IBPort{}, fmt.Errorf("InfiniBand port %s not found; this host has %s (ibstat lists them); fix ipoib of this node in the cluster file", ibName(ib), strings.Join(seen, "; "))
}

func ibMatches(ib *cluster.IPoIB, p IBPort) bool {
	if ib.GUID != "" {
		return strings.EqualFold(p.GUID, ib.GUID)
	}
	return p.PCI == ib.PCI && p.Port == ib.Port
}

func ibName(ib *cluster.IPoIB) string {
	if ib.GUID != "" {
		return "with GUID " + ib.GUID
	}
	return fmt.Sprintf("%s port %d", ib.PCI, ib.Port)
}
