package ifupdown

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
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

// ifupdown2Conf is where ifupdown2 reads its settings.
const ifupdown2Conf = "/etc/network/ifupdown2/ifupdown2.conf"

// TestRealIfup brings a rendered bridge up with the real ifup in a network
// namespace, checks it with ifquery -c and takes it down again. Only the
// bridge subset is possible: this kind of test kernel has no bonding and
// no VLAN filtering, which the syntax checks cover instead.
//
// The namespace is anonymous and held by a sleeping process that dies
// with the test binary, so nothing outlives the test. It has its own
// mount namespace, as internal/validate sets up for ifup -s: a copy of
// ifupdown2.conf over the real one (state in a private /run, no daemon,
// and no hook scripts from the host's /etc/network/if-*.d), a tmpfs on
// /run for ifupdown2's lock and state, and the namespace's own sysfs.
// Veth pairs stand in for the NICs; their peers stay up in the same
// namespace so the ports have carrier.
func TestRealIfup(t *testing.T) {
	t.Parallel()
	tools := map[string]string{}
	for name, pkg := range map[string]string{
		"ifup": "ifupdown2", "ifdown": "ifupdown2", "ifquery": "ifupdown2", "ip": "iproute2",
		"unshare": "util-linux", "nsenter": "util-linux", "sh": "dash", "sleep": "coreutils", "mount": "mount",
	} {
		p, err := lookTool(name)
		if err != nil {
			validatetest.Environment(t, &validate.ToolMissingError{Tool: name, Package: pkg})
		}
		tools[name] = p
	}
	if uid := os.Geteuid(); uid != 0 {
		validatetest.Environment(t, &validate.NeedRootError{Check: "real ifup in a network namespace", UID: uid})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The file: what Merge makes of Debian's default with pvehci's
	// bridge over two NICs.
	br, err := Bridge{
		Name: "vmbr0", Ports: []string{"en1", "en2"},
		Address: netip.MustParsePrefix("10.99.0.1/24"), Gateway: netip.MustParseAddr("10.99.0.254"),
	}.Stanza()
	if err != nil {
		t.Fatal(err)
	}
	data, err := Merge([]byte(debianDefault), []Stanza{{Name: "en1", Method: "manual"}, {Name: "en2", Method: "manual"}, br}, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if strings.HasPrefix(dir, "/run/") {
		t.Fatalf("the temporary directory %s is hidden by the private /run; set TMPDIR elsewhere", dir)
	}
	file := filepath.Join(dir, "interfaces")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	validatetest.Check(t, validate.Ifupdown2(ctx, file, validate.IfupdownOptions{}))
	conf, err := ifupdown2ConfCopy(dir)
	if err != nil {
		t.Fatal(err)
	}

	setup := strings.Join([]string{
		`mount --bind "$1" ` + ifupdown2Conf,
		"mount -t tmpfs -o mode=0755 tmpfs /run",
		"mkdir -p /run/network/state",
		"mount -t sysfs sysfs /sys",
		"ip link set lo up",
		"ip link add en1 type veth peer name pe1",
		"ip link add en2 type veth peer name pe2",
		"ip link set pe1 up",
		"ip link set pe2 up",
		"echo ready",
		`exec "$2" infinity`,
	}, " && ")
	holder := startHolder(t, []string{tools["unshare"], "--net", "--mount", "--propagation", "private", tools["sh"], "-c", setup, "ns", conf, tools["sleep"]})
	in := func(argv ...string) (string, int) {
		t.Helper()
		args := append([]string{"-t", strconv.Itoa(holder), "-n", "-m"}, argv...)
		cmd := exec.CommandContext(ctx, tools["nsenter"], args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running %s: %v", argv, err)
		return "", -1
	}

	t0 := time.Now()
	if out, code := in(tools["ifup"], "-a", "-i", file); code != 0 || strings.TrimSpace(out) != "" {
		t.Fatalf("ifup -a: exit %d:\n%s", code, out)
	}
	t.Logf("ifup -a took %.2f s", time.Since(t0).Seconds())

	out, code := in(tools["ifquery"], "-a", "-c", "-i", file)
	t.Logf("ifquery -a -c:\n%s", out)
	if code != 0 || strings.Contains(out, "[fail]") || !strings.Contains(out, "[pass]") {
		t.Errorf("ifquery -a -c: exit %d:\n%s", code, out)
	}
	for _, want := range []string{"address 10.99.0.1/24", "bridge-ports en1 en2", "bridge-fd 0"} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, want) && strings.Contains(l, "[pass]") {
				found = true
			}
		}
		if !found {
			t.Errorf("ifquery -a -c does not pass %q:\n%s", want, out)
		}
	}
	if out, _ := in(tools["ip"], "-o", "-4", "addr", "show", "dev", "vmbr0"); !strings.Contains(out, "inet 10.99.0.1/24") {
		t.Errorf("vmbr0 addresses: %s", out)
	}
	if out, _ := in(tools["ip"], "route", "show", "default"); !strings.Contains(out, "default via 10.99.0.254 dev vmbr0") {
		t.Errorf("default route: %q", out)
	}
	out, _ = in(tools["ip"], "-o", "link", "show", "master", "vmbr0")
	for _, port := range []string{"en1", "en2"} {
		if !strings.Contains(out, ": "+port+"@") {
			t.Errorf("%s is not a port of vmbr0:\n%s", port, out)
		}
	}

	if out, code := in(tools["ifdown"], "-a", "-i", file); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("ifdown -a: exit %d:\n%s", code, out)
	}
	if out, code := in(tools["ip"], "link", "show", "vmbr0"); code == 0 {
		t.Errorf("vmbr0 still exists after ifdown -a:\n%s", out)
	}
}

// startHolder starts argv, which must print "ready" once its namespaces
// are set up and then keep running, and returns its pid. It dies with the
// test binary (Pdeathsig) and is killed by the test's cleanup.
func startHolder(t *testing.T, argv []string) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("namespace holder %d did not die", cmd.Process.Pid)
		}
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("setting up the namespace failed: %q %v", line, err)
	}
	return cmd.Process.Pid
}

// lookTool finds a program on PATH or in the sbin directories a non-root
// PATH often lacks.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// ifupdown2ConfCopy writes the host's ifupdown2.conf into dir with the
// settings the test needs and returns its path: state in the private /run,
// no daemon outside the namespace, and no hook scripts (the host's
// /etc/network/if-*.d scripts are not ours to run).
func ifupdown2ConfCopy(dir string) (string, error) {
	data, err := os.ReadFile(ifupdown2Conf)
	if err != nil {
		return "", err
	}
	set := [][2]string{{"state_dir", "/run/network/state/"}, {"use_daemon", "no"}, {"addon_scripts_support", "0"}}
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, _, ok := strings.Cut(l, "=")
		for _, s := range set {
			if ok && strings.TrimSpace(k) == s[0] {
				l, seen[s[0]] = s[0]+"="+s[1], true
			}
		}
		out = append(out, l)
	}
	for _, s := range set {
		if !seen[s[0]] {
			out = append(out, s[0]+"="+s[1])
		}
	}
	p := filepath.Join(dir, "ifupdown2.conf")
	return p, os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o644)
}
