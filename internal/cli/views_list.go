package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	lc "github.com/LINBIT/golinstor/client"
	ucli "github.com/urfave/cli/v3"
)

// listCommand builds `<object> list`: fetch with golinstor, then print a
// table or the objects as the server sent them.
func listCommand(e env, usage string, run func(ctx context.Context, a *apiConn, format string) error) *ucli.Command {
	return &ucli.Command{
		Name:    "list",
		Aliases: []string{"l", "ls"},
		Usage:   usage,
		Flags:   []ucli.Flag{outputFlag(), controllersFlag()},
		Action: func(ctx context.Context, c *ucli.Command) error {
			format, err := checkOutput(c)
			if err != nil {
				return err
			}
			if err := noArgs(c); err != nil {
				return err
			}
			a, err := dialAPI(c)
			if err != nil {
				return err
			}
			return run(ctx, a, format)
		},
	}
}

// listed is a fetched list: golinstor's objects for the table and the
// server's own JSON objects for -o json, in the same order.
type listed[T any] struct {
	items []T
	raw   []json.RawMessage
}

// fetchList runs a golinstor list call and pairs its result with the raw
// answer, then sorts both the same way: tables and JSON come out in a
// stable order whatever order the server used.
func fetchList[T any](a *apiConn, items []T, err error, compare func(x, y T) int) (listed[T], error) {
	if err != nil {
		return listed[T]{}, a.fail(err)
	}
	var raw []json.RawMessage
	if json.Unmarshal(a.rec.lastBody(), &raw) != nil || len(raw) != len(items) {
		// Cannot happen with a body golinstor just decoded as a list;
		// fall back to golinstor's view of it rather than fail.
		raw = nil
		for _, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return listed[T]{}, err
			}
			raw = append(raw, b)
		}
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return compare(items[i], items[j]) })
	out := listed[T]{items: make([]T, len(items)), raw: make([]json.RawMessage, len(items))}
	for to, from := range idx {
		out.items[to], out.raw[to] = items[from], raw[from]
	}
	return out, nil
}

func (l listed[T]) writeJSON(w io.Writer) error {
	raw := l.raw
	if raw == nil {
		raw = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table writes rows under a header with tabwriter, as `cluster status`
// does; an empty list still prints the header, so scripts and eyes see
// that the command worked.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	return tw.Flush()
}

// printList prints a fetched list: the server's own JSON with -o json, else
// a table under header whose rows addRows makes for each item (an item may
// make several rows, or fetch more for its row).
func printList[T any](e env, a *apiConn, format string, items []T, err error, compare func(x, y T) int,
	header []string, addRows func(item T, add func(columns ...string)) error) error {
	l, err := fetchList(a, items, err, compare)
	if err != nil {
		return err
	}
	if format == "json" {
		return l.writeJSON(e.stdout)
	}
	var rows [][]string
	add := func(columns ...string) { rows = append(rows, columns) }
	for _, item := range l.items {
		if err := addRows(item, add); err != nil {
			return err
		}
	}
	return table(e.stdout, header, rows)
}

func nodeListCommand(e env) *ucli.Command {
	return listCommand(e, "list the nodes: type, addresses and connection state", func(ctx context.Context, a *apiConn, format string) error {
		nodes, err := a.Nodes.GetAll(ctx)
		return printList(e, a, format, nodes, err, func(x, y lc.Node) int { return cmp.Compare(x.Name, y.Name) },
			[]string{"NODE", "NODE TYPE", "ADDRESSES", "STATE"},
			func(n lc.Node, add func(columns ...string)) error {
				var addrs []string
				for _, ni := range n.NetInterfaces {
					a := ni.Address.String()
					if ni.SatellitePort != 0 {
						a += ":" + strconv.Itoa(int(ni.SatellitePort))
					}
					if ni.SatelliteEncryptionType != "" {
						a += " (" + strings.ToUpper(ni.SatelliteEncryptionType) + ")"
					}
					addrs = append(addrs, a)
				}
				state := titleCase(n.ConnectionStatus)
				if slices.Contains(n.Flags, "EVICTED") {
					state = "Evicted"
				}
				add(n.Name, titleCase(n.Type), strings.Join(addrs, ", "), state)
				return nil
			})
	})
}

func storagePoolListCommand(e env) *ucli.Command {
	return listCommand(e, "list the storage pools of all nodes with their capacity", func(ctx context.Context, a *apiConn, format string) error {
		pools, err := a.Nodes.GetStoragePoolView(ctx)
		return printList(e, a, format, pools, err, func(x, y lc.StoragePool) int {
			return cmp.Or(cmp.Compare(x.StoragePoolName, y.StoragePoolName), cmp.Compare(x.NodeName, y.NodeName))
		},
			[]string{"STORAGE POOL", "NODE", "DRIVER", "POOL NAME", "FREE", "TOTAL", "SNAPSHOTS", "STATE"},
			func(p lc.StoragePool, add func(columns ...string)) error {
				free, total := "", ""
				if p.ProviderKind != lc.DISKLESS {
					free, total = formatKiB(p.FreeCapacity), formatKiB(p.TotalCapacity)
				}
				add(p.StoragePoolName, p.NodeName, string(p.ProviderKind),
					p.Props["StorDriver/StorPoolName"], free, total, yesNo(p.SupportsSnapshots), reportsState(p.Reports))
				return nil
			})
	})
}

func resourceGroupListCommand(e env) *ucli.Command {
	return listCommand(e, "list the resource groups: placement filter and volume groups", func(ctx context.Context, a *apiConn, format string) error {
		groups, err := a.ResourceGroups.GetAll(ctx)
		return printList(e, a, format, groups, err, func(x, y lc.ResourceGroup) int { return cmp.Compare(x.Name, y.Name) },
			[]string{"RESOURCE GROUP", "SELECT FILTER", "VLMNRS", "DESCRIPTION"},
			func(g lc.ResourceGroup, add func(columns ...string)) error {
				// One request per group, as the linstor client makes: the
				// volume numbers are not part of the group object.
				vgs, err := a.ResourceGroups.GetVolumeGroups(ctx, g.Name)
				if err != nil {
					return a.fail(err)
				}
				var nrs []string
				for _, vg := range vgs {
					nrs = append(nrs, strconv.Itoa(int(vg.VolumeNumber)))
				}
				add(g.Name, selectFilter(g.SelectFilter), strings.Join(nrs, ","), g.Description)
				return nil
			})
	})
}

func resourceDefinitionListCommand(e env) *ucli.Command {
	return listCommand(e, "list the resource definitions: group, layers, size and state", func(ctx context.Context, a *apiConn, format string) error {
		rds, err := a.ResourceDefinitions.GetAll(ctx, lc.RDGetAllRequest{WithVolumeDefinitions: true})
		return printList(e, a, format, rds, err, func(x, y lc.ResourceDefinitionWithVolumeDefinition) int { return cmp.Compare(x.Name, y.Name) },
			[]string{"RESOURCE NAME", "RESOURCE GROUP", "LAYERS", "SIZE", "STATE"},
			func(rd lc.ResourceDefinitionWithVolumeDefinition, add func(columns ...string)) error {
				var layers []string
				for _, ld := range rd.LayerData {
					layers = append(layers, string(ld.Type))
				}
				var sizes []string
				for _, vd := range rd.VolumeDefinitions {
					sizes = append(sizes, formatKiB(int64(vd.SizeKib)))
				}
				state := "ok"
				if slices.Contains(rd.Flags, "DELETE") {
					state = "DELETING"
				}
				add(rd.Name, rd.ResourceGroupName, strings.Join(layers, ","), strings.Join(sizes, ", "), state)
				return nil
			})
	})
}

func resourceListCommand(e env) *ucli.Command {
	return listCommand(e, "list the resources on every node: usage, connections, disk state and device", func(ctx context.Context, a *apiConn, format string) error {
		rs, err := a.Resources.GetResourceView(ctx)
		return printList(e, a, format, rs, err, compareResources,
			[]string{"RESOURCE NAME", "NODE", "LAYERS", "USAGE", "CONNS", "STATE", "DEVICE PATH", "CREATED ON"},
			func(r lc.ResourceWithVolumes, add func(columns ...string)) error {
				var devs []string
				for _, v := range r.Volumes {
					devs = append(devs, v.DevicePath)
				}
				add(r.Name, r.NodeName, strings.Join(layerNames(r.LayerObject), ","), usage(r.State),
					conns(r.LayerObject), resourceState(r), strings.Join(devs, ","), created(r.CreateTimestamp))
				return nil
			})
	})
}

func volumeListCommand(e env) *ucli.Command {
	return listCommand(e, "list the volumes of every resource: pool, minor, device, size and disk state", func(ctx context.Context, a *apiConn, format string) error {
		rs, err := a.Resources.GetResourceView(ctx)
		// JSON is the resources with their volumes, as the server sends
		// them and as `linstor -m volume list` prints them.
		return printList(e, a, format, rs, err, compareResources,
			[]string{"NODE", "RESOURCE", "STORAGE POOL", "VOLNR", "MINORNR", "DEVICE NAME", "ALLOCATED", "INUSE", "STATE"},
			func(r lc.ResourceWithVolumes, add func(columns ...string)) error {
				vols := slices.Clone(r.Volumes)
				slices.SortStableFunc(vols, func(x, y lc.Volume) int { return cmp.Compare(x.VolumeNumber, y.VolumeNumber) })
				for _, v := range vols {
					add(r.NodeName, r.Name, v.StoragePoolName, strconv.Itoa(int(v.VolumeNumber)),
						minor(r.LayerObject, v.VolumeNumber), v.DevicePath, formatKiB(v.AllocatedSizeKib), usage(r.State), volumeState(r, v))
				}
				return nil
			})
	})
}

func snapshotListCommand(e env) *ucli.Command {
	return listCommand(e, "list the snapshots: nodes, volume sizes and state", func(ctx context.Context, a *apiConn, format string) error {
		snaps, err := a.Resources.GetSnapshotView(ctx)
		return printList(e, a, format, snaps, err, func(x, y lc.Snapshot) int {
			return cmp.Or(cmp.Compare(x.ResourceName, y.ResourceName), cmp.Compare(x.Name, y.Name))
		},
			[]string{"RESOURCE NAME", "SNAPSHOT NAME", "NODE NAMES", "VOLUMES", "CREATED ON", "STATE"},
			func(s lc.Snapshot, add func(columns ...string)) error {
				var vols []string
				for _, vd := range s.VolumeDefinitions {
					vols = append(vols, fmt.Sprintf("%d: %s", vd.VolumeNumber, formatKiB(int64(vd.SizeKib))))
				}
				createdOn := ""
				for _, sn := range s.Snapshots {
					if sn.CreateTimestamp != nil {
						createdOn = created(sn.CreateTimestamp)
						break
					}
				}
				nodes := slices.Sorted(slices.Values(s.Nodes))
				add(s.ResourceName, s.Name, strings.Join(nodes, ", "), strings.Join(vols, ", "), createdOn, snapshotState(s.Flags))
				return nil
			})
	})
}

func compareResources(x, y lc.ResourceWithVolumes) int {
	return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.NodeName, y.NodeName))
}

// titleCase turns the API's upper-case enums (SATELLITE, ONLINE) into the
// linstor client's display form (Satellite, Online).
func titleCase(s string) string {
	if s == "" {
		return "Unknown"
	}
	s = strings.ToLower(s)
	return strings.ToUpper(s[:1]) + s[1:]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// reportsState summarises a pool's reports as the linstor client does.
func reportsState(rcs []lc.ApiCallRc) string {
	state := "Ok"
	for _, rc := range rcs {
		switch severity(rc) {
		case "ERROR":
			return "Error"
		case "WARNING":
			state = "Warning"
		}
	}
	return state
}

func selectFilter(f lc.AutoSelectFilter) string {
	var parts []string
	if f.PlaceCount != 0 {
		parts = append(parts, fmt.Sprintf("PlaceCount: %d", f.PlaceCount))
	}
	pools := f.StoragePoolList
	if f.StoragePool != "" && !slices.Contains(pools, f.StoragePool) {
		pools = append([]string{f.StoragePool}, pools...)
	}
	if len(pools) > 0 {
		parts = append(parts, "StoragePool(s): "+strings.Join(pools, ", "))
	}
	if len(f.NodeNameList) > 0 {
		parts = append(parts, "Nodes: "+strings.Join(f.NodeNameList, ", "))
	}
	if len(f.ReplicasOnDifferent) > 0 {
		parts = append(parts, "ReplicasOnDifferent: "+strings.Join(f.ReplicasOnDifferent, ", "))
	}
	if len(f.ReplicasOnSame) > 0 {
		parts = append(parts, "ReplicasOnSame: "+strings.Join(f.ReplicasOnSame, ", "))
	}
	if f.DisklessOnRemaining {
		parts = append(parts, "DisklessOnRemaining: True")
	}
	if len(f.LayerStack) > 0 {
		parts = append(parts, "LayerStack: "+strings.Join(f.LayerStack, ", "))
	}
	return strings.Join(parts, "; ")
}

func layerNames(l *lc.ResourceLayer) []string {
	var names []string
	for l != nil {
		names = append(names, string(l.Type))
		if len(l.Children) == 0 {
			break
		}
		l = &l.Children[0]
	}
	return names
}

func usage(s *lc.ResourceState) string {
	switch {
	case s == nil || s.InUse == nil:
		return "Unknown"
	case *s.InUse:
		return "InUse"
	default:
		return "Unused"
	}
}

// conns summarises the DRBD connections: Ok, or each peer that is not
// connected with DRBD's word for why.
func conns(l *lc.ResourceLayer) string {
	if l == nil || l.Drbd == nil {
		return ""
	}
	var bad []string
	for _, peer := range slices.Sorted(maps.Keys(l.Drbd.Connections)) {
		c := l.Drbd.Connections[peer]
		if !c.Connected {
			msg := c.Message
			if msg == "" {
				msg = "Connecting"
			}
			bad = append(bad, fmt.Sprintf("%s(%s)", msg, peer))
		}
	}
	if len(bad) == 0 {
		return "Ok"
	}
	return strings.Join(bad, ",")
}

// resourceState is the linstor client's STATE column: what the resource
// is for first (being deleted, a tie-breaker), then its disks.
func resourceState(r lc.ResourceWithVolumes) string {
	switch {
	case slices.Contains(r.Flags, "DELETE"):
		return "DELETING"
	case slices.Contains(r.Flags, "TIE_BREAKER"):
		return "TieBreaker"
	}
	var states []string
	for _, v := range r.Volumes {
		if s := volumeState(r, v); !slices.Contains(states, s) {
			states = append(states, s)
		}
	}
	if len(states) == 0 {
		return "Unknown"
	}
	return strings.Join(states, ",")
}

func volumeState(r lc.ResourceWithVolumes, v lc.Volume) string {
	if v.State.DiskState != "" {
		return v.State.DiskState
	}
	if slices.Contains(r.Flags, "DRBD_DISKLESS") {
		return "Diskless"
	}
	return "Unknown"
}

func minor(l *lc.ResourceLayer, vnr int32) string {
	if l == nil || l.Drbd == nil {
		return ""
	}
	for _, dv := range l.Drbd.DrbdVolumes {
		if dv.DrbdVolumeDefinition.VolumeNumber == vnr {
			return strconv.Itoa(int(dv.DrbdVolumeDefinition.MinorNumber))
		}
	}
	return ""
}

func snapshotState(flags []string) string {
	switch {
	case slices.Contains(flags, "DELETE"):
		return "Deleting"
	case slices.Contains(flags, "SUCCESSFUL"):
		return "Successful"
	case slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "FAILED") }):
		return "Failed"
	}
	return "Incomplete"
}

func created(t *lc.TimeStampMs) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02 15:04:05")
}

// formatKiB prints a size in KiB with binary units, two decimals, as the
// linstor client does.
func formatKiB(kib int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(kib), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d KiB", kib)
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
}
