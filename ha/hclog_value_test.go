package ha

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type stringer struct{ s string }

func (x *stringer) String() string { return x.s }

// TestHCLogValues: raft's printf-style and Stringer arguments reach the
// journal readable, not as "%+v" or {}.
func TestHCLogValues(t *testing.T) {
	var buf bytes.Buffer
	l := &slogHCLog{l: slog.New(slog.NewJSONHandler(&buf, nil))}
	var nilStringer *stringer
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []int{1, 2}), "node", &stringer{"Node at 10.0.0.1:3372 [Follower]"},
		"err", errors.New("log not found"), "nil", nilStringer)
	out := buf.String()
	for _, want := range []string{`"servers":"[1 2]"`, `"node":"Node at 10.0.0.1:3372 [Follower]"`, `"err":"log not found"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}
