package validate

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// drbdKernelVersion is the kernel module version drbdadm is told the host
// runs (DRBD_DRIVER_VERSION_OVERRIDE). pvehci needs DRBD 9; without the
// override drbdadm asks the loaded module, and a host with DRBD 8.4 loaded
// would be checked by drbdadm-84. Checked: the dump and -d up plans are the
// same as with no module at all.
const drbdKernelVersion = "9.2.12"

// drbdNoise matches stderr lines that say nothing about the input: the
// __DRBD_NODE__ announcement and the failed module probe on a machine
// without the drbd module (with kmod, and without it).
var drbdNoise = regexp.MustCompile(`^(found __DRBD_NODE__ in environment|PRETENDING that I am >>.*<<|modinfo: ERROR: Module drbd not found\.|sh: \d+: modinfo: not found)$`)

// DRBDResult is what drbdadm made of the resource files as one host.
type DRBDResult struct {
	// Host is the host drbdadm pretended to be.
	Host string
	// Dump is the output of drbdadm dump all without comment lines
	// (they carry temporary paths) and without the global section the
	// harness adds, so tests can compare it with a golden text.
	Dump string
	// Plan is the output of drbdadm -d up all: the drbdsetup and
	// drbdmeta command lines that bringing the resources up would run,
	// in order, with the programs named without a directory.
	Plan []string
}

// Setup returns, for every "drbdsetup VERB …" line of the plan, the words
// after the verb. For new-peer, new-path, connect and peer-device-options
// the first two are the resource and the peer's node-id.
func (r *DRBDResult) Setup(verb string) [][]string {
	var out [][]string
	for _, l := range r.Plan {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "drbdsetup" && f[1] == verb {
			out = append(out, f[2:])
		}
	}
	return out
}

// DRBD checks resource files as host: drbdadm dump all and drbdadm -d up
// all, with __DRBD_NODE__=host, through a wrapper drbd.conf that includes the
// files and sets disable-ip-verification (so the files' addresses need not
// exist here). The files must not contain a global section. It needs no
// root.
func DRBD(ctx context.Context, host string, files ...string) (*DRBDResult, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if host == "" || strings.ContainsAny(host, " \t\n") {
		return nil, fmt.Errorf("checking DRBD resources: invalid host name %q", host)
	}
	w, err := newDRBDWrapper(files)
	if err != nil {
		return nil, err
	}
	defer w.remove()

	env := []string{"__DRBD_NODE__=" + host, "DRBD_DRIVER_VERSION_OVERRIDE=" + drbdKernelVersion}
	res := &DRBDResult{Host: host}
	dump, err := w.run(ctx, "drbdadm dump", "host "+host, env, "dump", "all")
	if err != nil {
		return nil, err
	}
	res.Dump = normaliseDRBDDump(dump)
	plan, err := w.run(ctx, "drbdadm -d up", "host "+host, env, "-d", "up", "all")
	if err != nil {
		return nil, err
	}
	for _, l := range lines(plan) {
		// drbdadm names drbdsetup by the directory it was itself run
		// from; the base name keeps plans the same on every machine.
		if prog, rest, _ := strings.Cut(l, " "); strings.Contains(prog, "/") {
			l = strings.TrimSpace(filepath.Base(prog) + " " + rest)
		}
		res.Plan = append(res.Plan, l)
	}
	return res, nil
}

// DRBDHosts returns the host names of all "on" sections in the files, in
// the order drbdadm reports them, read from drbdadm dump-xml so that they
// are the names drbdadm itself sees.
func DRBDHosts(ctx context.Context, files ...string) ([]string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := newDRBDWrapper(files)
	if err != nil {
		return nil, err
	}
	defer w.remove()
	env := []string{"DRBD_DRIVER_VERSION_OVERRIDE=" + drbdKernelVersion}
	out, err := w.run(ctx, "drbdadm dump-xml", "", env, "dump-xml", "all")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources []struct {
			Hosts []struct {
				Name string `xml:"name,attr"`
			} `xml:"host"`
		} `xml:"resource"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("parsing drbdadm dump-xml: %w", err)
	}
	var hosts []string
	for _, r := range doc.Resources {
		for _, h := range r.Hosts {
			// "on a b { … }" names several hosts in one section.
			for _, name := range strings.Fields(h.Name) {
				if !slices.Contains(hosts, name) {
					hosts = append(hosts, name)
				}
			}
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("listing DRBD hosts: no \"on\" sections in %s", baseNames(files))
	}
	return hosts, nil
}

// DRBDAllHosts runs [DRBD] as every host that the files name. The map holds
// the results of the hosts that passed; the error joins the failures of all
// the others.
func DRBDAllHosts(ctx context.Context, files ...string) (map[string]*DRBDResult, error) {
	hosts, err := DRBDHosts(ctx, files...)
	if err != nil {
		return nil, err
	}
	results := make(map[string]*DRBDResult, len(hosts))
	var errs []error
	for _, h := range hosts {
		r, err := DRBD(ctx, h, files...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results[h] = r
	}
	return results, errors.Join(errs...)
}

// drbdWrapper is a temporary drbd.conf that includes the files under test.
type drbdWrapper struct {
	drbdadm string
	dir     string
	conf    string
	files   []string // as the caller named them
}

func newDRBDWrapper(files []string) (*drbdWrapper, error) {
	paths, err := lookTools("drbdadm")
	if err != nil {
		return nil, err
	}
	abs, err := absFiles(files)
	if err != nil {
		return nil, fmt.Errorf("checking DRBD resources: %w", err)
	}
	var b strings.Builder
	// The only global option: drbdadm dump fails for a member host whose
	// address is not configured on this machine.
	b.WriteString("global { disable-ip-verification; }\n")
	for _, f := range abs {
		if strings.ContainsAny(f, "\"\n") {
			return nil, fmt.Errorf("checking DRBD resources: path %q cannot be included by drbd.conf", f)
		}
		fmt.Fprintf(&b, "include \"%s\";\n", f)
	}
	dir, err := os.MkdirTemp("", "pvehci-validate-drbd-")
	if err != nil {
		return nil, fmt.Errorf("creating drbd.conf wrapper: %w", err)
	}
	conf := filepath.Join(dir, "drbd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating drbd.conf wrapper: %w", err)
	}
	return &drbdWrapper{drbdadm: paths[0], dir: dir, conf: conf, files: files}, nil
}

func (w *drbdWrapper) remove() { os.RemoveAll(w.dir) }

// run runs drbdadm -c WRAPPER args… and returns stdout. A non-zero exit or
// any stderr line that is not known noise is a *RejectedError: drbdadm
// prints some complaints without failing.
func (w *drbdWrapper) run(ctx context.Context, check, subject string, env []string, args ...string) (string, error) {
	c := command{argv: append([]string{w.drbdadm, "-c", w.conf}, args...), env: env}
	out, err := run(ctx, c)
	if err != nil {
		return "", err
	}
	var complaints []string
	for _, l := range lines(out.stderr) {
		if !drbdNoise.MatchString(l) {
			complaints = append(complaints, l)
		}
	}
	if out.code != 0 || len(complaints) > 0 {
		return "", &RejectedError{Check: check, Subject: subject, Files: w.files, Command: c.String(), ExitCode: out.code, Lines: complaints}
	}
	return out.stdout, nil
}

// normaliseDRBDDump drops comment lines and the leading global section
// (the wrapper's, since input files cannot have one) and squeezes blank
// lines.
func normaliseDRBDDump(dump string) string {
	var out []string
	inGlobal := false
	for _, l := range strings.Split(dump, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "#"):
			continue
		case l == "global {":
			inGlobal = true
			continue
		case inGlobal:
			if l == "}" {
				inGlobal = false
			}
			continue
		case t == "" && (len(out) == 0 || out[len(out)-1] == ""):
			continue
		}
		out = append(out, strings.TrimRight(l, " \t"))
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}
