package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestDecodeFlexibleValues(t *testing.T) {
	tests := []struct {
		name string
		body string
		want func(t *testing.T, s spawnRequest)
		err  string
	}{
		{name: "plugin spawn", body: `{"resource_definition_name":"pm-1","volume_sizes":[1048576],"definitions_only":true,"resource_definition_props":{"DrbdOptions/ExactSize":"False"}}`,
			want: func(t *testing.T, s spawnRequest) {
				if s.ResourceDefinitionName != "pm-1" || len(s.VolumeSizes) != 1 || s.VolumeSizes[0] != 1048576 || !bool(s.DefinitionsOnly) ||
					s.ResourceDefinitionProps["DrbdOptions/ExactSize"] != "False" {
					t.Fatalf("%+v", s)
				}
			}},
		{name: "fraction rounds up", body: `{"volume_sizes":[1.25, "7", 3e2]}`, want: func(t *testing.T, s spawnRequest) {
			if s.VolumeSizes[0] != 2 || s.VolumeSizes[1] != 7 || s.VolumeSizes[2] != 300 {
				t.Fatalf("%v", s.VolumeSizes)
			}
		}},
		{name: "number props", body: `{"resource_definition_props":{"a":102,"b":true,"c":-1.5,"d":"x"}}`, want: func(t *testing.T, s spawnRequest) {
			p := s.ResourceDefinitionProps
			if p["a"] != "102" || p["b"] != "true" || p["c"] != "-1.5" || p["d"] != "x" {
				t.Fatalf("%v", p)
			}
		}},
		{name: "string bools and counts", body: `{"definitions_only":"true","partial":false,"select_filter":{"place_count":"3","diskless_on_remaining":null}}`,
			want: func(t *testing.T, s spawnRequest) {
				if !bool(s.DefinitionsOnly) || *s.SelectFilter.PlaceCount != 3 || s.SelectFilter.DisklessOnRemaining != nil {
					t.Fatalf("%+v", s)
				}
			}},
		{name: "null prop", body: `{"resource_definition_props":{"a":null}}`, err: `property "a"`},
		{name: "object prop", body: `{"resource_definition_props":{"a":{}}}`, err: `property "a"`},
		{name: "fractional count", body: `{"select_filter":{"place_count":1.5}}`, err: "not a whole number"},
		{name: "bad bool", body: `{"definitions_only":"perhaps"}`, err: "not a boolean"},
		{name: "unknown nested field", body: `{"select_filter":{"place_cnt":2}}`, err: `unknown field "place_cnt"`},
		{name: "array for object", body: `[]`, err: "must be a JSON object"},
		{name: "huge size", body: `{"volume_sizes":[1e300]}`, err: "not a number of KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s spawnRequest
			aerr := decodeJSON([]byte(tt.body), &s, false)
			if tt.err != "" {
				if aerr == nil || !strings.Contains(aerr.rc.Message, tt.err) {
					t.Fatalf("error = %v, want %q", aerr, tt.err)
				}
				if aerr.status != http.StatusBadRequest || aerr.fix == "" {
					t.Fatalf("status %d, fix %q", aerr.status, aerr.fix)
				}
				return
			}
			if aerr != nil {
				t.Fatalf("decode: %v", aerr)
			}
			tt.want(t, s)
		})
	}
}

func TestUnknownFieldListsAcceptedFields(t *testing.T) {
	var m makeAvailableRequest
	aerr := decodeJSON([]byte(`{"diskfull":true}`), &m, false)
	if aerr == nil || !strings.Contains(aerr.fix, "copy_all_snaps, diskful, drbd_tcp_ports, layer_list, snap_names") {
		t.Fatalf("got %+v", aerr)
	}
	var p nodeModifyRequest // embedded propsModify fields are listed too
	aerr = decodeJSON([]byte(`{"x":1}`), &p, false)
	if aerr == nil || !strings.Contains(aerr.fix, "delete_namespaces, delete_props, node_type, override_props") {
		t.Fatalf("got %+v", aerr)
	}
}

// requestTypes are fresh values of every request body type, for the
// decoder fuzz target.
func requestTypes() []func() any {
	return []func() any{
		func() any { return new(nodeCreateRequest) }, func() any { return new(nodeModifyRequest) },
		func() any { return new(netIfRequest) }, func() any { return new(poolCreateRequest) },
		func() any { return new(poolDefCreateRequest) }, func() any { return new(propsModify) },
		func() any { return new(groupCreateRequest) }, func() any { return new(groupModifyRequest) },
		func() any { return new(volumeGroupCreateRequest) }, func() any { return new(volumeGroupModifyRequest) },
		func() any { return new(spawnRequest) }, func() any { return new(sizeInfoRequest) },
		func() any { return new(definitionCreateRequest) }, func() any { return new(definitionModifyRequest) },
		func() any { return new(volumeDefinitionCreateRequest) }, func() any { return new(volumeDefinitionModifyRequest) },
		func() any { return new([]resourceCreateRequest) }, func() any { return new(resourceCreateRequest) },
		func() any { return new(resourceModifyRequest) }, func() any { return new(makeAvailableRequest) },
		func() any { return new(autoplaceRequest) }, func() any { return new(toggleDiskRequest) },
		func() any { return new(snapshotCreateRequest) }, func() any { return new(snapshotRestoreRequest) },
		func() any { return new(rollbackRequest) },
	}
}

// FuzzDecode feeds arbitrary bytes to every request decoder: it must
// either decode or return a 4xx with a message and a correction, never
// panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"resource_definition_name":"pm-4d62c051","volume_sizes":[1048576],"definitions_only":true,"resource_definition_props":{"DrbdOptions/ExactSize":"False","DrbdOptions/Net/allow-two-primaries":"yes"}}`,
		`{"diskful":true}`, `{}`, ``, `{"override_props":{"Aux/pm/vmid":102}}`, `{"size_kib":2097152.5}`,
		`{"name":"snap_pm-4d62c051_snap1"}`, `{"to_resource":"x"}`, `{"ignore_cache_older_than_sec":-1}`,
		`{"resource_definition":{"name":"x"}}`, `[{"resource":{"node_name":"N","props":{"StorPoolName":"sp"}}}]`,
		`{"name":"N","type":"satellite","net_interfaces":[{"name":"default","address":"10.0.0.2","satellite_port":3366,"satellite_encryption_type":"plain","is_active":true}]}`,
		`{"diskless_on_remaining":null,"select_filter":{"place_count":"2","x_replicas_on_different_map":{"rack":"2"}}}`,
		`{"a":`, `[1,2`, `"\u0000"`, `{"volume_sizes":[1e400]}`, `{"select_filter":{"place_count":"9999999999999999999999"}}`,
	} {
		for i := range requestTypes() {
			f.Add([]byte(s), uint8(i))
		}
	}
	types := requestTypes()
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		dst := types[int(which)%len(types)]()
		aerr := decodeJSON(body, dst, which&0x80 != 0)
		if aerr == nil {
			return
		}
		if aerr.status < 400 || aerr.status >= 500 || aerr.rc.Message == "" || aerr.fix == "" {
			t.Fatalf("bad refusal for %q: %+v", body, aerr)
		}
	})
}
