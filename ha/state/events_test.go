package state

import (
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

// TestRelocationEvents: every relocation change is an event, a repeated
// skip reason is not, the log keeps the newest model.MaxEvents, and
// Events filters by time.
func TestRelocationEvents(t *testing.T) {
	s := fixture(t)
	before := len(s.Events(0)) // the fixture's own timer
	apply(t, s, &SetRelocationTimer{ResourceDefinition: "rd1", TargetNode: "n3", SourceNode: "n1", Reason: "diskless Primary on n3", DueAt: 5000, At: 1000})
	apply(t, s, &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocPending, Message: "waiting: pool DfltStorPool on n3 has 1 GiB free, needs 2 GiB", At: 6000})
	apply(t, s, &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocPending, Message: "waiting: pool DfltStorPool on n3 has 1 GiB free, needs 2 GiB", At: 7000})
	apply(t, s, &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocAdding, Message: "adding a disk", At: 8000})
	got := s.Events(0)[before:]
	want := []model.Event{
		{At: 1000, Kind: model.EventRelocation, Resource: "rd1", Node: "n3", State: "pending", Message: "diskless Primary on n3"},
		{At: 6000, Kind: model.EventRelocation, Resource: "rd1", Node: "n3", State: "pending", Message: "waiting: pool DfltStorPool on n3 has 1 GiB free, needs 2 GiB"},
		{At: 8000, Kind: model.EventRelocation, Resource: "rd1", Node: "n3", State: "adding", Message: "adding a disk"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if since := s.Events(6000); len(since) != 2 || since[0].At != 6000 || since[1].At != 8000 {
		t.Errorf("Events(6000) = %+v", since)
	}
	// A refused command records nothing.
	if res := s.Apply(&UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocPending, At: 9000}); res.Err == nil {
		t.Fatal("a relocation moved backwards")
	}
	if n := len(s.Events(0)); n != before+3 {
		t.Fatalf("%d events after a refused command", n)
	}
	// The log is bounded; the oldest go first.
	for i := range model.MaxEvents {
		msg := "step " + string(rune('a'+i%26))
		if i%2 == 0 {
			msg += "!"
		}
		apply(t, s, &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocAdding, Message: msg, At: int64(10000 + i)})
	}
	all := s.Events(0)
	if len(all) != model.MaxEvents || all[0].At == 1000 || all[len(all)-1].At != int64(10000+model.MaxEvents-1) {
		t.Fatalf("%d events, first at %d, last at %d", len(all), all[0].At, all[len(all)-1].At)
	}
}
