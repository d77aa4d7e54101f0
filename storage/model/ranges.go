package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Range is an inclusive range of numbers, written "min-max" in properties.
type Range struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Contains reports whether n lies in r.
func (r Range) Contains(n int) bool { return n >= r.Min && n <= r.Max }

// Size is the count of numbers in r.
func (r Range) Size() int { return r.Max - r.Min + 1 }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Hard limits and LINSTOR's defaults for DRBD numbers (research §2 "Numbers
// and allocation"; DEFAULT_TCP_PORT_MIN/MAX, MinorNumber, NodeIdAlloc). They
// are functions rather than variables so that nothing can change them.

// TCPPortLimits is what a TCP port can be at all.
func TCPPortLimits() Range { return Range{Min: 1, Max: 65535} }

// DefaultTCPPortRange is TcpPortAutoRange when nobody set it.
func DefaultTCPPortRange() Range { return Range{Min: 7000, Max: 7999} }

// MinorLimits is what a DRBD minor can be at all (2^20-1 is the kernel's maximum).
func MinorLimits() Range { return Range{Min: 0, Max: 1<<20 - 1} }

// DefaultMinorRange is MinorNrAutoRange when nobody set it.
func DefaultMinorRange() Range { return Range{Min: 1000, Max: 49999} }

// NodeIDLimits are DRBD 9's node ids.
func NodeIDLimits() Range { return Range{Min: 0, Max: 31} }

// DRBD peer slot limits: LINSTOR's default is 7 (InternalApiConsts.DEFAULT_PEER_SLOTS),
// and DRBD 9 cannot have more than 31 peers.
const (
	DefaultPeerSlots = 7
	MaxPeerSlots     = 31
)

// ParseRange reads "min-max" (LINSTOR's format for TcpPortAutoRange and
// MinorNrAutoRange) and checks it lies within limits.
func ParseRange(s string, limits Range) (Range, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	fix := fmt.Sprintf(`write it as "min-max" within %s, for example "%d-%d"`, limits, limits.Min, limits.Max)
	if !ok {
		return Range{}, fmt.Errorf("range %q has no '-'; %s", s, fix)
	}
	min, err1 := strconv.Atoi(strings.TrimSpace(lo))
	max, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return Range{}, fmt.Errorf("range %q is not two whole numbers; %s", s, fix)
	}
	if min > max {
		return Range{}, fmt.Errorf("range %q starts above its end; %s", s, fix)
	}
	if !limits.Contains(min) || !limits.Contains(max) {
		return Range{}, fmt.Errorf("range %q leaves %s; %s", s, limits, fix)
	}
	return Range{Min: min, Max: max}, nil
}
