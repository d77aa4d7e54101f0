package drbd

import "strconv"

// ParseRate reads a DRBD rate option such as c-max-rate: a positive whole
// number of KiB/s, or one with a K, M or G suffix (drbd.conf(5)). It
// returns the rate in KiB/s, and false for anything else.
func ParseRate(s string) (kibPerSec int64, ok bool) {
	if s == "" {
		return 0, false
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		s = s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1024, s[:len(s)-1]
	case 'g', 'G':
		mult, s = 1024*1024, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n * mult, true
}
