package validate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// ib0 carries mtu 65520 (IPoIB connected mode), which ifup -s rejects.
var allowIB0 = validate.IfupdownOptions{ConnectedModeMTU: []string{"ib0"}}

func TestIfupdown2Accepts(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	validatetest.Check(t, validate.Ifupdown2(testContext(t), fixture(t, "interfaces"), allowIB0))
}

func TestIfupdown2Rejects(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	tests := []struct {
		name    string
		replace []string
		opts    validate.IfupdownOptions
		want    []string
	}{
		{
			// With ib0's warning accepted: an accepted warning must
			// not hide another problem.
			name:    "bond-mode 802.3xx",
			replace: []string{"bond-mode 802.3ad", "bond-mode 802.3xx"},
			opts:    allowIB0,
			want:    []string{`warning: bond0: bond-mode: invalid value "802.3xx"`},
		},
		{
			// Accepted silently without addon_syntax_check=1.
			name:    "unknown keyword",
			replace: []string{"bond-miimon 100", "bond-miimon 100\n\tbond-frobnicate yes"},
			opts:    allowIB0,
			want:    []string{"iface bond0: unsupported keyword (bond-frobnicate)"},
		},
		{
			name:    "address out of range",
			replace: []string{"10.99.0.1/24", "10.99.0.300/24"},
			opts:    allowIB0,
			want:    []string{`warning: vmbr0: address: invalid value "10.99.0.300/24"`},
		},
		{
			name:    "unsupported address method",
			replace: []string{"iface vmbr0 inet static", "iface vmbr0 inet statik"},
			opts:    allowIB0,
			want:    []string{"iface vmbr0: unsupported address method 'statik'"},
		},
		{
			// eno3 is not marked auto; ifup -s -a would pass this.
			name:    "stanza not marked auto",
			replace: []string{"mtu 9000", "mtu 99999"},
			opts:    allowIB0,
			want:    []string{`warning: eno3: mtu: value of out range "99999"`},
		},
		{
			name: "IPoIB mtu without the allow-list",
			want: []string{`warning: ib0: mtu: value of out range "65520"`},
		},
		{
			name: "allow-list names another interface",
			opts: validate.IfupdownOptions{ConnectedModeMTU: []string{"ib1"}},
			want: []string{`warning: ib0: mtu: value of out range "65520"`},
		},
		{
			// The allow-list covers 65520 only.
			name:    "allow-listed interface with another bad mtu",
			replace: []string{"\tmtu 65520", "\tmtu 70000"},
			opts:    allowIB0,
			want:    []string{`warning: ib0: mtu: value of out range "70000"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := validate.Ifupdown2(testContext(t), fixture(t, "interfaces", tt.replace...), tt.opts)
			rej := validatetest.Rejected(t, err, tt.want...)
			if rej.Check != "ifup -s" || rej.ExitCode != 1 {
				t.Errorf("rejected by %q with exit %d, want ifup -s exit 1", rej.Check, rej.ExitCode)
			}
			if len(tt.opts.ConnectedModeMTU) > 0 && tt.opts.ConnectedModeMTU[0] == "ib0" {
				for _, l := range rej.Lines {
					if strings.Contains(l, `ib0: mtu: value of out range "65520"`) {
						t.Errorf("allow-listed warning reported: %s", l)
					}
				}
			}
		})
	}
}

func TestIfquery(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	ifaces, err := validate.Ifquery(testContext(t), fixture(t, "interfaces"))
	validatetest.Check(t, err)
	if len(ifaces) != 8 {
		t.Errorf("got %d stanzas, want 8: %+v", len(ifaces), ifaces)
	}
	tests := []struct {
		name, family   string
		method         string
		auto           bool
		key, wantValue string
	}{
		{"eno1", "inet", "manual", false, "", ""},
		{"eno3", "inet", "manual", false, "mtu", "9000"},
		{"bond0", "inet", "manual", true, "bond-slaves", "eno1 eno2"},
		{"vmbr0", "inet", "static", true, "bridge-ports", "bond0"},
		{"vmbr0", "inet6", "static", true, "address", "fd00:99::1/64"},
		{"ib0", "inet", "static", true, "mtu", "65520"},
	}
	for _, tt := range tests {
		i := validate.FindIface(ifaces, tt.name, tt.family)
		if i == nil {
			t.Errorf("no %s stanza for %s", tt.family, tt.name)
			continue
		}
		if i.AddrMethod != tt.method || i.Auto != tt.auto {
			t.Errorf("%s %s: method %q auto %v, want %q %v", tt.name, tt.family, i.AddrMethod, i.Auto, tt.method, tt.auto)
		}
		if got := i.Config.Get(tt.key); tt.key != "" && got != tt.wantValue {
			t.Errorf("%s %s: %s = %q, want %q", tt.name, tt.family, tt.key, got, tt.wantValue)
		}
	}
}

// A repeated option comes back as a list.
func TestIfqueryRepeatedOption(t *testing.T) {
	t.Parallel()
	ifaces, err := validate.Ifquery(testContext(t), fixture(t, "interfaces", "\taddress 10.99.0.1/24\n", "\taddress 10.99.0.1/24\n\taddress 10.99.1.1/24\n"))
	validatetest.Check(t, err)
	vmbr0 := validate.FindIface(ifaces, "vmbr0", "inet")
	if vmbr0 == nil || len(vmbr0.Config["address"]) != 2 || vmbr0.Config["address"][1] != "10.99.1.1/24" {
		t.Errorf("vmbr0 inet = %+v, want two addresses", vmbr0)
	}
}

// ifup takes a few hundred milliseconds; a shorter deadline must kill it
// (with its namespaces) and say so, not report a rejection.
func TestIfupdown2Deadline(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := validate.Ifupdown2(ctx, fixture(t, "interfaces"), allowIB0)
	validatetest.Environment(t, err)
	var rej *validate.RejectedError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &rej) {
		t.Fatalf("err = %v, want a deadline error that is not a rejection", err)
	}
}
