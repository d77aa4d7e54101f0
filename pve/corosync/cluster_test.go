package corosync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// TestThreeNodeCluster runs three real corosync processes on a config
// this package rendered and extended with AddLink, and proves that link 1
// keeps the cluster quorate when link 0 goes down.
//
// Topology, all in namespaces the test creates (nothing touches the host's
// network): a switch namespace with bridges br0 (link 0, 10.99.0.0/24) and
// br1 (link 1, 10.98.0.0/24), and three node namespaces each with eth0 and
// eth1 on veth pairs to the bridges. The namespaces are anonymous, held
// open by a sleeping process each; every process the test starts dies with
// the test binary (Pdeathsig), so even a killed test leaves no namespace
// or corosync behind. Each corosync runs in its own mount namespace with a
// private /run (corosync.pid would clash otherwise) and /dev/shm (libqb's
// blackbox and IPC files); the tools talk to it by entering both of its
// namespaces, since libqb's sockets are abstract (per network namespace)
// and its shared memory is in /dev/shm.
func TestThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real 3-node corosync cluster (about 25 s); skipped with -short")
	}
	tools := findTools(t, map[string]string{
		"corosync": "corosync", "corosync-quorumtool": "corosync", "corosync-cfgtool": "corosync",
		"ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux", "sh": "dash", "sleep": "coreutils", "mount": "mount",
	})
	if uid := os.Geteuid(); uid != 0 {
		validatetest.Environment(t, &validate.NeedRootError{Check: "3-node corosync cluster", UID: uid})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	dir := t.TempDir()
	if strings.HasPrefix(dir, "/run/") || strings.HasPrefix(dir, "/dev/shm/") {
		t.Fatalf("the temporary directory %s is hidden by the private /run or /dev/shm; set TMPDIR elsewhere", dir)
	}
	tb := &testbed{t: t, ctx: ctx, tools: tools}

	// The network.
	sw := tb.holder("switch")
	nodes := []int{tb.holder("n1"), tb.holder("n2"), tb.holder("n3")}
	tb.sh(sw, "ip link set lo up; for b in br0 br1; do ip link add $b type bridge; ip link set $b up; done")
	for i, pid := range nodes {
		for link := 0; link < 2; link++ {
			port := fmt.Sprintf("p%d%d", i+1, link)
			tb.sh(sw, fmt.Sprintf("ip link add %s type veth peer name eth%d netns %d; ip link set %s master br%d; ip link set %s up", port, link, pid, port, link, port))
			tb.sh(pid, fmt.Sprintf("ip link set lo up; ip addr add %s/24 dev eth%d; ip link set eth%d up", linkAddr(link, i+1), link, link))
		}
	}

	// The config: one link, rendered by this package, then link 1 added
	// the way pvehci adds it on a real cluster.
	key := make([]byte, 256)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyPath, key, 0o400); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := &Config{
		Totem: Totem{
			Version: 2, ClusterName: "pvehcitest", ConfigVersion: 1, IPVersion: "ipv4-6", LinkMode: "passive", Secauth: "on",
			Interfaces: []Interface{{LinkNumber: 0, KnetLinkPriority: 20}},
			Extra:      []Item{{Key: "keyfile", Value: keyPath}},
		},
		Quorum: Quorum{Provider: "corosync_votequorum"},
		Logging: Logging{Debug: "off", ToSyslog: "no", Extra: []Item{
			{Key: "to_stderr", Value: "yes"}, {Key: "to_logfile", Value: "no"}, {Key: "timestamp", Value: "on"},
		}},
		// Keeps ringid_N files out of the host's /var/lib/corosync.
		Extra: []Item{{Key: "system", Section: &Section{Items: []Item{{Key: "state_dir", Value: stateDir}}}}},
	}
	link1 := map[string]string{}
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		conf.Nodelist.Nodes = append(conf.Nodelist.Nodes, Node{Name: name, NodeID: i + 1, QuorumVotes: 1, Rings: [MaxLinks]string{0: linkAddr(0, i+1)}})
		link1[name] = linkAddr(1, i+1)
	}
	conf, changed, err := AddLink(conf, 1, link1, BelowLink0())
	if err != nil || !changed {
		t.Fatalf("AddLink: changed=%v err=%v", changed, err)
	}
	if got := conf.Interface(1).KnetLinkPriority; got != 10 {
		t.Errorf("link 1 priority = %d, want 10 (below link 0's 20)", got)
	}
	confPath := filepath.Join(dir, "corosync.conf")
	if err := os.WriteFile(confPath, Render(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Validate(mustParse(t, Render(conf))); err != nil {
		t.Fatal(err)
	}
	validatetest.Check(t, validate.CorosyncAllNodes(ctx, confPath))
	t.Logf("namespaces and config ready after %.1f s", time.Since(start).Seconds())

	// Start the nodes and wait for quorum everywhere.
	cs := make([]int, len(nodes))
	for i, holder := range nodes {
		cs[i] = tb.corosync(i+1, holder, confPath, filepath.Join(dir, fmt.Sprintf("n%d.log", i+1)))
	}
	t0 := time.Now()
	for i, pid := range cs {
		tb.waitQuorum(i+1, pid, 30*time.Second)
	}
	t.Logf("all three nodes quorate after %.2f s", time.Since(t0).Seconds())
	for i, pid := range cs {
		st := tb.links(pid)
		for _, link := range []int{0, 1} {
			for _, peer := range peers(i + 1) {
				if st[link][peer] != "connected" {
					t.Errorf("n%d link %d to node %d: %q, want connected", i+1, link, peer, st[link][peer])
				}
			}
		}
	}

	// knet's path MTU discovery runs for the first seconds; cutting the
	// active link during it takes knet longer than the token timeout to
	// notice, and corosync forms a new membership (quorum still holds,
	// but the test would not show a seamless failover).
	time.Sleep(5 * time.Second)
	ringBefore := tb.ringID(cs[0])

	tb.sh(sw, "ip link set br0 down")
	t0 = time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := tb.links(cs[0])
		if st[0][2] != "connected" && st[0][3] != "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("link 0 still reported connected 20 s after the cut: %v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("link 0 down detected after %.2f s", time.Since(t0).Seconds())
	// Give a lost token (if any) time to show as lost quorum.
	time.Sleep(3 * time.Second)
	for i, pid := range cs {
		if code, out := tb.quorumtool(pid); code != 0 {
			t.Errorf("n%d is not quorate with link 0 down (corosync-quorumtool -s exit %d):\n%s", i+1, code, out)
		}
		st := tb.links(pid)
		for _, peer := range peers(i + 1) {
			if st[1][peer] != "connected" {
				t.Errorf("n%d link 1 to node %d: %q, want connected", i+1, peer, st[1][peer])
			}
		}
	}
	t.Logf("quorum held over link 1 on all three nodes; ring id %s before the cut, %s after", ringBefore, tb.ringID(cs[0]))

	// Orderly shutdown; the cleanups kill whatever does not stop.
	for _, pid := range cs {
		if out, err := tb.in(pid, tools["corosync-cfgtool"], "-H"); err != nil {
			t.Errorf("corosync-cfgtool -H: %v: %s", err, out)
		}
	}
	tb.waitExit(15 * time.Second)
	t.Logf("total %.1f s", time.Since(start).Seconds())
}

func linkAddr(link, node int) string { return fmt.Sprintf("10.%d.0.%d", 99-link, node) }

func peers(self int) []int {
	var out []int
	for n := 1; n <= 3; n++ {
		if n != self {
			out = append(out, n)
		}
	}
	return out
}

// findTools resolves programs (name → Debian package) or skips/fails the
// test by the validatetest rule.
func findTools(t *testing.T, want map[string]string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for name, pkg := range want {
		p, err := exec.LookPath(name)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				if fi, serr := os.Stat(filepath.Join(d, name)); serr == nil && fi.Mode()&0o111 != 0 {
					p, err = filepath.Join(d, name), nil
					break
				}
			}
		}
		if err != nil {
			validatetest.Environment(t, &validate.ToolMissingError{Tool: name, Package: pkg})
		}
		paths[name] = p
	}
	return paths
}

type testbed struct {
	t     *testing.T
	ctx   context.Context
	tools map[string]string
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// start runs argv in its own process group, killed with the test binary
// (Pdeathsig) and by the test's cleanup.
func (tb *testbed) start(name string, argv []string, stdout *os.File) *proc {
	tb.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if stdout != nil {
		cmd.Stdout, cmd.Stderr = stdout, stdout
	}
	if err := cmd.Start(); err != nil {
		tb.t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	tb.procs = append(tb.procs, p)
	tb.t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			tb.t.Errorf("%s (pid %d) did not die", name, cmd.Process.Pid)
		}
	})
	return p
}

// holder starts a process in a fresh network namespace and returns its
// pid, which names the namespace (/proc/PID/ns/net) until it dies.
func (tb *testbed) holder(name string) int {
	tb.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.t.Fatal(err)
	}
	defer r.Close()
	p := tb.start("netns "+name, []string{tb.tools["unshare"], "--net", tb.tools["sh"], "-c", "echo ready; exec " + tb.tools["sleep"] + " infinity"}, w)
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "ready\n" {
		tb.t.Fatalf("network namespace %s did not come up: %q %v", name, line, err)
	}
	return p.cmd.Process.Pid
}

// sh runs a shell script in the network namespace of pid.
func (tb *testbed) sh(pid int, script string) {
	tb.t.Helper()
	cmd := exec.CommandContext(tb.ctx, tb.tools["nsenter"], "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", tb.tools["sh"], "-ec", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.t.Fatalf("in netns of %d: %s: %v\n%s", pid, script, err, out)
	}
}

// corosync starts node n in the network namespace of holder and returns
// corosync's pid (nsenter, unshare and sh all exec into it).
func (tb *testbed) corosync(n, holder int, conf, logPath string) int {
	tb.t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		tb.t.Fatal(err)
	}
	defer f.Close()
	script := strings.Join([]string{
		"mount -t tmpfs -o mode=0755 tmpfs /run",
		"mount -t tmpfs -o mode=1777 tmpfs /dev/shm",
		`exec "$0" -f -c "$1"`,
	}, "; ")
	p := tb.start(fmt.Sprintf("corosync n%d", n), []string{
		tb.tools["nsenter"], "--net=/proc/" + strconv.Itoa(holder) + "/ns/net",
		tb.tools["unshare"], "--mount", "--propagation", "private",
		tb.tools["sh"], "-ec", script, tb.tools["corosync"], conf,
	}, f)
	p.log = logPath
	tb.t.Cleanup(func() {
		if tb.t.Failed() {
			data, _ := os.ReadFile(logPath)
			tb.t.Logf("log of corosync n%d:\n%s", n, tail(string(data), 40))
		}
	})
	return p.cmd.Process.Pid
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// in runs a corosync tool inside both namespaces of the corosync with
// that pid.
func (tb *testbed) in(pid int, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	args := append([]string{"-t", strconv.Itoa(pid), "-n", "-m"}, argv...)
	out, err := exec.CommandContext(ctx, tb.tools["nsenter"], args...).CombinedOutput()
	return string(out), err
}

// quorumtool returns corosync-quorumtool -s's exit code (0 quorate, 2
// not quorate, 1 no corosync) and output.
func (tb *testbed) quorumtool(pid int) (int, string) {
	out, err := tb.in(pid, tb.tools["corosync-quorumtool"], "-s")
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out
	case errors.As(err, &ee):
		return ee.ExitCode(), out
	}
	return -1, out + err.Error()
}

func (tb *testbed) waitQuorum(n, pid int, limit time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		code, out := tb.quorumtool(pid)
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("n%d not quorate after %s (exit %d):\n%s", n, limit, code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (tb *testbed) ringID(pid int) string {
	_, out := tb.quorumtool(pid)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "Ring" && f[1] == "ID:" {
			return f[2]
		}
	}
	return "?"
}

// links parses corosync-cfgtool -s: link → peer nodeid → status
// (connected, disconnected, localhost). The -b form is not used: its exit
// code stays 0 with a faulty link (corosync 3.1.7), unlike its man page.
func (tb *testbed) links(pid int) map[int]map[int]string {
	out, _ := tb.in(pid, tb.tools["corosync-cfgtool"], "-s")
	st := map[int]map[int]string{0: {}, 1: {}}
	link := -1
	sc := bufio.NewScanner(bytes.NewReader([]byte(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "LINK" && f[1] == "ID":
			link, _ = strconv.Atoi(f[2])
			if st[link] == nil {
				st[link] = map[int]string{}
			}
		case len(f) == 3 && f[0] == "nodeid:" && link >= 0:
			id, err := strconv.Atoi(strings.TrimSuffix(f[1], ":"))
			if err == nil {
				st[link][id] = f[2]
			}
		}
	}
	return st
}

// waitExit waits for the corosync processes to exit after -H.
func (tb *testbed) waitExit(limit time.Duration) {
	tb.t.Helper()
	timeout := time.After(limit)
	for _, p := range tb.procs {
		if !strings.HasPrefix(p.name, "corosync") {
			continue
		}
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				tb.t.Errorf("%s exited with %d after corosync-cfgtool -H", p.name, code)
			}
		case <-timeout:
			tb.t.Errorf("%s did not stop within %s of corosync-cfgtool -H", p.name, limit)
			return
		}
	}
}
