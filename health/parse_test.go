package health

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
)

func TestParseQuorum(t *testing.T) {
	tests := []struct {
		file string
		want Quorum
	}{
		{"quorumtool-quorate.txt", Quorum{Quorate: true, Nodes: 3, ExpectedVotes: 3, TotalVotes: 3, Quorum: 2}},
		{"quorumtool-not-quorate.txt", Quorum{Nodes: 1, ExpectedVotes: 3, TotalVotes: 1, Quorum: 2, Blocked: true}},
	}
	for _, tt := range tests {
		got, err := ParseQuorum([]byte(readTestdata(t, tt.file)))
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.file, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Cannot initialize CMAP service\n", "Quorate: Yes\nNodes: many\n"} {
		if _, err := ParseQuorum([]byte(bad)); err == nil {
			t.Errorf("ParseQuorum(%q) = nil error", bad)
		}
	}
}

func TestParseLinks(t *testing.T) {
	got, err := ParseLinks([]byte(readTestdata(t, "cfgtool-link0-down.txt")))
	if err != nil {
		t.Fatal(err)
	}
	want := []Link{
		{ID: 0, Addr: "10.99.0.1", Nodes: []LinkNode{{1, "localhost"}, {2, "disconnected"}, {3, "disconnected"}}},
		{ID: 1, Addr: "10.98.0.1", Nodes: []LinkNode{{1, "localhost"}, {2, "connected"}, {3, "connected"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLinks =\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{"", "Could not initialize corosync configuration API error 2\n", "LINK ID x udp\n", "LINK ID 0 udp\n\tnodeid: two: connected\n"} {
		if _, err := ParseLinks([]byte(bad)); err == nil {
			t.Errorf("ParseLinks(%q) = nil error", bad)
		}
	}
}

// TestCommandsExitCodes: quorumtool's exit 2 (not quorate) still carries
// the status; exit 1 means corosync is down; anything else is an error.
func TestCommandsExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		resp    run.Response
		quorate bool
		down    bool
		err     bool
	}{
		{"quorate", run.Response{Stdout: readTestdata(t, "quorumtool-quorate.txt")}, true, false, false},
		{"not quorate", run.Response{Stdout: readTestdata(t, "quorumtool-not-quorate.txt"), ExitCode: 2}, false, false, false},
		{"cannot connect", run.Response{Stderr: "Cannot initialize CMAP service\n", ExitCode: 1}, false, true, true},
		{"not installed", run.Response{Err: errors.New("exec: not found")}, false, false, true},
	}
	for _, tt := range tests {
		f := run.NewFake(t)
		f.On("corosync-quorumtool", "-s").Return(tt.resp)
		q, err := Commands{f}.Quorum(context.Background())
		if (err != nil) != tt.err || errors.Is(err, ErrCorosyncDown) != tt.down || q.Quorate != tt.quorate {
			t.Errorf("%s: %+v, %v", tt.name, q, err)
		}
	}
}

// TestUnreadableSourceIsUnknown: garbage from a tool makes its checks
// unknown and names the source, and other checks still run.
func TestUnreadableSourceIsUnknown(t *testing.T) {
	f := run.NewFake(t)
	f.On("corosync-quorumtool", "-s").Stdout(readTestdata(t, "quorumtool-quorate.txt"))
	f.On("corosync-cfgtool", "-s").Stdout(readTestdata(t, "cfgtool-ok.txt"))
	f.On("drbdsetup", "events2", "--now", "--statistics").Fail(20, "Failure: (127) Device minor not allocated\n")
	f.OnPrefix("lvs").Stdout("not json")
	src := node{}.Sources(t)
	src.Corosync, src.DRBD, src.LVM = Commands{f}, Commands{f}, Commands{f}
	rep, err := Default().Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Code{DRBDSplitBrain, DRBDConnecting, DRBDDiskNotUpToDate, DRBDOutOfSync, PoolDataFull, PoolMetadataFull} {
		if sev, items := worst(rep, c); sev != Unknown {
			t.Errorf("%s = %s, want unknown: %+v", c, sev, items)
		}
	}
	if sev, _ := worst(rep, CorosyncNoQuorum); sev != OK {
		t.Errorf("corosync = %s, want ok: local checks run on", sev)
	}
	var names []string
	for _, u := range rep.Unavailable {
		names = append(names, u.Source)
	}
	if got := strings.Join(names, ","); got != "drbdsetup,lvs" {
		t.Errorf("unavailable = %s, want drbdsetup,lvs", got)
	}
	if rep.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", rep.ExitCode)
	}
}
