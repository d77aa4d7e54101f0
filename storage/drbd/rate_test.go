package drbd

import "testing"

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"100": 100, "250k": 250, "100M": 102400, "2G": 2 << 20, "": -1, "0": -1, "-5M": -1, "1.5M": -1, "M": -1, "100MB": -1} {
		got, ok := ParseRate(in)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}
