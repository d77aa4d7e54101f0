package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ifupdown2Conf is where ifupdown2 reads its settings; the checks
// bind-mount a modified copy over it.
const ifupdown2Conf = "/etc/network/ifupdown2/ifupdown2.conf"

// ifupdown2Settings override the host's ifupdown2.conf in the copy.
// addon_syntax_check=1 turns unknown keywords into errors; the state
// directory moves into the private /run; use_daemon=no keeps ifup from
// talking to an ifupdown2 daemon outside the namespace.
var ifupdown2Settings = [][2]string{
	{"addon_syntax_check", "1"},
	{"state_dir", "/run/network/state/"},
	{"use_daemon", "no"},
}

// ifupdown2Script runs in the fresh namespaces. The settings copy is
// mounted before the tmpfs over /run so that it stays reachable if the
// temporary directory lives under /run. /sys is remounted, read-only, for
// the new network namespace: the inherited one shows (and would let
// ifupdown2 write to) the host's interfaces.
var ifupdown2Script = nsScript(
	`conf=$1`,
	`shift`,
	`mount --bind "$conf" `+ifupdown2Conf+` || fail "bind-mounting $conf over `+ifupdown2Conf+` failed"`,
	`mount -t tmpfs -o mode=0755 tmpfs /run || fail "mounting a tmpfs on /run failed"`,
	`mkdir -p /run/network/state || fail "creating /run/network/state failed"`,
	`mount -t sysfs -o ro sysfs /sys || fail "mounting a read-only sysfs on /sys failed"`,
	`exec "$@"`,
)

// IfupdownOptions tune [Ifupdown2].
type IfupdownOptions struct {
	// ConnectedModeMTU lists IPoIB interfaces whose "mtu 65520" is
	// accepted. ifup -s checks mtu against 552-9216 and rejects the
	// 65520 that IPoIB connected mode needs, although a real ifup applies
	// it. Only the exact warning for the listed interfaces is accepted;
	// the check passes only when every line ifup prints is accepted.
	ConnectedModeMTU []string
}

// connectedModeMTUWarning is the message of ifup -s for mtu 65520 on the
// interface named by the first group.
var connectedModeMTUWarning = regexp.MustCompile(`^warning: (\S+): mtu: value of out range "65520": valid attribute range: \d+-\d+$`)

// Ifupdown2 runs ifup -s (syntax and value check) on an interfaces file
// with addon_syntax_check=1, naming every "iface" stanza of the file (ifup
// -s -a would skip stanzas not marked auto). It runs in fresh network and
// mount namespaces with a private /run, needs root and never touches the
// host's interfaces or ifupdown2 state. Only the file's own stanzas are
// named: stanzas in files it sources are not checked (pvehci renders one
// file), except that a file without stanzas is checked with -a.
func Ifupdown2(ctx context.Context, path string, opts IfupdownOptions) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const check = "ifup -s"
	out, c, err := ifupdown2Run(ctx, check, "ifup", path, "-s")
	if err != nil {
		return err
	}
	var complaints []string
	accepted := 0
	for _, l := range lines(out.stderr) {
		if m := connectedModeMTUWarning.FindStringSubmatch(l); m != nil && slices.Contains(opts.ConnectedModeMTU, m[1]) {
			accepted++
			continue
		}
		complaints = append(complaints, l)
	}
	// ifup exits 1 after the accepted warning, so a non-zero exit counts
	// only when there is no accepted warning to explain it.
	if len(complaints) > 0 || (out.code != 0 && accepted == 0) {
		return &RejectedError{Check: check, Files: []string{path}, Command: c.String(), ExitCode: out.code, Lines: complaints}
	}
	return nil
}

// Iface is one stanza of an interfaces file as ifquery -o json reports it.
type Iface struct {
	Name       string      `json:"name"`
	AddrMethod string      `json:"addr_method"`
	AddrFamily string      `json:"addr_family"`
	Auto       bool        `json:"auto"`
	Config     IfaceConfig `json:"config"`
}

// IfaceConfig maps an option to its values: ifquery gives a string for an
// option that appears once and a list for one that repeats (address).
type IfaceConfig map[string][]string

// UnmarshalJSON accepts both shapes.
func (c *IfaceConfig) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = make(IfaceConfig, len(raw))
	for k, v := range raw {
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			(*c)[k] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(v, &many); err != nil {
			return fmt.Errorf("option %s: %w", k, err)
		}
		(*c)[k] = many
	}
	return nil
}

// Get returns the option's values joined by a space, or "".
func (c IfaceConfig) Get(key string) string { return strings.Join(c[key], " ") }

// Ifquery parses an interfaces file with ifquery -o json, naming every
// "iface" stanza of the file like [Ifupdown2] does, in the same kind of
// namespaces. An interface with inet and inet6 stanzas appears twice.
func Ifquery(ctx context.Context, path string) ([]Iface, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const check = "ifquery"
	out, c, err := ifupdown2Run(ctx, check, "ifquery", path, "-o", "json")
	if err != nil {
		return nil, err
	}
	if complaints := lines(out.stderr); out.code != 0 || len(complaints) > 0 {
		return nil, &RejectedError{Check: check, Files: []string{path}, Command: c.String(), ExitCode: out.code, Lines: complaints}
	}
	var ifaces []Iface
	if err := json.Unmarshal([]byte(out.stdout), &ifaces); err != nil {
		return nil, fmt.Errorf("parsing ifquery -o json output: %w", err)
	}
	return ifaces, nil
}

// FindIface returns the stanza of ifaces with that name and address family
// ("inet" or "inet6"), or nil.
func FindIface(ifaces []Iface, name, family string) *Iface {
	for i := range ifaces {
		if ifaces[i].Name == name && ifaces[i].AddrFamily == family {
			return &ifaces[i]
		}
	}
	return nil
}

// ifupdown2Run runs "prog flags… -i path NAME…" in the namespaces, NAME
// being every stanza of the file (or -a when it has none).
func ifupdown2Run(ctx context.Context, check, prog, path string, flags ...string) (output, command, error) {
	tools, err := lookTools(prog, "unshare", "sh", "mount")
	if err != nil {
		return output{}, command{}, err
	}
	if err := requireRoot(check); err != nil {
		return output{}, command{}, err
	}
	abs, err := absFiles([]string{path})
	if err != nil {
		return output{}, command{}, fmt.Errorf("running %s: %w", check, err)
	}
	if under(abs[0], "/run") {
		return output{}, command{}, fmt.Errorf("running %s: %s is under /run, which the check hides behind a private tmpfs", check, path)
	}
	names, err := ifaceNames(abs[0])
	if err != nil {
		return output{}, command{}, err
	}
	if len(names) == 0 {
		names = []string{"-a"}
	}
	dir, err := os.MkdirTemp("", "pvehci-validate-ifupdown2-")
	if err != nil {
		return output{}, command{}, fmt.Errorf("preparing %s: %w", check, err)
	}
	defer os.RemoveAll(dir)
	conf, err := ifupdown2ConfCopy(dir)
	if err != nil {
		return output{}, command{}, fmt.Errorf("preparing %s: %w", check, err)
	}
	argv := append([]string{conf, filepath.Base(tools[0])}, flags...)
	argv = append(argv, "-i", abs[0])
	argv = append(argv, names...)
	c := command{argv: nsCommand(tools[1], tools[2], ifupdown2Script, argv...)}
	out, err := run(ctx, c)
	return out, c, err
}

// ifupdown2ConfCopy writes the host's ifupdown2.conf with
// ifupdown2Settings applied to dir and returns its path. It starts from the
// host's file so that other settings (PVE ships its own) stay as they are.
func ifupdown2ConfCopy(dir string) (string, error) {
	data, err := os.ReadFile(ifupdown2Conf)
	if err != nil {
		return "", fmt.Errorf("reading ifupdown2 settings: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, _, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		for _, s := range ifupdown2Settings {
			if ok && k == s[0] {
				l, seen[k] = s[0]+"="+s[1], true
			}
		}
		out = append(out, l)
	}
	for _, s := range ifupdown2Settings {
		if !seen[s[0]] {
			out = append(out, s[0]+"="+s[1])
		}
	}
	p := filepath.Join(dir, "ifupdown2.conf")
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing ifupdown2 settings: %w", err)
	}
	return p, nil
}

// ifaceNames returns the names of the file's "iface" stanzas, each once,
// in file order.
func ifaceNames(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading interfaces file: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "iface" && !slices.Contains(names, f[1]) {
			names = append(names, f[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading interfaces file %s: %w", path, err)
	}
	return names, nil
}

func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
