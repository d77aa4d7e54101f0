package pki

import (
	"strings"
	"testing"
)

func TestValidateNodeName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // "" for valid
	}{
		{"n1", ""},
		{"pve-01", ""},
		{"PVE1", ""},
		{"7", ""},
		{strings.Repeat("a", 63), ""},
		{"", "is empty; use the node's short host name"},
		{strings.Repeat("a", 64), "64 characters long; at most 63"},
		{"pve1.example.com", `contains '.'; a node name is a single DNS label: use the part before the first dot, "pve1"`},
		{strings.Repeat("a", 60) + ".example.com", `looks like a fully qualified name: use the part before the first dot`},
		{"pve_1", `contains '_' at byte 3; only letters a-z, digits and '-' are allowed`},
		{"pve 1", `contains ' ' at byte 3`},
		{".pve", `contains '.' at byte 0`},
		{"-pve", "begins or ends with '-'"},
		{"pve-", "begins or ends with '-'"},
		{"pvé", `contains 'é'`},
	}
	for _, tt := range tests {
		err := ValidateNodeName(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateNodeName(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateNodeName(%q) = %v, want an error containing %q", tt.name, err, tt.want)
		case err != nil && !strings.HasPrefix(err.Error(), "pki: node name"):
			t.Errorf("ValidateNodeName(%q) = %q, want it to start with %q", tt.name, err, "pki: node name")
		}
	}
	if err := ValidateClusterName("my cluster"); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Errorf("ValidateClusterName: %v", err)
	}
}

func TestSANNames(t *testing.T) {
	t.Parallel()
	got, err := sanNames("n1", []string{"n1.example.com", "N1", "n1.example.com"})
	if err != nil || strings.Join(got, ",") != "n1,n1.example.com" {
		t.Errorf("sanNames = %v, %v; want [n1 n1.example.com]", got, err)
	}
	for _, bad := range []string{"n2", "n2.example.com", "n10", "example.com", "n1..com", "n1.exa_mple.com"} {
		if _, err := sanNames("n1", []string{bad}); err == nil {
			t.Errorf("sanNames accepted %q for node n1", bad)
		}
	}
}
