package model

import (
	"fmt"
	"strings"
)

// NameKind says which kind of object a name belongs to. The rules differ by
// kind, and so do the LINSTOR error codes the REST layer reports.
type NameKind string

// Kinds of names. Their rules are LINSTOR's (core/identifier/*Name.java and
// Checks.nameCheck/hostNameCheck, read for behaviour only).
const (
	NameNode                  NameKind = "node"
	NameNetInterface          NameKind = "net interface"
	NameStoragePool           NameKind = "storage pool"
	NameResourceGroup         NameKind = "resource group"
	NameResourceDefinition    NameKind = "resource definition"
	NameSnapshot              NameKind = "snapshot"
	NameJobSchedule           NameKind = "job schedule"
	NameJobRun                NameKind = "job run"
	NameResourceDefinitionExt NameKind = "external name"
)

// NameError says what is wrong with a name and how to fix it. The REST layer
// shows Problem as the message and Fix as the correction of an ApiCallRc.
type NameError struct {
	Kind    NameKind
	Name    string
	Problem string
	Fix     string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s; %s", e.Kind, e.Name, e.Problem, e.Fix)
}

// nameRule is LINSTOR's generic name check: a length range, a first
// character that is a letter or one of first, inner characters that are
// letters, digits or one of inner, and at least one letter somewhere.
type nameRule struct {
	min, max     int
	first, inner string
	reserved     []string // refused case-insensitively
}

func ruleFor(kind NameKind) nameRule {
	switch kind {
	case NameNetInterface:
		return nameRule{min: 3, max: 32, first: "_", inner: "_-"}
	case NameStoragePool:
		return nameRule{min: 3, max: 48, first: "_", inner: "_-"}
	case NameResourceDefinition:
		// "all" and "proxy" are DRBD keywords; drbdadm would misread them.
		return nameRule{min: 2, max: 48, first: "_", inner: "_-", reserved: []string{"all", "proxy"}}
	case NameJobRun:
		return nameRule{min: 1, max: 64, first: "_0123456789", inner: "_-."}
	default: // resource group, snapshot, job schedule
		return nameRule{min: 2, max: 48, first: "_", inner: "_-"}
	}
}

// ValidateName checks name against LINSTOR's rules for kind. Node names are
// host names (RFC 1123, 2 to 255 bytes, labels of at most 63); the others
// follow the generic rule in ruleFor.
func ValidateName(kind NameKind, name string) error {
	if kind == NameNode {
		return validateHostName(name)
	}
	if kind == NameResourceDefinitionExt {
		// External names are free text in LINSTOR (they exist to carry names
		// that break the rules); only bound their length.
		if len(name) == 0 || len(name) > 255 {
			return &NameError{kind, name, "it must be 1 to 255 bytes long", "use a shorter external name"}
		}
		return nil
	}
	r := ruleFor(kind)
	bad := func(problem, fix string) error { return &NameError{kind, name, problem, fix} }
	if len(name) < r.min || len(name) > r.max {
		return bad(fmt.Sprintf("it is %d bytes long, allowed are %d to %d", len(name), r.min, r.max),
			fmt.Sprintf("choose a name of %d to %d characters", r.min, r.max))
	}
	for _, w := range r.reserved {
		if strings.EqualFold(name, w) {
			return bad(fmt.Sprintf("%q is a keyword reserved by DRBD", w), "choose another name")
		}
	}
	c := name[0]
	if !isLetter(c) && !strings.ContainsRune(r.first, rune(c)) {
		return bad(fmt.Sprintf("it begins with %q", c),
			fmt.Sprintf("begin it with a letter%s", orChars(r.first)))
	}
	letter := isLetter(c)
	for i := 1; i < len(name); i++ {
		c := name[i]
		switch {
		case isLetter(c):
			letter = true
		case isDigit(c), strings.ContainsRune(r.inner, rune(c)):
		default:
			return bad(fmt.Sprintf("it contains %q at position %d", c, i+1),
				fmt.Sprintf("use only letters, digits%s", orChars(r.inner)))
		}
	}
	if !letter && kind != NameJobRun {
		return bad("it contains no letter", "include at least one letter a-z or A-Z")
	}
	return nil
}

func validateHostName(name string) error {
	bad := func(problem, fix string) error { return &NameError{NameNode, name, problem, fix} }
	switch {
	case len(name) < 2 || len(name) > 255:
		return bad(fmt.Sprintf("it is %d bytes long, RFC 1123 allows 2 to 255", len(name)),
			"use the node's host name as `uname -n` prints it")
	case name[0] == '.' || name[0] == '-':
		return bad(fmt.Sprintf("it begins with %q", name[0]), "a host name begins with a letter or digit")
	case name[len(name)-1] == '-':
		return bad("it ends with '-'", "a host name ends with a letter or digit")
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '.' {
			label = 0
			continue
		}
		label++
		if label > 63 {
			return bad("a dot-separated part is longer than 63 bytes", "shorten that part of the host name")
		}
		if !isLetter(c) && !isDigit(c) && c != '-' {
			return bad(fmt.Sprintf("it contains %q at position %d", c, i+1),
				"use only letters, digits, '-' and '.' as in a host name")
		}
	}
	return nil
}

func orChars(s string) string {
	var parts []string
	for _, c := range s {
		if c >= '0' && c <= '9' {
			continue
		}
		parts = append(parts, fmt.Sprintf("'%c'", c))
	}
	if strings.ContainsAny(s, "0123456789") {
		parts = append([]string{"a digit"}, parts...)
	}
	if len(parts) == 0 {
		return ""
	}
	return " or " + strings.Join(parts, ", ")
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// Key returns the identity of a name. LINSTOR names are case-insensitive:
// "vm-100-disk-1" and "VM-100-DISK-1" are the same object, shown with the
// spelling it was created with, and ordered by the upper-case form
// (GenericName in linstor-server). Valid names are ASCII, so upper-casing
// bytes is enough.
func Key(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(name)
		}
	}
	return name
}

// SameName reports whether a and b name the same object.
func SameName(a, b string) bool { return strings.EqualFold(a, b) }
