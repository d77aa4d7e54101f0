package pvesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// UPID is a PVE task id (PVE/UPID.pm, proxmox.md §4.3):
// UPID:<node>:<pid 8 hex>:<pstart 8 hex>:<starttime 8 hex>:<type>:<id>:<user>:
type UPID struct {
	Node      string
	PID       int
	PStart    int64
	StartTime time.Time
	Type      string
	ID        string
	User      string // user@realm, or user@realm!tokenid for a token
}

func (u UPID) String() string {
	return fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", u.Node, u.PID, u.PStart, u.StartTime.Unix(), u.Type, u.ID, u.User)
}

// ParseUPID parses s. Like PVE it accepts pstart with 8 or 9 hex digits.
func ParseUPID(s string) (UPID, error) {
	f := strings.Split(s, ":")
	if len(f) != 9 || f[0] != "UPID" || f[8] != "" || f[1] == "" || f[5] == "" {
		return UPID{}, fmt.Errorf("unable to parse worker upid '%s'", s)
	}
	pid, err1 := strconv.ParseInt(f[2], 16, 64)
	pstart, err2 := strconv.ParseInt(f[3], 16, 64)
	start, err3 := strconv.ParseInt(f[4], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(f[2]) != 8 || len(f[3]) < 8 || len(f[3]) > 9 || len(f[4]) != 8 {
		return UPID{}, fmt.Errorf("unable to parse worker upid '%s'", s)
	}
	return UPID{Node: f[1], PID: int(pid), PStart: pstart, StartTime: time.Unix(start, 0).UTC(), Type: f[5], ID: f[6], User: f[7]}, nil
}

// splitUser splits user@realm!tokenid into the task list's user and
// tokenid fields.
func splitUser(u string) (user, tokenid string) {
	user, tokenid, _ = strings.Cut(u, "!")
	return user, tokenid
}
