package ifupdown

import (
	"github.com/pvehci/pvehci/internal/golden"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// golden compares got with testdata/name; UPDATE_GOLDEN=1 rewrites it.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// hciNetwork is the network of a typical pvehci node: two NICs bonded,
// a VLAN-aware bridge with the management address, one IPoIB port.
func hciNetwork() Network {
	return Network{
		Bond: &Bond{Name: "bond0", Slaves: []string{"eno2", "eno1"}},
		Bridge: &Bridge{
			Name: "vmbr0", Ports: []string{"bond0"}, VLANAware: true,
			Address: netip.MustParsePrefix("192.0.2.11/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		},
		IPoIB: []IPoIB{{Name: "ib0", Address: netip.MustParsePrefix("10.98.0.11/24")}},
	}
}

func mustStanzas(t *testing.T, n Network) []Stanza {
	t.Helper()
	s, err := n.MainStanzas()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustInclude(t *testing.T, n Network) []byte {
	t.Helper()
	b, err := n.IncludeFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
