package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// Exit codes. drbdsetup exits 10 when the kernel refuses a request
// ("Failure: (161) …"), 11 when a state change fails, 17 when a promotion
// fails (as drbdadm reports them: "Command 'drbdsetup primary r0'
// terminated with exit code 17"), 20 when the module is missing
// (testbed-local.md §2: every kernel-facing command exits 20 here). drbdadm
// exits 10 for a configuration it cannot parse (testbed-local.md §2) and
// passes a failed drbdsetup's code through. The state-change texts
// ("(-12) Device is held open by someone", "(-2) Need access to UpToDate
// data", …) are drbd_strings.c's as remembered, and 11/17 as LINSTOR's
// logs show them; neither could be checked on this machine (no module).
const (
	drbdKernelFailure = 10
	drbdStateFailure  = 11
	drbdPromoteFail   = 17
	drbdNoModule      = 20
	drbdUsage         = 20
)

func noModule(o *output) {
	o.stderr.WriteString("modprobe: FATAL: Module drbd not found.\nFailed to modprobe drbd (No such file or directory)\n")
	o.code = drbdNoModule
}

// drbdadm answers `drbdadm [-c FILE] [-v…] [--max-peers N] [--]
// [--force|--discard-my-data|--clear-bitmap] COMMAND RES[/VOL]`.
func (h *Host) drbdadm(o *output, c run.Cmd) {
	n := h.network()
	if n == nil {
		noModule(o)
		return
	}
	var file, command string
	var targets []string
	maxPeers := 0
	flags := map[string]bool{}
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" || a == "--config-file":
			if i+1 >= len(args) {
				o.usageMsg("drbdadm: option requires an argument -- 'c'")
				o.code = drbdUsage
				return
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "--config-file="):
			file = strings.TrimPrefix(a, "--config-file=")
		case strings.Trim(a, "v") == "-": // -v, -vvv
		case a == "--max-peers" && i+1 < len(args):
			i++
			fmt.Sscanf(args[i], "%d", &maxPeers)
		case strings.HasPrefix(a, "--max-peers="):
			fmt.Sscanf(strings.TrimPrefix(a, "--max-peers="), "%d", &maxPeers)
		case a == "--":
		case a == "--force" || a == "--discard-my-data" || a == "--clear-bitmap" || a == "--assume-clean" || a == "--assume-peer-has-space":
			flags[a] = true
		case a == "-d" || a == "--dry-run":
			o.notModelled("drbdadm", "--dry-run")
			o.code = drbdUsage
			return
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(&o.stderr, "drbdadm: unrecognized option '%s'\n", a)
			o.code = drbdUsage
			return
		case command == "":
			command = a
		default:
			targets = append(targets, a)
		}
	}
	// root is where the host's file system starts: "" for -c FILE, read
	// as given, or the host's ConfigRoot for drbdadm's default file.
	root := ""
	if file == "" {
		root = h.configRoot()
		if root == "" {
			o.notModelled("drbdadm", "reading the default /etc/drbd.conf (pass -c FILE, or set Host.SetConfigRoot)")
			o.code = drbdUsage
			return
		}
		file = defaultConfig
		if _, err := os.Stat(filepath.Join(root, file)); err != nil {
			// Real drbdadm 9.x without -c and without /etc/drbd.conf
			// (checked on this machine in a mount namespace): rc 10.
			fmt.Fprintf(&o.stderr, "Can not open '%s': No such file or directory\n", file)
			o.code = drbdKernelFailure
			return
		}
	} else if _, err := os.Stat(file); err != nil {
		// Real `drbdadm -c /nonexistent dump` on this machine: this
		// text, a lone "." without a newline, and rc 20.
		fmt.Fprintf(&o.stderr, "Can not open '%s'.\n.", file)
		o.code = drbdUsage
		return
	}
	if len(targets) != 1 {
		o.notModelled("drbdadm", fmt.Sprintf("%q with %d resources (one RES[/VOL] is modelled)", command, len(targets)))
		o.code = drbdUsage
		return
	}
	resName, volArg, hasVol := strings.Cut(targets[0], "/")
	vol := -1
	if hasVol {
		if _, err := fmt.Sscanf(volArg, "%d", &vol); err != nil {
			fmt.Fprintf(&o.stderr, "'%s' not defined in your config (for this host).\n", targets[0])
			o.code = drbdKernelFailure
			return
		}
	}
	self := h.name
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "__DRBD_NODE__="); ok {
			// testbed-local.md §2: how drbdadm is told which host it is.
			fmt.Fprintf(&o.stderr, "found __DRBD_NODE__ in environment\nPRETENDING that I am >>%s<<\n", v)
			self = v
		}
	}
	cfgs, err := loadConfig(root, file)
	if err != nil {
		fmt.Fprintf(&o.stderr, "%v\n", err)
		o.code = drbdKernelFailure
		return
	}
	var cfg *resConfig
	for _, x := range cfgs {
		if x.name == resName {
			cfg = x
		}
	}
	if cfg == nil || cfg.node(self) == nil {
		// testbed-local.md §2: "'r0' not defined in your config (for this
		// host)." and rc 1.
		fmt.Fprintf(&o.stderr, "'%s' not defined in your config (for this host).\n", resName)
		o.code = 1
		return
	}
	if vol >= 0 && !slices.ContainsFunc(cfg.node(self).volumes, func(v resVolume) bool { return v.number == vol }) {
		fmt.Fprintf(&o.stderr, "'%s' not defined in your config (for this host).\n", targets[0])
		o.code = 1
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.update()
	d := h.drbd
	r := d.res[resName]
	needUp := func() bool {
		if r == nil {
			fmt.Fprintf(&o.stderr, "%s: No such resource\n", resName)
			o.code = drbdKernelFailure
			return false
		}
		return true
	}
	switch command {
	case "create-md":
		if maxPeers <= 0 || maxPeers > 31 {
			maxPeers = len(cfg.nodes) - 1 // drbdadm's default: the configured peers
		}
		h.createMD(o, d, cfg, cfg.node(self), vol, maxPeers, flags["--force"], c.Stdin)
	case "up":
		if r != nil {
			fmt.Fprintf(&o.stderr, "%s: Failure: (161) Minor or volume exists already (delete it first)\n", resName)
			o.code = drbdKernelFailure
			return
		}
		h.adjust(o, n, d, cfg, cfg.node(self))
	case "adjust":
		h.adjust(o, n, d, cfg, cfg.node(self))
	case "down":
		n.down(o, d, resName)
	case "primary":
		if !needUp() {
			return
		}
		if r.role == drbd.RolePrimary {
			return
		}
		if why := n.mayPromote(r, flags["--force"]); why != "" {
			fmt.Fprintf(&o.stderr, "%s: State change failed: %s\nCommand 'drbdsetup primary %s' terminated with exit code %d\n", resName, why, resName, drbdPromoteFail)
			o.code = drbdPromoteFail
			return
		}
		n.promote(r, flags["--force"])
	case "secondary":
		if !needUp() {
			return
		}
		for _, v := range r.vols {
			if v.open > 0 {
				fmt.Fprintf(&o.stderr, "%s: State change failed: (-12) Device is held open by someone\nCommand 'drbdsetup secondary %s' terminated with exit code %d\n", resName, resName, drbdStateFailure)
				o.code = drbdStateFailure
				return
			}
		}
		r.role, r.auto = drbd.RoleSecondary, false
	case "suspend-io":
		if needUp() {
			r.user = true
		}
	case "resume-io":
		if needUp() {
			r.user = false
		}
	case "disconnect":
		if needUp() {
			for _, c := range r.conns {
				c.standAlone = true
			}
		}
	case "connect":
		if needUp() {
			for _, c := range r.conns {
				c.standAlone, c.syncState = false, ""
				c.discardMine = flags["--discard-my-data"]
			}
		}
	case "new-current-uuid":
		if needUp() {
			h.newCurrentUUID(o, n, r, vol, flags["--clear-bitmap"])
		}
	case "verify":
		if needUp() {
			n.verify(o, r, vol)
		}
	case "resize":
		if needUp() {
			n.resize(o, r, vol, flags["--assume-clean"], flags["--assume-peer-has-space"])
		}
	case "check-resize":
		h.checkResize(o, n, d, r, cfg.node(self), vol)
	default:
		o.notModelled("drbdadm", "command "+command)
		o.code = drbdUsage
	}
}

// defaultConfig is the file drbdadm reads without -c.
const defaultConfig = "/etc/drbd.conf"

// down takes resource name down on d, as `drbdadm down` and `drbdsetup
// down` do; down of a resource that is not up succeeds. Called with n.mu
// held.
func (n *Network) down(o *output, d *drbdHost, name string) {
	r := d.res[name]
	if r == nil {
		return
	}
	for _, v := range r.vols {
		if v.open > 0 {
			fmt.Fprintf(&o.stderr, "%s: State change failed: (-12) Device is held open by someone\n", name)
			o.code = drbdStateFailure
			return
		}
	}
	for _, v := range r.vols {
		if v.backing != nil {
			v.backing.Close()
		}
	}
	// Peers see the connection go; a Primary going down is a
	// disconnect for them.
	delete(d.res, name)
	for _, c := range r.conns {
		if p := n.peerRes(r, c); p != nil {
			if pc := p.conns[r.self.nodeID]; pc != nil && pc.established {
				pc.established = false
				n.lostPeer(p, pc)
			}
		}
	}
}

// loadConfig reads a drbd.conf or .res file and returns its resources in
// file order, those of included files where the include is. global and
// common sections are skipped. file is a path on the host whose file
// system starts at root ("" for the real one): `include "GLOB";` patterns
// are absolute, resolved under root, or relative to the including file's
// directory, as drbdadm resolves them (checked on this machine: a
// relative include in /tmp/inc/a.conf reads /tmp/inc/sub/*.res whatever
// the working directory). A pattern that matches nothing is no error, as
// in drbdadm (the Debian /etc/drbd.conf includes "drbd.d/*.res" before
// any exists); a plain file name that does not exist is, with drbdadm's
// message and rc 10. Messages name the host's paths, not root's.
func loadConfig(root, file string) ([]*resConfig, error) {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, fmt.Errorf("open(%s) failed: %w", file, err)
	}
	top, err := parseConfText(file, string(data))
	if err != nil {
		return nil, err
	}
	var out []*resConfig
	var rest strings.Builder
	for _, s := range top {
		switch s.key() {
		case "include":
			if len(s.words) != 2 {
				return nil, fmt.Errorf("%s: include needs one file name", file)
			}
			pat := s.words[1]
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(filepath.Dir(file), pat)
			}
			matches, _ := filepath.Glob(filepath.Join(root, pat))
			if len(matches) == 0 && !strings.ContainsAny(s.words[1], "*?[") {
				// Real drbdadm on this machine, rc 10:
				// "/tmp/inc/b.conf:1: Failed to open include file '/tmp/inc/nonexist.res'."
				return nil, confError(fmt.Sprintf("%s:%d: Failed to open include file '%s'.", file, s.line, pat))
			}
			for _, m := range matches {
				if root != "" {
					m = "/" + strings.TrimPrefix(m[len(filepath.Clean(root)):], "/")
				}
				sub, err := loadConfig(root, m)
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
		case "global", "common":
		default:
			rest.WriteString(renderSection(s))
		}
	}
	res, err := parseResFile(file, rest.String())
	if err != nil {
		return nil, err
	}
	return append(out, res...), nil
}

func renderSection(s *section) string {
	var b strings.Builder
	for _, w := range s.words {
		b.WriteString(fmt.Sprintf("%q ", w))
	}
	if !s.body {
		b.WriteString(";\n")
		return b.String()
	}
	b.WriteString("{\n")
	for _, c := range s.children {
		b.WriteString(renderSection(c))
	}
	b.WriteString("}\n")
	return b.String()
}

// createMD writes fresh metadata: disk Inconsistent, current UUID zero
// ("just created"), empty bitmaps, as drbdmeta create-md does.
func (h *Host) createMD(o *output, d *drbdHost, cfg *resConfig, self *resNode, vol, maxPeers int, force bool, stdin []byte) {
	if r := d.res[cfg.name]; r != nil {
		for _, v := range r.vols {
			if v.backing != nil && (vol < 0 || v.nr == vol) {
				fmt.Fprintf(&o.stderr, "Device '%d' is configured!\nCommand 'drbdmeta %d v09 %s internal create-md' terminated with exit code 20\n", v.minor, v.minor, v.diskPath)
				o.code = drbdNoModule
				return
			}
		}
	}
	for _, v := range self.volumes {
		if v.disk == "" || vol >= 0 && v.number != vol {
			continue
		}
		dev, err := h.Device(v.disk)
		if err != nil {
			fmt.Fprintf(&o.stderr, "open(%s) failed: No such file or directory\nCommand 'drbdmeta %d v09 %s internal create-md' terminated with exit code 20\n", v.disk, v.minor, v.disk)
			o.code = drbdNoModule
			return
		}
		dev.Close()
		if d.meta[dev.lv] != nil && !force && !strings.HasPrefix(string(stdin), "yes") {
			fmt.Fprintf(&o.stdout, "You want me to create a v09 style flexible-size internal meta data block.\nThere appears to be a v09 flexible-size internal meta data block\nalready in place on %s at byte offset ...\n\nDo you really want to overwrite the existing meta-data?\n[need to type 'yes' to confirm] ", v.disk)
			fmt.Fprintf(&o.stderr, "Operation canceled.\n")
			o.code = drbdKernelFailure
			return
		}
		d.meta[dev.lv] = &drbdMeta{bitmapUUID: map[int]uint64{}, oos: map[int]map[uint64]bool{}, disk: drbd.DiskInconsistent, maxPeers: maxPeers}
		h.metaWritten(o, d.meta[dev.lv], dev, v.minor, v.disk)
		o.stdout.WriteString("initializing activity log\ninitializing bitmap\nWriting meta data...\nNew drbd meta data block successfully created.\n")
	}
}

// adjust brings the running resource in line with cfg: creates it,
// attaches volumes with metadata, attaches a backing disk newly configured
// for a running diskless volume and detaches one configured away (`disk
// none`), adds and removes connections.
func (h *Host) adjust(o *output, n *Network, d *drbdHost, cfg *resConfig, self *resNode) {
	r := d.res[cfg.name]
	running := r != nil
	if r == nil {
		r = &drbdRes{name: cfg.name, role: drbd.RoleSecondary, vols: map[int]*drbdVol{}, conns: map[int]*drbdConn{}}
	}
	attached := false
	for _, v := range self.volumes {
		if ex := r.vols[v.number]; ex != nil {
			switch {
			case ex.backing == nil && v.disk != "":
				if !h.attach(o, d, r, ex, v) {
					return
				}
				attached = true
			case ex.backing != nil && v.disk == "":
				if !n.detach(o, r, ex) {
					return
				}
			}
			continue
		}
		dv := &drbdVol{nr: v.number, minor: v.minor, diskPath: v.disk, disk: drbd.DiskDiskless}
		if v.disk != "" && !h.attach(o, d, r, dv, v) {
			return
		}
		r.vols[v.number] = dv
	}
	r.cfg, r.self = cfg, self
	for _, node := range cfg.nodes {
		if node == self {
			continue
		}
		if r.conns[node.nodeID] == nil {
			if _, _, ok := cfg.pathBetween(self.name, node.name); ok {
				r.conns[node.nodeID] = &drbdConn{peer: node, pv: map[int]*peerVol{}}
			}
		} else {
			r.conns[node.nodeID].peer = node
		}
	}
	for id := range r.conns {
		if cfg.nodeByID(id) == nil {
			n.removeConn(r, id) // the peer left the configuration: adjust runs del-peer
		}
	}
	d.res[cfg.name] = r
	if running && attached {
		// A disk attached to a connected device negotiates with every
		// connected peer as at connect time (guide 23.2.4; the
		// "Attaching" then "Negotiating" disk states, guide "Disk
		// states"): the generation identifiers decide the resync, a
		// just-created one becoming a full SyncTarget of an UpToDate
		// peer (guide 13.1.3 "Full synchronization of the new hard disk
		// starts instantaneously and automatically"). The connection
		// itself stays up: no lost-peer handling, no new generation. The
		// caller's n.update() runs the handshake.
		for _, c := range r.conns {
			if !c.established {
				continue
			}
			c.established = false
			if p := n.peerRes(r, c); p != nil {
				if pc := p.conns[r.self.nodeID]; pc != nil {
					pc.established = false
				}
			}
		}
	}
}

// attach opens the backing disk of configured volume v for dv, as
// `drbdsetup attach MINOR DISK DISK internal` does: the LV must exist and
// hold metadata (create-md); the disk takes the state the metadata
// records (Inconsistent when just created). On a running device whose size
// is known (from peers) a backing disk too small for it is refused.
func (h *Host) attach(o *output, d *drbdHost, r *drbdRes, dv *drbdVol, v resVolume) bool {
	failed := func(msg string) bool {
		fmt.Fprintf(&o.stderr, "%d: %s\nCommand 'drbdsetup attach %d %s %s internal' terminated with exit code 10\n", v.minor, msg, v.minor, v.disk, v.disk)
		o.code = drbdKernelFailure
		return false
	}
	dev, err := h.Device(v.disk)
	if err == nil && dev.onFailedDisk() {
		dev.Close()
		err = fmt.Errorf("I/O error")
	}
	if err != nil {
		return failed("Failure: (104) Can not open backing device.")
	}
	meta := h.applyAL(o, d, dev, v.minor, v.disk)
	if meta == nil {
		dev.Close()
		return failed("No valid meta data found")
	}
	size := usableSize(uint64(dev.Size()), meta.maxPeers)
	if dv.size > 0 && size < dv.size {
		// drbd_strings.c ERR_DISK_TOO_SMALL, wording from memory.
		dev.Close()
		return failed("Failure: (111) Low.dev. smaller than requested DRBD-dev. size.")
	}
	if dv.size == 0 {
		dv.size = size
	}
	dv.diskPath, dv.backing, dv.meta, dv.disk = v.disk, dev, meta, meta.disk
	return true
}

// detach takes the backing disk away from a running volume, as `drbdadm
// adjust` does with `drbdsetup detach --diskless` when the configuration
// now says `disk none`: the volume becomes Diskless and a client
// (intentionally diskless) and keeps serving I/O through its UpToDate
// peers (guide 13.1.1: after `drbdadm detach` on a Primary, "volume:0
// disk:Diskless" with the peer UpToDate; 2.14 "DRBD transparently fetches
// the affected block from a peer node ... carries out all subsequent I/O
// operations, read and write, on the peer node(s) only"). The metadata
// stays on the LV. DRBD refuses the state change when a Primary would be
// left without access to UpToDate data (drbd_state.c
// SS_NO_UP_TO_DATE_DISK, "(-2) Need access to UpToDate data", from
// memory); a Secondary may detach its last UpToDate copy.
func (n *Network) detach(o *output, r *drbdRes, v *drbdVol) bool {
	if r.role == drbd.RolePrimary {
		ok := false
		for _, c := range r.conns {
			if p := n.peerRes(r, c); c.established && p != nil && p.vols[v.nr] != nil && p.vols[v.nr].disk == drbd.DiskUpToDate {
				ok = true
			}
		}
		if !ok {
			fmt.Fprintf(&o.stderr, "%d: State change failed: (-2) Need access to UpToDate data\nCommand 'drbdsetup detach %d --diskless' terminated with exit code %d\n", v.minor, v.minor, drbdStateFailure)
			o.code = drbdStateFailure
			return false
		}
	}
	v.backing.Close()
	v.backing, v.meta, v.diskPath, v.disk = nil, nil, "", drbd.DiskDiskless
	for _, c := range r.conns {
		// A resync to or from this disk ends with it.
		if pv := c.pv[v.nr]; pv != nil && pv.repl.HasProgress() {
			pv.repl, pv.total, pv.done = drbd.ReplEstablished, 0, 0
			if p := n.peerRes(r, c); p != nil {
				if x := p.conns[r.self.nodeID].pv[v.nr]; x != nil {
					x.repl, x.total, x.done = drbd.ReplEstablished, 0, 0
				}
			}
		}
	}
	return true
}

// newCurrentUUID implements `drbdadm new-current-uuid --clear-bitmap`
// (DRBD guide "Skipping initial device synchronization"): on fresh,
// connected, Inconsistent replicas it starts a generation that all of them
// share, so they become UpToDate without a full sync.
func (h *Host) newCurrentUUID(o *output, n *Network, r *drbdRes, vol int, clearBitmap bool) {
	if !clearBitmap {
		o.notModelled("drbdadm", "new-current-uuid without --clear-bitmap")
		o.code = drbdUsage
		return
	}
	for _, v := range r.sortedVols() {
		if v.meta == nil || vol >= 0 && v.nr != vol {
			continue
		}
		u := n.newUUID()
		v.meta.current, v.disk, v.meta.disk = u, drbd.DiskUpToDate, drbd.DiskUpToDate
		clear(v.meta.bitmapUUID)
		clear(v.meta.oos)
		clear(v.meta.fullSync)
		for _, c := range r.conns {
			p := n.peerRes(r, c)
			if !c.established || p == nil || p.vols[v.nr] == nil || p.vols[v.nr].meta == nil {
				continue
			}
			pv := p.vols[v.nr]
			pv.meta.current, pv.disk, pv.meta.disk = u, drbd.DiskUpToDate, drbd.DiskUpToDate
			clear(pv.meta.bitmapUUID)
			clear(pv.meta.oos)
			clear(pv.meta.fullSync)
		}
	}
}

// verify runs online verification (guide 2.9, 11.9) against every
// connected peer with a disk: blocks whose contents differ are counted and
// marked out of sync; they are resynchronized at the next connect (guide
// 11.9: "disconnect" and "connect" after the run). The run completes at
// once.
func (n *Network) verify(o *output, r *drbdRes, vol int) {
	if r.cfg.net["verify-alg"] == "" {
		fmt.Fprintf(&o.stderr, "%s: State change failed: (-14) Need a verify algorithm to start online verify\n", r.name)
		o.code = drbdStateFailure
		return
	}
	a, b := make([]byte, bmBlock), make([]byte, bmBlock)
	for _, v := range r.sortedVols() {
		if v.meta == nil || vol >= 0 && v.nr != vol {
			continue
		}
		for _, c := range r.sortedConns() {
			p := n.peerRes(r, c)
			if !c.established || p == nil || p.vols[v.nr] == nil || p.vols[v.nr].backing == nil {
				continue
			}
			pv := p.vols[v.nr]
			for blk := range (min(v.size, pv.size) + bmBlock - 1) / bmBlock {
				na, _ := v.backing.ReadAt(a, int64(blk*bmBlock))
				nb, _ := pv.backing.ReadAt(b, int64(blk*bmBlock))
				if string(a[:na]) != string(b[:nb]) {
					v.meta.mark(p.self.nodeID, blk)
					pv.meta.mark(r.self.nodeID, blk)
				}
			}
		}
	}
}

// drbdsetup answers `drbdsetup events2 --now [--statistics] [RES|all]`,
// `drbdsetup status --json [RES]` and `drbdsetup down RES`.
func (h *Host) drbdsetup(o *output, c run.Cmd) {
	n := h.network()
	if n == nil {
		noModule(o)
		return
	}
	if len(c.Args) == 0 {
		o.stderr.WriteString("USAGE: drbdsetup command {arguments} [options]\n")
		o.code = drbdUsage
		return
	}
	flags := map[string]bool{}
	var sel []string
	for _, a := range c.Args[1:] {
		if strings.HasPrefix(a, "--") {
			flags[a] = true
		} else {
			sel = append(sel, a)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.Args[0] == "invalidate-remote" {
		defer n.update()
		n.invalidateRemote(o, h, sel, flags)
		return
	}
	switch c.Args[0] {
	case "del-peer":
		defer n.update()
		n.delPeer(o, h, c.Args[1:])
		return
	case "forget-peer":
		n.forgetPeer(o, h, c.Args[1:])
		return
	}
	if c.Args[0] == "down" {
		if len(c.Args) != 2 || strings.HasPrefix(c.Args[1], "-") {
			o.notModelled("drbdsetup", "down without exactly one resource name")
			o.code = drbdUsage
			return
		}
		defer n.update()
		n.down(o, h.drbd, c.Args[1])
		return
	}
	var res []*drbdRes
	for _, r := range h.drbd.sortedRes() {
		if len(sel) == 0 || sel[0] == "all" || sel[0] == r.name {
			res = append(res, r)
		}
	}
	if len(sel) > 0 && sel[0] != "all" && len(res) == 0 {
		fmt.Fprintf(&o.stderr, "%s: No such resource\n", sel[0])
		o.code = drbdKernelFailure
		return
	}
	switch c.Args[0] {
	case "events2":
		for f := range flags {
			if f != "--now" && f != "--statistics" {
				o.notModelled("drbdsetup", "events2 option "+f)
				o.code = drbdUsage
				return
			}
		}
		if !flags["--now"] {
			o.notModelled("drbdsetup", "a live events2 stream (without --now)")
			o.code = drbdUsage
			return
		}
		for _, r := range res {
			for _, e := range n.events(r, flags["--statistics"]) {
				o.stdout.WriteString(e.String() + "\n")
			}
		}
		o.stdout.WriteString("exists -\n")
	case "status":
		if !flags["--json"] || len(flags) != 1 {
			o.notModelled("drbdsetup", "status without --json (or with other options)")
			o.code = drbdUsage
			return
		}
		out := make([]any, 0, len(res))
		for _, r := range res {
			out = append(out, n.statusJSON(r))
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		o.stdout.Write(b)
		o.stdout.WriteString("\n")
	default:
		o.notModelled("drbdsetup", "command "+c.Args[0])
		o.code = drbdUsage
	}
}

func yn(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r *drbdRes) suspended() string {
	var why []string
	if r.user {
		why = append(why, "user")
	}
	if !r.quorum && r.cfg.options["on-no-quorum"] == "suspend-io" {
		why = append(why, "quorum")
	}
	if len(why) == 0 {
		return "no"
	}
	return strings.Join(why, ",")
}

func (n *Network) connState(c *drbdConn) drbd.ConnState {
	switch {
	case c.established:
		return drbd.ConnConnected
	case c.standAlone:
		return drbd.ConnStandAlone
	}
	return drbd.ConnConnecting
}

// peerView is what r knows about the peer of c for volume nr.
func (n *Network) peerView(r *drbdRes, c *drbdConn, nr int) (role drbd.Role, disk drbd.DiskState, client bool) {
	role, disk = drbd.RoleUnknown, drbd.DiskUnknown
	client = !c.peer.diskful()
	p := n.peerRes(r, c)
	if !c.established || p == nil {
		return role, disk, client
	}
	role = p.role
	if pv := p.vols[nr]; pv != nil {
		disk = pv.disk
	}
	return role, disk, client
}

// events renders r as the `exists` lines of `drbdsetup events2 --now`,
// in drbdsetup's order: resource, connections, devices, then per
// connection its peer devices and paths (storage/drbd testdata).
func (n *Network) events(r *drbdRes, stats bool) []drbd.Event {
	f := func(kv ...string) []drbd.Field {
		out := make([]drbd.Field, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, drbd.Field{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	ev := func(obj drbd.Object, fields []drbd.Field) drbd.Event {
		return drbd.Event{Action: drbd.ActionExists, Object: obj, Fields: fields}
	}
	mayPromote := r.role != drbd.RolePrimary && n.mayPromote(r, false) == ""
	score := 0
	for _, v := range r.vols {
		if v.disk == drbd.DiskUpToDate {
			score = 10000
		}
	}
	if score > 0 {
		score += len(r.vols) * 100
		for _, c := range r.conns {
			if c.established {
				score++
			}
		}
	}
	out := []drbd.Event{ev(drbd.ObjectResource, f("name", r.name, "role", string(r.role), "suspended", r.suspended(),
		"force-io-failures", "no", "may_promote", yn(mayPromote), "promotion_score", fmt.Sprint(score), "write-ordering", "flush"))}
	for _, c := range r.sortedConns() {
		role, _, _ := n.peerView(r, c, -1)
		fs := f("name", r.name, "peer-node-id", fmt.Sprint(c.peer.nodeID), "conn-name", c.peer.name,
			"connection", string(n.connState(c)), "role", string(role))
		if c.syncState != "" {
			fs = append(fs, drbd.Field{Key: "sync-state", Value: c.syncState})
		}
		fs = append(fs, drbd.Field{Key: "congested", Value: "no"})
		out = append(out, ev(drbd.ObjectConnection, fs))
	}
	for _, v := range r.sortedVols() {
		backing := v.diskPath
		if backing == "" {
			backing = "none"
		}
		fs := f("name", r.name, "volume", fmt.Sprint(v.nr), "minor", fmt.Sprint(v.minor), "backing_dev", backing,
			"disk", string(v.disk), "client", yn(v.diskPath == ""), "open", yn(v.open > 0), "quorum", yn(r.quorum))
		if stats {
			fs = append(fs, f("size", fmt.Sprint(v.size/1024), "read", fmt.Sprint(v.read), "written", fmt.Sprint(v.written),
				"al-writes", "0", "bm-writes", "0", "upper-pending", "0", "lower-pending", "0", "al-suspended", "no")...)
		}
		out = append(out, ev(drbd.ObjectDevice, fs))
	}
	for _, c := range r.sortedConns() {
		for _, v := range r.sortedVols() {
			_, disk, client := n.peerView(r, c, v.nr)
			pv := c.pv[v.nr]
			if pv == nil {
				pv = &peerVol{repl: drbd.ReplOff}
			}
			repl := pv.repl
			if !c.established || repl == "" {
				repl = drbd.ReplOff
			}
			fs := f("name", r.name, "peer-node-id", fmt.Sprint(c.peer.nodeID), "conn-name", c.peer.name, "volume", fmt.Sprint(v.nr),
				"replication", string(repl), "peer-disk", string(disk), "peer-client", yn(client), "resync-suspended", "no")
			if repl.HasProgress() && pv.total > 0 {
				fs = append(fs, drbd.Field{Key: "done", Value: fmt.Sprintf("%.2f", 100*float64(pv.done)/float64(pv.total))})
			}
			if stats {
				var oos uint64
				if v.meta != nil {
					oos = uint64(len(v.meta.oos[c.peer.nodeID])) * bmBlock / 1024
				}
				fs = append(fs, f("received", fmt.Sprint(pv.recv), "sent", fmt.Sprint(pv.sent), "out-of-sync", fmt.Sprint(oos),
					"pending", "0", "unacked", "0")...)
			}
			out = append(out, ev(drbd.ObjectPeerDevice, fs))
		}
		if local, peer, ok := r.cfg.pathBetween(r.self.name, c.peer.name); ok {
			out = append(out, ev(drbd.ObjectPath, f("name", r.name, "peer-node-id", fmt.Sprint(c.peer.nodeID), "conn-name", c.peer.name,
				"local", local, "peer", peer, "established", yn(c.established))))
		}
	}
	return out
}

// statusJSON is one resource of `drbdsetup status --json`, with the keys
// drbd-utils 9 prints.
func (n *Network) statusJSON(r *drbdRes) map[string]any {
	devs := []map[string]any{}
	for _, v := range r.sortedVols() {
		devs = append(devs, map[string]any{
			"volume": v.nr, "minor": v.minor, "disk-state": string(v.disk), "client": v.diskPath == "",
			"quorum": r.quorum, "open": v.open > 0, "size": v.size / 1024, "read": v.read, "written": v.written,
			"al-writes": 0, "bm-writes": 0, "upper-pending": 0, "lower-pending": 0,
		})
	}
	conns := []map[string]any{}
	for _, c := range r.sortedConns() {
		role, _, _ := n.peerView(r, c, -1)
		pds := []map[string]any{}
		for _, v := range r.sortedVols() {
			_, disk, client := n.peerView(r, c, v.nr)
			pv := c.pv[v.nr]
			if pv == nil {
				pv = &peerVol{}
			}
			repl := pv.repl
			if !c.established || repl == "" {
				repl = drbd.ReplOff
			}
			var oos uint64
			if v.meta != nil {
				oos = uint64(len(v.meta.oos[c.peer.nodeID])) * bmBlock / 1024
			}
			pct := 100.0
			if v.size > 0 {
				pct = 100 * (1 - float64(oos*1024)/float64(v.size))
			}
			pd := map[string]any{
				"volume": v.nr, "replication-state": string(repl), "peer-disk-state": string(disk), "peer-client": client,
				"resync-suspended": "no", "received": pv.recv, "sent": pv.sent, "out-of-sync": oos, "pending": 0, "unacked": 0,
				"has-sync-details": repl.HasProgress(), "has-online-verify-details": false, "percent-in-sync": pct,
			}
			if repl.HasProgress() && pv.total > 0 {
				pd["done"] = 100 * float64(pv.done) / float64(pv.total)
			}
			pds = append(pds, pd)
		}
		conns = append(conns, map[string]any{
			"peer-node-id": c.peer.nodeID, "name": c.peer.name, "connection-state": string(n.connState(c)),
			"congested": false, "peer-role": string(role), "peer_devices": pds,
		})
	}
	return map[string]any{
		"name": r.name, "node-id": r.self.nodeID, "role": string(r.role),
		"suspended": r.suspended() != "no", "suspended-user": r.user, "suspended-no-data": false,
		"suspended-fencing": false, "suspended-quorum": strings.Contains(r.suspended(), "quorum"),
		"force-io-failures": false, "write-ordering": "flush", "devices": devs, "connections": conns,
	}
}
