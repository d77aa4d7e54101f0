package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/buildinfo"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// testVersion is what linstor_info reports in these tests.
func testVersion() api.ControllerVersion {
	return api.ControllerVersion{Version: "1.33.3", GitHash: "pvehci-test", BuildTime: "2026-01-01T00:00:00Z", RestAPIVersion: "1.27.0"}
}

// smallCluster is two PVE nodes with a thin pool each and one VM disk
// spawned through the REST API (so placement, minors and the rest are
// what the plugin would get). pve2 is offline, and what it reported last
// is a syncing replica in use.
func smallCluster(t *testing.T) (*apitest.Backend, *api.Handler) {
	t.Helper()
	b := apitest.New()
	apply := func(cmd state.Command) {
		t.Helper()
		if r := b.State.Apply(cmd); r.Err != nil {
			t.Fatalf("setup %s: %v", cmd.Type(), r.Err)
		}
	}
	for i, n := range []string{"pve1", "pve2"} {
		apply(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + string(rune('1'+i))}}})
		apply(&state.CreateStoragePool{Node: n, Name: "thin", ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	apply(&state.CreateResourceGroup{Name: "drbdgrp", SelectFilter: model.SelectFilter{PlaceCount: 2, StoragePool: "thin"}})
	apply(&state.CreateVolumeGroup{ResourceGroup: "drbdgrp"})
	h := api.New(b, api.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)),
		Rand: rand.NewChaCha8([32]byte{1}), CompletionTimeout: 2 * time.Second, DeviceWaitTimeout: 2 * time.Second})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/resource-groups/drbdgrp/spawn",
		strings.NewReader(`{"resource_definition_name":"vm-100-disk-0","volume_sizes":[1048576]}`)))
	if rec.Code != http.StatusCreated {
		t.Fatalf("spawn: %d %s", rec.Code, rec.Body)
	}
	b.SetPool("pve1", "thin", 900<<20, 1<<30)
	b.SetOnline("pve2", false)
	b.SetObserved("vm-100-disk-0", "pve2", api.ObservedResource{InUse: true,
		Volumes: []api.ObservedVolume{{VolumeNumber: 0, DiskState: "Inconsistent", DevicePath: "/dev/drbd1000", AllocatedSizeKiB: 4096}}})
	return b, h
}

func TestClusterMetrics(t *testing.T) {
	b, _ := smallCluster(t)
	c := newCollector(b, Options{Clock: clock.NewFake(time.Unix(0, 0)), Linstor: testVersion(), ReadTimeout: time.Second}, slog.New(slog.DiscardHandler))
	const want = `
# HELP linstor_info LINSTOR version pvehci's REST API implements.
# TYPE linstor_info gauge
linstor_info{buildtime="2026-01-01T00:00:00Z",gitid="pvehci-test",version="1.33.3"} 1
# HELP linstor_node_state 0="OFFLINE", 1="CONNECTED", 2="ONLINE", 3="VERSION_MISMATCH", 4="FULL_SYNC_FAILED", 5="AUTHENTICATION_ERROR", 6="UNKNOWN", 7="HOSTNAME_MISMATCH", 8="OTHER_CONTROLLER", 9="AUTHENTICATED", 10="NO_STLT_CONN", 11="MISSING_EXT_TOOLS", 12="DUPLICATE_UNAME", 
# TYPE linstor_node_state gauge
linstor_node_state{address="10.0.0.1",encryption="PLAIN",node="pve1",nodetype="SATELLITE",port="3366"} 2
linstor_node_state{address="10.0.0.2",encryption="PLAIN",node="pve2",nodetype="SATELLITE",port="3366"} 0
# HELP linstor_resource_definition_count Number of resource definitions.
# TYPE linstor_resource_definition_count gauge
linstor_resource_definition_count 1
# HELP linstor_resource_definition_resource_count Number of resources of a resource definition.
# TYPE linstor_resource_definition_resource_count gauge
linstor_resource_definition_resource_count{name="vm-100-disk-0",resource_group="drbdgrp"} 2
# HELP linstor_volume_definition_size_bytes Size of a volume definition.
# TYPE linstor_volume_definition_size_bytes gauge
linstor_volume_definition_size_bytes{name="vm-100-disk-0",resource_group="drbdgrp",volume_number="0"} 1.073741824e+09
# HELP linstor_resource_state -1="unknown state", 0="secondary", 1="primary"
# TYPE linstor_resource_state gauge
linstor_resource_state{name="vm-100-disk-0",node="pve1"} 0
linstor_resource_state{name="vm-100-disk-0",node="pve2"} 1
# HELP linstor_volume_state 1="UpToDate", 2="Created", 3="Attached", 4="Diskless", 5="Inconsistent", 6="Failed", 7="To: Creating", 8="To: Attachable", 9="To: Attaching", 90="Diskless(Detached)", -1="DUnknown", 
# TYPE linstor_volume_state gauge
linstor_volume_state{device_path="/dev/drbd1000",node="pve1",resource="vm-100-disk-0",storage_pool="thin",volume="0"} 1
linstor_volume_state{device_path="/dev/drbd1000",node="pve2",resource="vm-100-disk-0",storage_pool="thin",volume="0"} 5
# HELP linstor_volume_allocated_size_bytes Storage allocated for a volume; NaN if unknown.
# TYPE linstor_volume_allocated_size_bytes gauge
linstor_volume_allocated_size_bytes{device_path="/dev/drbd1000",node="pve1",resource="vm-100-disk-0",storage_pool="thin",volume="0"} 1.07373568e+08
linstor_volume_allocated_size_bytes{device_path="/dev/drbd1000",node="pve2",resource="vm-100-disk-0",storage_pool="thin",volume="0"} 4.194304e+06
# HELP linstor_storage_pool_capacity_free_bytes Free capacity of a storage pool; NaN if unknown, 0 for diskless pools.
# TYPE linstor_storage_pool_capacity_free_bytes gauge
linstor_storage_pool_capacity_free_bytes{backing_pool="",driver="DISKLESS",node="pve1",storage_pool="DfltDisklessStorPool"} 0
linstor_storage_pool_capacity_free_bytes{backing_pool="",driver="DISKLESS",node="pve2",storage_pool="DfltDisklessStorPool"} 0
linstor_storage_pool_capacity_free_bytes{backing_pool="pve/data",driver="LVM_THIN",node="pve1",storage_pool="thin"} 9.663676416e+11
linstor_storage_pool_capacity_free_bytes{backing_pool="pve/data",driver="LVM_THIN",node="pve2",storage_pool="thin"} NaN
# HELP linstor_storage_pool_capacity_total_bytes Total capacity of a storage pool; NaN if unknown, 0 for diskless pools.
# TYPE linstor_storage_pool_capacity_total_bytes gauge
linstor_storage_pool_capacity_total_bytes{backing_pool="",driver="DISKLESS",node="pve1",storage_pool="DfltDisklessStorPool"} 0
linstor_storage_pool_capacity_total_bytes{backing_pool="",driver="DISKLESS",node="pve2",storage_pool="DfltDisklessStorPool"} 0
linstor_storage_pool_capacity_total_bytes{backing_pool="pve/data",driver="LVM_THIN",node="pve1",storage_pool="thin"} 1.099511627776e+12
linstor_storage_pool_capacity_total_bytes{backing_pool="pve/data",driver="LVM_THIN",node="pve2",storage_pool="thin"} NaN
# HELP linstor_error_reports_count Number of error reports (pvehci logs errors to the journal instead: always 0).
# TYPE linstor_error_reports_count gauge
linstor_error_reports_count 0
# HELP linstor_scrape_requests_count Scrapes of this endpoint since the daemon started.
# TYPE linstor_scrape_requests_count counter
linstor_scrape_requests_count 1
# HELP pvehci_state_up 1 if this scrape could read the controller state, 0 if not (the linstor_* cluster metrics are then missing).
# TYPE pvehci_state_up gauge
pvehci_state_up 1
`
	// linstor_scrape_duration_seconds is measured; node flags and pool
	// errors are covered below.
	names := []string{"linstor_info", "linstor_node_state", "linstor_resource_definition_count",
		"linstor_resource_definition_resource_count", "linstor_volume_definition_size_bytes", "linstor_resource_state",
		"linstor_volume_state", "linstor_volume_allocated_size_bytes", "linstor_storage_pool_capacity_free_bytes",
		"linstor_storage_pool_capacity_total_bytes", "linstor_error_reports_count", "linstor_scrape_requests_count",
		"pvehci_state_up"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestNodeFlags(t *testing.T) {
	b := apitest.New()
	def := []model.NetInterface{{Name: "default", Address: "10.0.0.1"}}
	for _, n := range []struct {
		name  string
		nifs  []model.NetInterface
		flags []string
	}{
		{"na", def, nil},
		// Without "default" the first interface is the satellite's.
		{"nb", []model.NetInterface{{Name: "storage", Address: "10.9.0.2", SatellitePort: 3367, SatelliteEncryptionType: "SSL"}},
			[]string{model.NodeFlagEvacuate}},
		{"nc", def, []string{model.NodeFlagDelete, model.NodeFlagEvicted}},
	} {
		if r := b.State.Apply(&state.CreateNode{Name: n.name, NodeType: model.NodeTypeCombined, NetInterfaces: n.nifs}); r.Err != nil {
			t.Fatal(r.Err)
		}
		if len(n.flags) > 0 {
			if r := b.State.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjNode, Node: n.name}, Set: n.flags}); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	c := newCollector(b, Options{Clock: clock.Real{}, Linstor: testVersion(), ReadTimeout: time.Second}, slog.New(slog.DiscardHandler))
	// As LINSTOR: an evicted node does not also show DELETE.
	const want = `
# HELP linstor_node_flag 1 if the node flag is set, 0 otherwise
# TYPE linstor_node_flag gauge
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="DELETE",node="na",nodetype="COMBINED",port="3366"} 0
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="EVACUATE",node="na",nodetype="COMBINED",port="3366"} 0
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="EVICTED",node="na",nodetype="COMBINED",port="3366"} 0
linstor_node_flag{address="10.9.0.2",encryption="SSL",flag="DELETE",node="nb",nodetype="COMBINED",port="3367"} 0
linstor_node_flag{address="10.9.0.2",encryption="SSL",flag="EVACUATE",node="nb",nodetype="COMBINED",port="3367"} 1
linstor_node_flag{address="10.9.0.2",encryption="SSL",flag="EVICTED",node="nb",nodetype="COMBINED",port="3367"} 0
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="DELETE",node="nc",nodetype="COMBINED",port="3366"} 0
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="EVACUATE",node="nc",nodetype="COMBINED",port="3366"} 0
linstor_node_flag{address="10.0.0.1",encryption="PLAIN",flag="EVICTED",node="nc",nodetype="COMBINED",port="3366"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "linstor_node_flag"); err != nil {
		t.Fatal(err)
	}
}

func TestVolumeStateValue(t *testing.T) {
	for _, tc := range []struct {
		disk     string
		diskless bool
		want     float64
	}{
		{"UpToDate", false, 1},
		{"uptodate", false, 1}, // LINSTOR compares ignoring case
		{"Inconsistent", false, 5},
		{"Failed", false, 6},
		{"Diskless", true, 4},
		{"Diskless", false, 90}, // a diskful replica that lost its disk
		{"Outdated", false, -1}, // not one of LINSTOR's names: DUnknown
		{"DUnknown", false, -1},
		{"", false, -1},
	} {
		if got := volumeStateValue(tc.disk, tc.diskless); got != tc.want {
			t.Errorf("volumeStateValue(%q, diskless=%v) = %v, want %v", tc.disk, tc.diskless, got, tc.want)
		}
	}
}

// failingBackend cannot read its state, as a controller that lost its
// quorum.
type failingBackend struct{ api.Backend }

func (failingBackend) Read(context.Context) (*state.State, error) {
	return nil, errors.New("no quorum")
}

func TestStateUnreadable(t *testing.T) {
	c := newCollector(failingBackend{apitest.New()}, Options{Clock: clock.Real{}, Linstor: testVersion(), ReadTimeout: time.Second}, slog.New(slog.DiscardHandler))
	const want = `
# HELP pvehci_state_up 1 if this scrape could read the controller state, 0 if not (the linstor_* cluster metrics are then missing).
# TYPE pvehci_state_up gauge
pvehci_state_up 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pvehci_state_up", "linstor_node_state", "linstor_resource_definition_count"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "linstor_info", "linstor_scrape_requests_count", "linstor_scrape_duration_seconds"); n != 3 {
		t.Fatalf("info and scrape metrics: %d, want 3 even without state", n)
	}
}

// TestEndpoint serves /metrics through the REST API handler, with the
// request metrics fed by the handler, as the daemon wires them.
func TestEndpoint(t *testing.T) {
	b, _ := smallCluster(t)
	m := New(b, Options{Linstor: testVersion(), Build: buildinfo.Info{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26"}})
	h := api.New(b, api.Options{Metrics: m.Handler(), ObserveRequest: m.ObserveRequest})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nodes"}, {http.MethodGet, "/v1/nodes"}, {http.MethodGet, "/v1/nodes/nope"}, {"BREW", "/v1/nodes"},
	} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`pvehci_api_requests_total{code="200",method="GET"} 2`,
		`pvehci_api_requests_total{code="404",method="GET"} 1`,
		`pvehci_api_requests_total{code="405",method="OTHER"} 1`,
		`pvehci_api_request_duration_seconds_count{method="GET"} 3`,
		`pvehci_build_info{commit="abc123",goversion="go1.26",version="1.2.3"} 1`,
		`linstor_node_state{address="10.0.0.1",encryption="PLAIN",node="pve1",nodetype="SATELLITE",port="3366"} 2`,
		`linstor_scrape_duration_seconds `,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "OTHER", "PROPFIND": "OTHER", "": "OTHER"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJobAndRelocationMetrics: a failed snapshot run, a paused verify
// schedule and a relocation under way show up.
func TestJobAndRelocationMetrics(t *testing.T) {
	b, _ := smallCluster(t)
	for _, cmd := range []state.Command{
		&state.AddJobSchedule{Name: "nightly", Cron: "0 2 * * *", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetAll}, At: 1},
		&state.AddJobSchedule{Name: "verify", Cron: "0 4 * * 0", Kind: model.JobVerify, Target: model.JobTarget{Kind: model.TargetAll}, Paused: true, At: 1},
		&state.RecordJobRun{Run: model.JobRun{ID: "r1", Schedule: "nightly", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetAll},
			State: model.RunFailed, StartedAt: 10, FinishedAt: 20, Message: "pool full"}},
		&state.SetRelocationTimer{ResourceDefinition: "vm-100-disk-0", TargetNode: "pve2", SourceNode: "pve1", DueAt: 100, At: 1},
	} {
		if r := b.State.Apply(cmd); r.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), r.Err)
		}
	}
	c := newCollector(b, Options{Clock: clock.NewFake(time.Unix(0, 0)), Linstor: testVersion(), ReadTimeout: time.Second}, slog.New(slog.DiscardHandler))
	const want = `
# HELP pvehci_job_last_run_success 1 if the schedule's last finished run succeeded (or was skipped), 0 if it failed; absent before the first run.
# TYPE pvehci_job_last_run_success gauge
pvehci_job_last_run_success{kind="snapshot",schedule="nightly"} 0
# HELP pvehci_job_paused 1 if the schedule is paused (by hand or after repeated failures).
# TYPE pvehci_job_paused gauge
pvehci_job_paused{kind="snapshot",schedule="nightly"} 0
pvehci_job_paused{kind="verify",schedule="verify"} 1
# HELP pvehci_relocations Replica relocations recorded in the state (the latest per resource definition), by state: pending, adding, syncing, removing, done, failed, cancelled.
# TYPE pvehci_relocations gauge
pvehci_relocations{state="adding"} 0
pvehci_relocations{state="cancelled"} 0
pvehci_relocations{state="done"} 0
pvehci_relocations{state="failed"} 0
pvehci_relocations{state="pending"} 1
pvehci_relocations{state="removing"} 0
pvehci_relocations{state="syncing"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pvehci_job_last_run_success", "pvehci_job_paused", "pvehci_relocations"); err != nil {
		t.Fatal(err)
	}
}
