package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

var netnsSeq atomic.Int32

// netnsLab is a switch namespace with a bridge and one namespace per node,
// each wired to the bridge by a veth pair. Cutting a node's veth on the
// switch side partitions it from the others.
type netnsLab struct {
	t      *testing.T
	prefix string
	nodes  []string
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func newNetnsLab(t *testing.T, n int) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		validatetest.Environment(t, fmt.Errorf("network namespaces need root"))
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		validatetest.Environment(t, err)
		return nil
	}
	l := &netnsLab{t: t, prefix: fmt.Sprintf("pvp%d%d", os.Getpid()%1000, netnsSeq.Add(1))}
	t.Cleanup(l.destroy)
	sw := l.prefix + "sw"
	steps := [][]string{{"netns", "add", sw}, {"-n", sw, "link", "add", "br0", "type", "bridge"}, {"-n", sw, "link", "set", "br0", "up"}}
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%sn%d", l.prefix, i)
		l.nodes = append(l.nodes, ns)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"link", "add", fmt.Sprintf("%sv%d", l.prefix, i), "netns", ns, "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", sw},
			[]string{"-n", ns, "link", "set", fmt.Sprintf("%sv%d", l.prefix, i), "name", "eth0"},
			[]string{"-n", ns, "addr", "add", fmt.Sprintf("10.77.0.%d/24", i), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", sw, "link", "set", fmt.Sprintf("p%d", i), "master", "br0"},
			[]string{"-n", sw, "link", "set", fmt.Sprintf("p%d", i), "up"},
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *netnsLab) destroy() {
	ip("netns", "del", l.prefix+"sw")
	for _, ns := range l.nodes {
		ip("netns", "del", ns)
	}
}

// cut takes node i (1-based) off the switch; heal puts it back.
func (l *netnsLab) cut(i int) error {
	return ip("-n", l.prefix+"sw", "link", "set", fmt.Sprintf("p%d", i), "down")
}
func (l *netnsLab) heal(i int) error {
	return ip("-n", l.prefix+"sw", "link", "set", fmt.Sprintf("p%d", i), "up")
}

// nsDaemon starts a daemon inside node i's namespace.
func nsDaemon(t *testing.T, l *netnsLab, i int) *daemonProc {
	dir := t.TempDir()
	addr := fmt.Sprintf("10.77.0.%d:3372", i)
	d := &daemonProc{t: t, name: fmt.Sprintf("n%d", i), dir: dir, addr: addr,
		socket: filepath.Join(dir, "pvehci.sock"), logPath: filepath.Join(dir, "daemon.log"),
		restAddr: fmt.Sprintf("10.77.0.%d:3370", i)}
	d.wrap = []string{"ip", "netns", "exec", l.nodes[i-1]}
	d.api = localapi.NewClient(d.socket)
	d.start()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			if b, err := os.ReadFile(d.logPath); err == nil {
				t.Logf("log of %s:\n%s", d.name, lastLines(string(b), 40))
			}
		}
	})
	return d
}

// A node cut off from the other two refuses writes and says quorum is
// lost; the two go on; after healing, all three hold the same state.
func TestPartitionMinorityRefusesMajorityContinues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons in network namespaces; skipped with -short")
	}
	l := newNetnsLab(t, 3)
	if l == nil {
		return
	}
	nodes := []*daemonProc{nsDaemon(t, l, 1), nsDaemon(t, l, 2), nsDaemon(t, l, 3)}
	joinAll(t, nodes)
	storageObjects(t, nodes[0])

	// Partition the leader away: the worst case for the minority.
	leader := leaderOf(t, nodes)
	li := 0
	for i, d := range nodes {
		if d == leader {
			li = i
		}
	}
	if err := l.cut(li + 1); err != nil {
		t.Fatal(err)
	}
	var majority []*daemonProc
	for _, d := range nodes {
		if d != leader {
			majority = append(majority, d)
		}
	}
	ctx := context.Background()
	newLeader := leaderOf(t, majority)
	for i := 0; i < 5; i++ {
		if err := newLeader.apply(ctx, &state.CreateResourceDefinition{Name: fmt.Sprintf("maj-%d", i), DrbdSecret: "s",
			VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1024}}}); err != nil {
			t.Fatalf("majority write %d: %v", i, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := leader.apply(cctx, &state.CreateResourceDefinition{Name: "minority", DrbdSecret: "s"})
	cancel()
	if err == nil {
		t.Fatal("the isolated node accepted a write")
	}
	if !strings.Contains(err.Error(), "quorum lost") || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("minority write error = %v, want quorum lost, 1 of 3 answer", err)
	}

	if err := l.heal(li + 1); err != nil {
		t.Fatal(err)
	}
	var snaps [][]byte
	waitUntil(t, 30*time.Second, "the healed cluster to converge", func() bool {
		snaps = snaps[:0]
		for _, d := range nodes {
			s, err := d.snapshot()
			if err != nil {
				return false
			}
			snaps = append(snaps, s)
		}
		return bytes.Equal(snaps[0], snaps[1]) && bytes.Equal(snaps[1], snaps[2])
	})
	rds := checkNumbersUnique(t, snaps[0])
	if !rds["maj-4"] || rds["minority"] {
		t.Errorf("after healing: maj-4 present=%v, minority present=%v; want true, false", rds["maj-4"], rds["minority"])
	}
}
