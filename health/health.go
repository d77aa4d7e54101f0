package health

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Severity says how bad a finding is. The order of the constants is the
// order of urgency: a known critical fault outranks an unknown (which may
// hide one), which outranks a warning.
type Severity int

// Severities, least urgent first.
const (
	OK Severity = iota
	// Skipped is set by Run, never by a check: the finding was not
	// judged because a check it depends on failed for the same objects.
	Skipped
	Warning
	Unknown
	Critical
)

var severityNames = [...]string{OK: "ok", Skipped: "skipped", Warning: "warning", Unknown: "unknown", Critical: "critical"}

// String returns the lower-case name used in JSON: ok, skipped, warning,
// unknown, critical.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ExitCode is the Nagios plugin exit code: 0 OK (and skipped), 1 warning,
// 2 critical, 3 unknown.
func (s Severity) ExitCode() int {
	switch s {
	case Warning:
		return 1
	case Critical:
		return 2
	case Unknown:
		return 3
	}
	return 0
}

// MarshalText writes the name, so JSON says "critical" rather than 4.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("%q is not a severity", b)
}

// Code identifies a check. Codes are stable: alerts and scripts match on
// them, so a code is never renamed or reused.
type Code string

// Object is one thing a finding is about, such as a DRBD resource, a
// corosync link or a thin pool.
type Object struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (o Object) String() string { return o.Kind + " " + o.Name }

// Finding is one verdict of a check.
type Finding struct {
	Severity Severity
	// Objects are what the finding is about, most general first; they
	// also scope dependency skipping (see the package doc).
	Objects []Object
	// Message says what is the matter, in a sentence.
	Message string
	// Hint says what to do, with the exact command where there is one.
	Hint string
}

// Check is one typed health check.
type Check struct {
	Code  Code
	Title string
	// DependsOn lists checks whose failure explains this one's.
	DependsOn []Code
	// Run judges the node. It returns no findings, or only OK ones, when
	// all is well. When an input cannot be read it returns an Unknown
	// finding saying why.
	Run func(ctx context.Context, in *Inputs) []Finding
}

// Item is one finding in a report, with the check it came from.
type Item struct {
	Code     Code     `json:"code"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Objects  []Object `json:"objects,omitempty"`
	Message  string   `json:"message,omitempty"`
	Hint     string   `json:"hint,omitempty"`
	// SkippedFor is the failed dependency of a skipped item.
	SkippedFor Code `json:"skipped_for,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	// Severity is the worst severity of the items.
	Severity Severity `json:"severity"`
	// ExitCode is Severity's Nagios exit code.
	ExitCode int `json:"exit_code"`
	// Items are sorted most urgent first, then in registry order (causes
	// before their symptoms), then by objects.
	Items []Item `json:"items"`
	// Unavailable lists the sources that could not be read; the checks
	// reading them are unknown.
	Unavailable []SourceError `json:"unavailable,omitempty"`
}

// SourceError says which source could not be read and why.
type SourceError struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

// Registry holds checks in dependency order.
type Registry struct {
	checks []Check
	byCode map[Code]int
}

// NewRegistry returns a registry of checks. A check may depend only on a
// check listed before it, which rules out cycles; codes must be unique.
func NewRegistry(checks ...Check) (*Registry, error) {
	r := &Registry{byCode: map[Code]int{}}
	for _, c := range checks {
		if c.Code == "" || c.Run == nil {
			return nil, fmt.Errorf("health: a check needs a code and a function (title %q)", c.Title)
		}
		if _, dup := r.byCode[c.Code]; dup {
			return nil, fmt.Errorf("health: check %s registered twice", c.Code)
		}
		for _, d := range c.DependsOn {
			if _, ok := r.byCode[d]; !ok {
				return nil, fmt.Errorf("health: check %s depends on %s, which is not registered before it", c.Code, d)
			}
		}
		r.byCode[c.Code] = len(r.checks)
		r.checks = append(r.checks, c)
	}
	return r, nil
}

// Checks returns the registered checks in order.
func (r *Registry) Checks() []Check { return slices.Clone(r.checks) }

// Lookup returns the check with the code.
func (r *Registry) Lookup(code Code) (Check, bool) {
	i, ok := r.byCode[code]
	if !ok {
		return Check{}, false
	}
	return r.checks[i], true
}

// Run runs the checks named by only (all when empty) and the checks they
// depend on, and reports on the named ones. An unknown code is an error.
func (r *Registry) Run(ctx context.Context, src Sources, only ...Code) (Report, error) {
	want := map[Code]bool{}
	for _, c := range only {
		if _, ok := r.byCode[c]; !ok {
			return Report{}, fmt.Errorf("%s is not a health check; known checks: %s", c, strings.Join(r.codes(), ", "))
		}
		r.markWithDeps(c, want)
	}
	in := newInputs(src)
	failed := map[Code][]Finding{} // warning and critical findings by check
	var rep Report
	order := map[Code]int{}
	for i, c := range r.checks {
		order[c.Code] = i
		if len(only) > 0 && !want[c.Code] {
			continue
		}
		findings := c.Run(ctx, in)
		if len(findings) == 0 {
			findings = []Finding{{Severity: OK}}
		}
		for _, f := range findings {
			if f.Severity == Warning || f.Severity == Critical {
				failed[c.Code] = append(failed[c.Code], f)
			}
		}
		if len(only) > 0 && !slices.Contains(only, c.Code) {
			continue
		}
		for _, f := range findings {
			it := Item{Code: c.Code, Title: c.Title, Severity: f.Severity, Objects: f.Objects, Message: f.Message, Hint: f.Hint}
			if f.Severity != OK {
				if dep, ok := coveredBy(c.DependsOn, failed, f.Objects); ok {
					it.Severity, it.SkippedFor, it.Hint = Skipped, dep, ""
					it.Message = fmt.Sprintf("not judged: fix %s first", dep)
				}
			}
			rep.Items = append(rep.Items, it)
		}
	}
	slices.SortStableFunc(rep.Items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(order[a.Code], order[b.Code]), cmp.Compare(objectsKey(a.Objects), objectsKey(b.Objects)))
	})
	for _, it := range rep.Items {
		rep.Severity = max(rep.Severity, it.Severity)
	}
	if rep.Severity == Skipped {
		rep.Severity = OK
	}
	rep.ExitCode = rep.Severity.ExitCode()
	rep.Unavailable = in.unavailable()
	return rep, nil
}

func (r *Registry) markWithDeps(c Code, want map[Code]bool) {
	if want[c] {
		return
	}
	want[c] = true
	for _, d := range r.checks[r.byCode[c]].DependsOn {
		r.markWithDeps(d, want)
	}
}

func (r *Registry) codes() []string {
	out := make([]string, len(r.checks))
	for i, c := range r.checks {
		out[i] = string(c.Code)
	}
	return out
}

// coveredBy returns the first dependency with a failed finding whose
// objects are a subset of objs: that failure explains this finding.
func coveredBy(deps []Code, failed map[Code][]Finding, objs []Object) (Code, bool) {
	for _, d := range deps {
		for _, f := range failed[d] {
			if subset(f.Objects, objs) {
				return d, true
			}
		}
	}
	return "", false
}

func subset(small, big []Object) bool {
	for _, o := range small {
		if !slices.Contains(big, o) {
			return false
		}
	}
	return true
}

func objectsKey(objs []Object) string {
	parts := make([]string, len(objs))
	for i, o := range objs {
		parts[i] = o.String()
	}
	return strings.Join(parts, "\x00")
}

// JSON renders the report as indented JSON with a trailing newline.
func (rep Report) JSON() ([]byte, error) {
	if rep.Items == nil {
		rep.Items = []Item{}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ForNode keeps the items about node: those naming it, and those naming
// no node at all (this node's own checks: corosync, the local daemon, its
// links). The severity and exit code follow the kept items.
func (rep Report) ForNode(node string) Report {
	out := Report{Unavailable: rep.Unavailable}
	for _, it := range rep.Items {
		named, match := false, false
		for _, o := range it.Objects {
			if o.Kind == "node" {
				named = true
				match = match || o.Name == node
			}
		}
		if !named || match {
			out.Items = append(out.Items, it)
			out.Severity = max(out.Severity, it.Severity)
		}
	}
	if out.Severity == Skipped {
		out.Severity = OK
	}
	out.ExitCode = out.Severity.ExitCode()
	return out
}
