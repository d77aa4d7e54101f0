package ifupdown

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	n := hciNetwork()
	checkGolden(t, "main-stanzas.golden", Render(mustStanzas(t, n)...))
	checkGolden(t, "include-ipoib.golden", mustInclude(t, n))

	// Datagram mode and IPv6, for the include file's other shape.
	d := Network{IPoIB: []IPoIB{
		{Name: "ib0", Address: netip.MustParsePrefix("10.98.0.11/24"), Datagram: true},
		{Name: "ibs1f1", Address: netip.MustParsePrefix("fd00:98::11/64"), MTU: 9000},
	}}
	checkGolden(t, "include-ipoib-mixed.golden", mustInclude(t, d))
}

// The bond is exactly what Proxmox's writer would produce for it, so a
// later "Apply Configuration" in the GUI changes nothing.
func TestBondMatchesProxmoxWriter(t *testing.T) {
	t.Parallel()
	s, err := Bond{Name: "bond0", Slaves: []string{"eno2", "eno1"}}.Stanza()
	if err != nil {
		t.Fatal(err)
	}
	want := "auto bond0\niface bond0 inet manual\n\tbond-slaves eno1 eno2\n\tbond-miimon 100\n\tbond-mode 802.3ad\n\tbond-xmit-hash-policy layer3+4\n\tbond-lacp-rate fast\n\n"
	if got := string(Render(s)); got != want {
		t.Errorf("bond:\n%s\nwant:\n%s", got, want)
	}
	ab, err := Bond{Name: "bond1", Slaves: []string{"eno3", "eno4"}, Mode: "active-backup", MTU: 9000}.Stanza()
	if err != nil {
		t.Fatal(err)
	}
	want = "auto bond1\niface bond1 inet manual\n\tbond-slaves eno3 eno4\n\tbond-miimon 100\n\tbond-mode active-backup\n\tmtu 9000\n\n"
	if got := string(Render(ab)); got != want {
		t.Errorf("active-backup bond:\n%s\nwant:\n%s", got, want)
	}
}

func TestStanzaRefuses(t *testing.T) {
	t.Parallel()
	pfx := netip.MustParsePrefix("192.0.2.11/24")
	tests := []struct {
		name string
		make func() (Stanza, error)
		want string
	}{
		{"bond name", func() (Stanza, error) { return Bond{Name: "bond-stor", Slaves: []string{"eno1"}}.Stanza() }, `name "bond-stor" is not bondN`},
		{"bond without slaves", func() (Stanza, error) { return Bond{Name: "bond0"}.Stanza() }, "no slaves"},
		{"slave Proxmox 8 cannot type", func() (Stanza, error) { return Bond{Name: "bond0", Slaves: []string{"stor0"}}.Stanza() }, `slave "stor0" does not look like a NIC to Proxmox`},
		{"slave with a dot", func() (Stanza, error) {
			return Bond{Name: "bond0", Slaves: []string{"eno1.5"}, AnyNICName: true}.Stanza()
		}, `slave "eno1.5" is not a valid NIC name`},
		{"slave twice", func() (Stanza, error) { return Bond{Name: "bond0", Slaves: []string{"eno1", "eno1"}}.Stanza() }, "slave eno1 is listed twice"},
		{"bond mode", func() (Stanza, error) { return Bond{Name: "bond0", Slaves: []string{"eno1"}, Mode: "802.3xx"}.Stanza() }, `bond-mode "802.3xx" is not one of`},
		{"hash policy", func() (Stanza, error) {
			return Bond{Name: "bond0", Slaves: []string{"eno1"}, XmitHashPolicy: "layer9"}.Stanza()
		}, `bond-xmit-hash-policy "layer9"`},
		{"lacp rate", func() (Stanza, error) {
			return Bond{Name: "bond0", Slaves: []string{"eno1"}, LACPRate: "turbo"}.Stanza()
		}, `bond-lacp-rate "turbo"`},
		{"bond mtu", func() (Stanza, error) { return Bond{Name: "bond0", Slaves: []string{"eno1"}, MTU: 65520}.Stanza() }, "mtu 65520 is out of range 576-9216"},
		{"bridge name", func() (Stanza, error) { return Bridge{Name: "vmbr-management", Ports: []string{"bond0"}}.Stanza() }, "is not valid for a Proxmox bridge"},
		{"bridge without ports", func() (Stanza, error) { return Bridge{Name: "vmbr0"}.Stanza() }, "no ports"},
		{"bridge vids", func() (Stanza, error) {
			return Bridge{Name: "vmbr0", Ports: []string{"bond0"}, VLANAware: true, VIDs: "2-5000"}.Stanza()
		}, `"2-5000" is not a VLAN id or range within 1-4094`},
		{"gateway without address", func() (Stanza, error) {
			return Bridge{Name: "vmbr0", Ports: []string{"bond0"}, Gateway: netip.MustParseAddr("192.0.2.1")}.Stanza()
		}, "a gateway needs an address"},
		{"gateway family", func() (Stanza, error) {
			return Bridge{Name: "vmbr0", Ports: []string{"bond0"}, Address: pfx, Gateway: netip.MustParseAddr("2001:db8::1")}.Stanza()
		}, "different IP families"},
		{"ipoib name not ib", func() (Stanza, error) { return IPoIB{Name: "cx354ap1", Address: pfx}.Stanza() }, `must start with "ib"`},
		{"ipoib pkey child", func() (Stanza, error) { return IPoIB{Name: "ib0.8001", Address: pfx}.Stanza() }, "would be taken for a VLAN"},
		{"ipoib without address", func() (Stanza, error) { return IPoIB{Name: "ib0"}.Stanza() }, "no address"},
		{"ipoib datagram mtu", func() (Stanza, error) { return IPoIB{Name: "ib0", Address: pfx, Datagram: true, MTU: 65520}.Stanza() }, "mtu 65520 is out of range 576-4092 in datagram mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.make()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "rendering ") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

func TestBondAnyNICName(t *testing.T) {
	t.Parallel()
	s, err := Bond{Name: "bond0", Slaves: []string{"bcm5720p0", "i219"}, AnyNICName: true}.Stanza()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Options[0].Value; got != "bcm5720p0 i219" {
		t.Errorf("bond-slaves = %q", got)
	}
}
