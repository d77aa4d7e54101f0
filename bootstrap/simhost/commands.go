package simhost

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/network/ifupdown"
	"github.com/pvehci/pvehci/pve/corosync"
)

// runner is the node's run.Runner.
type runner struct{ n *Node }

// out collects a command's answer.
type out struct {
	stdout, stderr bytes.Buffer
	code           int
}

func (o *out) fail(code int, format string, args ...any) {
	fmt.Fprintf(&o.stderr, format, args...)
	if !strings.HasSuffix(format, "\n") {
		o.stderr.WriteByte('\n')
	}
	o.code = code
}

// lvmPrograms go to the simulated kernel of storage/sim.
var lvmPrograms = []string{"lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvextend", "lvchange", "pvcreate", "vgcreate", "vgextend", "wipefs", "lsblk"}

func (r runner) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	n := r.n
	line := run.ShellLine(c.Argv()...)
	n.record(line)
	if err := ctx.Err(); err != nil {
		return run.Result{ExitCode: -1}, &run.Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	for prefix, msg := range n.Fail {
		if strings.HasPrefix(line, prefix) {
			res := run.Result{Stderr: []byte(msg + "\n"), ExitCode: 1}
			return res, &run.Error{Argv: c.Argv(), ExitCode: 1, Stderr: res.Stderr}
		}
	}
	prog := path.Base(c.Name)
	if slices.Contains(lvmPrograms, prog) {
		return n.LVM.Runner().Run(ctx, c)
	}
	var o out
	switch prog {
	case "pveversion":
		fmt.Fprintf(&o.stdout, "pve-manager/%s/0123456789abcdef (running kernel: %s)\n", n.PVEVersion, n.Kernel)
	case "dpkg-query":
		n.dpkgQuery(&o, c.Args)
	case "apt-get":
		n.aptGet(&o, c.Args)
	case "curl":
		n.curl(&o, c.Args)
	case "dpkg":
		n.dpkg(&o, c.Args)
	case "modinfo":
		n.modinfo(&o, c.Args)
	case "modprobe":
		n.modprobe(&o, c.Args)
	case "timedatectl":
		if n.NTP {
			o.stdout.WriteString("yes\n")
		} else {
			o.stdout.WriteString("no\n")
		}
	case "ss":
		for _, l := range n.Listening {
			fmt.Fprintf(&o.stdout, "LISTEN 0      4096   %s   0.0.0.0:*\n", l)
		}
	case "ip":
		n.ip(&o, c.Args)
	case "ifreload":
		n.ifreload(&o)
	case "ping":
		n.ping(&o, c.Args)
	case "pvecm":
		n.pvecm(&o, c.Args)
	case "corosync-cmapctl":
		n.cmapctl(&o, c.Args)
	case "pvesm":
		n.pvesm(&o, c.Args)
	case "ha-manager":
		n.haManager(&o, c.Args)
	default:
		return run.Result{ExitCode: -1}, &run.Error{Argv: c.Argv(), ExitCode: -1, Err: &exec.Error{Name: c.Name, Err: exec.ErrNotFound}}
	}
	res := run.Result{Stdout: o.stdout.Bytes(), Stderr: o.stderr.Bytes(), ExitCode: o.code}
	if o.code != 0 {
		return res, &run.Error{Argv: c.Argv(), ExitCode: o.code, Stdout: res.Stdout, Stderr: res.Stderr}
	}
	return res, nil
}

// linbitPackages come from LINBIT's repository, known to apt only once its
// sources file is there.
var linbitPackages = []string{"drbd-dkms", "drbd-utils", "linstor-proxmox"}

// debianPackages are in Proxmox's and Debian's repositories.
func (n *Node) debianPackages() []string {
	return []string{"proxmox-default-headers", "proxmox-headers-" + n.Kernel, "rdma-core", "infiniband-diags", "pve-manager", "ifupdown2", "lvm2"}
}

func (n *Node) dpkgQuery(o *out, args []string) {
	if slices.Contains(args, "--showformat=${Version}") {
		pkg := args[len(args)-1]
		n.mu.Lock()
		v, ok := n.Versions[pkg]
		n.mu.Unlock()
		if !ok {
			o.fail(1, "dpkg-query: no packages found matching %s", pkg)
			return
		}
		o.stdout.WriteString(v)
		return
	}
	var pkgs []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			pkgs = append(pkgs, a)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pkgs {
		if n.packages[p] {
			fmt.Fprintf(&o.stdout, "%s installed\n", p)
			continue
		}
		fmt.Fprintf(&o.stderr, "dpkg-query: no packages found matching %s\n", p)
		o.code = 1
	}
}

func (n *Node) fileExists(p string) bool {
	_, err := n.FS().Stat(p)
	return err == nil
}

func (n *Node) aptGet(o *out, args []string) {
	if len(args) == 0 {
		o.fail(100, "E: Invalid operation")
		return
	}
	switch args[0] {
	case "update":
		return
	case "install":
	default:
		o.fail(100, "E: Invalid operation %s", args[0])
		return
	}
	linbit := n.fileExists("/etc/apt/sources.list.d/linbit.list") && n.fileExists("/etc/apt/trusted.gpg.d/linbit-keyring.gpg")
	var pkgs []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		known := slices.Contains(n.debianPackages(), a) || (linbit && slices.Contains(linbitPackages, a))
		if !known {
			o.fail(100, "E: Unable to locate package %s", a)
			return
		}
		pkgs = append(pkgs, a)
	}
	n.Install(pkgs...)
	if slices.Contains(pkgs, "drbd-utils") {
		n.installDRBDUtils()
	}
	for _, p := range pkgs {
		fmt.Fprintf(&o.stdout, "Setting up %s ...\n", p)
	}
}

func (n *Node) curl(o *out, args []string) {
	var dst string
	for i, a := range args {
		if a == "--output" && i+1 < len(args) {
			dst = args[i+1]
		}
	}
	if dst == "" {
		o.fail(2, "curl: no --output given (the simulation only downloads to files)")
		return
	}
	if _, err := n.FS().WriteFile(dst, []byte("simulated linbit-keyring.deb\n"), 0o644, hostfs.WriteOptions{}); err != nil {
		o.fail(23, "curl: (23) Failure writing output to destination: %v", err)
	}
}

func (n *Node) dpkg(o *out, args []string) {
	if len(args) != 2 || args[0] != "--install" || !strings.HasSuffix(args[1], "linbit-keyring.deb") {
		o.fail(2, "dpkg: the simulation installs linbit-keyring.deb only")
		return
	}
	if !n.fileExists(args[1]) {
		o.fail(2, "dpkg: error: cannot access archive '%s': No such file or directory", args[1])
		return
	}
	fsys := n.FS()
	if err := fsys.MkdirAll("/etc/apt/trusted.gpg.d", 0o755); err != nil {
		o.fail(2, "dpkg: %v", err)
		return
	}
	if _, err := fsys.WriteFile("/etc/apt/trusted.gpg.d/linbit-keyring.gpg", []byte("simulated key\n"), 0o644, hostfs.WriteOptions{}); err != nil {
		o.fail(2, "dpkg: %v", err)
		return
	}
	n.Install("linbit-keyring")
}

// drbdVersion is the module modprobe would load: DKMS's DRBD 9 once
// drbd-dkms is installed, the kernel's own 8.4 before.
func (n *Node) drbdVersion() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.packages["drbd-dkms"] {
		return "9.2.12"
	}
	return "8.4.11"
}

func (n *Node) modinfo(o *out, args []string) {
	mod := args[len(args)-1]
	switch mod {
	case "drbd":
		fmt.Fprintln(&o.stdout, n.drbdVersion())
	case "drbd_transport_rdma":
		if n.drbdVersion() == "8.4.11" {
			o.fail(1, "modinfo: ERROR: Module drbd_transport_rdma not found.")
			return
		}
		fmt.Fprintln(&o.stdout, n.drbdVersion())
	default:
		o.fail(1, "modinfo: ERROR: Module %s not found.", mod)
	}
}

func (n *Node) modprobe(o *out, args []string) {
	mod := args[len(args)-1]
	ver := n.drbdVersion()
	if mod == "drbd_transport_rdma" && ver == "8.4.11" || mod != "drbd" && mod != "drbd_transport_rdma" {
		o.fail(1, "modprobe: FATAL: Module %s not found in directory /lib/modules/%s", mod, n.Kernel)
		return
	}
	dir := filepath.Join(n.Root, "sys/module", mod)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		o.fail(1, "modprobe: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "version"), []byte(ver+"\n"), 0o444); err != nil {
		o.fail(1, "modprobe: %v", err)
	}
}

// ip handles "ip link set dev X down" and "ip link set dev X name Y".
func (n *Node) ip(o *out, args []string) {
	if len(args) < 5 || args[0] != "link" || args[1] != "set" || args[2] != "dev" {
		o.fail(255, "the simulation knows ip link set dev X down|name Y only")
		return
	}
	name := args[3]
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.links[name]
	if !ok {
		o.fail(1, "Cannot find device \"%s\"", name)
		return
	}
	switch args[4] {
	case "down":
		l.Up = false
	case "name":
		if len(args) != 6 {
			o.fail(255, "Command line is not complete. Try option \"help\"")
			return
		}
		if l.Up {
			o.fail(2, "RTNETLINK answers: Device or resource busy")
			return
		}
		newName := args[5]
		delete(n.links, name)
		l.Name = newName
		n.links[newName] = l
		for i := range n.ibPorts {
			if n.ibPorts[i].NetDev == name {
				n.ibPorts[i].NetDev = newName
			}
		}
	default:
		o.fail(255, "the simulation knows ip link set dev X down|name Y only")
	}
}

// ifreload brings the running network in line with the interfaces files,
// as ifupdown2 does for the bond, bridge and IPoIB stanzas bootstrap
// writes: auto interfaces come up with their addresses, bond slaves join
// their bond, bridge ports their bridge.
func (n *Node) ifreload(o *out) {
	fsys := n.FS()
	main, err := fsys.ReadFile(ifupdown.InterfacesPath)
	if err != nil {
		o.fail(1, "error: %s: %v", ifupdown.InterfacesPath, err)
		return
	}
	files := []*ifupdown.File{ifupdown.Parse(main)}
	if bytes.Contains(main, []byte(ifupdown.SourceLine)) {
		if inc, err := fsys.ReadFile(ifupdown.IncludePath); err == nil {
			files = append(files, ifupdown.Parse(inc))
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// ifupdown2 orders interfaces by their dependencies; creating the
	// virtual ones first has the same effect here.
	for _, f := range files {
		for _, b := range f.Ifaces() {
			if b.Name == "lo" || !f.IsAuto(b.Name) {
				continue
			}
			if _, ok := n.links[b.Name]; ok {
				continue
			}
			switch {
			case strings.HasPrefix(b.Name, "bond"):
				n.links[b.Name] = &bootstrap.Link{Name: b.Name, Kind: "bond", LinkLayer: "ether", MTU: 1500}
			case hasKey(b, "bridge-ports"):
				n.links[b.Name] = &bootstrap.Link{Name: b.Name, Kind: "bridge", LinkLayer: "ether", MTU: 1500}
			default:
				o.fail(1, "error: %s: cannot find interface", b.Name)
				return
			}
		}
	}
	for _, f := range files {
		for _, b := range f.Ifaces() {
			if b.Name == "lo" || !f.IsAuto(b.Name) {
				continue
			}
			l := n.links[b.Name]
			l.Up = true
			l.Addrs = nil
			if a, ok := b.Get("address"); ok {
				if p, err := netip.ParsePrefix(a); err == nil {
					l.Addrs = []netip.Prefix{p}
				}
			}
			if mtu, ok := b.Get("mtu"); ok {
				l.MTU, _ = strconv.Atoi(mtu)
			}
			for _, key := range []string{"bond-slaves", "bridge-ports"} {
				if v, ok := b.Get(key); ok && v != "none" {
					for _, s := range strings.Fields(v) {
						sl, ok := n.links[s]
						if !ok {
							o.fail(1, "error: %s: cannot enslave %s: no such interface", b.Name, s)
							return
						}
						sl.Master = b.Name
						sl.Up = true
					}
				}
			}
		}
	}
}

func hasKey(b ifupdown.Block, key string) bool { _, ok := b.Get(key); return ok }

func (n *Node) ping(o *out, args []string) {
	addr, err := netip.ParseAddr(args[len(args)-1])
	if err != nil {
		o.fail(2, "ping: %s: Name or service not known", args[len(args)-1])
		return
	}
	if n.world.nodeWithAddr(addr) == nil {
		fmt.Fprintf(&o.stdout, "PING %s 56(84) bytes of data.\n\n--- %s ping statistics ---\n1 packets transmitted, 0 received, 100%% packet loss, time 0ms\n", addr, addr)
		o.code = 1
		return
	}
	fmt.Fprintf(&o.stdout, "PING %s 56(84) bytes of data.\n64 bytes from %s: icmp_seq=1 ttl=64 time=0.05 ms\n", addr, addr)
}

// pvecm handles create, add and status.
func (n *Node) pvecm(o *out, args []string) {
	if len(args) == 0 {
		o.fail(255, "ERROR: no command specified")
		return
	}
	links := map[string]string{}
	var pos []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--link"):
			if i+1 < len(args) {
				links[strings.TrimPrefix(a, "--")] = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--"):
		default:
			pos = append(pos, a)
		}
	}
	w := n.world
	switch args[0] {
	case "create":
		if n.fileExists(corosync.ConfPath) {
			o.fail(255, "detected the following error(s):\n* this host already contains virtual guests\n(or) cluster config '%s' already exists", corosync.ConfPath)
			return
		}
		if len(pos) != 1 {
			o.fail(255, "400 not enough arguments\npvecm create <clustername>")
			return
		}
		w.mu.Lock()
		if w.cluster != "" {
			w.mu.Unlock()
			o.fail(255, "the simulated world already has cluster %s", w.cluster)
			return
		}
		w.cluster, w.members = pos[0], []string{n.Name}
		w.mu.Unlock()
		if err := n.adoptPmxcfs(); err != nil {
			o.fail(255, "%v", err)
			return
		}
		conf := newCorosyncConf(pos[0], n.Name, links)
		if _, err := n.FS().WriteFile(corosync.ConfPath, conf, 0o640, hostfs.WriteOptions{}); err != nil {
			o.fail(255, "%v", err)
			return
		}
		fmt.Fprintf(&o.stdout, "Writing corosync key to /etc/corosync/authkey\nWriting corosync config to /etc/pve/corosync.conf\nRestart corosync and cluster filesystem\n")
	case "add":
		if len(pos) != 1 {
			o.fail(255, "400 not enough arguments\npvecm add <hostname>")
			return
		}
		addr, err := netip.ParseAddr(pos[0])
		target := (*Node)(nil)
		if err == nil {
			target = w.nodeWithAddr(addr)
		}
		w.mu.Lock()
		inCluster := target != nil && slices.Contains(w.members, target.Name)
		already := slices.Contains(w.members, n.Name)
		w.mu.Unlock()
		switch {
		case already:
			o.fail(255, "detected the following error(s):\n* authentication key '/etc/corosync/authkey' already exists\n* cluster config '/etc/pve/corosync.conf' already exists")
			return
		case target == nil:
			o.fail(255, "ssh: connect to host %s port 22: No route to host", pos[0])
			return
		case !inCluster:
			o.fail(255, "Error: Corosync config '/etc/pve/corosync.conf' does not exist on %s - is it part of a cluster?", pos[0])
			return
		}
		data, err := target.FS().ReadFile(corosync.ConfPath)
		if err != nil {
			o.fail(255, "%v", err)
			return
		}
		c, err := corosync.Parse(data)
		if err != nil {
			o.fail(255, "%v", err)
			return
		}
		if c.Interface(1) != nil && links["link1"] == "" {
			o.fail(255, "corosync: link 1 exists in cluster config but wasn't specified for new node")
			return
		}
		next := c.Clone()
		id := 0
		for _, nd := range next.Nodelist.Nodes {
			id = max(id, nd.NodeID)
		}
		nd := corosync.Node{Name: n.Name, NodeID: id + 1, QuorumVotes: 1}
		nd.Rings[0] = links["link0"]
		if c.Interface(1) != nil {
			nd.Rings[1] = links["link1"]
		}
		next.Nodelist.Nodes = append(next.Nodelist.Nodes, nd)
		next.Totem.ConfigVersion++
		if _, err := target.FS().WriteFile(corosync.ConfPath, corosync.Render(next), 0o640, hostfs.WriteOptions{}); err != nil {
			o.fail(255, "%v", err)
			return
		}
		w.mu.Lock()
		w.members = append(w.members, n.Name)
		w.mu.Unlock()
		if err := n.adoptPmxcfs(); err != nil {
			o.fail(255, "%v", err)
			return
		}
		fmt.Fprintf(&o.stdout, "Please enter superuser (root) password for '%s': (ssh)\nEstablishing API connection with host '%s'\nLogin succeeded.\nRequest addition of this node\nJoin request OK, finishing setup locally\nsuccessfully added node '%s' to cluster.\n", pos[0], pos[0], n.Name)
	case "status":
		w.mu.Lock()
		member := slices.Contains(w.members, n.Name)
		name, members := w.cluster, len(w.members)
		w.mu.Unlock()
		if !member {
			o.fail(2, "Error: Corosync config '/etc/pve/corosync.conf' does not exist - is this node part of a cluster?")
			return
		}
		fmt.Fprintf(&o.stdout, "Cluster information\n-------------------\nName:             %s\n\nQuorum information\n------------------\nNodes:            %d\nQuorate:          Yes\n", name, members)
	default:
		o.fail(255, "the simulation knows pvecm create, add and status")
	}
}

// adoptPmxcfs makes the node's /etc/pve the cluster's: the node directory
// is created there as pmxcfs does on join.
func (n *Node) adoptPmxcfs() error {
	shared := filepath.Join(n.world.dir, "pmxcfs")
	for _, d := range []string{filepath.Join(shared, "nodes", n.Name), filepath.Join(shared, "priv")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	cfg := filepath.Join(shared, "storage.cfg")
	if _, err := os.Stat(cfg); os.IsNotExist(err) {
		return os.WriteFile(cfg, []byte(defaultStorageCfg), 0o640)
	}
	return nil
}

// newCorosyncConf is what pvecm create writes (PVE::Corosync::create_conf).
func newCorosyncConf(name, node string, links map[string]string) []byte {
	var b strings.Builder
	b.WriteString("logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n  node {\n")
	fmt.Fprintf(&b, "    name: %s\n    nodeid: 1\n    quorum_votes: 1\n", node)
	for i := range 8 {
		if a := links["link"+strconv.Itoa(i)]; a != "" {
			fmt.Fprintf(&b, "    ring%d_addr: %s\n", i, a)
		}
	}
	b.WriteString("  }\n}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n")
	fmt.Fprintf(&b, "  cluster_name: %s\n  config_version: 1\n", name)
	for i := range 8 {
		if links["link"+strconv.Itoa(i)] != "" {
			fmt.Fprintf(&b, "  interface {\n    linknumber: %d\n  }\n", i)
		}
	}
	b.WriteString("  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n")
	return []byte(b.String())
}

// cmapctl answers "corosync-cmapctl -g totem.config_version": pmxcfs
// reloads corosync whenever corosync.conf changes, so the running version
// is the file's.
func (n *Node) cmapctl(o *out, args []string) {
	if len(args) != 2 || args[0] != "-g" || args[1] != "totem.config_version" {
		o.fail(1, "the simulation knows corosync-cmapctl -g totem.config_version only")
		return
	}
	data, err := n.FS().ReadFile(corosync.ConfPath)
	if err != nil {
		o.fail(1, "Failed to initialize the cmap API. Error CS_ERR_LIBRARY")
		return
	}
	c, err := corosync.Parse(data)
	if err != nil {
		o.fail(1, "%v", err)
		return
	}
	fmt.Fprintf(&o.stdout, "totem.config_version (u64) = %d\n", c.Totem.ConfigVersion)
}

// pvesm handles add, set and status for the drbd type.
func (n *Node) pvesm(o *out, args []string) {
	fsys := n.FS()
	const cfg = "/etc/pve/storage.cfg"
	data, _ := fsys.ReadFile(cfg)
	opts := map[string]string{}
	var pos []string
	for i := 1; i < len(args); i++ {
		if strings.HasPrefix(args[i], "--") && i+1 < len(args) {
			opts[strings.TrimPrefix(args[i], "--")] = args[i+1]
			i++
			continue
		}
		pos = append(pos, args[i])
	}
	n.mu.Lock()
	plugin := n.packages["linstor-proxmox"]
	n.mu.Unlock()
	section := func(id string) (start, end int) {
		lines := strings.SplitAfter(string(data), "\n")
		off, start := 0, -1
		for _, l := range lines {
			if start >= 0 && l != "" && l[0] != '\t' && l[0] != ' ' {
				return start, off
			}
			if strings.HasSuffix(strings.TrimSpace(l), ": "+id) || strings.TrimSpace(l) == "drbd: "+id {
				if _, rest, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && rest == id {
					start = off
				}
			}
			off += len(l)
		}
		if start >= 0 {
			return start, len(data)
		}
		return -1, -1
	}
	switch args[0] {
	case "add":
		if len(pos) != 2 {
			o.fail(255, "400 not enough arguments")
			return
		}
		if pos[0] == "drbd" && !plugin {
			o.fail(255, "400 Parameter verification failed.\ntype: value 'drbd' does not have a value in the enumeration 'btrfs, cephfs, cifs, dir, esxi, glusterfs, iscsi, iscsidirect, lvm, lvmthin, nfs, pbs, rbd, zfs, zfspool'")
			return
		}
		if s, _ := section(pos[1]); s >= 0 {
			o.fail(255, "create storage failed: storage ID '%s' already defined", pos[1])
			return
		}
		var b strings.Builder
		b.Write(bytes.TrimRight(data, "\n"))
		fmt.Fprintf(&b, "\n\n%s: %s\n", pos[0], pos[1])
		for _, k := range []string{"content", "controller", "resourcegroup"} {
			if v, ok := opts[k]; ok {
				fmt.Fprintf(&b, "\t%s %s\n", k, v)
			}
		}
		if _, err := fsys.WriteFile(cfg, []byte(b.String()), 0o640, hostfs.WriteOptions{}); err != nil {
			o.fail(255, "%v", err)
		}
	case "set":
		s, e := section(pos[0])
		if s < 0 {
			o.fail(255, "update storage failed: storage '%s' does not exist", pos[0])
			return
		}
		sec := string(data[s:e])
		for k, v := range opts {
			lines := strings.Split(sec, "\n")
			found := false
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), k+" ") {
					lines[i], found = "\t"+k+" "+v, true
				}
			}
			if !found {
				lines = append(lines[:1], append([]string{"\t" + k + " " + v}, lines[1:]...)...)
			}
			sec = strings.Join(lines, "\n")
		}
		next := string(data[:s]) + sec + string(data[e:])
		if _, err := fsys.WriteFile(cfg, []byte(next), 0o640, hostfs.WriteOptions{}); err != nil {
			o.fail(255, "%v", err)
		}
	case "status":
		id := opts["storage"]
		s, _ := section(id)
		if s < 0 {
			o.fail(255, "storage '%s' does not exist", id)
			return
		}
		state := "active"
		if !plugin {
			state = "inactive"
		}
		fmt.Fprintf(&o.stdout, "Name             Type     Status           Total            Used       Available        %%\n%-16s drbd     %-8s    1073741824               0      1073741824    0.00%%\n", id, state)
	default:
		o.fail(255, "the simulation knows pvesm add, set and status")
	}
}

// installDRBDUtils writes the configuration drbd-utils ships, unless the
// files are there already (dpkg keeps changed conffiles).
func (n *Node) installDRBDUtils() {
	fsys := n.FS()
	fsys.MkdirAll("/etc/drbd.d", 0o755)
	for path, content := range map[string]string{
		"/etc/drbd.conf":                 "# You can find an example in  /usr/share/doc/drbd.../drbd.conf.example\n\ninclude \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\n",
		"/etc/drbd.d/global_common.conf": "global {\n\tusage-count no;\n}\n\ncommon {\n}\n",
	} {
		if _, err := fsys.Stat(path); err == nil {
			continue
		}
		fsys.WriteFile(path, []byte(content), 0o644, hostfs.WriteOptions{})
	}
}

// haManager answers crm-command disarm-ha and arm-ha as pve-ha-manager
// 5.1.3 and later do; older versions do not know them.
func (n *Node) haManager(o *out, args []string) {
	n.mu.Lock()
	v := n.Versions["pve-ha-manager"]
	n.mu.Unlock()
	if len(args) < 2 || args[0] != "crm-command" || (args[1] != "disarm-ha" && args[1] != "arm-ha") {
		o.fail(255, "the simulation knows ha-manager crm-command disarm-ha|arm-ha only")
		return
	}
	if v < "5.1.3" {
		o.fail(255, "unknown command 'ha-manager crm-command %s'", args[1])
	}
}
