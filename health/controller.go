package health

import (
	"context"
	"fmt"
	"time"
)

// Controller check codes.
const (
	ControllerNotMember   Code = "CONTROLLER_NOT_MEMBER"
	ControllerNoLeader    Code = "CONTROLLER_NO_LEADER"
	ControllerLeaderStale Code = "CONTROLLER_LEADER_STALE"
	CertExpiresSoon       Code = "CERT_EXPIRES_SOON"
)

// Thresholds of the controller checks.
const (
	// The leader heartbeats several times a second; seconds of silence
	// mean this member is cut off, and raft will call an election soon.
	LeaderContactWarning  = 5 * time.Second
	LeaderContactCritical = 30 * time.Second
	// A month leaves time to renew in working hours; a week is urgent.
	CertWarning  = 30 * 24 * time.Hour
	CertCritical = 7 * 24 * time.Hour
)

const daemonHint = "start the local daemon with `systemctl start pvehci`; if it fails: journalctl -u pvehci -b"

func controllerChecks() []Check {
	return []Check{
		{
			Code:  ControllerNotMember,
			Title: "this node is a controller cluster member",
			Run: func(ctx context.Context, in *Inputs) []Finding {
				st, err := in.ClusterStatus(ctx)
				if err != nil {
					return unknown("the local pvehci daemon's status", daemonHint)
				}
				if !st.Member {
					return []Finding{{Severity: Warning, Objects: []Object{{"node", st.Node}},
						Message: st.Node + " is not a member of a pvehci cluster, so nothing manages its storage",
						Hint:    "on a member: pvehci cluster token " + st.Node + "; here: pvehci cluster join TOKEN (or `pvehci cluster init NAME` for a new cluster)"}}
				}
				return []Finding{{Severity: OK, Message: fmt.Sprintf("%s is a member of cluster %s", st.Node, st.ClusterName)}}
			},
		},
		{
			Code:      ControllerNoLeader,
			Title:     "controller cluster has a leader",
			DependsOn: []Code{ControllerNotMember},
			Run: func(ctx context.Context, in *Inputs) []Finding {
				st, err := in.ClusterStatus(ctx)
				if err != nil {
					return unknown("the local pvehci daemon's status", daemonHint)
				}
				if !st.Member {
					return []Finding{{Severity: Warning, Objects: []Object{{"node", st.Node}}, Message: "not a member"}}
				}
				if st.Raft == nil || st.Raft.LeaderID == "" {
					return []Finding{{Severity: Critical,
						Message: "the controller cluster has no leader: a majority of its voting members does not answer, so no storage change can be made",
						Hint:    "bring the other controller members back (`pvehci cluster status` lists them; on each: systemctl start pvehci); only if a majority is lost for good: pvehci cluster recover --help"}}
				}
				return []Finding{{Severity: OK, Message: "leader: " + st.Raft.LeaderID}}
			},
		},
		{
			Code:      ControllerLeaderStale,
			Title:     "contact with the controller leader",
			DependsOn: []Code{ControllerNotMember, ControllerNoLeader},
			Run: func(ctx context.Context, in *Inputs) []Finding {
				st, err := in.ClusterStatus(ctx)
				if err != nil {
					return unknown("the local pvehci daemon's status", daemonHint)
				}
				if !st.Member {
					return []Finding{{Severity: Warning, Objects: []Object{{"node", st.Node}}, Message: "not a member"}}
				}
				if st.Raft == nil || st.Raft.LeaderID == "" {
					return []Finding{{Severity: Warning, Message: "no leader"}}
				}
				r := st.Raft
				if r.LeaderID == st.Node {
					return []Finding{{Severity: OK, Message: "this node leads"}}
				}
				last := r.LastContact.Round(time.Millisecond)
				var sev Severity
				switch {
				case r.LastContact >= LeaderContactCritical:
					sev = Critical
				case r.LastContact >= LeaderContactWarning:
					sev = Warning
				default:
					return []Finding{{Severity: OK, Message: fmt.Sprintf("last contact with leader %s %s ago", r.LeaderID, last)}}
				}
				return []Finding{{Severity: sev, Objects: []Object{{"node", r.LeaderID}},
					Message: fmt.Sprintf("no contact with the leader %s for %s; this member is cut off from the controller", r.LeaderID, last),
					Hint:    fmt.Sprintf("check the network to %s (peer address %s) and that pvehci runs there: systemctl status pvehci", r.LeaderID, r.LeaderAddress)}}
			},
		},
		{
			Code:      CertExpiresSoon,
			Title:     "cluster certificates",
			DependsOn: []Code{ControllerNotMember},
			Run: func(ctx context.Context, in *Inputs) []Finding {
				st, err := in.ClusterStatus(ctx)
				if err != nil {
					return unknown("the local pvehci daemon's status", daemonHint)
				}
				if !st.Member {
					return []Finding{{Severity: Warning, Objects: []Object{{"node", st.Node}}, Message: "not a member"}}
				}
				now := in.Now()
				renewNode := fmt.Sprintf("pvehci cannot renew a node certificate in place yet; in a maintenance window re-join %s for a new one: on another member `pvehci cluster remove %s` and `pvehci cluster token %s`, then here `pvehci cluster join TOKEN`", st.Node, st.Node, st.Node)
				out := []Finding{
					certFinding(now, Object{"certificate", "node " + st.Node}, "the node certificate of "+st.Node, st.CertExpiry, renewNode),
					certFinding(now, Object{"certificate", "cluster CA"}, "the cluster CA certificate", st.CAExpiry,
						"pvehci cannot rotate the cluster CA yet; plan a new cluster (`pvehci cluster backup FILE`, then init and restore) before it expires"),
				}
				return out
			},
		},
	}
}

func certFinding(now time.Time, obj Object, what string, notAfter time.Time, hint string) Finding {
	if notAfter.IsZero() {
		return Finding{Severity: OK, Objects: []Object{obj}, Message: what + ": no expiry reported"}
	}
	left := notAfter.Sub(now)
	date := notAfter.UTC().Format("2006-01-02")
	switch {
	case left <= 0:
		return Finding{Severity: Critical, Objects: []Object{obj}, Message: fmt.Sprintf("%s expired on %s; peers refuse this node", what, date), Hint: hint}
	case left <= CertCritical:
		return Finding{Severity: Critical, Objects: []Object{obj}, Message: fmt.Sprintf("%s expires on %s, in %s", what, date, days(left)), Hint: hint}
	case left <= CertWarning:
		return Finding{Severity: Warning, Objects: []Object{obj}, Message: fmt.Sprintf("%s expires on %s, in %s", what, date, days(left)), Hint: hint}
	}
	return Finding{Severity: OK, Objects: []Object{obj}, Message: fmt.Sprintf("%s valid until %s", what, date)}
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return "less than a day"
	}
	return fmt.Sprintf("%d days", n)
}
