package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// TestResizeRefusedWhileDiskfulReplicaAway: a grow is refused before
// anything is recorded while a diskful replica's node is offline or a
// replica's report shows it not connected, with an ApiCallRc that names
// the node and the fix; a diskless replica away does not refuse it.
func TestResizeRefusedWhileDiskfulReplicaAway(t *testing.T) {
	const name = "vm-300-disk-0"
	path := "/v1/resource-definitions/" + name + "/volume-definitions/0"
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	e.apply(&state.CreateResourceDefinition{Name: name, DrbdSecret: "Zm9vYmFyYmF6cXV4MTIzNDU2",
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}})
	e.apply(&state.CreateResource{ResourceDefinition: name, Node: "pve1", Kind: state.Diskful, StoragePool: "thin"})
	e.apply(&state.CreateResource{ResourceDefinition: name, Node: "pve2", Kind: state.Diskful, StoragePool: "thin"})
	e.apply(&state.CreateResource{ResourceDefinition: name, Node: "pve3", Kind: state.Diskless})
	unchanged := func() {
		t.Helper()
		rd, _ := e.b.State.ResourceDefinition(name)
		vd, _ := rd.VolumeDefinition(0)
		if vd.SizeKiB != 1<<20 || vd.Flags.Has(model.VdFlagResize) {
			t.Fatalf("refused grow was recorded: %d KiB, flags %v", vd.SizeKiB, vd.Flags)
		}
	}
	refused := func(wantMsg string) {
		t.Helper()
		code, body := e.do("PUT", path, `{"size_kib":2097152}`)
		if code != http.StatusConflict {
			t.Fatalf("status %d, want 409: %s", code, body)
		}
		var rcs []struct {
			RetCode    int64  `json:"ret_code"`
			Message    string `json:"message"`
			Correction string `json:"correction"`
		}
		if err := json.Unmarshal(body, &rcs); err != nil || len(rcs) == 0 {
			t.Fatalf("answer %s: %v", body, err)
		}
		if rcs[0].RetCode >= 0 || !strings.Contains(rcs[0].Message, wantMsg) || !strings.Contains(rcs[0].Correction+rcs[0].Message, "remove") {
			t.Fatalf("ApiCallRc %+v, want an error with %q and the fix", rcs[0], wantMsg)
		}
		unchanged()
	}

	e.b.SetOnline("pve2", false)
	refused("node pve2's replica is offline")
	e.b.SetOnline("pve2", true)

	e.b.SetObserved(name, "pve1", api.ObservedResource{Volumes: []api.ObservedVolume{{DiskState: "UpToDate"}},
		Connections: map[string]api.ObservedConnection{"pve2": {Message: "Connecting"}, "pve3": {Connected: true, Message: "Connected"}}})
	refused("node pve2's replica is Connecting (as seen from pve1); bring it back or remove it before growing the volume")
	e.b.ClearObserved(name, "pve1")

	// The diskless client away does not hold up a grow.
	e.b.SetOnline("pve3", false)
	e.b.SetObserved(name, "pve1", api.ObservedResource{Volumes: []api.ObservedVolume{{DiskState: "UpToDate"}},
		Connections: map[string]api.ObservedConnection{"pve2": {Connected: true, Message: "Connected"}, "pve3": {Message: "Connecting"}}})
	e.must(200, "PUT", path, `{"size_kib":2097152}`)
	rd, _ := e.b.State.ResourceDefinition(name)
	if vd, _ := rd.VolumeDefinition(0); vd.SizeKiB != 2<<20 {
		t.Fatalf("grow not recorded: %d KiB", vd.SizeKiB)
	}
}

// staleReports is a backend whose in-use report for one replica stays
// stale for the first refreshes: the satellite's report that arrives first
// after the VM's stop may come from a pass that looked just before it.
type staleReports struct {
	*apitest.Backend
	rd, node string
	stale    int // refreshes still answered with the old report
	calls    int
}

func (s *staleReports) Refresh(_ context.Context, node string) {
	s.calls++
	if s.stale--; s.stale < 0 {
		s.ClearObserved(s.rd, s.node)
	}
}

// TestInUseCheckWaitsForAFreshReport: deactivating a diskless replica right
// after its VM stopped succeeds when the second fresh report shows it
// unused, and is refused when three reports in a row still show it in use.
func TestInUseCheckWaitsForAFreshReport(t *testing.T) {
	for _, tc := range []struct {
		stale int
		code  int
	}{{1, 200}, {2, 200}, {3, 409}} {
		var sr *staleReports
		e := newEnvWith(t, func(b *apitest.Backend) api.Backend {
			sr = &staleReports{Backend: b, rd: "vm-100-disk-0", node: "pve3", stale: tc.stale}
			return sr
		})
		e.cluster("pve1", "pve2", "pve3")
		e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-100-disk-0","volume_sizes":[1048576]}`)
		e.must(200, "POST", "/v1/resource-definitions/vm-100-disk-0/resources/pve3/make-available", `{"diskful":false}`)
		e.b.SetObserved("vm-100-disk-0", "pve3", api.ObservedResource{InUse: true, Volumes: []api.ObservedVolume{{DiskState: "Diskless"}}})
		if code, body := e.do("DELETE", "/v1/resource-definitions/vm-100-disk-0/resources/pve3?keep_tiebreaker=True", ""); code != tc.code {
			t.Errorf("%d stale reports: DELETE answered %d, want %d: %s", tc.stale, code, tc.code, body)
		}
		if want := min(tc.stale+1, 3); sr.calls != want {
			t.Errorf("%d stale reports: %d refreshes, want %d", tc.stale, sr.calls, want)
		}
	}
}
