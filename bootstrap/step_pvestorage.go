package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
)

// StorageCfgPath is Proxmox's cluster-wide storage configuration.
const StorageCfgPath = "/etc/pve/storage.cfg"

// storageSection is one "type: id" section of storage.cfg.
type storageSection struct {
	Type, ID string
	Options  map[string]string
}

// parseStorageCfg reads the sections of storage.cfg: a "type: id" line,
// then indented "key value" lines (PVE::SectionConfig).
func parseStorageCfg(data []byte) []storageSection {
	var out []storageSection
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			typ, id, ok := strings.Cut(line, ":")
			if ok {
				out = append(out, storageSection{Type: strings.TrimSpace(typ), ID: strings.TrimSpace(id), Options: map[string]string{}})
			}
			continue
		}
		if len(out) == 0 {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		out[len(out)-1].Options[k] = strings.TrimSpace(v)
	}
	return out
}

func pveStorageStep(o Options) Step {
	id := o.Node.ProxmoxStorage
	rg := o.Cluster.ResourceGroups[0].Name
	controllers := func() string {
		var addrs []string
		nodes, _ := o.Cluster.Resolved()
		for _, n := range nodes {
			if n.Controller {
				addrs = append(addrs, n.Management.Addr().String())
			}
		}
		return strings.Join(addrs, ",")
	}()
	find := func(h *Host) (*storageSection, error) {
		data, err := h.FS.ReadFile(StorageCfgPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", StorageCfgPath, err)
		}
		for _, s := range parseStorageCfg(data) {
			if s.ID == id {
				if s.Type != "drbd" {
					return nil, fmt.Errorf("%s already has a %s storage named %s; pick another proxmox_storage name in the cluster file", StorageCfgPath, s.Type, id)
				}
				return &s, nil
			}
		}
		return nil, nil
	}
	return &actionStep{
		name: "proxmox-storage",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			cur, err := find(h)
			if err != nil {
				return nil, err
			}
			if cur != nil {
				if cur.Options["controller"] == controllers && cur.Options["resourcegroup"] == rg {
					return nil, nil
				}
				return []action{commandAction("point storage "+id+" at the pvehci controllers",
					run.Command("pvesm", "set", id, "--controller", controllers, "--resourcegroup", rg))}, nil
			}
			// A node without the linstor-proxmox plugin drops a drbd
			// section the next time it writes storage.cfg, so the entry
			// waits until every node has been through the package step:
			// a registered node has.
			c, err := apiClient(o)
			if err != nil {
				return nil, err
			}
			add := commandAction("add Proxmox storage "+id+" (cluster-wide)",
				run.Command("pvesm", "add", "drbd", id, "--resourcegroup", rg, "--controller", controllers, "--content", "images,rootdir"))
			if _, err := c.Controller.GetVersion(ctx); err != nil {
				// Before the service runs nothing tells which nodes are
				// through; the step decides again when it runs.
				add.Summary += ", once every node of the cluster file is registered"
				return []action{add}, nil
			}
			waiting, err := unregisteredNodes(ctx, o)
			if err != nil {
				return nil, err
			}
			if len(waiting) > 0 {
				if h.Log != nil {
					h.Log.Info("the Proxmox storage entry waits for the other nodes; the last node to finish bootstrap adds it", "storage", id, "waiting_for", strings.Join(waiting, ","))
				}
				return nil, nil
			}
			return []action{add}, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			cur, err := find(h)
			if err != nil || cur == nil {
				return err
			}
			out, err := output(ctx, h, "pvesm", "status", "--storage", id)
			if err != nil {
				return fmt.Errorf("pvesm status --storage %s: %w", id, err)
			}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[0] == id {
					if f[2] != "active" {
						return fmt.Errorf("the Proxmox storage %s is %s; is the linstor-proxmox plugin installed on this node, and the pvehci API reachable at %s?", id, f[2], controllers)
					}
					return nil
				}
			}
			return fmt.Errorf("pvesm status does not list storage %s", id)
		},
	}
}

// unregisteredNodes lists the nodes of the cluster file that pvehci does
// not know yet.
func unregisteredNodes(ctx context.Context, o Options) ([]string, error) {
	c, err := apiClient(o)
	if err != nil {
		return nil, err
	}
	var waiting []string
	for _, name := range o.Cluster.NodeNames() {
		if name == o.Node.Name {
			continue // registered in the step before, or being so
		}
		if _, err := c.Nodes.Get(ctx, name); err != nil {
			waiting = append(waiting, name)
		}
	}
	return waiting, nil
}
