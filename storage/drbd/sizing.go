package drbd

import (
	"fmt"
	"strconv"
	"strings"
)

// RDMA sizing, explained in the package doc.
const (
	// PageSize is the unit of max-buffers (PAGE_SIZE on x86-64).
	PageSize = 4096
	// RDMARcvbufSize is the rcvbuf-size rendered for rdma when none is
	// set: twice the transport's built-in 2 MiB receive window. It is
	// pinned memory per connection, so it stays modest: 100 connections
	// hold 400 MiB.
	RDMARcvbufSize = 4 << 20
	// InFlightPages is what max-buffers holds beyond the receive buffer:
	// DRBD's default max-buffers (2048 pages, 8 MiB), its allowance for
	// data on its way to the backing device.
	InFlightPages = 2048

	maxRcvbuf = 10 << 20 // DRBD's limit for rcvbuf-size and sndbuf-size
)

// netSizing returns the max-buffers and rcvbuf-size to render (0: leave
// the line out). For tcp they are what the config says; for rdma both are
// always rendered and max-buffers must cover the receive buffer.
func netSizing(c ResourceConfig) (maxBuffers int, rcvbuf int64, err error) {
	if c.Transport != TransportRDMA {
		return c.MaxBuffers, c.RcvbufSize, nil
	}
	rcvbuf = c.RcvbufSize
	if rcvbuf == 0 {
		rcvbuf = RDMARcvbufSize
	}
	need := int((rcvbuf+PageSize-1)/PageSize) + InFlightPages
	switch {
	case c.MaxBuffers == 0:
		return need, rcvbuf, nil
	case c.MaxBuffers < need:
		return 0, 0, fmt.Errorf("max-buffers %d is too small for rdma with rcvbuf-size %d: the RDMA transport receives into preposted buffers, so max-buffers (4 KiB pages) must hold all of rcvbuf-size plus %d pages in flight to the disk; set DrbdOptions/Net/max-buffers to at least %d, lower rcvbuf-size, or unset both",
			c.MaxBuffers, rcvbuf, InFlightPages, need)
	}
	return c.MaxBuffers, rcvbuf, nil
}

// ParseSize reads a DRBD size as properties hold it: bytes, or a number
// with a binary suffix k, M or G (drbdsetup's units for rcvbuf-size).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is not a number of bytes or a number with k, M or G", s)
	}
	return v * mult, nil
}
