package cli

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/model"
)

// TestEvents lists the relocation events a real state records, filtered by
// resource and time, as a table and as JSON.
func TestEvents(t *testing.T) {
	t.Parallel()
	st := state.New()
	now := time.Now().UnixMilli()
	for _, cmd := range []state.Command{
		&state.CreateNode{Name: "pve1", NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0.1"}}},
		&state.CreateNode{Name: "pve2", NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0.2"}}},
		&state.CreateResourceDefinition{Name: "pm-1", DrbdSecret: "c2VjcmV0"},
		&state.CreateResourceDefinition{Name: "pm-2", DrbdSecret: "c2VjcmV0"},
		&state.SetRelocationTimer{ResourceDefinition: "pm-1", TargetNode: "pve2", SourceNode: "pve1", Reason: "old", DueAt: now, At: now - int64(48*time.Hour/time.Millisecond)},
		&state.SetRelocationTimer{ResourceDefinition: "pm-2", TargetNode: "pve2", SourceNode: "pve1", Reason: "diskless Primary on pve2", DueAt: now, At: now - 2000},
		&state.UpdateRelocation{ResourceDefinition: "pm-2", State: model.RelocPending, Message: "waiting: a peer is not UpToDate", At: now - 1000},
		&state.UpdateRelocation{ResourceDefinition: "pm-2", State: model.RelocAdding, Message: "adding a disk in pool thin on pve2", At: now},
	} {
		if res := st.Apply(cmd); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		ev := st.Events(since)
		if ev == nil {
			ev = []model.Event{}
		}
		localapi.WriteJSON(w, http.StatusOK, ev)
	})
	sock := serveLocalAPI(t, mux)

	code, out, errOut := runCLI(t, "events", "--socket", sock)
	if code != ExitOK {
		t.Fatalf("events: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[2], "waiting: a peer is not UpToDate") ||
		!strings.Contains(lines[3], "adding") || strings.Contains(out, "old") {
		t.Fatalf("events (last 24 h):\n%s", out)
	}
	if code, out, _ := runCLI(t, "events", "--since", "0", "--resource", "PM-1", "--socket", sock); code != ExitOK || !strings.Contains(out, "old") || strings.Contains(out, "pm-2") {
		t.Errorf("events of pm-1 since ever:\n%s", out)
	}
	code, out, _ = runCLI(t, "events", "-o", "json", "--resource", "pm-2", "--socket", sock)
	if code != ExitOK || strings.Count(out, `"kind": "relocation"`) != 3 {
		t.Errorf("json:\n%s", out)
	}
	if code, out, _ := runCLI(t, "events", "--resource", "nope", "--socket", sock); code != ExitOK || strings.TrimSpace(out) != "no events" {
		t.Errorf("no events: %d %q", code, out)
	}
}
