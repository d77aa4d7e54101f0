package lab

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/model"
)

// TestLabFaultsAreReported injects faults into a running lab and checks
// that pvehci reports each, and stops reporting it once it is fixed:
//
//   - a network partition of a diskful node: DRBD_CONNECTING on that node's
//     peers, and a relocation that falls due meanwhile waits, with the
//     reason recorded as an event, then completes after the heal;
//   - a paused schedule: JOB_PAUSED, gone after resume;
//   - a thin pool filled past 90 % by a VM: POOL_DATA_FULL, critical, gone
//     once the VM is deleted; meanwhile a relocation to that node waits,
//     with the reason as an event, and completes once there is room;
//   - a VM kept on a diskless replica (relocation off for it): DISKLESS_PRIMARY,
//     gone once it runs on a node with a disk again;
//   - a split brain (quorum off, both sides written while cut apart):
//     DRBD_SPLIT_BRAIN, gone once one side's changes are discarded as the
//     DRBD guide says;
//   - a node's daemon killed: SATELLITE_OFFLINE, gone once it runs again.
//
// The lab's pools are 512 MiB here, so that a VM can fill one, and
// relocations cap their resync at 50 MiB/s (--relocate-max-rate): the cap
// is on the new disk while it syncs and gone afterwards.
func TestLabFaultsAreReported(t *testing.T) {
	l := startLabWith(t, Config{Nodes: 3, AddrBase: randomBase(), PoolSize: 512 << 20, RelocateMaxRate: "50M"})
	ctx := context.Background()
	vm, err := l.CreateVM(ctx, 100, "n1", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	rd := strings.SplitN(vm.Volname, "_", 2)[0]
	api := localapi.NewClient(l.Nodes[0].Socket)
	src := health.Sources{Cluster: labView{api}}
	findings := func(code health.Code) []health.Item {
		rep, err := health.Default().Run(ctx, src, code)
		if err != nil {
			t.Fatal(err)
		}
		var out []health.Item
		for _, it := range rep.Items {
			if it.Code == code && (it.Severity == health.Warning || it.Severity == health.Critical) {
				out = append(out, it)
			}
		}
		return out
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
		}
	}
	events := func() []model.Event {
		var ev []model.Event
		if err := api.Do(ctx, "GET", "/v1/events", nil, &ev); err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(ev, func(e model.Event) bool { return e.Resource != rd })
	}

	var diskful []string
	waitFor("two diskful replicas", 30*time.Second, func() bool {
		diskful, _ = l.diskfulReplicas(ctx, t, rd)
		return len(diskful) == 2
	})
	other := diskful[0]
	if other == "n1" {
		other = diskful[1]
	}
	target := ""
	for _, n := range []string{"n2", "n3"} {
		if !slices.Contains(diskful, n) {
			target = n
		}
	}
	waitFor("every replica connected", 30*time.Second, func() bool { return len(findings(health.DRBDConnecting)) == 0 })

	// Partition the other diskful node; the VM moves to the node without a
	// disk while it is cut off.
	if err := l.Partition(other); err != nil {
		t.Fatal(err)
	}
	waitFor("DRBD_CONNECTING after the partition", 30*time.Second, func() bool {
		for _, it := range findings(health.DRBDConnecting) {
			if strings.Contains(it.Message, rd) {
				return true
			}
		}
		return false
	})
	if _, err := l.MigrateVM(ctx, vm.ID, target); err != nil {
		t.Fatal(err)
	}
	waitFor("the relocation waits for the cut-off peer, and says so", 60*time.Second, func() bool {
		return slices.ContainsFunc(events(), func(e model.Event) bool {
			return strings.Contains(e.Message, other) && (strings.Contains(e.Message, "not UpToDate") || strings.Contains(e.Message, "not connected"))
		})
	})
	if got, _ := l.diskfulReplicas(ctx, t, rd); slices.Contains(got, target) {
		t.Fatalf("a disk was added on %s while its sync source was cut off: %v", target, got)
	}
	l.Heal()
	waitFor("DRBD_CONNECTING gone after the heal", 30*time.Second, func() bool { return len(findings(health.DRBDConnecting)) == 0 })
	logEvents := func() {
		for _, e := range events() {
			t.Logf("event %s %s %s: %s", time.UnixMilli(e.At).Format("15:04:05.000"), e.Node, e.State, e.Message)
		}
	}
	defer func() {
		if t.Failed() {
			logEvents()
			t.Logf("lab status: %+v", l.Status(ctx))
			for _, n := range l.Nodes {
				res, _ := n.host.Runner().Run(ctx, run.Command("drbdsetup", "events2", "--now", "--statistics"))
				t.Logf("%s events2:\n%s", n.Name, res.Stdout)
			}
		}
	}()
	waitFor("the relocation completes after the heal", 90*time.Second, func() bool {
		return slices.ContainsFunc(events(), func(e model.Event) bool { return e.State == string(model.RelocDone) })
	})
	logEvents()
	if !slices.ContainsFunc(events(), func(e model.Event) bool { return strings.Contains(e.Message, "resync capped at 50M/s") }) {
		t.Error("no event says the relocation's resync was capped")
	}
	lc, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lc.Resources.Get(ctx, rd, target); err != nil || r.Props["DrbdOptions/PeerDevice/c-max-rate"] != "" || r.Props["Aux/pvehci/relocation-max-rate"] != "" {
		t.Errorf("the target's resource after the relocation: %v %v", r.Props, err)
	}

	// A paused schedule.
	apply := func(cmd state.Command) {
		t.Helper()
		entry, err := state.Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := api.Do(ctx, "POST", "/v1/apply", json.RawMessage(entry), nil); err != nil {
			t.Fatal(err)
		}
	}
	apply(&state.AddJobSchedule{Name: "nightly", Cron: "0 2 * * *", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetAll},
		Paused: true, At: time.Now().UnixMilli()})
	waitFor("JOB_PAUSED", 10*time.Second, func() bool { return len(findings(health.JobPaused)) == 1 })
	apply(&state.ResumeJobSchedule{Name: "nightly", At: time.Now().UnixMilli()})
	waitFor("JOB_PAUSED gone after resume", 10*time.Second, func() bool { return len(findings(health.JobPaused)) == 0 })

	// A VM fills its pools: up to 470 MiB written into a 480 MiB disk.
	big, err := l.CreateVM(ctx, 101, "n1", 480<<10)
	if err != nil {
		t.Fatal(err)
	}
	l.vms.mu.Lock()
	dev := l.vms.m[big.ID].dev
	l.vms.mu.Unlock()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	// VM 100's replicas already take 64 MiB of some pools: the pool may
	// run out before the disk does, which is the fault wanted here.
	for off := int64(1 << 20); off < 471<<20; off += 1 << 20 {
		if _, err := dev.WriteAt(chunk, off); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("VM 101 writing at %d MiB: %v", off>>20, err)
			}
			t.Logf("VM 101's writes hit a full pool at %d MiB", off>>20)
			break
		}
	}
	waitFor("POOL_DATA_FULL, critical", 30*time.Second, func() bool {
		return slices.ContainsFunc(findings(health.PoolDataFull), func(it health.Item) bool { return it.Severity == health.Critical })
	})
	// VM 100 moves to n1, where it has only a tie-breaker and the pool is
	// full now: its relocation waits and says why, until there is room.
	if _, err := l.MigrateVM(ctx, vm.ID, "n1"); err != nil {
		t.Fatal(err)
	}
	waitFor("the relocation to n1 waits for room in its pool", 60*time.Second, func() bool {
		return slices.ContainsFunc(events(), func(e model.Event) bool {
			return e.Node == "n1" && strings.Contains(e.Message, "pool thinpool on n1 has") && strings.Contains(e.Message, "KiB free, needs")
		})
	})
	if got, _ := l.diskfulReplicas(ctx, t, rd); slices.Contains(got, "n1") {
		t.Fatalf("a disk was added on n1 with its pool full: %v", got)
	}
	if err := l.DeleteVM(ctx, big.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("POOL_DATA_FULL gone after the VM's deletion", 30*time.Second, func() bool { return len(findings(health.PoolDataFull)) == 0 })
	waitFor("the relocation to n1 completes once there is room", 60*time.Second, func() bool {
		return slices.ContainsFunc(events(), func(e model.Event) bool { return e.Node == "n1" && e.State == string(model.RelocDone) })
	})

	// A VM kept on a diskless replica: relocation is off for its disk.
	vm2, err := l.CreateVM(ctx, 102, "n1", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	rd2 := strings.SplitN(vm2.Volname, "_", 2)[0]
	apply(&state.ModifyResourceDefinition{Name: rd2, Props: model.PropsChange{Set: model.Props{"Aux/pvehci/auto-relocate": "false"}}})
	var diskful2 []string
	waitFor("two diskful replicas of VM 102", 30*time.Second, func() bool {
		diskful2, _ = l.diskfulReplicas(ctx, t, rd2)
		return len(diskful2) == 2
	})
	peer2, bare := diskful2[0], ""
	if peer2 == "n1" {
		peer2 = diskful2[1]
	}
	for _, n := range []string{"n2", "n3"} {
		if !slices.Contains(diskful2, n) {
			bare = n
		}
	}
	waitFor("VM 102's replicas connected", 30*time.Second, func() bool { return len(findings(health.DRBDConnecting)) == 0 })
	if _, err := l.MigrateVM(ctx, vm2.ID, bare); err != nil {
		t.Fatal(err)
	}
	waitFor("DISKLESS_PRIMARY", 30*time.Second, func() bool {
		return slices.ContainsFunc(findings(health.DisklessPrimary), func(it health.Item) bool { return strings.Contains(it.Message, rd2) })
	})
	if _, err := l.MigrateVM(ctx, vm2.ID, "n1"); err != nil {
		t.Fatal(err)
	}
	waitFor("DISKLESS_PRIMARY gone after the migration back", 30*time.Second, func() bool { return len(findings(health.DisklessPrimary)) == 0 })

	// A split brain: without quorum, n1 (the VM) and its peer both write
	// while they are cut apart.
	apply(&state.ModifyResourceDefinition{Name: rd2, Props: model.PropsChange{Set: model.Props{"DrbdOptions/Resource/quorum": "off"}}})
	resFile := l.Nodes[0].Root + "/var/lib/pvehci/drbd.d/" + rd2 + ".res"
	waitFor("quorum off in the .res", 30*time.Second, func() bool {
		b, _ := os.ReadFile(resFile)
		return strings.Contains(string(b), "quorum off")
	})
	// The link to the third node first: cut off from n1 while it still
	// reached a common peer, the peer would outdate itself (guide
	// 11.21.3) and could not be written.
	l.Net.Cut(peer2, bare)
	l.Net.Cut("n1", peer2)
	l.vms.mu.Lock()
	dev2 := l.vms.m[vm2.ID].dev
	l.vms.mu.Unlock()
	if _, err := dev2.WriteAt([]byte("written by VM 102 on n1 while cut apart"), 1<<20); err != nil {
		t.Fatal(err)
	}
	pn, _ := l.Node(peer2)
	rogue, err := pn.host.OpenDRBD(vm2.Device, true)
	if err != nil {
		t.Fatalf("writing on %s while cut apart: %v", peer2, err)
	}
	if _, err := rogue.WriteAt([]byte("written on "+peer2+" while cut apart"), 2<<20); err != nil {
		t.Fatal(err)
	}
	rogue.Close()
	l.Heal()
	waitFor("DRBD_SPLIT_BRAIN", 30*time.Second, func() bool {
		return slices.ContainsFunc(findings(health.DRBDSplitBrain), func(it health.Item) bool { return strings.Contains(it.Message, rd2) })
	})
	// The DRBD guide's manual recovery: the victim discards its changes.
	for _, step := range []struct {
		node string
		argv []string
	}{
		{peer2, []string{"drbdadm", "disconnect", rd2}},
		{peer2, []string{"drbdadm", "connect", "--discard-my-data", rd2}},
		{"n1", []string{"drbdadm", "connect", rd2}},
	} {
		n, _ := l.Node(step.node)
		if res, err := n.host.Runner().Run(ctx, run.Command(step.argv[0], step.argv[1:]...)); err != nil {
			t.Fatalf("%s: %v: %s", step.node, err, res.Stderr)
		}
	}
	waitFor("DRBD_SPLIT_BRAIN gone after the recovery", 30*time.Second, func() bool { return len(findings(health.DRBDSplitBrain)) == 0 })

	// A daemon dies; its satellite stops reporting.
	victim := "n2"
	if l.Status(ctx).Leader == victim {
		victim = "n3"
	}
	if err := l.Kill(victim); err != nil {
		t.Fatal(err)
	}
	waitFor("SATELLITE_OFFLINE", 40*time.Second, func() bool {
		return slices.ContainsFunc(findings(health.SatelliteOffline), func(it health.Item) bool { return strings.Contains(it.Message, victim) })
	})
	if err := l.StartNode(victim); err != nil {
		t.Fatal(err)
	}
	waitFor("SATELLITE_OFFLINE gone after the restart", 40*time.Second, func() bool { return len(findings(health.SatelliteOffline)) == 0 })
}
