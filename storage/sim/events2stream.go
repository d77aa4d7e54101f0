package sim

import (
	"bytes"
	"context"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// The live events2 stream.
//
// `drbdsetup events2 [--statistics] [all]` without --now prints the state
// of every object as `exists` lines, then `exists -`, and then one line
// per change for as long as it runs: `create` for a new object with all
// its fields, `change` with the object's identifying fields and the fields
// that changed, `destroy` with the identifying fields only, a connection's
// peer devices and paths before it and a resource's devices and
// connections before the resource (drbdsetup(8) "events2"; the lines of
// storage/drbd/testdata/events2-stream.txt). The simulation derives the
// events by comparing the state after each change of the simulated
// network with the state it last printed, so every state the stream shows
// is one the kernel was in; changes that follow each other within one
// update show as one change, as events coalesced by a busy kernel do.
// Statistics (with --statistics) are printed when they change along with
// a state change or a resync step, not for every write.

// streamPoll is how often a stream also compares without being woken: a
// change that reaches the simulation without an update (an open of a
// device for reading) shows within it.
const streamPoll = 250 * time.Millisecond

// identity lists, per object, the fields that name it in change lines and,
// for destroy lines, destroyIdentity.
var (
	identity = map[drbd.Object][]string{
		drbd.ObjectResource:   {"name"},
		drbd.ObjectConnection: {"name", "peer-node-id", "conn-name"},
		drbd.ObjectDevice:     {"name", "volume", "minor"},
		drbd.ObjectPeerDevice: {"name", "peer-node-id", "conn-name", "volume"},
		drbd.ObjectPath:       {"name", "peer-node-id", "conn-name", "local", "peer"},
	}
	destroyIdentity = map[drbd.Object][]string{
		drbd.ObjectResource:   {"name"},
		drbd.ObjectConnection: {"name", "peer-node-id", "conn-name"},
		drbd.ObjectDevice:     {"name", "volume"},
		drbd.ObjectPeerDevice: {"name", "peer-node-id", "conn-name", "volume"},
		drbd.ObjectPath:       {"name", "peer-node-id", "conn-name", "local", "peer"},
	}
)

// objectKey names an object across two states.
func objectKey(e drbd.Event) string {
	var b strings.Builder
	b.WriteString(string(e.Object))
	for _, k := range []string{"name", "peer-node-id", "volume", "local", "peer"} {
		if v, ok := e.Get(k); ok {
			b.WriteString(" " + k + ":" + v)
		}
	}
	return b.String()
}

// pick returns e's fields named in keys, in e's order.
func pick(e drbd.Event, keys []string) []drbd.Field {
	var out []drbd.Field
	for _, f := range e.Fields {
		if slices.Contains(keys, f.Key) {
			out = append(out, f)
		}
	}
	return out
}

// changeEvent is the change line from was to now, ok false when nothing
// but the identity is the same.
func changeEvent(was, now drbd.Event) (drbd.Event, bool) {
	ids := identity[now.Object]
	out := drbd.Event{Action: drbd.ActionChange, Object: now.Object, Fields: pick(now, ids)}
	changed := false
	for _, f := range now.Fields {
		if slices.Contains(ids, f.Key) {
			continue
		}
		if v, ok := was.Get(f.Key); !ok || v != f.Value {
			out.Fields = append(out.Fields, f)
			changed = true
		}
	}
	return out, changed
}

// diffEvents returns the events that lead from the state prev to cur,
// both in drbdsetup's order.
func diffEvents(prev, cur []drbd.Event) []drbd.Event {
	was := make(map[string]drbd.Event, len(prev))
	for _, e := range prev {
		was[objectKey(e)] = e
	}
	is := make(map[string]bool, len(cur))
	for _, e := range cur {
		is[objectKey(e)] = true
	}
	var out []drbd.Event
	// Destroyed objects first, children before their parents: the
	// reverse of the order in which a state lists them.
	for _, e := range slices.Backward(prev) {
		if !is[objectKey(e)] {
			out = append(out, drbd.Event{Action: drbd.ActionDestroy, Object: e.Object, Fields: pick(e, destroyIdentity[e.Object])})
		}
	}
	for _, e := range cur {
		old, existed := was[objectKey(e)]
		if !existed {
			out = append(out, drbd.Event{Action: drbd.ActionCreate, Object: e.Object, Fields: e.Fields})
			continue
		}
		if ch, ok := changeEvent(old, e); ok {
			out = append(out, ch)
		}
	}
	return out
}

// Stream implements run.Streamer. `drbdsetup events2` without --now is the
// live stream above; every other command is run as Run runs it and its
// stdout handed over line by line.
func (r hostRunner) Stream(ctx context.Context, c run.Cmd, line func([]byte)) error {
	if path.Base(c.Name) != "drbdsetup" || len(c.Args) == 0 || c.Args[0] != "events2" || slices.Contains(c.Args, "--now") {
		res, err := r.Run(ctx, c)
		for l := range bytes.Lines(res.Stdout) {
			line(bytes.TrimSuffix(l, []byte("\n")))
		}
		return err
	}
	fail := func(o *output) error {
		return &run.Error{Argv: c.Argv(), ExitCode: o.code, Stderr: []byte(o.stderr.String())}
	}
	n := r.h.network()
	if n == nil {
		var o output
		noModule(&o)
		return fail(&o)
	}
	stats := false
	for _, a := range c.Args[1:] {
		switch a {
		case "--statistics":
			stats = true
		case "all":
		default:
			var o output
			o.notModelled("drbdsetup", "events2 stream argument "+a+" (the stream covers all resources)")
			return fail(&o)
		}
	}
	emit := func(e drbd.Event) { line([]byte(e.String())) }
	var prev []drbd.Event
	first := true
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	for {
		n.mu.Lock()
		wake := n.changedChan()
		var cur []drbd.Event
		for _, res := range r.h.drbd.sortedRes() {
			cur = append(cur, n.events(res, stats)...)
		}
		n.mu.Unlock()
		if first {
			for _, e := range cur {
				emit(e)
			}
			line([]byte("exists -"))
			first = false
		} else {
			for _, e := range diffEvents(prev, cur) {
				emit(e)
			}
		}
		prev = cur
		select {
		case <-ctx.Done():
			return &run.Error{Argv: c.Argv(), ExitCode: -1, Err: ctx.Err()}
		case <-wake:
		case <-poll.C:
		}
	}
}
