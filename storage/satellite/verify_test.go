package satellite

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// verifyKernel is rsc on a node with DRBD node id 1, its disk as given,
// connected to the peers listed (node id → peer disk and replication).
func verifyKernel(disk drbd.DiskState, peers map[int][2]string) map[string]drbd.ObservedResource {
	k := drbd.ObservedResource{Name: rsc, Role: drbd.RoleSecondary,
		Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: disk}}}
	for id := 0; id < 4; id++ {
		p, ok := peers[id]
		if !ok {
			continue
		}
		conn := drbd.ConnConnected
		if p[0] == "" {
			conn = drbd.ConnState("Connecting")
		}
		k.Connections = append(k.Connections, drbd.ObservedConnection{PeerNodeID: id, Name: fmt.Sprintf("peer%d", id), Connection: conn, PeerRole: drbd.RoleSecondary,
			PeerDevices: []drbd.ObservedPeerDevice{{Volume: 0, PeerDisk: drbd.DiskState(p[0]), Replication: drbd.ReplState(p[1]), OutOfSyncKiB: 4}}})
	}
	return map[string]drbd.ObservedResource{rsc: k}
}

// withPrimary makes node id (1 is this node) Primary in kernel.
func withPrimary(kernel map[string]drbd.ObservedResource, id int) map[string]drbd.ObservedResource {
	k := kernel[rsc]
	if id == 1 {
		k.Role = drbd.RolePrimary
	}
	for i := range k.Connections {
		if k.Connections[i].PeerNodeID == id {
			k.Connections[i].PeerRole = drbd.RolePrimary
		}
	}
	kernel[rsc] = k
	return kernel
}

func TestPlanVerify(t *testing.T) {
	t.Parallel()
	up, est := string(drbd.DiskUpToDate), string(drbd.ReplEstablished)
	d := DesiredResource{Name: rsc, NodeID: 1, Peers: []int{0, 2, 3}, DiskfulPeers: []int{0, 2}, VerifyRequest: "20260301T010000-wv"}
	tests := []struct {
		name     string
		d        func(DesiredResource) DesiredResource
		disk     drbd.DiskState
		peers    map[int][2]string
		verified string
		primary  int // node id of a Primary; 0 for none (node id 0 is never made Primary here)
		want     bool
	}{
		{name: "lowest UpToDate diskful node id coordinates", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, est}, 3: {string(drbd.DiskDiskless), est}}, want: true},
		{name: "a lower connected UpToDate peer coordinates", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{0: {up, est}, 2: {up, est}}},
		{name: "a lower peer that is not UpToDate does not count", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{0: {string(drbd.DiskOutdated), est}, 2: {up, est}}, want: true},
		{name: "a lower peer that is not connected does not count", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{0: {"", est}, 2: {up, est}}, want: true},
		{name: "alone: no diskful peer to compare with", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{0: {"", est}, 3: {string(drbd.DiskDiskless), est}}},
		{name: "local disk not UpToDate", disk: drbd.DiskInconsistent,
			peers: map[int][2]string{2: {up, est}}},
		{name: "resync running", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, string(drbd.ReplSyncSource)}}},
		{name: "verify running", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, string(drbd.ReplVerifyS)}}},
		{name: "already ran this request", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, est}}, verified: "20260301T010000-wv"},
		{name: "an older request does not block a new one", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, est}}, verified: "20260222T010000-wv", want: true},
		{name: "this node is Primary: it coordinates though a lower peer is UpToDate", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{0: {up, est}, 2: {up, est}}, primary: 1, want: true},
		{name: "a higher peer is Primary: it coordinates", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, est}}, primary: 2},
		{name: "a diskless Primary does not count", disk: drbd.DiskUpToDate,
			peers: map[int][2]string{2: {up, est}, 3: {string(drbd.DiskDiskless), est}}, primary: 3, want: true},
		{name: "no request", d: func(d DesiredResource) DesiredResource { d.VerifyRequest = ""; return d },
			disk: drbd.DiskUpToDate, peers: map[int][2]string{2: {up, est}}},
		{name: "diskless node never verifies", d: func(d DesiredResource) DesiredResource { d.Diskless = true; return d },
			disk: drbd.DiskUpToDate, peers: map[int][2]string{2: {up, est}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dd := d
			if tc.d != nil {
				dd = tc.d(d)
			}
			got := Observed{DRBD: verifyKernel(tc.disk, tc.peers)}
			if tc.primary != 0 {
				withPrimary(got.DRBD, tc.primary)
			}
			if tc.verified != "" {
				got.Verified = map[string]string{rsc: tc.verified}
			}
			acts := planVerify(dd, got)
			if (len(acts) == 1) != tc.want || len(acts) > 1 {
				t.Fatalf("actions %v, want verify=%v", acts, tc.want)
			}
			if tc.want && (acts[0].Kind != RunVerify || acts[0].RunID != d.VerifyRequest || acts[0].Resource != rsc) {
				t.Fatalf("action %+v", acts[0])
			}
		})
	}
}

func TestVerifyReportsAndMemory(t *testing.T) {
	t.Parallel()
	rec := &recordRunner{}
	r := &Reconciler{Node: "pve1", Runner: rec}
	a := Action{Kind: RunVerify, Resource: rsc, RunID: "r1"}
	if _, err := r.do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if len(rec.cmds) != 1 || !strings.HasSuffix(rec.cmds[0], "drbdadm verify "+rsc) {
		t.Fatalf("commands %q", rec.cmds)
	}
	if r.verified[rsc] != "r1" {
		t.Fatalf("memory %v", r.verified)
	}
	up := string(drbd.DiskUpToDate)
	want := DesiredState{Resources: []DesiredResource{{Name: rsc}, {Name: "other"}}}
	got := Observed{Verified: map[string]string{rsc: "r1"},
		DRBD: verifyKernel(drbd.DiskUpToDate, map[int][2]string{0: {up, string(drbd.ReplVerifyS)}, 2: {up, string(drbd.ReplEstablished)}})}
	want.Resources[0].DiskfulPeers = []int{0, 2}
	reps := verifyReports(want, got)
	wantRep := VerifyReport{Resource: rsc, RunID: "r1", Running: true, OutOfSyncKiB: 8,
		Peers: []VerifyPeer{{Node: "peer0", OutOfSyncKiB: 4}, {Node: "peer2", OutOfSyncKiB: 4}}}
	if len(reps) != 1 || !reflect.DeepEqual(reps[0], wantRep) {
		t.Fatalf("reports %+v", reps)
	}
	got.DRBD = verifyKernel(drbd.DiskUpToDate, map[int][2]string{0: {up, string(drbd.ReplEstablished)}})
	if reps := verifyReports(want, got); len(reps) != 1 || reps[0].Running || reps[0].OutOfSyncKiB != 4 {
		t.Fatalf("finished: %+v", reps)
	}
}

// recordRunner records the commands it is asked to run and succeeds.
type recordRunner struct{ cmds []string }

func (r *recordRunner) Run(_ context.Context, c run.Cmd) (run.Result, error) {
	r.cmds = append(r.cmds, strings.Join(append([]string{c.Name}, c.Args...), " "))
	return run.Result{}, nil
}

func TestPlanVerifyResync(t *testing.T) {
	t.Parallel()
	up, est := string(drbd.DiskUpToDate), string(drbd.ReplEstablished)
	const run = "20260301T010000-wv"
	d := DesiredResource{Name: rsc, NodeID: 1, Peers: []int{0, 2, 3}, DiskfulPeers: []int{0, 2}, VerifyRequest: run, VerifyResync: run}
	tests := []struct {
		name     string
		peers    map[int][2]string
		primary  bool
		verified string
		resynced string
		disk     drbd.DiskState
		want     []int // peer node ids resynced toward
	}{
		{name: "Primary coordinator resyncs toward every diskful peer with findings", peers: map[int][2]string{0: {up, est}, 2: {up, est}, 3: {string(drbd.DiskDiskless), est}},
			primary: true, verified: run, disk: drbd.DiskUpToDate, want: []int{0, 2}},
		{name: "a Secondary never overwrites a peer", peers: map[int][2]string{2: {up, est}}, verified: run, disk: drbd.DiskUpToDate},
		{name: "not the node that verified this run", peers: map[int][2]string{2: {up, est}}, primary: true, verified: "older", disk: drbd.DiskUpToDate},
		{name: "done once", peers: map[int][2]string{2: {up, est}}, primary: true, verified: run, resynced: run, disk: drbd.DiskUpToDate},
		{name: "not while a verify runs", peers: map[int][2]string{0: {up, string(drbd.ReplVerifyS)}, 2: {up, est}}, primary: true, verified: run, disk: drbd.DiskUpToDate},
		{name: "not toward a peer that is not UpToDate", peers: map[int][2]string{0: {string(drbd.DiskOutdated), est}, 2: {up, est}}, primary: true, verified: run, disk: drbd.DiskUpToDate, want: []int{2}},
		{name: "not from a local disk that is not UpToDate", peers: map[int][2]string{2: {up, est}}, primary: true, verified: run, disk: drbd.DiskInconsistent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Observed{DRBD: verifyKernel(tc.disk, tc.peers), Verified: map[string]string{rsc: tc.verified}, Resynced: map[string]string{rsc: tc.resynced}}
			if tc.primary {
				withPrimary(got.DRBD, 1)
			}
			var ids []int
			for _, a := range planVerifyResync(d, got) {
				if a.Kind != ResyncVerified || a.Resource != rsc || a.RunID != run || a.Volume != 0 {
					t.Fatalf("action %+v", a)
				}
				ids = append(ids, a.PeerNodeID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Fatalf("resync toward %v, want %v", ids, tc.want)
			}
		})
	}

	rec := &recordRunner{}
	r := &Reconciler{Node: "pve1", Runner: rec}
	if _, err := r.do(context.Background(), Action{Kind: ResyncVerified, Resource: rsc, Volume: 0, PeerNodeID: 2, RunID: run}); err != nil {
		t.Fatal(err)
	}
	if len(rec.cmds) != 1 || !strings.HasSuffix(rec.cmds[0], "drbdsetup invalidate-remote "+rsc+" 2 0 --reset-bitmap=no") || r.resynced[rsc] != run {
		t.Fatalf("commands %q, memory %v", rec.cmds, r.resynced)
	}
}
