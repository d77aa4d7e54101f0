package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

type viewSource struct {
	v   ClusterView
	err error
}

func (s viewSource) View(context.Context) (ClusterView, error) { return s.v, s.err }

var clusterNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func healthyClusterView() ClusterView {
	return ClusterView{Leader: "n1", Time: clusterNow,
		Nodes: []NodeView{
			{Name: "n1", Online: true, Pools: []PoolView{{Name: "thinpool", DataPercent: 10, MetadataPercent: 5}}},
			{Name: "n2", Online: true, Pools: []PoolView{{Name: "thinpool", DataPercent: 10, MetadataPercent: 5}}},
		},
		Definitions: []DefinitionView{{Name: "pm-1", PlaceCount: 2, Diskful: []string{"n1", "n2"}}},
		Schedules:   []ScheduleView{{Name: "nightly", Kind: model.JobSnapshot, LastRun: &model.JobRun{State: model.RunSucceeded}}},
		Verifies: []VerifyView{
			{VerifyResult: model.VerifyResult{Resource: "pm-1", RunID: "r2", Schedule: "weekly", OutOfSyncKiB: 0}},
			{VerifyResult: model.VerifyResult{Resource: "pm-2", RunID: "r1", Schedule: "weekly", OutOfSyncKiB: 8}, Acknowledged: true},
		},
	}
}

func disklessPrimary(name string) drbd.ObservedResource {
	return drbd.ObservedResource{Name: name, Role: drbd.RolePrimary, Devices: []drbd.ObservedDevice{{Volume: 0, Disk: "Diskless", Client: true}}}
}

// TestClusterChecksFireAndClear breaks one thing at a time in a healthy
// view and expects exactly that check, on exactly those objects.
func TestClusterChecksFireAndClear(t *testing.T) {
	for _, tt := range []struct {
		name    string
		break_  func(v *ClusterView)
		code    Code
		sev     Severity
		objects string
	}{
		{"satellite silent", func(v *ClusterView) { v.Nodes[1].Online = false }, SatelliteOffline, Critical, "node n2"},
		{"observe error", func(v *ClusterView) { v.Nodes[0].ObserveError = "drbdsetup: no DRBD module" }, SatelliteFailing, Critical, "node n1"},
		{"failed action", func(v *ClusterView) { v.Nodes[0].Failed = []string{"CreateLV pm-1: insufficient free space"} }, SatelliteFailing, Warning, "node n1"},
		{"one replica short", func(v *ClusterView) { v.Definitions[0].Diskful = []string{"n1"} }, ReplicasBelowPlace, Warning, "resource pm-1"},
		{"job failed", func(v *ClusterView) { v.Schedules[0].LastRun.State = model.RunFailed }, JobFailed, Warning, "schedule nightly"},
		{"job paused", func(v *ClusterView) { v.Schedules[0].Paused = true }, JobPaused, Warning, "schedule nightly"},
		{"verify found data out of sync", func(v *ClusterView) { v.Verifies[0].OutOfSyncKiB = 4 }, VerifyOutOfSync, Warning, "resource pm-1"},
		{"acknowledgement withdrawn", func(v *ClusterView) { v.Verifies[1].Acknowledged = false }, VerifyOutOfSync, Warning, "resource pm-2"},
		{"relocation failed", func(v *ClusterView) {
			v.Relocations = []model.Relocation{{ResourceName: "pm-1", TargetNode: "n2", State: model.RelocFailed, Reason: "pool-full"}}
		}, RelocationFailed, Warning, "resource pm-1, node n2"},
		{"diskless primary", func(v *ClusterView) { v.Nodes[1].Resources = []drbd.ObservedResource{disklessPrimary("pm-2")} }, DisklessPrimary, Warning, "resource pm-2, node n2"},
		{"diskless primary long past its relocation's due time", func(v *ClusterView) {
			v.Nodes[1].Resources = []drbd.ObservedResource{disklessPrimary("pm-2")}
			v.Relocations = []model.Relocation{{ResourceName: "pm-2", TargetNode: "n2", State: model.RelocPending, DueAt: clusterNow.Add(-time.Hour).UnixMilli()}}
		}, DisklessPrimary, Warning, "resource pm-2, node n2"},
		{"clock behind", func(v *ClusterView) {
			v.Nodes[1].LastReport = clusterNow
			v.Nodes[1].ReportTime = clusterNow.Add(-5 * time.Second)
		}, ClockSkew, Warning, "node n2"},
		{"pool full", func(v *ClusterView) { v.Nodes[1].Pools[0].DataPercent = 91 }, PoolDataFull, Critical, "node n2, pool thinpool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := healthyClusterView()
			tt.break_(&v)
			rep, err := Default().Run(context.Background(), Sources{Cluster: viewSource{v: v}, Now: func() time.Time { return clusterNow }})
			if err != nil {
				t.Fatal(err)
			}
			var hits []Item
			for _, it := range rep.Items {
				if it.Severity == Warning || it.Severity == Critical {
					hits = append(hits, it)
				}
			}
			if len(hits) != 1 || hits[0].Code != tt.code || hits[0].Severity != tt.sev || strings.ReplaceAll(objectsKey(hits[0].Objects), "\x00", ", ") != tt.objects {
				t.Fatalf("findings %+v, want one %s %s on %q", hits, tt.sev, tt.code, tt.objects)
			}
			if hits[0].Hint == "" {
				t.Error("no hint")
			}
			// Fixed: nothing left.
			rep, _ = Default().Run(context.Background(), Sources{Cluster: viewSource{v: healthyClusterView()}, Now: func() time.Time { return clusterNow }}, tt.code)
			if rep.Severity != OK {
				t.Errorf("healthy view: %v", rep.Items)
			}
		})
	}
}

func TestDisklessPrimaryWaitsForItsRelocation(t *testing.T) {
	for _, state := range []model.RelocationState{model.RelocPending, model.RelocAdding, model.RelocSyncing, model.RelocRemoving} {
		v := healthyClusterView()
		v.Nodes[1].Resources = []drbd.ObservedResource{disklessPrimary("pm-2")}
		v.Relocations = []model.Relocation{{ResourceName: "pm-2", TargetNode: "n2", State: state, DueAt: clusterNow.Add(time.Minute).UnixMilli()}}
		rep, _ := Default().Run(context.Background(), Sources{Cluster: viewSource{v: v}, Now: func() time.Time { return clusterNow }}, DisklessPrimary)
		if rep.Severity != OK {
			t.Errorf("relocation %s under way, yet: %v", state, rep.Items)
		}
	}
}

func TestNoViewSkipsTheClusterChecks(t *testing.T) {
	rep, err := Default().Run(context.Background(), Sources{Cluster: viewSource{err: errors.New("no leader")}},
		ClusterViewCode, SatelliteOffline, ReplicasBelowPlace, JobFailed)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Items {
		switch {
		case it.Code == ClusterViewCode && it.Severity != Warning:
			t.Errorf("CLUSTER_VIEW %s, want a warning", it.Severity)
		case it.Code != ClusterViewCode && (it.Severity != Skipped || it.SkippedFor != ClusterViewCode):
			t.Errorf("%s %s, want skipped for CLUSTER_VIEW", it.Code, it.Severity)
		}
	}
	if rep.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", rep.ExitCode)
	}
}

func TestForNode(t *testing.T) {
	v := healthyClusterView()
	v.Nodes[1].Online = false
	v.Nodes[0].Failed = []string{"CreateLV pm-1: no space"}
	rep, err := Default().Run(context.Background(), Sources{Cluster: viewSource{v: v}, Now: func() time.Time { return clusterNow }},
		ClusterViewCode, SatelliteOffline, SatelliteFailing)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode != 2 {
		t.Fatalf("whole cluster: exit %d, want 2", rep.ExitCode)
	}
	n1 := rep.ForNode("n1")
	if n1.ExitCode != 1 {
		t.Errorf("n1 alone: exit %d, want 1 (its failed action, not n2's silence)", n1.ExitCode)
	}
	for _, it := range n1.Items {
		if strings.Contains(it.Message, "n2") {
			t.Errorf("n1's report names n2: %s", it.Message)
		}
	}
}

// TestVerifyFindingNamesPeersAndRepair: the warning names the replicas
// that differ and from whose replica; a finding the run repaired raises
// nothing; one it could not repair says why.
func TestVerifyFindingNamesPeersAndRepair(t *testing.T) {
	run := func(v ClusterView) Report {
		rep, err := Default().Run(context.Background(), Sources{Cluster: viewSource{v: v}, Now: func() time.Time { return clusterNow }}, VerifyOutOfSync)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	v := healthyClusterView()
	v.Verifies[0].OutOfSyncKiB = 8
	v.Verifies[0].VerifiedFrom = "n1"
	v.Verifies[0].Peers = map[string]uint64{"n3": 8, "n2": 0}
	v.Verifies[0].Resync = "not repaired: no diskful Primary verified it"
	rep := run(v)
	if rep.Severity != Warning || !strings.Contains(rep.Items[0].Message, "(against n1's replica: n3 8 KiB); not repaired: no diskful Primary") {
		t.Errorf("unrepaired finding: %+v", rep.Items)
	}
	v.Verifies[0].Resync = model.ResyncDone
	rep = run(v)
	if rep.Severity != OK || !strings.Contains(rep.Items[0].Message, "1 repaired from the Primary") {
		t.Errorf("repaired finding: %+v", rep.Items)
	}
}
