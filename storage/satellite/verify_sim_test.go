package satellite

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// TestVerifyOnSim runs a verify request through the satellites of two
// simulated diskful hosts: one block of pve2's backing LV is corrupted
// behind DRBD's back, the coordinator (pve1, node id 0) runs drbdadm
// verify once, and its report names the request, finished, with the
// corrupted block out of sync.
func TestVerifyOnSim(t *testing.T) {
	t.Parallel()
	const sizeKiB = 8 << 10
	s := kindCluster(t, sizeKiB, state.Diskful, state.Diskful)
	c := newSimCluster(t, s, "pve1", "pve2")
	c.converge()
	c.net.Settle()

	dev, err := c.nodes["pve2"].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(rsc, 0)))
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = 0xa5
	}
	if _, err := dev.WriteAt(junk, 5*4096); err != nil {
		t.Fatal(err)
	}
	dev.Close()

	// What jobs.Runner sets: a verify-alg (DRBD refuses verify without
	// one) and the request.
	if res := s.Apply(&state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc},
		Change: model.PropsChange{Set: model.Props{"DrbdOptions/Net/verify-alg": "crc32c", PropVerifyRequest: "20260301T010000-wv"}}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	loops := map[string]*Loop{}
	for _, n := range c.order {
		loops[n] = &Loop{Reconciler: c.reconciler(n), State: func() *state.State { return s }}
	}
	ran := map[string][]Kind{}
	var last map[string]NodeReport
	for round := 0; round < 4; round++ {
		last = map[string]NodeReport{}
		for _, n := range c.order {
			rep, _, _ := loops[n].pass(context.Background(), slog.New(slog.DiscardHandler))
			for _, f := range rep.Failed {
				t.Fatalf("round %d %s: %s failed: %s", round, n, f.Action, f.Error)
			}
			for _, o := range c.nodes[n].takeCmds() {
				if o.Name == "drbdadm" && slices.Contains(o.Args, "verify") {
					ran[n] = append(ran[n], RunVerify)
				}
			}
			last[n] = rep
		}
		c.net.Settle()
	}
	if len(ran["pve1"]) != 1 || len(ran["pve2"]) != 0 {
		t.Fatalf("verifies run: %v; want one, on pve1", ran)
	}
	v := last["pve1"].Verifies
	if len(v) != 1 || v[0].Resource != rsc || v[0].RunID != "20260301T010000-wv" || v[0].Running {
		t.Fatalf("pve1 verify report %+v", v)
	}
	if v[0].OutOfSyncKiB != 4 {
		t.Fatalf("want the one corrupted 4 KiB block out of sync: %+v", v[0])
	}
	t.Logf("out of sync after verify: %d KiB", v[0].OutOfSyncKiB)
	if len(last["pve2"].Verifies) != 0 {
		t.Errorf("pve2 reports a verify: %+v", last["pve2"].Verifies)
	}
}
