package ifupdown

import (
	"github.com/pvehci/pvehci/internal/textdiff"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{
		"installer": string(readTestdata(t, "pve-installer.interfaces")),
		"gui":       string(readTestdata(t, "pve-gui.interfaces")),
		"seed":      string(readTestdata(t, "seed003.interfaces")),
		"empty":     "",
		"newline":   "\n",
		"no EOL":    "auto lo\niface lo inet loopback",
		"CRLF":      "auto lo\r\niface lo inet loopback\r\n\taddress 127.0.0.1/8\r\n",
		"junk":      "mapping eth0\n  script /bin/true\n\tstray-option 1\niface\nallow-hotplug eno9\n",
		"blank in stanza": "iface eno1 inet manual\n\n\tmtu 9000\n# after\n\n" +
			"iface eno2 inet manual\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := string(Parse([]byte(in)).Bytes()); got != in {
				t.Errorf("round trip:\n got %q\nwant %q", got, in)
			}
		})
	}
}

func TestParseBlocks(t *testing.T) {
	t.Parallel()
	f := Parse([]byte("iface eno1 inet manual\n\n\tmtu 9000\n# after\n\nauto eno2 eno3\niface eno2 inet6 static\n  address fd00::2/64\n  bond_slaves x\n"))
	var got []string
	for _, b := range f.Blocks {
		got = append(got, strings.Join(b.Lines, "|"))
	}
	want := []string{"iface eno1 inet manual||\tmtu 9000", "# after", "", "auto eno2 eno3", "iface eno2 inet6 static|  address fd00::2/64|  bond_slaves x"}
	if !slices.Equal(got, want) {
		t.Errorf("blocks = %q\nwant %q", got, want)
	}
	ifs := f.Ifaces()
	if ifs[0].Name != "eno1" || ifs[0].Family != "inet" || ifs[0].Method != "manual" {
		t.Errorf("eno1 = %+v", ifs[0])
	}
	if v, _ := ifs[0].Get("mtu"); v != "9000" {
		t.Errorf("mtu after a blank line = %q, want 9000 (ifupdown2 reads it as part of the stanza)", v)
	}
	if v, _ := ifs[1].Get("bond-slaves"); v != "x" {
		t.Errorf("bond_slaves = %q (underscores are dashes to ifupdown2)", v)
	}
	if !f.IsAuto("eno3") || f.IsAuto("eno1") {
		t.Error("IsAuto wrong")
	}
}

// Merging into realistic Proxmox files: the golden shows the result, and
// every line outside the owned stanzas is still there, in order.
func TestMergeGolden(t *testing.T) {
	t.Parallel()
	seedNet := Network{
		Bond: &Bond{Name: "bond0", Slaves: []string{"bcm5720p0", "bcm5720p1", "i219"}, AnyNICName: true},
		Bridge: &Bridge{
			Name: "bridge0", Ports: []string{"bond0"}, VLANAware: true,
			Address: netip.MustParsePrefix("172.27.2.12/24"), Gateway: netip.MustParseAddr("172.27.2.254"),
		},
		IPoIB:  []IPoIB{{Name: "ib1", Address: netip.MustParsePrefix("169.254.50.12/24")}},
		Remove: []string{"cx354ap1"},
	}
	tests := []struct {
		in  string
		net Network
	}{
		{"pve-installer.interfaces", hciNetwork()},
		{"pve-gui.interfaces", hciNetwork()},
		{"seed003.interfaces", seedNet},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			in := readTestdata(t, tc.in)
			opts := MergeOptions{Include: IncludePath, Remove: tc.net.Remove}
			for _, p := range tc.net.IPoIB {
				opts.Remove = append(opts.Remove, p.Name)
			}
			stanzas := mustStanzas(t, tc.net)
			out, err := Merge(in, stanzas, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(tc.in, ".interfaces")+".merged.golden", out)

			again, err := Merge(out, stanzas, opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(out) {
				t.Errorf("merging again changed the file:\n%s", strings.Join(textdiff.Lines(string(out), string(again)), "\n"))
			}

			owned := map[string]bool{}
			for _, s := range stanzas {
				owned[s.Name] = true
			}
			for _, n := range opts.Remove {
				owned[n] = true
			}
			if a, b := foreignLines(in, owned), foreignLines(out, owned); !slices.Equal(a, b) {
				t.Errorf("lines outside pvehci's stanzas changed:\n%s", strings.Join(textdiff.Lines(strings.Join(a, "\n")+"\n", strings.Join(b, "\n")+"\n"), "\n"))
			}
		})
	}
}

// foreignLines are the non-blank lines of blocks that are not about owned
// interfaces.
func foreignLines(data []byte, owned map[string]bool) []string {
	var out []string
	for _, b := range Parse(data).Blocks {
		if b.Kind == KindIface && owned[b.Name] {
			continue
		}
		if b.Kind == KindAuto {
			all := true
			for _, n := range b.Names {
				all = all && owned[n]
			}
			if all {
				continue
			}
		}
		for _, l := range b.Lines {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestMergeEdges(t *testing.T) {
	t.Parallel()
	eno1 := Stanza{Name: "eno1", Method: "manual"}
	vm := Stanza{Name: "vmbr9", Auto: true, Method: "manual", Options: []Option{{"bridge-ports", "eno1"}}}
	tests := []struct {
		name  string
		in    string
		owned []Stanza
		opts  MergeOptions
		want  string
	}{
		{
			name:  "existing auto line kept",
			in:    "auto lo eno1\niface lo inet loopback\n\niface eno1 inet static\n\taddress 10.0.0.1/24\n",
			owned: []Stanza{eno1},
			want:  "auto lo eno1\niface lo inet loopback\n\niface eno1 inet manual\n",
		},
		{
			name: "removed interface taken out of a shared auto line",
			in:   "auto lo ib0\niface lo inet loopback\n\niface ib0 inet static\n\taddress 10.98.0.1/24\n",
			opts: MergeOptions{Remove: []string{"ib0"}},
			want: "auto lo\niface lo inet loopback\n",
		},
		{
			name:  "auto added in front of a replaced stanza",
			in:    "iface vmbr9 inet manual\n\tbridge-ports eno1\n",
			owned: []Stanza{vm},
			want:  "auto vmbr9\niface vmbr9 inet manual\n\tbridge-ports eno1\n",
		},
		{
			name:  "new stanza after the last one and its comment",
			in:    "auto lo\niface lo inet loopback\n#loopback\n\n\nsource /etc/network/interfaces.d/*\n",
			owned: []Stanza{vm},
			want:  "auto lo\niface lo inet loopback\n#loopback\n\nauto vmbr9\niface vmbr9 inet manual\n\tbridge-ports eno1\n\n\nsource /etc/network/interfaces.d/*\n",
		},
		{
			name:  "no stanza yet: before the source line",
			in:    "# top\n\nsource /etc/network/interfaces.d/*\n",
			owned: []Stanza{vm},
			want:  "# top\n\nauto vmbr9\niface vmbr9 inet manual\n\tbridge-ports eno1\n\nsource /etc/network/interfaces.d/*\n",
		},
		{
			name:  "empty file",
			in:    "",
			owned: []Stanza{vm},
			want:  "auto vmbr9\niface vmbr9 inet manual\n\tbridge-ports eno1\n",
		},
		{
			name:  "file without final newline",
			in:    "auto lo\niface lo inet loopback",
			owned: []Stanza{vm},
			want:  "auto lo\niface lo inet loopback\n\nauto vmbr9\niface vmbr9 inet manual\n\tbridge-ports eno1\n",
		},
		{
			name: "source line added",
			in:   "auto lo\niface lo inet loopback\n",
			opts: MergeOptions{Include: IncludePath},
			want: "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
		},
		{
			name: "relative source line covers the include",
			in:   "auto lo\niface lo inet loopback\nsource interfaces.d/*\n",
			opts: MergeOptions{Include: IncludePath},
			want: "auto lo\niface lo inet loopback\nsource interfaces.d/*\n",
		},
		{
			// ifupdown2 3.0.0 reads source-directory as an option of
			// the stanza above it, so it does not count.
			name: "source-directory does not count",
			in:   "source-directory /etc/network/interfaces.d\n",
			opts: MergeOptions{Include: IncludePath},
			want: "source-directory /etc/network/interfaces.d\n\nsource /etc/network/interfaces.d/*\n",
		},
		{
			name: "remove a stanza and its auto line",
			in:   "auto lo\niface lo inet loopback\n\nauto ib0\niface ib0 inet static\n\taddress 10.98.0.1/24\n\nsource /etc/network/interfaces.d/*\n",
			opts: MergeOptions{Remove: []string{"ib0"}},
			want: "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
		},
		{
			name:  "inet6 stanza of an owned interface stays",
			in:    "iface eno1 inet static\n\taddress 10.0.0.1/24\n\niface eno1 inet6 static\n\taddress fd00::1/64\n",
			owned: []Stanza{eno1},
			want:  "iface eno1 inet manual\n\niface eno1 inet6 static\n\taddress fd00::1/64\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := Merge([]byte(tc.in), tc.owned, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("Merge:\n got %q\nwant %q", out, tc.want)
			}
		})
	}
}

func TestMergeRefuses(t *testing.T) {
	t.Parallel()
	n := hciNetwork()
	stanzas := mustStanzas(t, n)
	tests := []struct {
		name  string
		in    string
		owned []Stanza
		opts  MergeOptions
		want  string
	}{
		{
			name:  "NIC in two bonds or bridges",
			in:    "auto vmbr1\niface vmbr1 inet manual\n\tbridge-ports eno2\n",
			owned: stanzas,
			want:  "eno2 would be a port of both vmbr1 and bond0; a NIC can be in one bond or bridge only",
		},
		{
			name:  "address on an enslaved port",
			in:    "iface eno1 inet static\n\taddress 10.0.0.1/24\n",
			owned: []Stanza{{Name: "bond0", Auto: true, Method: "manual", Options: []Option{{"bond-slaves", "eno1"}}}},
			want:  "eno1 has an address (iface eno1 inet) but is a port of bond0",
		},
		{
			name:  "owned stanza twice in the file",
			in:    "iface vmbr0 inet static\n\taddress 10.0.0.1/24\n\niface vmbr0 inet manual\n",
			owned: stanzas,
			want:  `the file has 2 stanzas "iface vmbr0 inet"; merge them into one by hand first`,
		},
		{
			name:  "owned and removed",
			owned: stanzas,
			opts:  MergeOptions{Remove: []string{"vmbr0"}},
			want:  "interface vmbr0 is both to be written and removed",
		},
		{
			name:  "owned twice",
			owned: []Stanza{stanzas[0], stanzas[0]},
			want:  "stanza eno1 inet is given twice",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Merge([]byte(tc.in), tc.owned, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
