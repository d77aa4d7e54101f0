package state

import (
	"math/bits"

	"github.com/pvehci/pvehci/storage/model"
)

// numberSet is a bitset over non-negative numbers. Allocators use it so
// that "lowest free" costs a word scan, not a walk over every held number:
// with 10,000 volume definitions a linear search per allocation would make
// bulk creates quadratic.
type numberSet struct {
	words []uint64
	n     int // how many bits are set
}

func (s *numberSet) has(x int) bool {
	w := x >> 6
	return w < len(s.words) && s.words[w]&(1<<(uint(x)&63)) != 0
}

func (s *numberSet) add(x int) {
	w := x >> 6
	for w >= len(s.words) {
		s.words = append(s.words, 0)
	}
	if s.words[w]&(1<<(uint(x)&63)) == 0 {
		s.words[w] |= 1 << (uint(x) & 63)
		s.n++
	}
}

func (s *numberSet) remove(x int) {
	w := x >> 6
	if w < len(s.words) && s.words[w]&(1<<(uint(x)&63)) != 0 {
		s.words[w] &^= 1 << (uint(x) & 63)
		s.n--
	}
}

// lowestFree returns the lowest number in r that is neither in s nor in
// pending (numbers a command has picked but not yet committed).
func (s *numberSet) lowestFree(r model.Range, pending map[int]bool) (int, bool) {
	x := r.Min
	for x <= r.Max {
		w := x >> 6
		if w >= len(s.words) {
			// Everything from here on is free in s.
			for ; x <= r.Max; x++ {
				if !pending[x] {
					return x, true
				}
			}
			return 0, false
		}
		// Bits of this word at or above x that are free.
		free := ^s.words[w] &^ (1<<(uint(x)&63) - 1)
		if free == 0 {
			x = (w + 1) << 6
			continue
		}
		x = w<<6 + bits.TrailingZeros64(free)
		if x > r.Max {
			return 0, false
		}
		if !pending[x] {
			return x, true
		}
		x++
	}
	return 0, false
}
