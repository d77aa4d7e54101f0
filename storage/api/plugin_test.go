package api_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/storage/api"
)

// These tests replay the requests LINBIT's Proxmox plugin (linstor-proxmox
// 8.3.0) makes, byte for byte as research linstor-proxmox.md §4 logged
// them from the real plugin: no Content-Type, Perl's JSON, the exact
// status codes it demands (it compares the code as a string and dies on
// anything else), and every response field §3 says it reads.

const rd = "pm-4d62c051"

// allocImage is alloc_image with preferlocal=yes on pve1 (§4).
func allocImage(e *env, name, node string) {
	e.t.Helper()
	e.must(200, "GET", "/health", "")
	e.must(200, "GET", "/v1/view/resources", "")
	rg := e.must(200, "GET", "/v1/resource-groups/drbdgrp", "")
	if pc := at(e.t, rg, "select_filter.place_count"); pc != float64(2) {
		e.t.Fatalf("select_filter.place_count = %v, want 2", pc)
	}
	if ls, ok := at(e.t, rg, "select_filter.layer_stack").([]any); !ok || slices.Contains(ls, any("NVME")) {
		e.t.Fatalf("select_filter.layer_stack = %v, want a list without NVME", ls)
	}
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn",
		`{"resource_definition_props":{"DrbdOptions/Net/allow-two-primaries":"yes","DrbdOptions/ExactSize":"False"},"definitions_only":true,"volume_sizes":[1048576],"resource_definition_name":"`+name+`"}`)
	e.must(200, "POST", "/v1/resource-definitions/"+name+"/resources/"+node+"/make-available", `{"diskful":true}`)
	e.must(201, "POST", "/v1/resource-definitions/"+name+"/autoplace", `{}`)
	e.must(200, "PUT", "/v1/resource-definitions/"+name, `{"override_props":{"Aux/pm/vmid":"100"}}`)
}

// viewEntry returns the view element for rd on node and checks the
// fields the plugin reads from it.
func viewEntry(e *env, view any, name, node string) map[string]any {
	e.t.Helper()
	m := find(e.t, view, "name", name, "node_name", node)
	for _, p := range []string{"volumes.0.provider_kind", "volumes.0.state.disk_state", "volumes.0.storage_pool_name",
		"volumes.0.device_path", "state.in_use", "layer_object.drbd.drbd_volumes.0.usable_size_kib", "volumes.0.allocated_size_kib",
		"layer_object.drbd.drbd_resource_definition"} {
		at(e.t, m, p)
	}
	return m
}

func TestPluginAllocActivateDeactivate(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3", "pve4")
	allocImage(e, rd, "pve1")

	// The local node got a replica through make-available, autoplace
	// added the second and a tie-breaker, and every new device was
	// waited for before the answers.
	view := e.must(200, "GET", "/v1/view/resources", "")
	if n := len(view.([]any)); n != 3 {
		t.Fatalf("view has %d entries, want 3: %v", n, view)
	}
	local := viewEntry(e, view, rd, "pve1")
	if k := at(t, local, "volumes.0.provider_kind"); k != "LVM_THIN" {
		t.Fatalf("pve1 provider_kind = %v, want LVM_THIN", k)
	}
	if s := at(t, local, "layer_object.drbd.drbd_volumes.0.usable_size_kib"); s != float64(1048576) {
		t.Fatalf("usable_size_kib = %v, want 1048576 (the size PVE lists)", s)
	}
	if s := at(t, local, "volumes.0.state.disk_state"); s != "UpToDate" {
		t.Fatalf("disk_state = %v", s)
	}
	if s := at(t, local, "state.in_use"); s != false {
		t.Fatalf("in_use = %v", s)
	}
	second := viewEntry(e, view, rd, "pve2") // most free space, then name
	if k := at(t, second, "volumes.0.provider_kind"); k != "LVM_THIN" {
		t.Fatalf("pve2 provider_kind = %v", k)
	}
	tb := viewEntry(e, view, rd, "pve3")
	if k := at(t, tb, "volumes.0.provider_kind"); k != "DISKLESS" {
		t.Fatalf("tie-breaker provider_kind = %v, want DISKLESS (the plugin's deactivate test)", k)
	}
	for _, n := range []string{"pve1", "pve2"} {
		if !slices.Contains(e.b.Waited(), rd+"/"+n) {
			t.Fatalf("no WaitDevice for %s before answering; waited %v", n, e.b.Waited())
		}
	}

	// list_images reads name, resource_group_name and the vmid.
	rds := e.must(200, "GET", "/v1/resource-definitions", "")
	d := find(t, rds, "name", rd)
	if at(t, d, "resource_group_name") != "drbdgrp" || at(t, d, "props.Aux/pm/vmid") != "100" {
		t.Fatalf("resource definition = %v", d)
	}
	// rename_volume sends the vmid as a JSON number when Perl used it as one.
	e.must(200, "PUT", "/v1/resource-definitions/"+rd, `{"override_props":{"Aux/pm/vmid":102}}`)
	d = e.must(200, "GET", "/v1/resource-definitions/"+rd, "").(map[string]any)
	if v := at(t, d, "props.Aux/pm/vmid"); v != "102" {
		t.Fatalf("Aux/pm/vmid = %#v, want the string \"102\"", v)
	}
	if typ := at(t, d, "layer_data.0.type"); typ != "DRBD" {
		t.Fatalf("layer_data[0].type = %v", typ)
	}

	// activate_volume on pve3, which holds the tie-breaker.
	e.must(200, "PUT", "/v1/resource-definitions/"+rd, `{"override_props":{"DrbdOptions/ExactSize":"False"}}`)
	e.must(200, "GET", "/v1/resource-definitions/"+rd, "")
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/resources/pve3/make-available", `{"diskful":false}`)
	view = e.must(200, "GET", "/v1/view/resources?resources="+rd+"&nodes=pve3", "")
	if n := len(view.([]any)); n != 1 {
		t.Fatalf("filtered view has %d entries", n)
	}
	m := viewEntry(e, view, rd, "pve3")
	if dp := at(t, m, "volumes.0.device_path"); dp != "/dev/drbd1000" {
		t.Fatalf("device_path = %v", dp)
	}
	if strings.Contains(strings.Join(anyStrings(at(t, m, "flags")), ","), "TIE_BREAKER") {
		t.Fatalf("make-available must turn the tie-breaker into a wanted diskless resource: %v", at(t, m, "flags"))
	}
	// Activating again is idempotent.
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/resources/pve3/make-available", `{"diskful":false}`)

	// activate_volume on pve4, which has nothing: a diskless client.
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/resources/pve4/make-available", `{"diskful":false}`)
	view = e.must(200, "GET", "/v1/view/resources", "")
	if k := at(t, viewEntry(e, view, rd, "pve4"), "volumes.0.provider_kind"); k != "DISKLESS" {
		t.Fatalf("pve4 provider_kind = %v", k)
	}

	// deactivate_volume on pve4 and pve3 (migration sources): both are
	// diskless, so the plugin deletes with keep_tiebreaker=True. The
	// last one stays as the tie-breaker; a second delete changes nothing.
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd+"/resources/pve4?keep_tiebreaker=True", "")
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd+"/resources/pve3?keep_tiebreaker=True", "")
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd+"/resources/pve3?keep_tiebreaker=True", "")
	view = e.must(200, "GET", "/v1/view/resources", "")
	if n := len(view.([]any)); n != 3 {
		t.Fatalf("after deactivation %d resources, want 2 diskful + tie-breaker", n)
	}
	if !slices.Contains(anyStrings(at(t, viewEntry(e, view, rd, "pve3"), "flags")), "TIE_BREAKER") {
		t.Fatalf("pve3 must be the tie-breaker again")
	}
	// A resource that does not exist: a warning, still 200.
	codes := retCodes(t, e.must(200, "DELETE", "/v1/resource-definitions/"+rd+"/resources/pve4?keep_tiebreaker=True", ""))
	if len(codes) != 1 || codes[0] >= 0 || uint64(codes[0])&0xC000000000000000 != 0x8000000000000000 {
		t.Fatalf("deleting a missing resource: ret codes %v, want one warning", codes)
	}

	// free_image.
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd, "")
	e.must(404, "GET", "/v1/resource-definitions/"+rd, "")
	if v := e.must(200, "GET", "/v1/view/resources", ""); len(v.([]any)) != 0 {
		t.Fatalf("view after free_image: %v", v)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestPluginPreferLocalNo(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn",
		`{"resource_definition_name":"vm-100-disk-0","volume_sizes":[2097152],"definitions_only":false,"resource_definition_props":{"DrbdOptions/ExactSize":"True","DrbdOptions/Net/allow-two-primaries":"no"}}`)
	view := e.must(200, "GET", "/v1/view/resources", "")
	if n := len(view.([]any)); n != 3 {
		t.Fatalf("spawn with autoplace: %d resources, want 2 diskful + tie-breaker", n)
	}
	d := e.must(200, "GET", "/v1/resource-definitions/vm-100-disk-0", "")
	if at(t, d, "props.DrbdOptions/ExactSize") != "True" || at(t, d, "props.DrbdOptions/Net/allow-two-primaries") != "no" {
		t.Fatalf("props = %v", at(t, d, "props"))
	}
	// Cloud-init disks are tiny (raised to 3 MiB by the plugin).
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn",
		`{"resource_definition_name":"vm-100-cloudinit","volume_sizes":[3072],"definitions_only":false,"resource_definition_props":{"DrbdOptions/ExactSize":"False","DrbdOptions/Net/allow-two-primaries":"yes"}}`)
	// An autoplace with nothing left to place still answers 201.
	codes := retCodes(t, e.must(201, "POST", "/v1/resource-definitions/vm-100-disk-0/autoplace", `{}`))
	if len(codes) == 0 {
		t.Fatal("autoplace with nothing to do must say so")
	}
}

func TestPluginResizeSnapshotsRestore(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	allocImage(e, rd, "pve1")

	// volume_resize: bytes/1024 in Perl; a fraction is rounded up.
	e.must(200, "PUT", "/v1/resource-definitions/"+rd+"/volume-definitions/0", `{"size_kib":2097152}`)
	e.must(200, "PUT", "/v1/resource-definitions/"+rd+"/volume-definitions/0", `{"size_kib":2097152.25}`)
	view := e.must(200, "GET", "/v1/view/resources", "")
	if s := at(t, viewEntry(e, view, rd, "pve1"), "layer_object.drbd.drbd_volumes.0.usable_size_kib"); s != float64(2097153) {
		t.Fatalf("usable size after resize = %v", s)
	}

	// volume_snapshot, then a backup from it (activate with snapshot).
	snap := "snap_" + rd + "_snap1"
	e.must(201, "POST", "/v1/resource-definitions/"+rd+"/snapshots", `{"name":"`+snap+`"}`)
	e.must(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"`+snap+`"}}`)
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-restore-volume-definition/"+snap, `{"to_resource":"`+snap+`"}`)
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-restore-resource/"+snap, `{"to_resource":"`+snap+`"}`)
	e.must(200, "PUT", "/v1/resource-definitions/"+snap, `{"override_props":{"DrbdOptions/ExactSize":"False"}}`)
	e.must(200, "GET", "/v1/resource-definitions/"+snap, "")
	e.must(200, "POST", "/v1/resource-definitions/"+snap+"/resources/pve3/make-available", `{"diskful":false}`)
	view = e.must(200, "GET", "/v1/view/resources?resources="+snap, "")
	restored := viewEntry(e, view, snap, "pve1")
	if s := at(t, restored, "layer_object.drbd.drbd_volumes.0.usable_size_kib"); s != float64(2097153) {
		t.Fatalf("restored size = %v", s)
	}
	if p := at(t, restored, "props.RestoreFromSnapshot"); p != snap {
		t.Fatalf("restored resource does not name its source snapshot: %v", at(t, restored, "props"))
	}

	// volume_snapshot_rollback: a POST without a body.
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-rollback/"+snap, "")

	// volume_snapshot_delete: the temporary definition first, then the
	// snapshot; then free_image can delete the definition.
	e.must(200, "DELETE", "/v1/resource-definitions/"+snap, "")
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd+"/snapshots/"+snap, "")
	e.must(200, "DELETE", "/v1/resource-definitions/"+rd, "")
}

func TestPluginRollbackOnlyNewest(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	allocImage(e, rd, "pve1")
	e.must(201, "POST", "/v1/resource-definitions/"+rd+"/snapshots", `{"name":"snap_`+rd+`_a"}`)
	e.clk.Advance(time.Second)
	e.must(201, "POST", "/v1/resource-definitions/"+rd+"/snapshots", `{"name":"snap_`+rd+`_b"}`)
	before := e.snapshot()
	v := e.must(409, "POST", "/v1/resource-definitions/"+rd+"/snapshot-rollback/snap_"+rd+"_a", "")
	if c := at(t, v, "0.correction"); !strings.Contains(c.(string), "snap_"+rd+"_b") {
		t.Fatalf("correction %q does not name the newer snapshot", c)
	}
	if string(before) != string(e.snapshot()) {
		t.Fatal("refused rollback changed the state")
	}
	// In use: refused too.
	e.b.SetObserved(rd, "pve1", api.ObservedResource{InUse: true, Volumes: []api.ObservedVolume{{DiskState: "UpToDate"}}})
	e.must(409, "POST", "/v1/resource-definitions/"+rd+"/snapshot-rollback/snap_"+rd+"_b", "")
	e.b.ClearObserved(rd, "pve1")
	e.must(200, "POST", "/v1/resource-definitions/"+rd+"/snapshot-rollback/snap_"+rd+"_b", "")
}

func TestPluginStatusAndHealth(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	code, body := e.do("GET", "/health", "")
	if code != 200 || len(body) != 0 {
		t.Fatalf("health = %d %q, want 200 with an empty body", code, body)
	}
	v := e.must(200, "POST", "/v1/queries/resource-groups/query-all-size-info", `{"ignore_cache_older_than_sec":60}`)
	for _, rg := range []string{"drbdgrp", "DfltRscGrp"} {
		capacity := at(t, v, "result."+rg+".space_info.capacity_in_kib").(float64)
		avail := at(t, v, "result."+rg+".space_info.available_size_in_kib").(float64)
		if capacity <= 0 || avail <= 0 || avail > capacity {
			t.Fatalf("%s: capacity %v, available %v", rg, capacity, avail)
		}
	}
	// Three 1 TiB pools, two copies: 1.5 TiB usable.
	if c := at(t, v, "result.drbdgrp.space_info.capacity_in_kib"); c != float64(3<<30/2) {
		t.Fatalf("capacity = %v", c)
	}
	// The refresh form (-1) and the per-group query, which the plugin
	// has but does not call.
	e.must(200, "POST", "/v1/queries/resource-groups/query-all-size-info", `{"ignore_cache_older_than_sec":-1}`)
	q := e.must(200, "POST", "/v1/resource-groups/drbdgrp/query-size-info", `{}`)
	if n := len(at(t, q, "space_info.next_spawn_result").([]any)); n != 2 {
		t.Fatalf("next_spawn_result has %d entries, want 2", n)
	}
	e.must(404, "GET", "/v1/resource-groups/nope", "")
}

// TestPluginDeviceWait checks that make-available fails when the device
// does not appear (the plugin opens it right after), while autoplace
// answers with a warning, as LINSTOR does for slow satellites.
func TestPluginDeviceWait(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3")
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-1-disk-0","volume_sizes":[1024],"definitions_only":true}`)
	e.b.SetDeviceError("pve1", errors.New("drbdadm up failed"))
	v := e.must(500, "POST", "/v1/resource-definitions/vm-1-disk-0/resources/pve1/make-available", `{"diskful":true}`)
	last := strconv.Itoa(len(v.([]any)) - 1)
	if msg := at(t, v, last+".message").(string); !strings.Contains(msg, "drbdadm up failed") || at(t, v, last+".correction") == "" {
		t.Fatalf("answer does not explain the failure: %v", v)
	}
	if !slices.Contains(e.b.Waited(), "vm-1-disk-0/pve1") {
		t.Fatalf("make-available did not wait for the device: %v", e.b.Waited())
	}
	// Retrying is safe once the device is there.
	e.b.SetDeviceError("pve1", nil)
	e.must(200, "POST", "/v1/resource-definitions/vm-1-disk-0/resources/pve1/make-available", `{"diskful":true}`)
	e.b.SetDeviceError("pve2", errors.New("slow"))
	v = e.must(201, "POST", "/v1/resource-definitions/vm-1-disk-0/autoplace", `{}`)
	warned := false
	for _, c := range retCodes(t, v) {
		if uint64(c)&0xC000000000000000 == 0x8000000000000000 {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("autoplace with a late device must warn: %v", v)
	}
}

// TestTieBreakerLifecycle follows the automatic tie-breaker through a
// definition's changes.
func TestTieBreakerLifecycle(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2", "pve3", "pve4")
	tieBreakers := func() []string {
		var out []string
		for _, r := range e.b.State.Resources("vm-1-disk-0") {
			if r.TieBreaker() {
				out = append(out, r.Node)
			}
		}
		return out
	}
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-1-disk-0","volume_sizes":[1024]}`)
	if tb := tieBreakers(); len(tb) != 1 {
		t.Fatalf("two diskful replicas need a tie-breaker, have %v", tb)
	}
	// A third diskful replica: the tie-breaker's node gets the disk.
	tbNode := tieBreakers()[0]
	e.must(201, "POST", "/v1/resource-definitions/vm-1-disk-0/autoplace", `{"select_filter":{"place_count":3,"node_name_list":["`+tbNode+`"]}}`)
	if r, _ := e.b.State.Resource("vm-1-disk-0", tbNode); r.Diskless() || r.TieBreaker() {
		t.Fatalf("tie-breaker node must now be diskful: %+v", r)
	}
	if tb := tieBreakers(); len(tb) != 0 {
		t.Fatalf("three diskful replicas need no tie-breaker, have %v", tb)
	}
	// Back to two: the tie-breaker returns.
	e.must(200, "PUT", "/v1/resource-definitions/vm-1-disk-0/resources/"+tbNode+"/toggle-disk", `{"operation":"INTO_DRBD_DISKLESS"}`)
	if tb := tieBreakers(); len(tb) != 0 {
		t.Fatalf("a diskless voter exists (%s), no tie-breaker needed, have %v", tbNode, tb)
	}
	e.must(200, "DELETE", "/v1/resource-definitions/vm-1-disk-0/resources/"+tbNode, "")
	if tb := tieBreakers(); len(tb) != 1 || tb[0] != tbNode {
		t.Fatalf("deleting the only diskless voter must keep it as tie-breaker, have %v", tb)
	}
	// Deleting the tie-breaker without keep_tiebreaker turns the
	// automatic tie-breaker off for the definition.
	e.must(200, "DELETE", "/v1/resource-definitions/vm-1-disk-0/resources/"+tbNode, "")
	if tb := tieBreakers(); len(tb) != 0 {
		t.Fatalf("tie-breaker not deleted: %v", tb)
	}
	d := e.must(200, "GET", "/v1/resource-definitions/vm-1-disk-0", "")
	if v := at(t, d, "props.DrbdOptions/auto-add-quorum-tiebreaker"); v != "False" {
		t.Fatalf("auto-add-quorum-tiebreaker = %v", v)
	}
	// A definition without volumes still lists volumes: [].
	e.must(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"empty-rd"}}`)
	e.must(201, "POST", "/v1/resource-definitions/empty-rd/resources/pve1", `{"resource":{"props":{"StorPoolName":"thin"}}}`)
	v := e.must(200, "GET", "/v1/view/resources?resources=empty-rd", "")
	if vols := at(t, v, "0.volumes").([]any); len(vols) != 0 {
		t.Fatalf("volumes = %v", vols)
	}
	at(t, v, "0.layer_object.drbd.drbd_volumes")
}
