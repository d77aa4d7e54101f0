package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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

// env is a handler over an in-memory backend, served by httptest.
type env struct {
	t   *testing.T
	b   *apitest.Backend
	h   *api.Handler
	srv *httptest.Server
	clk *clock.Fake
}

func newEnv(t *testing.T, opts ...func(*api.Options)) *env {
	t.Helper()
	return newEnvWith(t, func(b *apitest.Backend) api.Backend { return b }, opts...)
}

// newEnvWith is newEnv with the handler's backend made from the test
// backend by wrap (to add optional interfaces such as api.Refresher).
func newEnvWith(t *testing.T, wrap func(*apitest.Backend) api.Backend, opts ...func(*api.Options)) *env {
	t.Helper()
	b := apitest.New()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	o := api.Options{Clock: clk, Rand: rand.NewChaCha8([32]byte{1, 2, 3}), CompletionTimeout: 2 * time.Second, DeviceWaitTimeout: 2 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	h := api.New(wrap(b), o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, b: b, h: h, srv: srv, clk: clk}
}

// apply applies a command to the backend's state directly (test setup).
func (e *env) apply(cmd state.Command) {
	e.t.Helper()
	if r := e.b.State.Apply(cmd); r.Err != nil {
		e.t.Fatalf("setup %s: %v", cmd.Type(), r.Err)
	}
}

// cluster sets up nodes with a "default" interface, an LVM thin pool
// "thin" each, and resource group drbdgrp (place count 2, one volume
// group), like a PVE cluster prepared for the plugin.
func (e *env) cluster(nodes ...string) {
	e.t.Helper()
	for i, n := range nodes {
		e.apply(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + strconv.Itoa(i+1)}}})
		e.apply(&state.CreateStoragePool{Node: n, Name: "thin", ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	e.apply(&state.CreateResourceGroup{Name: "drbdgrp", SelectFilter: model.SelectFilter{PlaceCount: 2, StoragePool: "thin"}})
	e.apply(&state.CreateVolumeGroup{ResourceGroup: "drbdgrp"})
}

// do sends a raw request the way the Proxmox plugin does: no
// Content-Type, the body exactly as given.
func (e *env) do(method, path, body string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "linstor-proxmox/8.3.0")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// must sends a request and fails unless the status is want; it returns
// the decoded JSON body (nil for an empty one).
func (e *env) must(want int, method, path, body string) any {
	e.t.Helper()
	code, b := e.do(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, code, want, b)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, b)
	}
	return v
}

// snapshot is the state's serialised form, to prove that a refused
// request changed nothing.
func (e *env) snapshot() []byte {
	e.t.Helper()
	b, err := e.b.State.Snapshot()
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// at walks a decoded JSON value: "volumes.0.provider_kind". A missing
// step fails the test, which is the point: the plugin dies on a missing
// key just the same.
func at(t *testing.T, v any, path string) any {
	t.Helper()
	cur := v
	for _, step := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[step]
			if !ok {
				t.Fatalf("path %s: key %q missing in %v", path, step, keysOf(c))
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(c) {
				t.Fatalf("path %s: index %q out of range (len %d)", path, step, len(c))
			}
			cur = c[i]
		default:
			t.Fatalf("path %s: cannot step into %T at %q", path, cur, step)
		}
	}
	return cur
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// find returns the element of a JSON array whose fields match kv pairs.
func find(t *testing.T, v any, kv ...string) map[string]any {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("not an array: %T", v)
	}
next:
	for _, el := range arr {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if s, _ := m[kv[i]].(string); !strings.EqualFold(s, kv[i+1]) {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no element with %v in %d elements", kv, len(arr))
	return nil
}

// retCodes lists the ret_codes of an ApiCallRc array.
func retCodes(t *testing.T, v any) []int64 {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("answer is not an ApiCallRc array: %v", v)
	}
	var out []int64
	for _, el := range arr {
		m := el.(map[string]any)
		if _, ok := m["message"].(string); !ok {
			t.Fatalf("ApiCallRc without message: %v", m)
		}
		out = append(out, int64(m["ret_code"].(float64)))
	}
	return out
}
