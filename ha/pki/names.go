package pki

import (
	"fmt"
	"strings"
)

// maxLabel is the longest DNS label (RFC 1035 §2.3.4), and so the longest
// node or cluster name.
const maxLabel = 63

// ValidateNodeName reports whether name can name a node: a DNS label of 1 to
// 63 letters, digits and hyphens that neither starts nor ends with a hyphen,
// the rule LINSTOR and Proxmox VE apply to host names. The error says what is
// wrong and how to fix it.
func ValidateNodeName(name string) error {
	if err := validateNodeName(name); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// ValidateClusterName is [ValidateNodeName] for the cluster's name.
func ValidateClusterName(name string) error {
	if err := validateClusterName(name); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func validateNodeName(name string) error {
	return validateLabel("node name", name, "use the node's short host name (`hostname -s`)")
}

func validateClusterName(name string) error {
	return validateLabel("cluster name", name, "use letters, digits and '-', as for a Proxmox VE cluster name")
}

func validateLabel(what, name, hint string) error {
	if name == "" {
		return fmt.Errorf("%s is empty; %s", what, hint)
	}
	if len(name) > maxLabel {
		if i := strings.IndexByte(name, '.'); i > 0 {
			return fmt.Errorf("%s %q is %d characters long, more than %d; it looks like a fully qualified name: use the part before the first dot, %q", what, name, len(name), maxLabel, name[:i])
		}
		return fmt.Errorf("%s %q is %d characters long; at most %d are allowed (a DNS label); %s", what, name, len(name), maxLabel, hint)
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
		case r == '.' && i > 0:
			return fmt.Errorf("%s %q contains '.'; a %s is a single DNS label: use the part before the first dot, %q", what, name, what, name[:strings.IndexByte(name, '.')])
		default:
			return fmt.Errorf("%s %q contains %q at byte %d; only letters a-z, digits and '-' are allowed; %s", what, name, r, i, hint)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("%s %q begins or ends with '-', which a DNS label may not; %s", what, name, hint)
	}
	return nil
}

// SameNodeName reports whether a and b name the same node. Node names, like
// host names, are compared without regard to case.
func SameNodeName(a, b string) bool { return strings.EqualFold(a, b) }

// validateSANName checks a DNS SAN requested for node: it must be the node
// name itself or a fully qualified name whose first label is the node name,
// so that a node certificate never names another node.
func validateSANName(node, dns string) error {
	if SameNodeName(dns, node) {
		return nil
	}
	first, rest, ok := strings.Cut(dns, ".")
	if !ok || !SameNodeName(first, node) {
		return fmt.Errorf("DNS name %q is not allowed in the certificate of node %q: a node may only name itself, as %q or %q followed by its domain (%s.example.com)", dns, node, node, node, node)
	}
	if len(dns) > 253 {
		return fmt.Errorf("DNS name %q is longer than 253 characters", dns)
	}
	for _, l := range strings.Split(rest, ".") {
		if err := validateLabel("domain label", l, "fix the DNS name"); err != nil {
			return fmt.Errorf("DNS name %q: %w", dns, err)
		}
	}
	return nil
}
