package textdiff

import (
	"reflect"
	"testing"
)

func TestLines(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       []string
	}{
		{"equal", "a\nb\n", "a\nb\n", nil},
		{"new file", "", "a\nb\n", []string{"+ a", "+ b"}},
		{"removed file", "a\n", "", []string{"- a"}},
		{"changed line", "a\nb\nc\n", "a\nB\nc\n", []string{"- b", "+ B"}},
		{"added at end, no final newline", "a", "a\nb", []string{"+ b"}},
		{"moved line", "a\nb\nc\n", "b\nc\na\n", []string{"- a", "+ a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lines(tt.a, tt.b); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lines = %q, want %q", got, tt.want)
			}
		})
	}
}
