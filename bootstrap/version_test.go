package bootstrap

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"5.1.3", true}, {"5.1.4", true}, {"5.2.0", true}, {"6.0", true}, {"5.1.3+b1", true},
		{"5.1.2", false}, {"4.0.6", false}, {"5.1", false}, {"5.1.3~rc1", false}, {"5.1.3.1~rc1", true}, {"", false}, {"5.10.0-1", true},
	} {
		if got := versionAtLeast(tt.v, 5, 1, 3); got != tt.want {
			t.Errorf("versionAtLeast(%q, 5.1.3) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
