package sim

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// streamLines follows `drbdsetup events2` on host until the test ends.
type streamLines struct {
	mu    sync.Mutex
	lines []string
}

func (s *streamLines) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func follow(t *testing.T, h *Host) *streamLines {
	t.Helper()
	s := &streamLines{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- h.Runner().(run.Streamer).Stream(ctx, run.Command("drbdsetup", "events2"), func(l []byte) {
			s.mu.Lock()
			s.lines = append(s.lines, string(l))
			s.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("stream ended with %v, want the cancellation", err)
		}
	})
	return s
}

// waitLine waits until a line after the first from lines contains want.
func (s *streamLines) waitLine(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls := s.all()
		for i := from; i < len(ls); i++ {
			if strings.Contains(ls[i], want) {
				return i + 1
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q after line %d in\n%s", want, from, strings.Join(ls, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replay applies the stream's lines as the satellite does.
func replay(t *testing.T, lines []string) []drbd.ObservedResource {
	t.Helper()
	o := drbd.NewObserved()
	for _, l := range lines {
		e, err := drbd.ParseEvent(l)
		if err != nil {
			t.Fatalf("stream line %q: %v", l, err)
		}
		if err := o.Apply(e); err != nil {
			t.Fatalf("applying stream line %q: %v", l, err)
		}
	}
	rs, err := o.Resources()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func nowState(t *testing.T, h *Host) []drbd.ObservedResource {
	t.Helper()
	res, err := h.Runner().Run(context.Background(), run.Command("drbdsetup", "events2", "--now"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range bytes.Lines(res.Stdout) {
		lines = append(lines, strings.TrimSuffix(string(l), "\n"))
	}
	return replay(t, lines)
}

// The live stream starts with the state and `exists -`, then follows
// every change (a link cut and healed, a resync, a resource going away)
// with the create, change and destroy lines of drbdsetup, and whoever
// applies it holds the same state as a fresh `events2 --now`.
func TestEvents2StreamFollowsTheKernel(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	s := follow(t, cl.hosts["pve1"])
	at := s.waitLine(t, 0, "exists -")
	if at != 1 {
		t.Fatalf("before any resource the stream starts with %q", s.all())
	}
	cl.upAndSkipSync("pve1", "pve2")
	at = s.waitLine(t, at, "create resource name:"+resName)
	at = s.waitLine(t, at, "connection:Connected")

	cl.writeBlocks("pve1", 8, 1)
	cl.net.Cut("pve1", "pve2")
	at = s.waitLine(t, at, "change connection name:"+resName+" peer-node-id:1 conn-name:pve2 connection:Connecting")
	cl.writeBlocks("pve1", 8, 2) // marked for pve2
	cl.net.Heal("pve1", "pve2")
	at = s.waitLine(t, at, "replication:SyncSource")
	cl.net.Settle()
	at = s.waitLine(t, at, "replication:Established")
	if got, want := replay(t, s.all()), nowState(t, cl.hosts["pve1"]); !reflect.DeepEqual(got, want) {
		t.Fatalf("state from the stream\n%+v\nfrom events2 --now\n%+v", got, want)
	}

	cl.mustAdm("pve1", "down")
	at = s.waitLine(t, at, "destroy resource name:"+resName)
	ls := s.all()
	for _, l := range ls[at:] {
		t.Errorf("line after the resource's destroy: %q", l)
	}
	var destroys []string
	for _, l := range ls {
		if strings.HasPrefix(l, "destroy ") {
			destroys = append(destroys, strings.Fields(l)[1])
		}
	}
	if strings.Join(destroys, " ") != "path peer-device device connection resource" {
		t.Errorf("destroy order %q, want children before their parents", destroys)
	}
	if got := replay(t, ls); len(got) != 0 {
		t.Errorf("after down the stream's state still has %+v", got)
	}
}

func TestDiffEvents(t *testing.T) {
	ev := func(a drbd.Action, line string) drbd.Event {
		e, err := drbd.ParseEvent("exists " + line)
		if err != nil {
			t.Fatal(err)
		}
		e.Action = a
		return e
	}
	prev := []drbd.Event{
		ev(drbd.ActionExists, "resource name:r0 role:Secondary suspended:no may_promote:yes"),
		ev(drbd.ActionExists, "device name:r0 volume:0 minor:1000 disk:UpToDate client:no open:no"),
	}
	cur := []drbd.Event{
		ev(drbd.ActionExists, "resource name:r0 role:Primary suspended:no may_promote:no"),
		ev(drbd.ActionExists, "device name:r0 volume:0 minor:1000 disk:UpToDate client:no open:no"),
		ev(drbd.ActionExists, "resource name:r1 role:Secondary"),
	}
	var got []string
	for _, e := range diffEvents(prev, cur) {
		got = append(got, e.String())
	}
	want := []string{
		"change resource name:r0 role:Primary may_promote:no",
		"create resource name:r1 role:Secondary",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = nil
	for _, e := range diffEvents(cur, nil) {
		got = append(got, e.String())
	}
	want = []string{"destroy resource name:r1", "destroy device name:r0 volume:0", "destroy resource name:r0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
