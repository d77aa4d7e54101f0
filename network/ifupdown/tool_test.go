package ifupdown

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

func toolContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ibNames are the IPoIB ports in the test files: ifup -s wrongly rejects
// their mtu 65520, which a real ifup applies.
func ibNames() []string { return []string{"ib0", "ib1", "ibs1f1"} }

// Every file this package renders in its tests passes ifup -s with
// unknown keywords made errors. (The samples keep to keywords Debian's
// ifupdown2 knows: Proxmox's fork adds some, e.g.
// bridge-disable-mac-learning, which this check would call unsupported.)
func TestRenderedFilesPassIfupdown2(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range names {
		name := filepath.Base(p)
		if strings.HasPrefix(name, "plan-") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := writeTemp(t, "interfaces", readTestdata(t, name))
			validatetest.Check(t, validate.Ifupdown2(toolContext(t), f, validate.IfupdownOptions{ConnectedModeMTU: ibNames()}))
		})
	}
	if n < 6 {
		t.Errorf("checked only %d files; did testdata move?", n)
	}
}

// ifquery reads the rendered files the way pvehci means them.
func TestRenderedFilesIfquery(t *testing.T) {
	t.Parallel()
	n := hciNetwork()
	main := writeTemp(t, "interfaces", readTestdata(t, "pve-gui.merged.golden"))
	ifaces, err := validate.Ifquery(toolContext(t), main)
	validatetest.Check(t, err)

	bond := validate.FindIface(ifaces, "bond0", "inet")
	if bond == nil || !bond.Auto || bond.AddrMethod != "manual" {
		t.Fatalf("bond0 = %+v", bond)
	}
	for k, v := range map[string]string{
		"bond-slaves": "eno1 eno2", "bond-miimon": "100", "bond-mode": "802.3ad",
		"bond-xmit-hash-policy": "layer3+4", "bond-lacp-rate": "fast",
	} {
		if got := bond.Config.Get(k); got != v {
			t.Errorf("bond0 %s = %q, want %q", k, got, v)
		}
	}
	br := validate.FindIface(ifaces, "vmbr0", "inet")
	if br == nil || !br.Auto || br.AddrMethod != "static" {
		t.Fatalf("vmbr0 = %+v", br)
	}
	for k, v := range map[string]string{
		"address": n.Bridge.Address.String(), "gateway": n.Bridge.Gateway.String(), "bridge-ports": "bond0",
		"bridge-stp": "off", "bridge-fd": "0", "bridge-vlan-aware": "yes", "bridge-vids": "2-4094",
	} {
		if got := br.Config.Get(k); got != v {
			t.Errorf("vmbr0 %s = %q, want %q", k, got, v)
		}
	}
	// The admin's inet6 stanza and other bridge are still read.
	if v6 := validate.FindIface(ifaces, "vmbr0", "inet6"); v6 == nil || v6.Config.Get("address") != "2001:db8:10::11/64" {
		t.Errorf("vmbr0 inet6 = %+v", v6)
	}
	if v1 := validate.FindIface(ifaces, "vmbr1", "inet"); v1 == nil || v1.Config.Get("bridge-ports") != "enp65s0f0" {
		t.Errorf("vmbr1 = %+v", v1)
	}
	if p := validate.FindIface(ifaces, "enp65s0f0", "inet"); p == nil || p.Config.Get("mtu") != "9000" {
		t.Errorf("enp65s0f0 = %+v", p)
	}
	for _, nic := range []string{"eno1", "eno2"} {
		if s := validate.FindIface(ifaces, nic, "inet"); s == nil || s.AddrMethod != "manual" {
			t.Errorf("%s = %+v", nic, s)
		}
	}

	include := writeTemp(t, "pvehci", mustInclude(t, n))
	ifaces, err = validate.Ifquery(toolContext(t), include)
	validatetest.Check(t, err)
	ib := validate.FindIface(ifaces, "ib0", "inet")
	if ib == nil || !ib.Auto || ib.AddrMethod != "static" {
		t.Fatalf("ib0 = %+v", ib)
	}
	for k, v := range map[string]string{
		"address": "10.98.0.11/24", "mtu": "65520",
		// ifupdown2 puts in the name for $IFACE when it reads the file.
		"pre-up": "echo connected > /sys/class/net/ib0/mode",
	} {
		if got := ib.Config.Get(k); got != v {
			t.Errorf("ib0 %s = %q, want %q", k, got, v)
		}
	}
}

// The checks prove something: a broken stanza is rejected by the tool.
func TestIfupdown2RejectsBrokenStanza(t *testing.T) {
	t.Parallel()
	data := strings.Replace(string(readTestdata(t, "main-stanzas.golden")), "bond-mode 802.3ad", "bond-mode 802.3xx", 1)
	f := writeTemp(t, "interfaces", []byte(data))
	validatetest.Rejected(t, validate.Ifupdown2(toolContext(t), f, validate.IfupdownOptions{}), `bond-mode: invalid value "802.3xx"`)
}
