package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Corosync check codes.
const (
	CorosyncNotRunning Code = "COROSYNC_NOT_RUNNING"
	CorosyncNoQuorum   Code = "COROSYNC_NO_QUORUM"
	CorosyncLinkDown   Code = "COROSYNC_LINK_DOWN"
)

// Quorum is what corosync-quorumtool -s reports.
type Quorum struct {
	Quorate       bool
	Nodes         int // members this node sees
	ExpectedVotes int
	TotalVotes    int
	Quorum        int // votes needed
	// Blocked is set when votequorum says "Activity blocked".
	Blocked bool
}

// ParseQuorum reads the output of corosync-quorumtool -s.
func ParseQuorum(out []byte) (Quorum, error) {
	var q Quorum
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		var err error
		switch key {
		case "Quorate":
			q.Quorate = val == "Yes"
		case "Nodes":
			q.Nodes, err = strconv.Atoi(val)
		case "Expected votes":
			q.ExpectedVotes, err = strconv.Atoi(val)
		case "Total votes":
			q.TotalVotes, err = strconv.Atoi(val)
		case "Quorum":
			// "2" or "2 Activity blocked"
			num, rest, _ := strings.Cut(val, " ")
			q.Quorum, err = strconv.Atoi(num)
			q.Blocked = strings.Contains(rest, "Activity blocked")
		default:
			continue
		}
		if err != nil {
			return Quorum{}, fmt.Errorf("corosync-quorumtool: %s: %q is not a number", key, val)
		}
		seen[key] = true
	}
	if !seen["Quorate"] {
		return Quorum{}, errors.New("corosync-quorumtool printed no \"Quorate:\" line; is this corosync 3?")
	}
	return q, nil
}

// Link is one knet link as corosync-cfgtool -s shows it.
type Link struct {
	ID    int
	Addr  string // the local address
	Nodes []LinkNode
}

// LinkNode is the state of a link toward one node.
type LinkNode struct {
	NodeID int
	// Status is what cfgtool prints: localhost, connected,
	// disconnected, or a newer word.
	Status string
}

// ParseLinks reads the output of corosync-cfgtool -s:
//
//	LINK ID 0 udp
//		addr	= 10.99.0.1
//		status:
//			nodeid:          1:	localhost
//			nodeid:          2:	disconnected
func ParseLinks(out []byte) ([]Link, error) {
	var links []Link
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "LINK ID "):
			f := strings.Fields(line)
			id, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("corosync-cfgtool: %q: bad link id", line)
			}
			links = append(links, Link{ID: id})
		case len(links) == 0:
		case strings.HasPrefix(line, "addr"):
			_, v, _ := strings.Cut(line, "=")
			links[len(links)-1].Addr = strings.TrimSpace(v)
		case strings.HasPrefix(line, "nodeid:"):
			f := strings.Fields(strings.TrimPrefix(line, "nodeid:"))
			if len(f) < 2 {
				return nil, fmt.Errorf("corosync-cfgtool: %q: want nodeid: ID: STATUS", line)
			}
			id, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
			if err != nil {
				return nil, fmt.Errorf("corosync-cfgtool: %q: bad node id", line)
			}
			l := &links[len(links)-1]
			l.Nodes = append(l.Nodes, LinkNode{NodeID: id, Status: strings.Join(f[1:], " ")})
		}
	}
	if len(links) == 0 {
		return nil, errors.New("corosync-cfgtool -s printed no \"LINK ID\" line; is corosync 3 with knet running?")
	}
	return links, nil
}

func corosyncChecks() []Check {
	return []Check{
		{
			Code:  CorosyncNotRunning,
			Title: "corosync runs",
			Run: func(ctx context.Context, in *Inputs) []Finding {
				_, err := in.Quorum(ctx)
				switch {
				case errors.Is(err, ErrCorosyncDown):
					return []Finding{{Severity: Critical,
						Message: "corosync does not answer on this node (" + err.Error() + "); without it Proxmox VE and pvehci lose the cluster",
						Hint:    "systemctl restart corosync; if it fails again: journalctl -u corosync -b"}}
				case err != nil:
					return unknown("corosync-quorumtool -s", "check that corosync is installed: dpkg -s corosync")
				}
				return []Finding{{Severity: OK, Message: "corosync answers"}}
			},
		},
		{
			Code:      CorosyncNoQuorum,
			Title:     "corosync quorum",
			DependsOn: []Code{CorosyncNotRunning},
			Run: func(ctx context.Context, in *Inputs) []Finding {
				q, err := in.Quorum(ctx)
				if err != nil {
					return unknown("corosync-quorumtool -s", "")
				}
				if !q.Quorate {
					return []Finding{{Severity: Critical,
						Message: fmt.Sprintf("this node is not quorate: it sees %d node(s) with %d of %d expected votes, %d needed; VMs cannot start and /etc/pve is read-only", q.Nodes, q.TotalVotes, q.ExpectedVotes, q.Quorum),
						Hint:    "find the broken links with `corosync-cfgtool -s` and restore the network to the other nodes; check `corosync-quorumtool -s` on them"}}
				}
				return []Finding{{Severity: OK, Message: fmt.Sprintf("quorate: %d node(s), %d of %d votes, %d needed", q.Nodes, q.TotalVotes, q.ExpectedVotes, q.Quorum)}}
			},
		},
		{
			Code:      CorosyncLinkDown,
			Title:     "corosync knet links",
			DependsOn: []Code{CorosyncNotRunning},
			Run: func(ctx context.Context, in *Inputs) []Finding {
				links, err := in.Links(ctx)
				if err != nil {
					return unknown("corosync-cfgtool -s", "")
				}
				return linkFindings(links)
			},
		},
	}
}

// linkFindings judges each link toward each node: a node still reached
// over another link is a warning (redundancy lost), a node reached over
// none is critical.
func linkFindings(links []Link) []Finding {
	up := map[int]int{} // connected links per node
	for _, l := range links {
		for _, n := range l.Nodes {
			if n.Status == "connected" {
				up[n.NodeID]++
			}
		}
	}
	var out []Finding
	for _, l := range links {
		for _, n := range l.Nodes {
			if n.Status == "localhost" || n.Status == "connected" {
				continue
			}
			f := Finding{
				Objects: []Object{{"node", strconv.Itoa(n.NodeID)}, {"link", strconv.Itoa(l.ID)}},
				Hint: fmt.Sprintf("check the network of link %d (local address %s) toward node %d: cable, switch port, `ip -br addr`; knet reconnects by itself, watch with `corosync-cfgtool -s`",
					l.ID, l.Addr, n.NodeID),
			}
			if up[n.NodeID] > 0 {
				f.Severity = Warning
				f.Message = fmt.Sprintf("link %d to node %d is %s; the node is still reached over %d other link(s), but the redundancy is gone", l.ID, n.NodeID, n.Status, up[n.NodeID])
			} else {
				f.Severity = Critical
				f.Message = fmt.Sprintf("link %d to node %d is %s, and no other link reaches that node", l.ID, n.NodeID, n.Status)
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return []Finding{{Severity: OK, Message: fmt.Sprintf("%d link(s), every node connected", len(links))}}
	}
	return out
}

// unknown is the finding of a check whose input could not be read. The
// error itself is in Report.Unavailable, once, rather than repeated in
// every check that reads the same source.
func unknown(what string, hint string) []Finding {
	return []Finding{{Severity: Unknown, Message: "cannot tell: " + what + " could not be read", Hint: hint}}
}
