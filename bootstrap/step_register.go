package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	linstor "github.com/LINBIT/golinstor"
	lc "github.com/LINBIT/golinstor/client"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// StoragePoolIface is the name of the node interface that carries DRBD
// replication when the node has an IPoIB port; resource groups prefer it
// (PrefNic) so that DRBD never falls back to the management network
// silently.
const StoragePoolIface = "storage"

// apiClient is a golinstor client on this node's REST API: registration
// goes through the same API the Proxmox plugin and the linstor client use,
// with its validation.
func apiClient(o Options) (*lc.Client, error) {
	u, err := url.Parse(o.APIURL)
	if err != nil {
		return nil, fmt.Errorf("pvehci's API address %q: %w", o.APIURL, err)
	}
	return lc.NewClient(lc.BaseURL(u), lc.HTTPClient(&http.Client{Timeout: 30 * time.Second}), lc.Log(nil), lc.UserAgent("pvehci-bootstrap"))
}

func notFound(err error) bool { return errors.Is(err, lc.NotFoundError) }

// rgProps are the DRBD options the cluster file implies for every resource
// group: the RDMA transport when every node has an InfiniBand port and the
// file does not say tcp, and the storage interface for DRBD's paths.
func rgProps(o Options) map[string]string {
	if !wantLink1(o.Cluster) { // every node has IPoIB
		return nil
	}
	p := map[string]string{"PrefNic": StoragePoolIface}
	if o.Cluster.DRBD.Transport != "tcp" {
		p["DrbdOptions/Net/transport"] = "rdma"
	}
	return p
}

func registerStep(o Options) Step {
	n := o.Node
	return &actionStep{
		name: "register",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			c, err := apiClient(o)
			if err != nil {
				return nil, err
			}
			var acts []action
			reachable := true
			if _, err := c.Controller.GetVersion(ctx); err != nil {
				// On a fresh node the service step starts the API; plan
				// everything then.
				reachable = false
			}

			missing := func(get func() error) (bool, error) {
				if !reachable {
					return true, nil
				}
				err := get()
				if notFound(err) {
					return true, nil
				}
				return false, err
			}

			ifaces := []lc.NetInterface{{Name: "default", Address: net.IP(n.Management.Addr().AsSlice()), SatellitePort: 3366, SatelliteEncryptionType: "plain"}}
			if n.IPoIB != nil {
				ifaces = append(ifaces, lc.NetInterface{Name: StoragePoolIface, Address: net.IP(n.IPoIB.Iface.Address.Addr().AsSlice())})
			}
			if m, err := missing(func() error { _, err := c.Nodes.Get(ctx, n.Name); return err }); err != nil {
				return nil, fmt.Errorf("reading node %s from pvehci: %w", n.Name, err)
			} else if m {
				addrs := make([]string, len(ifaces))
				for i, f := range ifaces {
					addrs[i] = f.Name + "=" + f.Address.String()
				}
				acts = append(acts, apiAction("node "+n.Name, "register with interfaces "+strings.Join(addrs, ", "), func(ctx context.Context) error {
					return c.Nodes.Create(ctx, lc.Node{Name: n.Name, Type: linstor.ValNodeTypeCmbd, NetInterfaces: ifaces})
				}))
			}

			if len(n.Disks) > 0 {
				if m, err := missing(func() error { _, err := c.Nodes.GetStoragePool(ctx, n.Name, n.ThinPool); return err }); err != nil {
					return nil, fmt.Errorf("reading storage pool %s of %s: %w", n.ThinPool, n.Name, err)
				} else if m {
					acts = append(acts, apiAction("storage pool "+n.ThinPool, fmt.Sprintf("register LVM thin pool %s/%s on %s", n.VolumeGroup, n.ThinPool, n.Name), func(ctx context.Context) error {
						return c.Nodes.CreateStoragePool(ctx, n.Name, lc.StoragePool{StoragePoolName: n.ThinPool, ProviderKind: lc.LVM_THIN,
							Props: map[string]string{"StorDriver/LvmVg": n.VolumeGroup, "StorDriver/ThinPool": n.ThinPool}})
					}))
				}
			}

			props := rgProps(o)
			for _, rg := range o.Cluster.ResourceGroups {
				var cur lc.ResourceGroup
				m, err := missing(func() error { var err error; cur, err = c.ResourceGroups.Get(ctx, rg.Name); return err })
				if err != nil {
					return nil, fmt.Errorf("reading resource group %s: %w", rg.Name, err)
				}
				if m {
					acts = append(acts, apiAction("resource group "+rg.Name, fmt.Sprintf("create: %d replicas in pool %s%s", rg.PlaceCount, n.ThinPool, propsSummary(props)), func(ctx context.Context) error {
						err := c.ResourceGroups.Create(ctx, lc.ResourceGroup{Name: rg.Name, Props: props,
							SelectFilter: lc.AutoSelectFilter{PlaceCount: int32(rg.PlaceCount), StoragePool: n.ThinPool}})
						if err != nil {
							return err
						}
						return c.ResourceGroups.CreateVolumeGroup(ctx, rg.Name, lc.VolumeGroup{})
					}))
					continue
				}
				var stale []string
				for k, v := range props {
					if cur.Props[k] != v {
						stale = append(stale, k+"="+v)
					}
				}
				if len(stale) > 0 {
					acts = append(acts, apiAction("resource group "+rg.Name, "set "+strings.Join(stale, ", "), func(ctx context.Context) error {
						return c.ResourceGroups.Modify(ctx, rg.Name, lc.ResourceGroupModify{OverrideProps: props})
					}))
				}
			}

			have := map[string]model.JobSchedule{}
			if reachable {
				scheds, err := o.Daemon.Schedules(ctx)
				if err != nil {
					return nil, fmt.Errorf("reading the schedules: %w", err)
				}
				for _, s := range scheds {
					have[s.Name] = s
				}
			}
			for _, s := range o.Cluster.Schedules {
				cmd := scheduleCommand(s.Name, s.Kind, s.Cron, s.ResourceGroup, s.Keep)
				if cur, ok := have[s.Name]; ok {
					if cur.Cron != cmd.Cron || cur.Kind != cmd.Kind || cur.Target != cmd.Target {
						return nil, fmt.Errorf("schedule %s exists with %s %q on %s, the cluster file says %s %q on %s; remove it (pvehci schedule remove %s --yes) or rename it in the file",
							s.Name, cur.Kind, cur.Cron, cur.Target, cmd.Kind, cmd.Cron, cmd.Target, s.Name)
					}
					continue
				}
				acts = append(acts, apiAction("schedule "+s.Name, fmt.Sprintf("add %s job on %s at %q", cmd.Kind, cmd.Target, cmd.Cron), func(ctx context.Context) error {
					cmd.At = h.Clock.Now().UnixMilli()
					return o.Daemon.AddSchedule(ctx, cmd)
				}))
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			c, err := apiClient(o)
			if err != nil {
				return err
			}
			node, err := c.Nodes.Get(ctx, n.Name)
			if err != nil {
				return fmt.Errorf("node %s is not registered: %w", n.Name, err)
			}
			if node.ConnectionStatus != "" && node.ConnectionStatus != "ONLINE" {
				return fmt.Errorf("node %s is %s in pvehci; see journalctl -u %s", n.Name, node.ConnectionStatus, UnitName)
			}
			return nil
		},
	}
}

func scheduleCommand(name, kind, cron, rg string, keep int) *state.AddJobSchedule {
	cmd := &state.AddJobSchedule{Name: name, Cron: cron, Kind: model.JobKind(kind),
		Target: model.JobTarget{Kind: model.TargetResourceGroup, Name: rg}}
	if cmd.Kind == model.JobSnapshot && keep > 0 {
		cmd.Options = map[string]string{"keep-last": strconv.Itoa(keep)}
	}
	return cmd
}

func propsSummary(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	var s []string
	for _, k := range []string{"DrbdOptions/Net/transport", "PrefNic"} {
		if v, ok := p[k]; ok {
			s = append(s, k+"="+v)
		}
	}
	return "; " + strings.Join(s, ", ")
}

// apiAction is a change made through pvehci's REST API.
func apiAction(target, summary string, do func(ctx context.Context) error) action {
	return action{Change: Change{Kind: ChangeAPI, Target: target, Summary: summary},
		do: func(ctx context.Context, _ *Host) error { return do(ctx) }}
}
