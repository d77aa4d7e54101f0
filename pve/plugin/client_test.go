package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/pve/plugin"
	"github.com/pvehci/pvehci/pve/pvesim"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

var _ pvesim.Storage = plugin.Storage{}

// recorder logs every request that reaches the controller: method, path
// with query, whether a Content-Type was sent, and the answer's status.
type recorder struct {
	h  http.Handler
	mu sync.Mutex
	rq []string
	ct []string
}

type statusRec struct {
	http.ResponseWriter
	code int
}

func (s *statusRec) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusRec{ResponseWriter: w, code: 200}
	r.h.ServeHTTP(sw, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rq = append(r.rq, req.Method+" "+req.URL.RequestURI()+" "+strconv.Itoa(sw.code))
	if ct := req.Header.Get("Content-Type"); ct != "" {
		r.ct = append(r.ct, req.Method+" "+req.URL.Path+": "+ct)
	}
}

// take returns the requests since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.rq
	r.rq = nil
	return out
}

type env struct {
	t   *testing.T
	b   *apitest.Backend
	rec *recorder
	url string
	c   *plugin.Client
}

// newEnv serves pvehci's LINSTOR API over an in-memory backend with nodes
// pve1..pve4, an LVM thin pool on each, and resource group drbdgrp
// (place count 2) created with raw requests as an operator would.
func newEnv(t *testing.T) *env {
	t.Helper()
	b := apitest.New()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	h := api.New(b, api.Options{Clock: clk, Rand: rand.NewChaCha8([32]byte{7}), CompletionTimeout: 2 * time.Second,
		DeviceWaitTimeout: 2 * time.Second})
	rec := &recorder{h: h}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	for i, n := range []string{"pve1", "pve2", "pve3", "pve4"} {
		for _, cmd := range []state.Command{
			&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
				NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + strconv.Itoa(i+1)}}},
			&state.CreateStoragePool{Node: n, Name: "thin", ProviderKind: model.ProviderLVMThin,
				Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}},
		} {
			if r := b.State.Apply(cmd); r.Err != nil {
				t.Fatalf("setup %s: %v", cmd.Type(), r.Err)
			}
		}
	}
	e := &env{t: t, b: b, rec: rec, url: srv.URL,
		c: &plugin.Client{Controllers: []string{srv.URL}, Rand: rand.NewChaCha8([32]byte{1})}}
	e.raw(201, "POST", "/v1/resource-groups", `{"name":"drbdgrp","select_filter":{"place_count":2,"storage_pool":"thin"}}`)
	e.raw(201, "POST", "/v1/resource-groups/drbdgrp/volume-groups", `{}`)
	rec.take()
	return e
}

func (e *env) raw(want int, method, path, body string) []byte {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// kinds maps node → provider_kind of volume 0 of rd, from the view, with
// " TIE_BREAKER" appended for a tie-breaker.
func (e *env) kinds(rd string) map[string]string {
	e.t.Helper()
	var view []struct {
		Name     string   `json:"name"`
		NodeName string   `json:"node_name"`
		Flags    []string `json:"flags"`
		Volumes  []struct {
			ProviderKind string `json:"provider_kind"`
		} `json:"volumes"`
	}
	if err := json.Unmarshal(e.raw(200, "GET", "/v1/view/resources?resources="+rd, ""), &view); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range view {
		if v.Name == rd && len(v.Volumes) > 0 {
			out[v.NodeName] = v.Volumes[0].ProviderKind
			if slices.Contains(v.Flags, "TIE_BREAKER") {
				out[v.NodeName] += " TIE_BREAKER"
			}
		}
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestLifecycleFollowsThePluginsRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	vol, err := e.c.AllocImage(ctx, 100, 1048576, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	rd, vmid, err := plugin.ParseVolname(vol)
	if err != nil || vmid != 100 || vol != rd+"_100" || len(rd) != len("pm-12345678") {
		t.Fatalf("volname %q: rd %q vmid %d err %v", vol, rd, vmid, err)
	}
	// linstor-proxmox.md §4 alloc_image, preferlocal=yes.
	equal(t, "alloc_image requests", e.rec.take(), []string{
		"GET /health 200",
		"GET /v1/view/resources 200",
		"GET /v1/resource-groups/drbdgrp 200",
		"POST /v1/resource-groups/drbdgrp/spawn 201",
		"POST /v1/resource-definitions/" + rd + "/resources/pve1/make-available 200",
		"POST /v1/resource-definitions/" + rd + "/autoplace 201",
		"PUT /v1/resource-definitions/" + rd + " 200",
	})
	var def struct {
		Props map[string]string `json:"props"`
		RG    string            `json:"resource_group_name"`
	}
	if err := json.Unmarshal(e.raw(200, "GET", "/v1/resource-definitions/"+rd, ""), &def); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Aux/pm/vmid": "100", "DrbdOptions/ExactSize": "False",
		"DrbdOptions/Net/allow-two-primaries": "yes"} {
		if def.Props[k] != v {
			t.Errorf("prop %s = %q, want %q (props %v)", k, def.Props[k], v, def.Props)
		}
	}
	if def.RG != "drbdgrp" {
		t.Errorf("resource_group_name = %q", def.RG)
	}
	before := e.kinds(rd)
	if before["pve1"] != "LVM_THIN" {
		t.Fatalf("no local diskful replica on pve1: %v", before)
	}
	// The target of a migration: a node holding nothing of rd.
	target := ""
	for _, n := range []string{"pve2", "pve3", "pve4"} {
		if _, ok := before[n]; !ok {
			target = n
			break
		}
	}
	if target == "" {
		t.Fatalf("every node has a resource: %v", before)
	}
	e.rec.take()

	dev, err := e.c.ActivateVolume(ctx, vol, target)
	if err != nil {
		t.Fatal(err)
	}
	// apitest's satellites report /dev/drbd<minor> as device_path.
	if !strings.HasPrefix(dev, "/dev/drbd") {
		t.Fatalf("device path %q", dev)
	}
	base := "/v1/resource-definitions/" + rd
	equal(t, "activate_volume + path requests", e.rec.take(), []string{
		"GET /health 200",
		"PUT " + base + " 200",
		"GET " + base + " 200",
		"POST " + base + "/resources/" + target + "/make-available 200",
		"GET /health 200",
		"GET /v1/view/resources 200",
		"GET /v1/view/resources 200",
		"GET /v1/view/resources?nodes=" + target + "&resources=" + rd + " 200",
	})
	if k := e.kinds(rd)[target]; k != "DISKLESS" {
		t.Fatalf("%s after activate is %q, want a DISKLESS client", target, k)
	}
	e.rec.take()

	// Deactivating the diskful source only looks.
	if err := e.c.DeactivateVolume(ctx, vol, "pve1"); err != nil {
		t.Fatal(err)
	}
	equal(t, "deactivate on a diskful node", e.rec.take(), []string{"GET /health 200", "GET /v1/view/resources 200"})
	if k := e.kinds(rd)["pve1"]; k != "LVM_THIN" {
		t.Fatalf("pve1 after deactivate is %q, want the diskful replica kept", k)
	}
	e.rec.take()

	// Deactivating the diskless client deletes it, keeping tie-breakers.
	if err := e.c.DeactivateVolume(ctx, vol, target); err != nil {
		t.Fatal(err)
	}
	equal(t, "deactivate on a diskless node", e.rec.take(), []string{
		"GET /health 200",
		"GET /v1/view/resources 200",
		"GET /v1/view/resources 200",
		"DELETE " + base + "/resources/" + target + "?keep_tiebreaker=True 200",
	})
	// The client is gone as a client. The controller moves the quorum
	// tie-breaker as LINSTOR does: the TB was dropped when the client
	// became a diskless voter, so the deleted client is taken over as
	// the new TB (linstor-proxmox.md §3.13). The diskful replicas and the
	// number of voters are as before activation.
	after := e.kinds(rd)
	if k := after[target]; k != "" && k != "DISKLESS TIE_BREAKER" {
		t.Fatalf("%s after deactivate is %q, want deleted or kept as tie-breaker", target, k)
	}
	if len(after) != len(before) || after["pve1"] != "LVM_THIN" {
		t.Fatalf("resources after deactivate %v, before activation %v", after, before)
	}
	e.rec.take()

	if err := e.c.ResizeVolume(ctx, vol, 2<<30); err != nil {
		t.Fatal(err)
	}
	total, avail, ok, err := e.c.Status(ctx)
	if err != nil || !ok || total <= 0 || avail <= 0 || avail > total {
		t.Fatalf("status: total %d avail %d ok %v err %v", total, avail, ok, err)
	}
	e.rec.take()

	if err := e.c.FreeImage(ctx, vol); err != nil {
		t.Fatal(err)
	}
	equal(t, "free_image requests", e.rec.take(), []string{
		"GET /health 200",
		"GET /v1/view/resources 200",
		"GET /v1/view/resources 200",
		"DELETE " + base + " 200",
	})
	e.raw(404, "GET", base, "")
	if len(e.rec.ct) != 0 {
		t.Fatalf("requests carried a Content-Type: %v", e.rec.ct)
	}
}

func TestPreferLocalNoAndOptions(t *testing.T) {
	e := newEnv(t)
	e.c.NoPreferLocal, e.c.ExactSize, e.c.NoTwoPrimaries = true, true, true
	vol, err := e.c.AllocImage(context.Background(), 7, 65536, "pve2")
	if err != nil {
		t.Fatal(err)
	}
	rd, _, _ := plugin.ParseVolname(vol)
	equal(t, "alloc_image with preferlocal no", e.rec.take(), []string{
		"GET /health 200",
		"GET /v1/view/resources 200",
		"GET /v1/resource-groups/drbdgrp 200",
		"POST /v1/resource-groups/drbdgrp/spawn 201",
		"PUT /v1/resource-definitions/" + rd + " 200",
	})
	var def struct {
		Props map[string]string `json:"props"`
	}
	if err := json.Unmarshal(e.raw(200, "GET", "/v1/resource-definitions/"+rd, ""), &def); err != nil {
		t.Fatal(err)
	}
	if def.Props["DrbdOptions/ExactSize"] != "True" || def.Props["DrbdOptions/Net/allow-two-primaries"] != "no" {
		t.Fatalf("props %v", def.Props)
	}
	diskful := 0
	for _, k := range e.kinds(rd) {
		if !strings.HasPrefix(k, "DISKLESS") {
			diskful++
		}
	}
	if diskful != 2 {
		t.Fatalf("spawn placed %d diskful replicas, want the group's 2: %v", diskful, e.kinds(rd))
	}
	// exactsize yes: activation does not reset the property.
	if _, err := e.c.ActivateVolume(context.Background(), vol, "pve2"); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.rec.take() {
		if strings.HasPrefix(r, "PUT ") {
			t.Fatalf("activation with exactsize yes sent %s", r)
		}
	}
}

func TestControllerFailover(t *testing.T) {
	e := newEnv(t)
	var unhealthy []string
	var mu sync.Mutex
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		unhealthy = append(unhealthy, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer sick.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close() // connection refused

	e.c.Controllers = []string{goneURL, sick.URL, e.url}
	if _, err := e.c.AllocImage(context.Background(), 100, 1024, "pve1"); err != nil {
		t.Fatal(err)
	}
	equal(t, "requests to the unhealthy controller", unhealthy, []string{"GET /health"})
	if got := e.rec.take(); len(got) != 7 || got[0] != "GET /health 200" {
		t.Fatalf("the healthy controller got %q", got)
	}

	e.c.Controllers = []string{goneURL, sick.URL}
	_, err := e.c.AllocImage(context.Background(), 100, 1024, "pve1")
	if !errors.Is(err, plugin.ErrNoController) {
		t.Fatalf("alloc with no healthy controller: %v", err)
	}
	// Since plugin 8.3, deactivation without a controller is a warning.
	if err := e.c.DeactivateVolume(context.Background(), "pm-00000000_100", "pve1"); err != nil {
		t.Fatalf("deactivate with no controller: %v", err)
	}
}

func TestErrorsCarryRequestAndMessage(t *testing.T) {
	e := newEnv(t)
	e.c.ResourceGroup = "nosuchgroup"
	_, err := e.c.AllocImage(context.Background(), 100, 1024, "pve1")
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *plugin.Error", err)
	}
	if pe.Method != "POST" || pe.Path != "/v1/resource-groups/nosuchgroup/spawn" || pe.Status != 404 || pe.Want != 201 ||
		!strings.Contains(pe.Message, "nosuchgroup") {
		t.Fatalf("error = %+v", pe)
	}
	if !strings.Contains(err.Error(), "alloc image for vm 100 on pve1") {
		t.Fatalf("error lacks the activity: %v", err)
	}
}

func TestPathUsesByResLinkWhenPresent(t *testing.T) {
	e := newEnv(t)
	e.c.DeviceExists = func(p string) bool { return p == "/dev/drbd/by-res/pm-0a0b0c0d/0" }
	got, err := e.c.Path(context.Background(), "pm-0a0b0c0d_5", "pve1")
	if err != nil || got != "/dev/drbd/by-res/pm-0a0b0c0d/0" {
		t.Fatalf("path = %q, %v", got, err)
	}
	if r := e.rec.take(); len(r) != 0 {
		t.Fatalf("path with an existing link made requests %q", r)
	}
}

func TestParseVolname(t *testing.T) {
	for _, tc := range []struct {
		in   string
		rd   string
		vmid int
		ok   bool
	}{
		{"pm-4d62c051_100", "pm-4d62c051", 100, true},
		{"vm-101-disk-0", "vm-101-disk-0", 101, true},
		{"vm-7-cloudinit", "vm-7-cloudinit", 7, true},
		{"pm-4D62C051_100", "", 0, false},
		{"pm-4d62c051", "", 0, false},
		{"disk0", "", 0, false},
	} {
		rd, vmid, err := plugin.ParseVolname(tc.in)
		if (err == nil) != tc.ok || rd != tc.rd || vmid != tc.vmid {
			t.Errorf("ParseVolname(%q) = %q, %d, %v", tc.in, rd, vmid, err)
		}
	}
}

func TestFreeImageWaitsWhileInUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	vol, err := e.c.AllocImage(ctx, 100, 1024, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	rd, _, _ := plugin.ParseVolname(vol)
	for _, n := range []string{"pve1", "pve2", "pve3", "pve4"} {
		if o, ok := e.b.Observed(rd, n); ok {
			o.InUse = true
			e.b.SetObserved(rd, n, o)
		}
	}
	clk := &countingClock{Clock: clock.Real{}}
	e.c.Clock = clk
	e.rec.take()
	// The plugin deletes anyway after ten looks ("yolo"); our controller
	// refuses to delete an in-use definition, so the error surfaces.
	err = e.c.FreeImage(ctx, vol)
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Method != "DELETE" {
		t.Fatalf("free of an in-use image: %v", err)
	}
	reqs := e.rec.take()
	views := 0
	for _, r := range reqs {
		if r == "GET /v1/view/resources 200" {
			views++
		}
	}
	if views != 11 || clk.slept != 9*time.Second {
		t.Fatalf("free_image looked %d times and slept %v, want 10+1 looks and 9 s: %q", views, clk.slept, reqs)
	}
}

// countingClock adds up sleeps without sleeping.
type countingClock struct {
	clock.Clock
	mu    sync.Mutex
	slept time.Duration
}

func (c *countingClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.slept += d
	c.mu.Unlock()
	return nil
}

// TestSnapshotCallsFollowThePlugin: volume_snapshot, volume_snapshot_rollback
// (POST without a body) and volume_snapshot_delete, which removes the
// definition a backup restored the snapshot into before the snapshot
// (linstor-proxmox.md §3.15 and its volume_snapshot_delete sequence).
func TestSnapshotCallsFollowThePlugin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	vol, err := e.c.AllocImage(ctx, 100, 1048576, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	rd, _, _ := plugin.ParseVolname(vol)
	snap := plugin.SnapshotName(rd, "before_upgrade")
	e.rec.take()
	if err := e.c.VolumeSnapshot(ctx, vol, "before_upgrade"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.VolumeSnapshotRollback(ctx, vol, "before_upgrade"); err != nil {
		t.Fatal(err)
	}
	// A backup restored the snapshot into its own definition.
	e.raw(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"`+snap+`"}}`)
	e.raw(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-restore-volume-definition/"+snap, `{"to_resource":"`+snap+`"}`)
	e.raw(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-restore-resource/"+snap, `{"to_resource":"`+snap+`"}`)
	if err := e.c.VolumeSnapshotDelete(ctx, vol, "before_upgrade"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range e.rec.take() {
		if strings.HasPrefix(r, "GET /health") || (strings.HasPrefix(r, "POST /v1/resource-definitions") && strings.Contains(r, "restore")) ||
			r == "POST /v1/resource-definitions 201" {
			continue
		}
		got = append(got, r)
	}
	equal(t, "snapshot requests", got, []string{
		"POST /v1/resource-definitions/" + rd + "/snapshots 201",
		"POST /v1/resource-definitions/" + rd + "/snapshot-rollback/" + snap + " 200",
		"GET /v1/view/resources 200",
		"DELETE /v1/resource-definitions/" + snap + " 200",
		"DELETE /v1/resource-definitions/" + rd + "/snapshots/" + snap + " 200",
	})
	if err := e.c.VolumeSnapshotRollback(ctx, vol, "before_upgrade"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("rollback to a deleted snapshot: %v", err)
	}
}
