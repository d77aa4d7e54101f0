package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
	"github.com/pvehci/pvehci/storage/sim"
)

// cleanupDaemon serves the daemon's two orphan endpoints on a socket, with
// a real satellite Reconciler on a simulated node pve1 whose state owns
// nothing: its LV tagged pvehci is an orphan, the untagged one is not
// pvehci's.
func cleanupDaemon(t *testing.T) (sock string, host *sim.Host) {
	t.Helper()
	st := state.New()
	for _, cmd := range []state.Command{
		&state.CreateNode{Name: "pve1", NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0.1"}}},
		&state.CreateStoragePool{Node: "pve1", Name: "thin", ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}},
	} {
		if res := st.Apply(cmd); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	host = sim.NewHost("pve1")
	sim.NewNetwork().Attach(host) // the DRBD module is loaded
	if err := host.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := host.AddThinPool("pve", "data", 256<<20); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"lvcreate -V 4M -T pve/data -n vm-9-disk-1_00000 --addtag pvehci", "lvcreate -V 4M -T pve/data -n foreign"} {
		w := strings.Fields(line)
		if _, err := host.Runner().Run(context.Background(), run.Command(w[0], w[1:]...)); err != nil {
			t.Fatal(err)
		}
	}
	rec := &satellite.Reconciler{Node: "pve1", Runner: host.Runner(), FS: hostfs.Root(t.TempDir())}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/node/orphans", func(w http.ResponseWriter, r *http.Request) {
		items, err := rec.Orphans(r.Context(), st)
		if err != nil {
			localapi.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, items)
	})
	mux.HandleFunc("POST /v1/node/orphans/remove", func(w http.ResponseWriter, r *http.Request) {
		var req daemon.OrphanRemoveRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			localapi.WriteError(w, http.StatusBadRequest, err)
			return
		}
		items, err := rec.RemoveOrphans(r.Context(), st, req.Keys)
		if err != nil {
			localapi.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, items)
	})
	return serveLocalAPI(t, mux), host
}

func TestNodeCleanupOrphans(t *testing.T) {
	t.Parallel()
	sock, host := cleanupDaemon(t)
	lvs := func() string {
		res, err := host.Runner().Run(context.Background(), run.Command("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name", "pve"))
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Stdout)
	}

	code, _, errOut := runCLI(t, "node", "cleanup", "--socket", sock)
	if code != ExitUsage || !strings.Contains(errOut, "--orphans") {
		t.Errorf("without --orphans: %d %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "node", "cleanup", "--orphans", "--dry-run", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "lvremove -f pve/vm-9-disk-1_00000") || strings.Contains(out, "foreign") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errOut)
	}
	// No terminal and no --yes: refused, nothing removed.
	code, _, errOut = runCLI(t, "node", "cleanup", "--orphans", "--socket", sock)
	if code == ExitOK || !strings.Contains(errOut, "--yes") || !strings.Contains(lvs(), "vm-9-disk-1_00000") {
		t.Fatalf("without a terminal: %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "node", "cleanup", "--orphans", "--yes", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "removed (lvremove -f pve/vm-9-disk-1_00000)") {
		t.Fatalf("--yes: %d\n%s%s", code, out, errOut)
	}
	if got := lvs(); strings.Contains(got, "vm-9-disk-1_00000") || !strings.Contains(got, "foreign") {
		t.Fatalf("LVs after the cleanup: %s", got)
	}
	code, out, _ = runCLI(t, "node", "cleanup", "--orphans", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "no orphans on this node") {
		t.Errorf("second run: %d %s", code, out)
	}
}
