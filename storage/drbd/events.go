package drbd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Action is the first word of an events2 line.
type Action string

// Actions drbdsetup 9 prints (drbdsetup_events2.c). Helpers are "call"ed
// and "response"d; a resource can be "rename"d.
const (
	ActionExists   Action = "exists"
	ActionCreate   Action = "create"
	ActionChange   Action = "change"
	ActionDestroy  Action = "destroy"
	ActionCall     Action = "call"
	ActionResponse Action = "response"
	ActionRename   Action = "rename"
)

// Object is the second word of an events2 line.
type Object string

// Objects of events2.
const (
	ObjectResource   Object = "resource"
	ObjectConnection Object = "connection"
	ObjectDevice     Object = "device"
	ObjectPeerDevice Object = "peer-device"
	ObjectPath       Object = "path"
	ObjectHelper     Object = "helper"
)

// TimestampLayout is how `drbdsetup events2 --timestamps` prefixes lines.
const TimestampLayout = "2006-01-02T15:04:05.000000-07:00"

// Field is one key:value of an event, in the order drbdsetup printed it.
type Field struct {
	Key   string
	Value string
}

// Event is one line of events2. The end of the initial dump ("exists -")
// is an Event with Action exists and no Object; see InitialDumpDone.
type Event struct {
	// Time is set when drbdsetup ran with --timestamps.
	Time   time.Time
	Action Action
	Object Object
	Fields []Field
}

// InitialDumpDone reports whether e is the "exists -" line that ends the
// state dump and starts the live updates.
func (e Event) InitialDumpDone() bool { return e.Action == ActionExists && e.Object == "" }

// Get returns the value of key.
func (e Event) Get(key string) (string, bool) {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Name is the resource the event is about.
func (e Event) Name() string {
	v, _ := e.Get("name")
	return v
}

// String is the event as drbdsetup prints it; ParseEvent(e.String())
// gives e back.
func (e Event) String() string {
	var b strings.Builder
	if !e.Time.IsZero() {
		b.WriteString(e.Time.Format(TimestampLayout))
		b.WriteByte(' ')
	}
	b.WriteString(string(e.Action))
	if e.InitialDumpDone() {
		b.WriteString(" -")
		return b.String()
	}
	b.WriteByte(' ')
	b.WriteString(string(e.Object))
	for _, f := range e.Fields {
		b.WriteByte(' ')
		b.WriteString(f.Key)
		b.WriteByte(':')
		b.WriteString(f.Value)
	}
	return b.String()
}

// objectsOf returns the objects an action applies to; ok is false for an
// unknown action.
func objectsOf(a Action) (objects []Object, ok bool) {
	switch a {
	case ActionExists, ActionCreate, ActionChange, ActionDestroy:
		return []Object{ObjectResource, ObjectConnection, ObjectDevice, ObjectPeerDevice, ObjectPath}, true
	case ActionCall, ActionResponse:
		return []Object{ObjectHelper}, true
	case ActionRename:
		return []Object{ObjectResource}, true
	}
	return nil, false
}

// ParseEvent reads one line of `drbdsetup events2` output, with or without
// --timestamps. Fields are split at white space and keys at the first ':'
// (path addresses such as local:ipv4:10.0.0.1:7000 keep their colons).
// Every event but the end-of-dump marker must name its resource.
func ParseEvent(line string) (Event, error) {
	var e Event
	words := strings.Fields(line)
	if len(words) > 0 && len(words[0]) > 0 && words[0][0] >= '0' && words[0][0] <= '9' {
		t, err := time.Parse(time.RFC3339Nano, words[0])
		if err != nil {
			return Event{}, fmt.Errorf("parsing events2 line: timestamp %q: %w", words[0], err)
		}
		e.Time = t
		words = words[1:]
	}
	if len(words) < 2 {
		return Event{}, fmt.Errorf("parsing events2 line %q: want ACTION OBJECT key:value…", line)
	}
	e.Action = Action(words[0])
	objects, ok := objectsOf(e.Action)
	if !ok {
		return Event{}, fmt.Errorf("parsing events2 line: unknown action %q", words[0])
	}
	if e.Action == ActionExists && words[1] == "-" {
		if len(words) > 2 {
			return Event{}, fmt.Errorf("parsing events2 line %q: the end-of-dump marker has no fields", line)
		}
		return e, nil
	}
	e.Object = Object(words[1])
	if !slices.Contains(objects, e.Object) {
		return Event{}, fmt.Errorf("parsing events2 line: %q is not an object of action %s", words[1], e.Action)
	}
	e.Fields = make([]Field, 0, len(words)-2)
	for _, w := range words[2:] {
		k, v, ok := strings.Cut(w, ":")
		if !ok || !validKey(k) {
			return Event{}, fmt.Errorf("parsing events2 line: %q is not a key:value field", w)
		}
		e.Fields = append(e.Fields, Field{k, v})
	}
	if e.Name() == "" {
		return Event{}, fmt.Errorf("parsing events2 line %q: no resource name", line)
	}
	return e, nil
}

// validKey accepts drbdsetup's keys: lower-case words with '-' or '_'
// (may_promote, new_name).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseError is a line of the stream that ParseEvent refused. The reader
// stays usable: call Next again for the following line.
type ParseError struct {
	Line int // 1-based
	Text string
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("events2 line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// maxLineBytes bounds one events2 line. Real lines are a few hundred bytes;
// a longer one means the stream is not events2.
const maxLineBytes = 64 << 10

// EventReader reads events from a stream of events2 output, such as the
// stdout of a long-running `drbdsetup events2 --statistics`.
type EventReader struct {
	sc   *bufio.Scanner
	line int
}

// NewEventReader reads events from r.
func NewEventReader(r io.Reader) *EventReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	return &EventReader{sc: sc}
}

// Next returns the next event. It skips blank lines, returns a *ParseError
// for a malformed line (and may be called again), io.EOF at the end of the
// stream, and any other error (a read error, a line over 64 KiB) as final.
func (r *EventReader) Next() (Event, error) {
	for r.sc.Scan() {
		r.line++
		text := r.sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		e, err := ParseEvent(text)
		if err != nil {
			return Event{}, &ParseError{Line: r.line, Text: text, Err: err}
		}
		return e, nil
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("reading events2 after line %d: %w", r.line, err)
	}
	return Event{}, io.EOF
}

// ErrNotReady is returned by Observed when asked before the initial dump
// ended; the satellite must not act on a half-read state.
var ErrNotReady = errors.New("events2 initial state not complete yet")
