package satellite

import (
	"slices"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

func TestParseResizeRequest(t *testing.T) {
	t.Parallel()
	if n, size, ok := ParseResizeRequest(FormatResizeRequest("pve1", 2097152)); !ok || n != "pve1" || size != 2097152 {
		t.Fatalf("round trip: %q %d %t", n, size, ok)
	}
	for _, bad := range []string{"", "pve1", "pve1/", "/5", "pve1/x", "pve1/-3"} {
		if _, _, ok := ParseResizeRequest(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestPlanResize: a volume definition grown from 1 GiB to 2 GiB on the
// two-node cluster (pve1 node id 0, pve2 node id 1), seen from pve1 with
// the resource up, its .res current and the peer connected.
func TestPlanResize(t *testing.T) {
	t.Parallel()
	const (
		key    = "pve/" + rsc + "_00000"
		oldKiB = 1 << 20
		newKiB = 2 << 20
	)
	oldLV := roundUp(GrossKiB(oldKiB, model.DefaultPeerSlots), 4096)
	newLV := roundUp(GrossKiB(newKiB, model.DefaultPeerSlots), 4096)
	now := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
	type setup struct {
		grow    bool   // the definition grew (RESIZE set)
		request string // PropResizeRequest
		lvKiB   int64
		devKiB  int64
		conn    drbd.ConnState
		repl    drbd.ReplState
		resized *ResizeRun
	}
	base := setup{grow: true, lvKiB: oldLV, devKiB: oldKiB, conn: drbd.ConnConnected, repl: drbd.ReplEstablished}
	tests := []struct {
		name   string
		change func(*setup)
		want   []Kind
		size   int64 // GrowLV's size
	}{
		{name: "definition bigger than the LV: the LV grows, nothing else", want: []Kind{GrowLV}, size: newLV},
		{name: "converged before the grow: nothing", change: func(s *setup) { s.grow = false }},
		{name: "LV grown, no request yet: nothing", change: func(s *setup) { s.lvKiB = newLV }},
		{name: "LV grown, request names this node: resize", change: func(s *setup) { s.lvKiB, s.request = newLV, "pve1/2097152" },
			want: []Kind{ResizeDRBD}},
		{name: "request names the other node: nothing", change: func(s *setup) { s.lvKiB, s.request = newLV, "pve2/2097152" }},
		{name: "request but the LV not grown: the LV first", change: func(s *setup) { s.request = "pve1/2097152" },
			want: []Kind{GrowLV}, size: newLV},
		{name: "request but the peer is not connected: nothing", change: func(s *setup) {
			s.lvKiB, s.request, s.conn = newLV, "pve1/2097152", "Connecting"
		}},
		{name: "request during a resync: nothing", change: func(s *setup) {
			s.lvKiB, s.request, s.repl = newLV, "pve1/2097152", drbd.ReplSyncSource
		}},
		{name: "request already run just now: nothing", change: func(s *setup) {
			s.lvKiB, s.request = newLV, "pve1/2097152"
			s.resized = &ResizeRun{Request: "pve1/2097152", At: now.Add(-time.Second)}
		}},
		{name: "request run long ago and the device is still small: again", change: func(s *setup) {
			s.lvKiB, s.request = newLV, "pve1/2097152"
			s.resized = &ResizeRun{Request: "pve1/2097152", At: now.Add(-ResizeRetryInterval)}
		}, want: []Kind{ResizeDRBD}},
		{name: "device grown: converged, nothing", change: func(s *setup) {
			s.lvKiB, s.request, s.devKiB = newLV, "pve1/2097152", newKiB
		}},
		{name: "LV bigger than needed is never shrunk", change: func(s *setup) { s.grow, s.lvKiB = false, newLV }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			su := base
			if tc.change != nil {
				tc.change(&su)
			}
			st := cluster(t, rsc)
			if su.grow {
				if res := st.Apply(&state.ModifyVolumeDefinition{ResourceDefinition: rsc, VolumeNumber: 0, SizeKiB: newKiB}); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			if su.request != "" {
				if res := st.Apply(&state.SetProps{Target: state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rsc},
					Change: model.PropsChange{Set: model.Props{PropResizeRequest: su.request}}}); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			want, err := Desired(st, "pve1")
			if err != nil {
				t.Fatal(err)
			}
			want.Now = now
			d, _ := want.Resource(rsc)
			got := Observed{
				LVs:       map[string]lvm.LV{key: {Name: rsc + "_00000", VG: "pve", Attr: "Vwi-aotz--", Size: uint64(su.lvKiB) * 1024, PoolLV: "data", Tags: []string{lvm.Tag}}},
				ExtentKiB: map[string]int64{"pve": 4096},
				Res:       map[string][]byte{rsc: d.Res},
				DRBD: map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: drbd.RoleSecondary,
					Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: drbd.DiskUpToDate, SizeKiB: uint64(su.devKiB)}},
					Connections: []drbd.ObservedConnection{{PeerNodeID: 1, Name: "pve2", Connection: su.conn,
						PeerDevices: []drbd.ObservedPeerDevice{{Volume: 0, Replication: su.repl, PeerDisk: drbd.DiskUpToDate}}}}}},
			}
			if su.resized != nil {
				got.Resized = map[string]ResizeRun{rsc + "/0": *su.resized}
			}
			p := Plan(want, got)
			var kinds []Kind
			for _, a := range p.Actions {
				kinds = append(kinds, a.Kind)
				if a.Kind == GrowLV && a.SizeKiB != tc.size {
					t.Errorf("GrowLV to %d KiB, want %d", a.SizeKiB, tc.size)
				}
				if a.Kind == ResizeDRBD && (a.Volume != 0 || a.RunID != su.request || !a.AssumeClean) {
					t.Errorf("ResizeDRBD %+v", a)
				}
			}
			if !slices.Equal(kinds, tc.want) || len(p.Problems) > 0 {
				t.Errorf("actions = %v, problems %v; want %v", kinds, p.Problems, tc.want)
			}
		})
	}
}
