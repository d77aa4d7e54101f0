package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/model"
)

// TestBadInput sends requests that must be refused with a 4xx whose
// ApiCallRc says what to fix, and proves that the state did not change.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *env)
		method string
		path   string
		body   string
		status int
		code   uint64 // ret_code type+code bits (golinstor's Is mask); 0: skip
		msg    string // substring of the message
	}{
		{name: "malformed JSON", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1",`, status: 400, code: linstor.ApiCallParseError, msg: "ends in the middle"},
		{name: "syntax error", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name" "x"}`, status: 400, code: linstor.ApiCallParseError, msg: "not valid JSON"},
		{name: "unknown field", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_size":[1024]}`, status: 400, code: linstor.ApiCallParseError, msg: `"volume_size"`},
		{name: "wrong type", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":"big"}`, status: 400, code: linstor.ApiCallParseError, msg: "volume_sizes"},
		{name: "size not a number", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":["big"]}`, status: 400, code: linstor.ApiCallParseError, msg: "not a number of KiB"},
		{name: "trailing data", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1"} {}`, status: 400, code: linstor.ApiCallParseError, msg: "after the JSON value"},
		{name: "empty body", method: "POST", path: "/v1/nodes", body: "", status: 400, code: linstor.ApiCallParseError, msg: "empty"},
		{name: "null property value", method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0",
			body: `{"override_props":{"Aux/pm/vmid":null}}`, status: 400, code: linstor.ApiCallParseError, msg: "Aux/pm/vmid"},
		{name: "invalid rd name", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"1 bad","volume_sizes":[1024]}`, status: 400, code: linstor.FailInvldRscName, msg: "invalid resource definition name"},
		{name: "reserved rd name", method: "POST", path: "/v1/resource-definitions",
			body: `{"resource_definition":{"name":"all"}}`, status: 400, code: linstor.FailInvldRscName, msg: "reserved"},
		{name: "invalid node name", method: "POST", path: "/v1/nodes",
			body: `{"name":"pve_9","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.9"}]}`, status: 400, code: linstor.FailInvldNodeName},
		{name: "bad address", method: "POST", path: "/v1/nodes",
			body: `{"name":"pve9","type":"satellite","net_interfaces":[{"name":"default","address":"ten"}]}`, status: 400, code: linstor.FailInvldNetAddr},
		{name: "size zero", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[0]}`, status: 400, code: linstor.FailInvldVlmSize, msg: "not positive"},
		{name: "size negative", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[-5]}`, status: 400, code: linstor.FailInvldVlmSize},
		{name: "size beyond DRBD", method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/volume-definitions",
			body: `{"volume_definition":{"size_kib":2199023255553}}`, status: 400, code: linstor.FailInvldVlmSize},
		{name: "size beyond every pool", setup: func(e *env) {
			for _, n := range []string{"pve1", "pve2", "pve3"} {
				e.b.SetPool(n, "thin", 1<<20, 1<<20) // 1 GiB each, at most 20 GiB over-provisioned
			}
		}, method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[104857600]}`, status: 409, code: linstor.FailNotEnoughNodes, msg: "100 GiB needed"},
		{name: "resize beyond pool", setup: func(e *env) { e.b.SetPool("pve1", "thin", 1<<20, 1<<20) },
			method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0/volume-definitions/0",
			body: `{"size_kib":104857600}`, status: 409, code: linstor.FailNotEnoughFreeSpace, msg: "pve1"},
		{name: "shrink", method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0/volume-definitions/0",
			body: `{"size_kib":1}`, status: 400, code: linstor.FailInvldVlmSize, msg: "cannot shrink"},
		{name: "unknown resource group", method: "POST", path: "/v1/resource-groups/nope/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1024]}`, status: 404, code: linstor.FailNotFoundRscGrp, msg: "nope"},
		{name: "volume count mismatch", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1024,2048]}`, status: 400, code: linstor.FailInvldVlmSizes},
		{name: "duplicate rd", method: "POST", path: "/v1/resource-definitions",
			body: `{"resource_definition":{"name":"VM-9-DISK-0"}}`, status: 409, code: linstor.FailExistsRscDfn, msg: "already exists"},
		{name: "duplicate spawn", method: "POST", path: "/v1/resource-groups/drbdgrp/spawn",
			body: `{"resource_definition_name":"vm-9-disk-0","volume_sizes":[1024]}`, status: 409, code: linstor.FailExistsRscDfn},
		{name: "duplicate node", method: "POST", path: "/v1/nodes",
			body: `{"name":"pve1","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.9"}]}`, status: 409, code: linstor.FailExistsNode},
		{name: "delete last UpToDate replica", setup: func(e *env) {
			e.b.SetObserved("vm-9-disk-0", "pve2", api.ObservedResource{Volumes: []api.ObservedVolume{{DiskState: "Inconsistent"}}})
		}, method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0/resources/pve1", status: 409, code: linstor.FailNotAllUptodate,
			msg: "only UpToDate copy"},
		{name: "toggle away last UpToDate disk", setup: func(e *env) {
			e.b.SetObserved("vm-9-disk-0", "pve2", api.ObservedResource{Volumes: []api.ObservedVolume{{DiskState: "Inconsistent"}}})
		}, method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0/resources/pve1/toggle-disk/diskless", status: 409, code: linstor.FailNotAllUptodate},
		{name: "delete in-use resource", setup: func(e *env) {
			e.b.SetObserved("vm-9-disk-0", "pve1", api.ObservedResource{InUse: true, Volumes: []api.ObservedVolume{{DiskState: "UpToDate"}}})
		}, method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0/resources/pve1", status: 409, code: linstor.FailInUse, msg: "in use"},
		{name: "delete in-use definition", setup: func(e *env) {
			e.b.SetObserved("vm-9-disk-0", "pve2", api.ObservedResource{InUse: true, Volumes: []api.ObservedVolume{{DiskState: "UpToDate"}}})
		}, method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0", status: 409, code: linstor.FailInUse},
		{name: "delete definition with snapshots", setup: func(e *env) {
			e.must(201, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshots", `{"name":"s1"}`)
		}, method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0", status: 409, code: linstor.FailInUse, msg: "snapshot"},
		{name: "delete group in use", method: "DELETE", path: "/v1/resource-groups/drbdgrp", status: 409, code: linstor.FailInUse},
		{name: "unsupported layer", method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/autoplace",
			body: `{"layer_list":["LUKS","STORAGE"]}`, status: 400, code: linstor.FailInvldLayerStack},
		{name: "place count out of range", method: "POST", path: "/v1/resource-groups",
			body: `{"name":"big","select_filter":{"place_count":"40"}}`, status: 400, code: linstor.FailInvldPlaceCount},
		{name: "bad keep_tiebreaker", method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0/resources/pve3?keep_tiebreaker=maybe",
			status: 400, code: linstor.FailInvldRequest},
		{name: "bad limit", method: "GET", path: "/v1/nodes?limit=-1", status: 400, code: linstor.FailInvldRequest},
		{name: "bad volume number", method: "GET", path: "/v1/resource-definitions/vm-9-disk-0/volume-definitions/x", status: 400, code: linstor.FailInvldVlmNr},
		{name: "make-available on unknown node", method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/resources/pve7/make-available",
			body: `{"diskful":false}`, status: 404, code: linstor.FailNotFoundNode},
		{name: "body too large", method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0",
			body: `{"override_props":{"Aux/x":"` + strings.Repeat("x", 2<<20) + `"}}`, status: 413, code: linstor.ApiCallParseError},
		{name: "property value too long", method: "PUT", path: "/v1/resource-definitions/vm-9-disk-0",
			body: `{"override_props":{"Aux/x":"` + strings.Repeat("x", 5000) + `"}}`, status: 400, code: linstor.FailInvldProp},
		{name: "wrong method", method: "DELETE", path: "/health", status: 405, code: linstor.UnknownApiCall},
		{name: "unimplemented LINSTOR path", method: "GET", path: "/v1/remotes", status: 501, code: linstor.UnknownApiCall, msg: "does not implement"},
		{name: "rollback missing snapshot", method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/snapshot-rollback/nope",
			status: 404, code: linstor.FailNotFoundSnapshotDfn},
		{name: "rollback after a resize", setup: func(e *env) {
			e.must(201, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshots", `{"name":"s1"}`)
			e.must(200, "PUT", "/v1/resource-definitions/vm-9-disk-0/volume-definitions/0", `{"size_kib":2097152}`)
		}, method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/snapshot-rollback/s1",
			status: 409, code: linstor.FailInvldRequest, msg: "changed since snapshot s1"},
		{name: "rollback with a node offline", setup: func(e *env) {
			e.must(201, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshots", `{"name":"s1"}`)
			for _, n := range []string{"pve1", "pve2", "pve3"} {
				e.b.SetOnline(n, false)
			}
		}, method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/snapshot-rollback/s1",
			status: 409, code: linstor.FailNotConnected, msg: "is offline"},
		{name: "delete a snapshot being restored", setup: func(e *env) {
			e.must(201, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshots", `{"name":"s1"}`)
			e.must(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"copy"}}`)
			e.must(200, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshot-restore-volume-definition/s1", `{"to_resource":"copy"}`)
			// A satellite has not cloned its volume yet: the flag stays.
			if r := e.b.State.Apply(&state.CreateResource{ResourceDefinition: "copy", Node: "pve1", Kind: state.Diskful, StoragePool: "thin",
				Flags: []string{model.RscFlagRestoreFromSnapshot},
				Props: model.Props{linstor.KeyVlmRestoreFromResource: "vm-9-disk-0", linstor.KeyVlmRestoreFromSnapshot: "s1"}}); r.Err != nil {
				panic(r.Err)
			}
		}, method: "DELETE", path: "/v1/resource-definitions/vm-9-disk-0/snapshots/s1",
			status: 409, code: linstor.FailInUse, msg: "being restored into copy"},
		{name: "restore into missing definition", setup: func(e *env) {
			e.must(201, "POST", "/v1/resource-definitions/vm-9-disk-0/snapshots", `{"name":"s1"}`)
		}, method: "POST", path: "/v1/resource-definitions/vm-9-disk-0/snapshot-restore-resource/s1",
			body: `{"to_resource":"nope"}`, status: 404, code: linstor.FailNotFoundRscDfn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cluster("pve1", "pve2", "pve3")
			e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-9-disk-0","volume_sizes":[1048576]}`)
			if tt.setup != nil {
				tt.setup(e)
			}
			before := e.snapshot()
			applied := len(e.b.Applied())
			code, body := e.do(tt.method, tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d; body %s", code, tt.status, body)
			}
			if after := e.snapshot(); !bytes.Equal(before, after) {
				t.Fatalf("refused request changed the state:\nbefore %s\nafter  %s", before, after)
			}
			if n := len(e.b.Applied()); n != applied {
				t.Fatalf("refused request applied %v", e.b.Applied()[applied:])
			}
			var rcs []api.ApiCallRc
			if err := json.Unmarshal(body, &rcs); err != nil || len(rcs) == 0 {
				t.Fatalf("answer is not an ApiCallRc list (%v): %s", err, body)
			}
			last := rcs[len(rcs)-1]
			rcode := uint64(last.RetCode)
			if last.RetCode >= 0 || rcode&linstor.MaskError != linstor.MaskError {
				t.Fatalf("ret_code %d is not an error", last.RetCode)
			}
			if tt.code != 0 && rcode&(linstor.MaskError|linstor.MaskBitsCode) != tt.code&(linstor.MaskError|linstor.MaskBitsCode) {
				t.Fatalf("ret_code %#x, want code %#x; %+v", rcode, tt.code, last)
			}
			if tt.msg != "" && !strings.Contains(last.Message, tt.msg) {
				t.Fatalf("message %q lacks %q", last.Message, tt.msg)
			}
			if last.Correction == "" {
				t.Fatalf("no correction in %+v", last)
			}
		})
	}
}

// ret codes must be exact float-safe; golinstor decodes them as int64,
// so check one through the raw text too.
func TestRetCodeWire(t *testing.T) {
	e := newEnv(t)
	_, body := e.do("POST", "/v1/resource-groups/nope/spawn", `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1]}`)
	// FailNotFoundRscGrp with the call's object (resource definition)
	// and operation (create) bits, as an exact integer, not a float.
	want := fmt.Sprintf(`"ret_code":%d`, rcode(linstor.FailNotFoundRscGrp|linstor.MaskRscDfn|linstor.MaskCrt))
	if !bytes.Contains(body, []byte(want)) {
		t.Fatalf("body %s lacks %s", body, want)
	}
}

// TestAcceptsClientQuirks sends what real clients send and LINSTOR
// accepts: strings for numbers, lower-case enums, nulls.
func TestAcceptsClientQuirks(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/nodes", `{"name":"pve1","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.1","satellite_port":3366,"satellite_encryption_type":"plain","is_active":true}]}`)
	e.must(201, "POST", "/v1/nodes", `{"name":"pve2","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.2"}]}`)
	e.must(201, "POST", "/v1/nodes/pve1/storage-pools", `{"storage_pool_name":"thin","provider_kind":"LVM_THIN","props":{"StorDriver/StorPoolName":"pve/data"}}`)
	e.must(201, "POST", "/v1/nodes/pve2/storage-pools", `{"storage_pool_name":"thin","provider_kind":"LVM_THIN","props":{"StorDriver/StorPoolName":"pve/data"}}`)
	p, _ := e.b.State.StoragePool("pve1", "thin")
	if p.Props[model.KeyStorDriverLvmVg] != "pve" || p.Props[model.KeyStorDriverThinPool] != "data" {
		t.Fatalf("StorPoolName not split into LvmVg/ThinPool: %v", p.Props)
	}
	e.must(201, "POST", "/v1/resource-groups", `{"name":"GR","select_filter":{"place_count":"2"}}`)
	e.must(200, "PUT", "/v1/resource-groups/GR", `{"select_filter":{"place_count":"2","storage_pool":"thin"}}`)
	e.must(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"RR","resource_group_name":"GR"}}`)
	e.must(201, "POST", "/v1/resource-definitions/RR/volume-definitions", `{"volume_definition":{"size_kib":1048576,"flags":[]}}`)
	e.must(201, "POST", "/v1/resource-definitions/RR/autoplace", `{"diskless_on_remaining":null,"select_filter":{"place_count":2}}`)
	e.must(201, "POST", "/v1/resource-definitions/RR/snapshots", `{"name":"SS"}`)
	if got := len(e.b.State.Resources("RR")); got != 2 {
		t.Fatalf("RR has %d resources, want 2 diskful (no third node for a tie-breaker)", got)
	}
	// python's resource create: an array, pool by property.
	e.must(201, "POST", "/v1/nodes", `{"name":"pve3","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.3"}]}`)
	e.must(201, "POST", "/v1/nodes/pve3/storage-pools", `{"storage_pool_name":"thin","provider_kind":"LVM_THIN","props":{"StorDriver/StorPoolName":"pve/data"}}`)
	e.must(201, "POST", "/v1/resource-definitions", `{"resource_definition":{"name":"RR2"}}`)
	e.must(201, "POST", "/v1/resource-definitions/RR2/volume-definitions", `{"volume_definition":{"size_kib":1024}}`)
	e.must(201, "POST", "/v1/resource-definitions/RR2/resources", `[{"resource":{"node_name":"pve3","props":{"StorPoolName":"thin"}}}]`)
	if r, ok := e.b.State.Resource("RR2", "pve3"); !ok || r.Volumes[0].StoragePool != "thin" {
		t.Fatalf("RR2 on pve3 = %+v", r)
	}
	// limit=0&offset=0 means everything.
	if v := e.must(200, "GET", "/v1/nodes?limit=0&offset=0", ""); len(v.([]any)) != 3 {
		t.Fatalf("limit=0 must not limit: %v", v)
	}
	if v := e.must(200, "GET", "/v1/nodes?limit=1&offset=1", ""); len(v.([]any)) != 1 || at(t, v, "0.name") != "pve2" {
		t.Fatalf("paging: %v", v)
	}
	if v := e.must(200, "GET", "/v1/nodes?nodes=PVE1,pve3", ""); len(v.([]any)) != 2 {
		t.Fatalf("node filter: %v", v)
	}
}

// TestReplicationFailure checks that a failing backend gives a 500 that
// says where to look, and leaves nothing half-done for a spawn.
func TestReplicationFailure(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2")
	e.b.SetApplyError(errors.New("no raft leader"))
	v := e.must(500, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1024]}`)
	if !strings.Contains(at(t, v, "0.message").(string), "no raft leader") {
		t.Fatalf("answer = %v", v)
	}
	e.b.SetApplyError(nil)
	if _, ok := e.b.State.ResourceDefinition("vm-1-disk-1"); ok {
		t.Fatal("half-spawned definition left behind")
	}
}

// TestCompletionTimeout checks that a delete the satellites do not finish
// in time is a success with a warning, as in LINSTOR.
func TestCompletionTimeout(t *testing.T) {
	e := newEnv(t, func(o *api.Options) { o.CompletionTimeout = 50 * time.Millisecond })
	e.cluster("pve1", "pve2", "pve3")
	e.must(201, "POST", "/v1/resource-groups/drbdgrp/spawn", `{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1024]}`)
	e.b.SetComplete(false)
	v := e.must(200, "DELETE", "/v1/resource-definitions/vm-1-disk-1", "")
	codes := retCodes(t, v)
	if uint64(codes[len(codes)-1])&0xC000000000000000 != 0x8000000000000000 {
		t.Fatalf("want a trailing warning, got %v", v)
	}
	d, _ := e.b.State.ResourceDefinition("vm-1-disk-1")
	if !d.Flags.Has(model.RdFlagDelete) {
		t.Fatalf("definition not flagged for deletion: %v", d.Flags)
	}
	// The reconciler finishes later; the next delete waits for it.
	e.b.SetComplete(true)
	e.apply(&state.SetFlags{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "vm-1-disk-1"}, Clear: []string{model.RdFlagDelete}})
}

// rcode converts a ret code constant to the signed wire form.
func rcode(c uint64) int64 { return int64(c) }

// TestSlowBodyTimesOut checks that a client that stops sending its body
// gets 408 instead of holding the handler forever.
func TestSlowBodyTimesOut(t *testing.T) {
	e := newEnv(t, func(o *api.Options) { o.BodyReadTimeout = 100 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"name\":")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
}
