package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

func TestEncodeEnvelope(t *testing.T) {
	b, err := Encode(&DeleteNode{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"v":1,"type":"DeleteNode","name":"n1"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// Every known command type survives Encode and Decode unchanged.
func TestCodecRoundTripAllTypes(t *testing.T) {
	samples := map[string]Command{
		"CreateResourceDefinition": newRD("rd9", 1, 2),
		"CreateResource":           &CreateResource{ResourceDefinition: "rd9", Node: "n1", NodeID: ptr(3), TCPPorts: []int{7001}, Props: model.Props{"Aux/a": "b"}},
		"SetProps":                 &SetProps{Target: Target{Kind: model.ObjVolume, ResourceDefinition: "a", Node: "b", VolumeNumber: 2}, Change: model.PropsChange{Set: model.Props{"k": "v"}, Delete: []string{"d"}}},
		"RecordJobRun":             &RecordJobRun{Run: testRun("r1", "s", model.RunFailed, 1, 2)},
		"ModifyResourceGroup":      &ModifyResourceGroup{Name: "g", SelectFilter: &model.SelectFilter{PlaceCount: 3, XReplicasOnDifferentMap: map[string]int{"site": 1}}},
	}
	for _, typ := range CommandTypes() {
		cmd, ok := samples[typ]
		if !ok {
			cmd = newCommand(typ)
		}
		if cmd == nil || cmd.Type() != typ {
			t.Fatalf("newCommand(%q) gives %v", typ, cmd)
		}
		b, err := Encode(cmd)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !strings.HasPrefix(string(b), `{"v":1,"type":"`+typ+`"`) {
			t.Fatalf("%s: envelope %s", typ, b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(got, cmd) {
			t.Fatalf("%s: decoded %#v, want %#v", typ, got, cmd)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		kind        ErrorKind
		says        string
	}{
		{"not json", `{"v":1,`, Invalid, "not a JSON object"},
		{"array", `[1]`, Invalid, "not a JSON object"},
		{"no version", `{"type":"DeleteNode","name":"n1"}`, Invalid, `"v"`},
		{"version not a number", `{"v":"1","type":"DeleteNode"}`, Invalid, `"v"`},
		{"no type", `{"v":1,"name":"n1"}`, Invalid, `"type"`},
		{"unknown type", `{"v":1,"type":"LaunchRocket"}`, Unsupported, "LaunchRocket"},
		{"newer version", `{"v":2,"type":"DeleteNode","name":"n1"}`, Unsupported, "version 2"},
		{"version zero", `{"v":0,"type":"DeleteNode","name":"n1"}`, Unsupported, "version 0"},
		{"unknown member", `{"v":1,"type":"DeleteNode","name":"n1","force":true}`, Invalid, "force"},
		{"wrong member type", `{"v":1,"type":"DeleteNode","name":5}`, Invalid, "DeleteNode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.entry))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not mention %q", err, tc.says)
			}
			s := New()
			before := snapshotOf(t, s)
			if res := s.ApplyEncoded([]byte(tc.entry)); !errors.Is(res.Err, tc.kind) {
				t.Fatalf("ApplyEncoded: %v", res.Err)
			}
			if !sameBytes(before, snapshotOf(t, s)) {
				t.Fatal("undecodable entry changed the state")
			}
		})
	}
}

func TestErrorCarriesLinstorCode(t *testing.T) {
	s := New()
	res := s.Apply(&DeleteResourceDefinition{Name: "nope"})
	var e *Error
	if !errors.As(res.Err, &e) {
		t.Fatal(res.Err)
	}
	// FAIL_NOT_FOUND_RSC_DFN as it appears on the wire (research §1.4).
	if e.RetCode() != -4611686018427387603 || e.Object != model.ObjResourceDefinition || e.Name != "nope" {
		t.Fatalf("error %+v, ret code %d", e, e.RetCode())
	}
	if !strings.Contains(e.Error(), "does not exist") || e.Correction == "" {
		t.Fatalf("message %q", e.Error())
	}
}
