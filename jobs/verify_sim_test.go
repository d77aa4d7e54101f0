package jobs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// corrupt writes over one block of node's backing LV behind DRBD's back,
// as a failing disk would.
func (w *simWorld) corrupt(node string, block int64) {
	w.t.Helper()
	dev, err := w.hosts[node].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(simRD, 0)))
	if err != nil {
		w.t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.WriteAt([]byte(strings.Repeat("x", 4096)), block*4096); err != nil {
		w.t.Fatal(err)
	}
}

func (w *simWorld) lastRun(schedule string) model.JobRun {
	w.t.Helper()
	runs := w.st.JobRuns(schedule)
	if len(runs) == 0 {
		w.t.Fatalf("%s has not run", schedule)
	}
	return runs[len(runs)-1]
}

// TestVerifyResyncFromPrimary: the VM runs on pve1, pve2's replica rots.
// The verify runs from the Primary, names pve2 and the 4 KiB, resyncs
// them from pve1 (resync=from-primary), and the next verify is clean; the
// same finding with the VM stopped is left alone, said why.
func TestVerifyResyncFromPrimary(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	def, _ := w.st.ResourceDefinition(simRD)
	minor := def.VolumeDefinitions[0].Minor
	mustApply(t, w.st, &state.AddJobSchedule{Name: "verify", Cron: "@hourly", Kind: model.JobVerify, Target: all,
		Options: map[string]string{"resync": ResyncFromPrimary, "max-rate": "40M", "timeout": "5m"}, At: t0.UnixMilli()})

	// The VM stopped: nothing is known good, nothing is resynced.
	w.corrupt("pve2", 3)
	w.pass(t0.Add(time.Hour))
	r := w.lastRun("verify")
	if r.State != model.RunSucceeded || r.Details["oos-kib."+simRD] != "4" || !strings.HasPrefix(r.Details["resync."+simRD], "not repaired: no diskful Primary") {
		t.Fatalf("verify with the VM stopped: %+v", r)
	}
	if v := model.LatestVerifies(w.st.AllJobRuns())[model.Key(simRD)]; v.Repaired() || v.OutOfSyncKiB != 4 {
		t.Fatalf("latest verify %+v, want an unrepaired finding", v)
	}

	// The VM runs on pve1: its replica is what the VM reads, so the
	// verify runs from there and the policy may repair pve2 from it.
	vm, err := w.hosts["pve1"].host.OpenDRBD(fmt.Sprintf("/dev/drbd%d", minor), true)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	var resSeen []string
	sleep := w.r.sleep
	w.r.sleep = func(ctx context.Context, d time.Duration) error {
		if data, err := os.ReadFile(w.hosts["pve2"].root + satellite.ResPath(simRD)); err == nil && strings.Contains(string(data), "c-max-rate") {
			resSeen = append(resSeen, "capped")
		}
		return sleep(ctx, d)
	}
	w.pass(t0.Add(2 * time.Hour))
	r = w.lastRun("verify")
	if r.State != model.RunSucceeded || r.Details["oos-kib."+simRD] != "4" || r.Details["verified-from."+simRD] != "pve1" ||
		r.Details["oos-peer."+simRD+".pve2"] != "4" || r.Details["resync."+simRD] != model.ResyncDone {
		t.Fatalf("verify with the VM on pve1: %+v", r)
	}
	if !strings.Contains(r.Message, "4 KiB against pve1's replica: pve2 4 KiB; resynchronized from pve1") {
		t.Errorf("message %q", r.Message)
	}
	if v := model.LatestVerifies(w.st.AllJobRuns())[model.Key(simRD)]; !v.Repaired() || v.Peers["pve2"] != 4 {
		t.Errorf("latest verify %+v, want repaired with pve2's 4 KiB", v)
	}
	if len(resSeen) == 0 {
		t.Error("the .res never had the run's c-max-rate while it verified")
	}
	w.r.sleep = sleep
	// The props the run set are gone, and so is the cap, from the .res.
	def, _ = w.st.ResourceDefinition(simRD)
	for _, k := range []string{PropVerifyRequest, satellite.PropVerifyResync, PropVerifyMaxRate, KeyCMaxRate} {
		if v, ok := def.Props[k]; ok {
			t.Errorf("%s=%q left on %s", k, v, simRD)
		}
	}
	for range 3 {
		w.round()
	}
	if data, _ := os.ReadFile(w.hosts["pve2"].root + satellite.ResPath(simRD)); strings.Contains(string(data), "c-max-rate") {
		t.Error("the .res keeps the run's c-max-rate after the run")
	}

	// The replicas are equal again: the next verify finds nothing.
	w.pass(t0.Add(3 * time.Hour))
	if r := w.lastRun("verify"); r.State != model.RunSucceeded || r.Details["oos-kib."+simRD] != "0" || r.Details["resync."+simRD] != "" {
		t.Fatalf("verify after the repair: %+v", r)
	}
}
