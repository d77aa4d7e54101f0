package api_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// fuzzRoutes are the changing calls the fuzzer sends bodies to.
func fuzzRoutes() []struct{ method, path string } {
	return []struct{ method, path string }{
		{"POST", "/v1/resource-groups/drbdgrp/spawn"},
		{"POST", "/v1/resource-definitions/vm-9-disk-0/resources/pve3/make-available"},
		{"POST", "/v1/resource-definitions/vm-9-disk-0/autoplace"},
		{"PUT", "/v1/resource-definitions/vm-9-disk-0"},
		{"PUT", "/v1/resource-definitions/vm-9-disk-0/volume-definitions/0"},
		{"POST", "/v1/resource-definitions"},
		{"POST", "/v1/resource-definitions/vm-9-disk-0/snapshots"},
		{"POST", "/v1/resource-definitions/vm-9-disk-0/resources"},
		{"POST", "/v1/nodes"},
		{"POST", "/v1/nodes/pve1/storage-pools"},
		{"POST", "/v1/resource-groups"},
		{"PUT", "/v1/resource-groups/drbdgrp"},
		{"POST", "/v1/queries/resource-groups/query-all-size-info"},
		{"POST", "/v1/controller/properties"},
		{"PUT", "/v1/resource-definitions/vm-9-disk-0/resources/pve2/toggle-disk"},
	}
}

// fuzzHandler is a handler over a small cluster with one spawned
// definition, built without a network server so that it is cheap.
func fuzzHandler(tb testing.TB) (*api.Handler, *apitest.Backend) {
	b := apitest.New()
	for i, n := range []string{"pve1", "pve2", "pve3"} {
		for _, c := range []state.Command{
			&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + strconv.Itoa(i+1)}}},
			&state.CreateStoragePool{Node: n, Name: "thin", ProviderKind: model.ProviderLVMThin,
				Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}},
		} {
			if r := b.State.Apply(c); r.Err != nil {
				tb.Fatal(r.Err)
			}
		}
	}
	for _, c := range []state.Command{
		&state.CreateResourceGroup{Name: "drbdgrp", SelectFilter: model.SelectFilter{PlaceCount: 2}},
		&state.CreateVolumeGroup{ResourceGroup: "drbdgrp"},
	} {
		if r := b.State.Apply(c); r.Err != nil {
			tb.Fatal(r.Err)
		}
	}
	h := api.New(b, api.Options{Clock: clock.NewFake(time.Unix(1_800_000_000, 0)), Rand: rand.NewChaCha8([32]byte{9}),
		CompletionTimeout: 20 * time.Millisecond, DeviceWaitTimeout: 20 * time.Millisecond})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/resource-groups/drbdgrp/spawn", strings.NewReader(`{"resource_definition_name":"vm-9-disk-0","volume_sizes":[1048576]}`)))
	if rec.Code != http.StatusCreated {
		tb.Fatalf("spawn: %d %s", rec.Code, rec.Body)
	}
	return h, b
}

// FuzzHandler sends arbitrary bodies to the changing calls. Whatever
// arrives, the handler must answer with a JSON ApiCallRc list, must not
// panic (a recovered panic shows as "internal error while serving"), and
// must leave the state exactly as it was when it refuses.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		`{"resource_definition_name":"pm-4d62c051","volume_sizes":[1048576],"definitions_only":true}`,
		`{"resource_definition_name":"vm-1-disk-1","volume_sizes":[1024],"select_filter":{"place_count":3}}`,
		`{"diskful":true}`, `{"diskful":false}`, `{}`, ``, `{"override_props":{"Aux/pm/vmid":102}}`,
		`{"size_kib":2097152.5}`, `{"size_kib":1}`, `{"name":"snap1"}`, `{"resource_definition":{"name":"vm-9-disk-0"}}`,
		`[{"resource":{"node_name":"pve3","flags":["DRBD_DISKLESS"]}}]`, `{"operation":"INTO_DRBD_DISKLESS"}`,
		`{"name":"pve4","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.4"}]}`,
		`{"storage_pool_name":"zfs","provider_kind":"ZFS_THIN","props":{"StorDriver/StorPoolName":"rpool/data"}}`,
		`{"select_filter":{"place_count":"3","replicas_on_different":["rack"],"not_place_with_rsc_regex":"("}}`,
		`{"override_props":{"TcpPortAutoRange":"9-1"}}`, `{"delete_props":["x"],"override_props":{"x":"y"}}`,
	} {
		for i := range fuzzRoutes() {
			f.Add(uint8(i), []byte(s))
		}
	}
	routes := fuzzRoutes()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		h, b := fuzzHandler(t)
		rt := routes[int(route)%len(routes)]
		before, err := b.State.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(rec, httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body)))
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("%s %s %q: no answer after 10 s:\n%s", rt.method, rt.path, body, buf[:runtime.Stack(buf, true)])
		}
		out := rec.Body.Bytes()
		if bytes.Contains(out, []byte("internal error while serving")) {
			t.Fatalf("%s %s %q: handler panicked: %s", rt.method, rt.path, body, out)
		}
		if !json.Valid(out) {
			t.Fatalf("%s %s %q: answer is not JSON: %s", rt.method, rt.path, body, out)
		}
		if rec.Code >= 400 {
			after, err := b.State.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("%s %s %q: refused with %d but changed the state: %s", rt.method, rt.path, body, rec.Code, out)
			}
		}
	})
}
